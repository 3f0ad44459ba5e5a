"""Typed exceptions: every way a stream ends reaches Python as its own
class, with the status fields, after every packet published before the
end; the reader's own conditions (overrun, eviction, a dead broker) too.

The worker faults need a build with SHMDEMUX_FAULT_INJECTION (the test
builds have it): each case runs a broker of its own with
SHMDEMUX_FAULT=KIND:N:victim, which makes the worker of the stream named
"victim" misbehave after N packets.
"""

import asyncio
import os
import signal

import pytest

from conftest import FAULTS, ffmpeg, ffprobe_packets, start_broker

needs_faults = pytest.mark.skipif(
    not FAULTS, reason="this build has no fault injection "
    "(-DSHMDEMUX_FAULT_INJECTION=ON)")

# kind, after, class name, status checks, words in the message
FAULT_CASES = [
    ("segv", 3, "WorkerCrashed", {"signal": signal.SIGSEGV},
     "worker crashed with signal 11 (SIGSEGV)"),
    ("abort", 2, "WorkerCrashed", {"signal": signal.SIGABRT},
     "worker crashed with signal 6 (SIGABRT)"),
    ("kill", 4, "WorkerCrashed", {"signal": signal.SIGKILL},
     "(SIGKILL)"),
    ("syscall", 5, "SandboxViolation", {"syscall": 41}, "socket"),
    ("alloc", 4, "MemoryLimitExceeded", {"end_reason_name": "memory-limit"},
     "memory limit"),
    ("spin", 3, "WatchdogTimeout", {"end_reason_name": "watchdog"},
     "watchdog"),
    ("exit", 1, "WorkerExited", {"exit_code": 3},
     "exited unexpectedly with status 3"),
]


@needs_faults
@pytest.mark.parametrize("kind,after,cls,fields,words", FAULT_CASES,
                         ids=[c[0] for c in FAULT_CASES])
def test_worker_faults(request, media, kind, after, cls, fields, words):
    import shmdemux
    b = start_broker(request, env={
        "SHMDEMUX_FAULT": "%s:%d:victim" % (kind, after)})
    path = os.path.join(media, "h264_aac.mkv")
    got = 0
    # as test_isolation: the leak meets a 256 MiB limit soon; only the
    # spinning worker gets a short watchdog
    opts = {"watchdog_ms": 1000} if kind == "spin" else \
        {"mem_limit": 256 << 20} if kind == "alloc" else {}
    with pytest.raises(shmdemux.StreamFailed) as ei:
        with shmdemux.open(path, socket=b.socket, name="victim",
                           **opts) as s:
            for _ in s:
                got += 1
    e = ei.value
    assert type(e).__name__ == cls
    assert isinstance(e, getattr(shmdemux, cls))
    assert e.code == getattr(shmdemux._shmdemux,
                             {"WorkerCrashed": "ECRASHED",
                              "SandboxViolation": "ESANDBOX",
                              "MemoryLimitExceeded": "EMEMORY",
                              "WatchdogTimeout": "EWATCHDOG",
                              "WorkerExited": "EEXITED"}[cls])
    for k, v in fields.items():
        assert getattr(e, k) == v, (k, e.status)
    assert words in str(e), str(e)
    if kind == "syscall":
        assert "socket" in e.message
    if e.signal:
        assert e.signal_name == signal.Signals(e.signal).name
    # every packet published before the end was read first
    assert got == e.packets
    # the same end, from asyncio, through the seed-shaped Demuxer
    async def demux():
        d = shmdemux.Demuxer(all_tracks=True, socket=b.socket,
                             name="victim", **opts)
        await d.start(path)
        return [p async for p in d.iter_packets()]
    with pytest.raises(getattr(shmdemux, cls)):
        asyncio.run(demux())


def test_open_failed(shm, media):
    path = os.path.join(media, "garbage.bin")
    with pytest.raises(shm.OpenFailed) as ei:
        shm.open(path)
    e = ei.value
    assert e.end_reason_name == "open-failed" and e.exit_code == 10
    assert "Invalid data" in str(e) and e.averror < 0

    async def from_bytes():
        async def src():
            with open(path, "rb") as f:
                yield f.read()
        d = shm.Demuxer()
        await d.start(src())
    with pytest.raises(shm.OpenFailed):
        asyncio.run(from_bytes())
    with shm.Connection() as c:
        assert all(i["consumers"] == 0 for i in c.list())


def test_killed_and_closed_by_an_operator(shm, media):
    path = os.path.join(media, "h264_aac.ts")
    for stop, cls in (("kill_stream", shm.StreamKilled),
                      ("close_stream", shm.StreamClosed)):
        with shm.Connection() as c, \
                shm.open(path, mode="live", realtime=True) as s:
            it = iter(s)
            next(it)
            getattr(c, stop)(s.id)
            with pytest.raises(cls):
                for _ in it:
                    pass


def test_source_failure_is_input_failed(shm, media):
    """The async source raises after some chunks: the pushed bytes are
    demuxed, then iter_packets raises InputFailed caused by the source's
    exception (the seed ended quietly)."""
    path = os.path.join(media, "h264_aac.ts")
    with open(path, "rb") as f:
        data = f.read()

    class SourceBroke(Exception):
        pass

    async def src():
        yield data[:len(data) // 2]
        raise SourceBroke("network gone")

    async def main():
        d = shm.Demuxer()
        await d.start(src())
        n = 0
        with pytest.raises(shm.InputFailed) as ei:
            async for _ in d.iter_packets():
                n += 1
        assert isinstance(ei.value.__cause__, SourceBroke)
        return n

    n = asyncio.run(main())
    assert 0 < n < len(ffprobe_packets(path, "stream_index"))


def test_unknown_errno_is_oserror(shm):
    with shm.Connection() as c:
        with pytest.raises(FileNotFoundError):
            c.kill_stream(999999)
        with pytest.raises(ValueError):
            c.open_path("/x", mode="sometimes")


@pytest.fixture(scope="module")
def big_file(scratch):
    """A file many times larger than the smallest ring (64 KiB)."""
    path = str(scratch.mktemp("big") / "big.ts")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=3", "-c:v",
           "libx264", "-preset", "ultrafast", "-b:v", "2M", "-g", "25",
           "-fflags", "+bitexact", path)
    return path


def test_evicted(shm, big_file):
    """A lossless reader that stops reading is evicted after the lag
    timeout; the other reader gets the whole stream."""
    with shm.Connection() as c:
        sid = c.open_path(big_file, ring_size=64 * 1024, wait_consumers=2,
                          lag_timeout_ms=300)
        with shm.attach(sid, wait=False) as stalled, \
                shm.attach(sid, wait=False) as full:
            stalled.read()
            n = sum(1 for _ in full)
            assert n == len(ffprobe_packets(big_file, "stream_index"))
            with pytest.raises(shm.Evicted):
                for _ in stalled:
                    pass


def test_live_overrun(shm, big_file):
    """A live reader lapped by the producer: read() raises Overrun (not
    fatal), iteration skips the lost packets and counts them."""
    with shm.Connection() as c:
        sid = c.open_path(big_file, mode="live", ring_size=64 * 1024,
                          wait_consumers=3)
        with shm.attach(sid, wait=False) as lazy1, \
                shm.attach(sid, wait=False) as lazy2, \
                shm.attach(sid, wait=False) as reader:
            # To the end, lapped or not: a GOP (250 KB) is larger than the
            # ring, so a lapped reader may find no keyframe to resume at.
            sum(1 for _ in reader)
            with pytest.raises(shm.Overrun):
                lazy1.read()
            later = sum(1 for _ in lazy1)       # reading goes on after it
            assert later < len(ffprobe_packets(big_file, "stream_index"))
            n = sum(1 for _ in lazy2)
            assert lazy2.reader.skipped >= 1 and lazy2.status()["overruns"] >= 1
            assert n < len(ffprobe_packets(big_file, "stream_index"))


def test_broker_gone(request, media):
    """A broker killed mid-stream (its workers die with it): the reader
    is told BrokerGone, not left waiting."""
    import shmdemux
    b = start_broker(request)
    path = os.path.join(media, "h264_aac.ts")
    with shmdemux.open(path, socket=b.socket, mode="live",
                       realtime=True) as s:
        it = iter(s)
        next(it)
        os.kill(b.pid, signal.SIGKILL)
        with pytest.raises(shmdemux.BrokerGone):
            for _ in it:
                pass


def test_broker_refused(request):
    """A broker holding --max-connections turns one more client away: the
    client is told BrokerRefused with the broker's reason (not BrokerGone),
    and the next is served once a connection has closed."""
    import shmdemux
    from shmdemux import _shmdemux
    b = start_broker(request, args=("--max-connections", "2"))
    with shmdemux.Connection(b.socket) as held1, \
            shmdemux.Connection(b.socket) as held2:
        assert held1.list() == [] and held2.list() == []
        with shmdemux.Connection(b.socket) as extra:
            with pytest.raises(shmdemux.BrokerRefused) as e:
                extra.list()
        assert e.value.code == _shmdemux.EREFUSED
        assert str(e.value) == ("broker refused the connection: too many "
                                "connections (2)")
        held2.close()
        # held2's hangup reached the broker before this request did: it
        # has dealt with it by the time the reply comes
        assert held1.list() == []
        with shmdemux.Connection(b.socket) as again:
            assert again.list() == []
