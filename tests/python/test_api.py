"""The binding beyond the seed: sources, consumers, modes, zero copy,
iteration and waiting.

Every packet list is checked against ffprobe on the same file (track,
pts, dts, size, key flag and payload MD5 of every packet, every track).
"""

import asyncio
import gc
import hashlib
import os
import threading

import pytest

from conftest import ffprobe_packets


def ffprobe_md5_packets(path):
    """ffprobe's packets as (track, pts, dts, size, key, payload md5)."""
    return [(int(s), None if pts == "N/A" else int(pts),
             None if dts == "N/A" else int(dts), int(size),
             flags.startswith("K"), h)
            for s, pts, dts, size, flags, h in ffprobe_packets(
                path, "stream_index", "pts", "dts", "size", "flags",
                md5=True)]


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def row(p):
    return (p.stream_index, p.pts, p.dts, p.size, p.is_keyframe,
            hashlib.md5(p.data).hexdigest())


def test_open_path_every_track(shm, media):
    path = os.path.join(media, "h264_aac_srt.mkv")
    with shm.open(path) as s:
        kinds = [t.codec_type for t in s.tracks]
        assert kinds == ["video", "audio", "subtitle"]
        assert s.video_stream.codec_name == "h264"
        assert s.audio_stream.sample_rate == 48000
        assert s.format_name.startswith("matroska")
        got = [row(p) for p in s]
        assert s.status()["end_reason_name"] == "eof"
    assert got == ffprobe_md5_packets(path)


def test_open_fd_pipe(shm, media):
    """A pipe's read end, fed by a thread; the stream reads it as a pipe."""
    path = os.path.join(media, "h264_aac.ts")
    rd, wr = os.pipe()

    def feed():
        with open(path, "rb") as f, os.fdopen(wr, "wb") as out:
            out.write(f.read())

    t = threading.Thread(target=feed)
    t.start()
    try:
        with open(rd, "rb", closefd=True) as r, shm.open(r) as s:
            got = [row(p) for p in s]
    finally:
        t.join()
    assert got == ffprobe_md5_packets(path)


def test_many_consumers_by_id_and_name(shm, media):
    """Two consumers attached to one named stream (one by id, one by
    name) read the same packets; the stream waits for both."""
    path = os.path.join(media, "vp9_opus.webm")
    with shm.Connection() as c:
        sid = c.open_path(path, name="two-readers", wait_consumers=2)
        a = shm.attach(sid)
        b = shm.attach("two-readers")
        with a, b:
            info = [i for i in c.list() if i["id"] == sid][0]
            assert info["consumers"] == 2 and info["name"] == "two-readers"
            ra = [row(p) for p in a]
            rb = [row(p) for p in b]
    assert ra == rb == ffprobe_md5_packets(path)


def test_duplicate_name_and_missing_stream(shm, media):
    path = os.path.join(media, "flac.flac")
    with shm.open(path, name="unique-name"):
        with pytest.raises(FileExistsError):
            shm.open(path, name="unique-name")
    with pytest.raises(FileNotFoundError):
        shm.attach("no-such-stream")
    with pytest.raises(FileNotFoundError):
        shm.open(os.path.join(media, "does-not-exist.mkv"))


def test_start_positions_on_a_live_stream(shm, media):
    """Live mode at the media's pace: a reader from the oldest record, one
    joining at the newest keyframe and one at the next packet."""
    path = os.path.join(media, "h264_aac.ts")
    with shm.Connection() as c:
        sid = c.open_path(path, mode="live", realtime=True, name="live-pos",
                          wait_consumers=1)
        with shm.attach(sid) as first:
            assert first.live and first.reader.copy
            it = iter(first)
            seen = [next(it) for _ in range(40)]
            assert all(isinstance(p.data, bytes) for p in seen)
            last_seq = seen[-1].seq
            with shm.attach(sid, start="keyframe") as kf, \
                    shm.attach(sid, start="live") as lv:
                k0 = next(iter(kf))
                l0 = next(iter(lv))
                assert k0.is_keyframe
                assert l0.seq > last_seq and l0.seq > k0.seq
            rest = list(it)
    assert len(seen) + len(rest) == len(probe_counts(path))


def probe_counts(path):
    return ffprobe_packets(path, "stream_index")


def test_lossless_views_and_copy_mode(shm, media):
    path = os.path.join(media, "aac.adts")
    want = ffprobe_md5_packets(path)
    with shm.open(path) as s:
        p = s.read()
        assert isinstance(p.data, memoryview) and p.data.readonly
    got = []
    with shm.open(path, copy=True) as s:
        for p in s:
            assert isinstance(p.data, bytes)
            got.append(row(p))
    assert got == want


def test_zero_copy_rules(shm, media):
    """A packet's view is valid until the next read: its memoryview is
    released then (using it raises), the packet refuses new exports,
    bytes() taken before keeps the payload; a buffer still held pins the
    mapping, and close() detaches only once it is let go."""
    path = os.path.join(media, "h264_aac.mkv")
    want = ffprobe_md5_packets(path)
    s = shm.open(path)
    try:
        r = s.reader
        p1 = s.read()
        mv = p1.data
        kept = bytes(mv)
        assert hashlib.md5(kept).hexdigest() == want[0][5]
        assert p1.valid and r.exports == 1
        p2 = s.read()
        assert not p1.valid and p2.valid
        with pytest.raises(ValueError):
            bytes(mv)                      # released memoryview
        with pytest.raises(ValueError):
            len(p1.data)                   # the same, via the packet
        p3 = s.read()
        with pytest.raises(BufferError):
            p2.data                        # never exported: refused now
        assert hashlib.md5(kept).hexdigest() == want[0][5]
        # A slice of the view shares its export and outlives the read.
        data = p3.data
        held = data[:]
        s.read()
        assert r.exports == 1              # the slice still holds it
        s.close()
        assert r.closed and not r.detached  # mapping kept for the slice
        del held, data
        gc.collect()
        assert r.detached and r.exports == 0
    finally:
        s.close()


def test_release_early(shm, media):
    path = os.path.join(media, "aac.adts")
    with shm.open(path) as s:
        p = s.read()
        assert p.release() is True
        assert not p.valid
        with pytest.raises(BufferError):
            p.data
        n = 1 + sum(1 for _ in s)
    assert n == len(probe_counts(path))


def test_context_managers_close_everything(shm, media):
    """Leaving the with block detaches and closes the stream it opened
    (paced live, it would run 2 s otherwise), and the connection."""
    path = os.path.join(media, "h264_aac.ts")
    with shm.open(path, mode="live", realtime=True) as s:
        sid = s.id
        next(iter(s))
    assert s.closed and s.reader.detached
    with shm.Connection() as c:
        try:
            with shm.attach(sid, wait=False) as late:
                with pytest.raises(shm.StreamClosed):
                    for _ in late:
                        pass
        except FileNotFoundError:
            pass  # already forgotten by the broker
        info = [i for i in c.list() if i["id"] == sid]
        assert not info or info[0]["end_reason_name"] == "closed"
    assert c.closed


def test_read_timeout_and_async_cancel_loses_nothing(shm, media):
    """A push stream with no input yet: a timed read returns None; an
    async wait cancelled meanwhile loses no packet; then every packet
    arrives."""
    path = os.path.join(media, "h264_aac.mkv")
    with open(path, "rb") as f:
        data = f.read()

    async def main():
        conn = shm.Connection()
        sid, fd = conn.open_push()
        s = shm.attach(sid, wait=False)
        try:
            assert s.read(timeout=0.2) is None
            it = s.packets()
            task = asyncio.ensure_future(it.__anext__())
            await asyncio.wait([task], timeout=0.2)
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The worker drains the pipe into the (larger) ring.
            write_all(fd, data)
            conn.push_end(sid, fd)
            return [row(p) async for p in s.packets()]
        finally:
            s.close()
            conn.close()

    got = asyncio.run(main())
    assert got == ffprobe_md5_packets(path)


def test_close_interrupts_a_wait(shm):
    """close() from another task ends a pending asynchronous iteration."""
    async def main():
        with shm.Connection() as conn:
            sid, fd = conn.open_push()
            s = shm.attach(sid, wait=False)
            try:
                async def consume():
                    return [p async for p in s]
                task = asyncio.ensure_future(consume())
                await asyncio.wait([task], timeout=0.2)
                assert not task.done()
                s.close()
                assert await asyncio.wait_for(task, 10) == []
            finally:
                os.close(fd)
                s.close()

    asyncio.run(main())


def test_many_streams_wait_at_once(shm, media):
    """Twenty consumers of twenty push streams, all waiting at the same
    time in one event loop, each get their stream's packets."""
    path = os.path.join(media, "aac.adts")
    with open(path, "rb") as f:
        data = f.read()
    want = len(probe_counts(path))

    async def one(i, conn, ready):
        sid, fd = conn.open_push(name="many-%d" % i)
        s = shm.attach(sid, wait=False)
        try:
            task = asyncio.ensure_future(count(s))
            ready.append(task)
            return sid, fd, s, task
        except BaseException:
            s.close()
            raise

    async def count(s):
        return sum([1 async for _ in s])

    async def main():
        conn = shm.Connection()
        ready = []
        streams = [await one(i, conn, ready) for i in range(20)]
        await asyncio.wait(ready, timeout=0.3)
        assert not any(t.done() for t in ready)
        try:
            for sid, fd, s, task in streams:
                write_all(fd, data)
                conn.push_end(sid, fd)
            return await asyncio.wait_for(asyncio.gather(*ready), 120)
        finally:
            for sid, fd, s, task in streams:
                s.close()
            conn.close()

    assert asyncio.run(main()) == [want] * 20


def test_demuxer_path_fd_and_attach(shm, media):
    path = os.path.join(media, "h264_aac_srt.mkv")
    want = ffprobe_md5_packets(path)

    async def run(source, **kw):
        d = shm.Demuxer(**kw)
        await d.start(source)
        return [row(p) async for p in d.iter_packets()]

    assert asyncio.run(run(path, all_tracks=True)) == want
    assert asyncio.run(run(path)) == [r for r in want if r[0] in (0, 1)]
    with open(path, "rb") as f:
        assert asyncio.run(run(f.fileno(), all_tracks=True)) == want

    async def join():
        with shm.Connection() as c:
            sid = c.open_path(path, name="demuxer-attach")
            d = shm.Demuxer(all_tracks=True)
            await d.attach("demuxer-attach")
            assert [t.codec_type for t in d.streams] == [
                "video", "audio", "subtitle"]
            got = [row(p) async for p in d.iter_packets()]
            c.close_stream(sid)
            return got

    assert asyncio.run(join()) == want


def test_demuxer_decode_decided_at_open(shm, media):
    async def main():
        d = shm.Demuxer()
        d.enable_audio_decode(True)   # before start: fine
        await d.start(os.path.join(media, "aac.adts"))
        d.enable_audio_decode(True)   # unchanged: fine
        d.enable_video_decode(False)
        with pytest.raises(RuntimeError):
            d.enable_audio_decode(False)
        items = [p async for p in d.iter_packets()]
        assert items and all(p.decoded_frame is not None for p in items)
        assert all(p.data == b"" for p in items)

    asyncio.run(main())


def test_track_events(shm, media):
    with shm.Connection() as c:
        sid, fd = c.open_push()
        with shm.attach(sid, wait=False) as s:
            with open(os.path.join(media, "aac.adts"), "rb") as f:
                write_all(fd, f.read())
            c.push_end(sid, fd)

            async def main():
                return [p async for p in s.packets(events=True)]
            items = asyncio.run(main())
    assert items[0] is shm.TRACKS_CHANGED
    assert all(isinstance(p, shm.Packet) for p in items[1:])


def test_numpy_buffer_pins_the_mapping(shm, media):
    """numpy.frombuffer() holds a buffer of the view: the view cannot be
    released, so the array stays readable after the next read and the
    mapping stays until the array and the packet are gone."""
    np = pytest.importorskip("numpy", reason="python3-numpy not installed")
    s = shm.open(os.path.join(media, "h264_aac.mkv"))
    try:
        r = s.reader
        p = s.read()
        arr = np.frombuffer(p.data, dtype=np.uint8)
        first = bytes(arr[:16])
        s.read()
        assert bytes(arr[:16]) == first or True  # mapped, maybe rewritten
        assert r.exports == 1
        s.close()
        assert not r.detached
        del arr, p
        gc.collect()
        assert r.detached
    finally:
        s.close()


def test_example_script(shm, media, broker):
    """client/python/examples/packets.py, sync and async, prints ffprobe's
    packets (track, pts, dts, size, key, payload MD5)."""
    import subprocess
    import sys
    from conftest import SRC
    path = os.path.join(media, "h264_aac_srt.mkv")
    want = ["%d,%s,%s,%d,%d,%s" % (t, "N/A" if p is None else p,
                                   "N/A" if d is None else d, k, n, h)
            for t, p, d, n, k, h in ffprobe_md5_packets(path)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(shm.__file__))
    for mode in ([], ["--async"]):
        p = subprocess.run(
            [sys.executable, os.path.join(SRC, "client", "python",
                                          "examples", "packets.py"),
             "--socket", broker.socket, *mode, path],
            capture_output=True, text=True, timeout=120, env=env)
        assert p.returncode == 0, p.stderr
        got = []
        for ln in p.stdout.splitlines():
            t, _, pts, dts, _, key, size, h = ln.split(",")
            got.append("%s,%s,%s,%s,%s,%s" % (t, pts, dts, key, size, h))
        assert got == want, mode


EXIT_SCRIPT = """
import asyncio, threading, shmdemux
c = shmdemux.Connection()
sid, fd = c.open_push()
s = shmdemux.attach(sid, wait=False)
waiting = threading.Event()

def loop_thread():
    async def main():
        task = asyncio.ensure_future(s.packets().__anext__())
        await asyncio.wait([task], timeout=0.2)
        assert not task.done()
        waiting.set()
        await task
    asyncio.run(main())

threading.Thread(target=loop_thread, daemon=True).start()
waiting.wait()
print("main thread done")
"""


def test_exit_with_a_wait_pending(shm, broker):
    """The interpreter exits while an event loop waits on a stream in the
    executor: the wait is interrupted (instead of the exit joining that
    thread forever)."""
    import subprocess
    import sys
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(shm.__file__))
    p = subprocess.run([sys.executable, "-c", EXIT_SCRIPT], env=env,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "main thread done" in p.stdout, p.stderr


def test_cancelled_start_closes_the_stream(shm):
    """start() cancelled while it waits for the track table (its source
    has not delivered yet): the feeding task, the reader and the stream
    are closed; a late reader learns the stream ended."""
    async def main():
        gate = asyncio.Event()

        async def src():
            await gate.wait()
            yield b"never"

        d = shm.Demuxer()
        task = asyncio.ensure_future(d.start(src()))
        await asyncio.wait([task], timeout=0.3)
        assert not task.done() and d.stream_id is not None
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return d.stream_id

    sid = asyncio.run(main())
    try:
        with shm.attach(sid, wait=False) as late:
            with pytest.raises((shm.StreamClosed, shm.InputFailed)):
                for _ in late:
                    pass
    except FileNotFoundError:
        pass  # already forgotten by the broker


def test_stream_fd_follows_the_header(shm):
    """The module waits on the library's pollable descriptor exactly when
    the header it was built against declares shmdemux_stream_fd() (checked
    at build time by CMake and setup.py): Reader.fileno() exists then and
    _wait.py uses the event loop instead of a thread."""
    import re
    from conftest import SRC
    from shmdemux import _wait
    with open(os.path.join(SRC, "client", "shmdemux.h")) as f:
        declared = re.search(r"shmdemux_stream_fd\s*\(", f.read()) is not None
    assert bool(shm.HAVE_STREAM_FD) is declared
    assert _wait.HAVE_STREAM_FD is declared
    assert hasattr(shm.Reader, "fileno") is declared
