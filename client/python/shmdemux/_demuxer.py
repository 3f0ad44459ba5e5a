"""The seed's demuxer shape, with the demuxing in a sandboxed worker.

    demuxer = shmdemux.Demuxer(decode_video=False, decode_audio=False)
    await demuxer.start(source_async_iter)
    # demuxer.video_stream / audio_stream are now available
    async for packet in demuxer.iter_packets():
        if packet.codec_type == "video":
            ...

``start()`` opens a push stream in the broker, attaches to it, feeds the
bytes from the async iterator into the stream's pipe from an asyncio task
(non-blocking writes; the pipe is the backpressure) and returns once the
worker published the track table. ``iter_packets()`` yields the packets of
the first video and the first audio track, as the seed did (``all_tracks=
True`` yields every track).

What differs from the seed (docs/PYTHON.md has the whole list):
* unset timestamps are None, not 0; unknown fps / pixel format / duration
  are None, not 24.0 / "yuv420p" / 0.0;
* ``Packet.data`` is a view of the ring valid until the next packet
  (``bytes(pkt.data)`` keeps it; ``copy=True`` gives bytes);
* failures raise typed exceptions (OpenFailed from start(), WorkerCrashed,
  InputFailed, ... from iter_packets()) instead of ending quietly;
* decoding is decided when the stream opens: enable_*_decode() only before
  start().
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
from dataclasses import dataclass
from typing import Any, AsyncIterable, AsyncIterator, List, Optional, Union

from . import _shmdemux
from ._errors import TRACKS_CHANGED, EndOfStream, InputFailed
from ._stream import Track, open_source
from ._wait import (COOPERATE_EVERY, _get_executor, close_reader, cooperate,
                    wait_readable)

Connection = _shmdemux.Connection


#: Bytes the push pipe holds (F_SETPIPE_SZ; Linux caps it at
#: /proc/sys/fs/pipe-max-size, 1 MiB by default). A 64 KiB pipe makes the
#: producer and the worker hand over the input in sixteen times as many
#: wake-ups; on a small-packet stream that halved the packets/s.
PUSH_PIPE_SIZE = 1 << 20


def _grow_pipe(fd: int) -> None:
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PUSH_PIPE_SIZE)
    except (OSError, AttributeError):
        pass  # a lower limit for unprivileged users: keep the default


@dataclass(slots=True)
class FramePacket:
    """A decoded frame in the seed's packet shape, with decoded_frame a
    PyAV frame (``Demuxer(av_frames=True)``)."""

    stream_index: int
    codec_type: str
    data: bytes
    pts: Optional[int]
    dts: Optional[int]
    duration: int
    is_keyframe: bool
    time_base_num: int
    time_base_den: int
    decoded_frame: object = None

    def _sec(self, v: Optional[int]) -> Optional[float]:
        if v is None:
            return None
        if self.time_base_den == 0:
            return 0.0
        return v * self.time_base_num / self.time_base_den

    @property
    def pts_seconds(self) -> Optional[float]:
        """pts in seconds (None when unset)."""
        return self._sec(self.pts)

    @property
    def dts_seconds(self) -> Optional[float]:
        """dts in seconds (None when unset)."""
        return self._sec(self.dts)

    @property
    def duration_seconds(self) -> Optional[float]:
        """duration in seconds (None when unknown)."""
        return self._sec(self.duration)


class Demuxer:
    """A streaming demuxer with the seed's interface (``PyAVDemuxer``) whose
    container parsing runs in a sandboxed broker worker.

    Args:
        decode_video, decode_audio: decode in the worker; packets then carry
            ``decoded_frame`` (a zero-copy ``shmdemux.Frame``, or a PyAV
            frame with ``av_frames=True``) and empty ``data``.
        all_tracks: yield every track, not only the first video and the
            first audio track.
        copy: payloads as bytes instead of ring views (None: views, except
            in live mode).
        av_frames: decoded frames as PyAV frames (a copy each).
        socket, autostart: where the broker is (see Connection).
        start: where a reader attached by ``attach()`` begins ("oldest",
            "keyframe", "live").
        options: open options (mode, name, format, demux_options,
            realtime, mem_limit, watchdog_ms, ...; docs/PYTHON.md).
    """

    def __init__(self, decode_video: bool = False, decode_audio: bool = False,
                 *, all_tracks: bool = False, copy: Optional[bool] = None,
                 av_frames: bool = False, socket: Optional[str] = None,
                 autostart: bool = True, start: str = "oldest",
                 **options: Any) -> None:
        self._decode_video = decode_video
        self._decode_audio = decode_audio
        self._all_tracks = all_tracks
        self._copy = copy
        self._av_frames = av_frames
        self._socket = socket
        self._autostart = autostart
        self._start = start
        self._options = options
        self._conn: Optional[Connection] = None
        self._reader: Optional[_shmdemux.Reader] = None
        self._stream_id: Optional[int] = None
        self._push_fd: Optional[int] = None
        self._feeder: Optional[asyncio.Task] = None
        self._source_error: Optional[BaseException] = None
        self._tracks: List[Track] = []
        self._video_stream: Optional[Track] = None
        self._audio_stream: Optional[Track] = None
        self._opened = False
        self._owns_stream = False

    # -- metadata (the seed's) --
    @property
    def video_stream(self) -> Optional[Track]:
        """The first video track (after start()), or None."""
        return self._video_stream

    @property
    def audio_stream(self) -> Optional[Track]:
        """The first audio track (after start()), or None."""
        return self._audio_stream

    @property
    def streams(self) -> List[Track]:
        """Every track (after start())."""
        return list(self._tracks)

    @property
    def stream_id(self) -> Optional[int]:
        """The broker's id of the stream (other consumers may attach)."""
        return self._stream_id

    def status(self) -> dict:
        """The stream's state, end reason, exit code, signal, counters and
        end message (after start() or attach())."""
        if self._reader is None:
            raise RuntimeError("Call start() first")
        return self._reader.status()

    def enable_video_decode(self, enable: bool = True) -> None:
        """Decode video in the worker. Decoding is chosen when the stream
        opens: call this before start()."""
        self._set_decode("video", enable)

    def enable_audio_decode(self, enable: bool = True) -> None:
        """Decode audio in the worker; before start() (see
        enable_video_decode)."""
        self._set_decode("audio", enable)

    def _set_decode(self, kind: str, enable: bool) -> None:
        attr = "_decode_" + kind
        if self._opened and getattr(self, attr) != enable:
            raise RuntimeError(
                "the worker decides decoding when the stream opens: pass "
                "decode_%s=%r to Demuxer() or call enable_%s_decode() "
                "before start()" % (kind, enable, kind))
        setattr(self, attr, enable)

    # -- starting --
    async def start(self, source: Union[AsyncIterable[bytes], str,
                                        "os.PathLike[str]", int]) -> None:
        """Open the stream and wait for its track table.

        source: an async iterable of bytes chunks (pushed to the worker
        from a task of this loop), a path, or a file descriptor.
        Raises OpenFailed (and the other StreamFailed classes) when the
        stream ends before its track table, OSError for the broker's
        refusals."""
        if isinstance(source, (bytes, bytearray, memoryview)):
            raise TypeError("start() takes an async iterator of bytes "
                            "chunks, a path or a file descriptor")
        if self._opened:
            raise RuntimeError("start() was already called")
        self._opened = True
        opts = dict(self._options)
        decode = (["video"] if self._decode_video else []) + \
            (["audio"] if self._decode_audio else [])
        if decode:
            opts["decode"] = decode
        push = hasattr(source, "__aiter__")

        def setup() -> None:
            self._conn = Connection(self._socket, autostart=self._autostart)
            if push:
                opts.setdefault("label", "python-push")
                sid, self._push_fd = self._conn.open_push(**opts)
            else:
                sid = open_source(self._conn, source, **opts)
            self._stream_id = sid
            self._owns_stream = True
            self._reader = self._conn.attach(sid, start="oldest",
                                             copy=self._copy)

        try:
            await self._off_loop(setup)
            if push:
                self._feeder = asyncio.ensure_future(self._feed(source))
            await self._wait_tracks()
        except BaseException:
            await self._aclose()
            raise

    async def attach(self, stream: Union[int, str]) -> None:
        """Join an existing stream (by id or name) as one more consumer,
        from the Demuxer's ``start`` position; waits for its tracks."""
        if self._opened:
            raise RuntimeError("start() or attach() was already called")
        self._opened = True

        def setup() -> None:
            with Connection(self._socket, autostart=self._autostart) as c:
                self._reader = c.attach(stream, start=self._start,
                                        copy=self._copy)
            self._stream_id = self._reader.id

        try:
            await self._off_loop(setup)
            await self._wait_tracks()
        except BaseException:
            await self._aclose()
            raise

    async def _off_loop(self, setup: Any) -> None:
        """Run the control requests (and maybe a broker's autostart) in a
        thread, off the event loop. Cancelled meanwhile, the thread still
        finishes them: what they opened is closed when it does."""
        cf = _get_executor().submit(setup)
        try:
            await asyncio.wrap_future(cf)
        except asyncio.CancelledError:
            cf.add_done_callback(lambda _: self.close())
            raise

    async def _wait_tracks(self) -> None:
        reader = self._reader
        assert reader is not None
        while not reader.tracks:
            try:
                item = reader.read_nowait(events=True)
            except EndOfStream:
                break
            if item is None:
                await wait_readable(reader)
            elif item is not TRACKS_CHANGED:
                break  # cannot happen: a table precedes the packets
        self._set_tracks()

    def _set_tracks(self) -> None:
        assert self._reader is not None
        self._tracks = [Track.from_dict(d) for d in self._reader.tracks]
        self._video_stream = next(
            (t for t in self._tracks if t.codec_type == "video"), None)
        self._audio_stream = next(
            (t for t in self._tracks if t.codec_type == "audio"), None)

    # -- feeding --
    async def _writable(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        loop.add_writer(fd, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            loop.remove_writer(fd)

    async def _feed(self, source: AsyncIterable[bytes]) -> None:
        fd = self._push_fd
        assert fd is not None and self._conn is not None
        os.set_blocking(fd, False)
        _grow_pipe(fd)
        error = 0
        try:
            async for chunk in source:
                view = memoryview(chunk).cast("B")
                while view:
                    try:
                        n = os.write(fd, view)
                    except BlockingIOError:
                        await self._writable(fd)
                        continue
                    view = view[n:]
        except BrokenPipeError:
            return  # the stream already ended; the reader learns why
        except asyncio.CancelledError:
            error = errno.ECANCELED
            raise
        except Exception as e:  # the source failed
            self._source_error = e
            error = errno.EIO
        finally:
            self._end_input(error)

    def _end_input(self, error: int) -> None:
        fd, self._push_fd = self._push_fd, None
        if fd is None:
            return
        if self._conn is None or self._stream_id is None:
            os.close(fd)
            return
        try:
            if error:
                self._conn.push_abort(self._stream_id, fd, error)
            else:
                self._conn.push_end(self._stream_id, fd)
        except (OSError, ValueError):
            pass  # the stream ended first; the library closed fd

    # -- reading --
    async def iter_packets(self) -> AsyncIterator[Any]:
        """Yield the stream's packets (and decoded frames) until its end.

        The seed's tracks only (first video, first audio) unless
        all_tracks. Ends at the clean end; raises the end's exception
        otherwise (InputFailed when the source iterator raised: the
        exception is its __cause__). Everything is closed when it ends."""
        if self._reader is None:
            raise RuntimeError("Call start() before iter_packets()")
        reader = self._reader
        read = reader.read_nowait
        wanted = None
        if not self._all_tracks:
            wanted = {t.index for t in (self._video_stream,
                                        self._audio_stream) if t is not None}
        av_frames = self._av_frames
        n = 0
        try:
            while True:
                try:
                    item = read(events=True)
                except EndOfStream:
                    return
                except InputFailed as e:
                    if self._source_error is not None:
                        raise e from self._source_error
                    raise
                if item is None:
                    if reader.closed:
                        return
                    await wait_readable(reader)
                    if reader.closed:
                        return
                    n = 0
                    continue
                if item is TRACKS_CHANGED:
                    self._set_tracks()
                    continue
                if wanted is not None and item.stream_index not in wanted:
                    continue
                frame = item.decoded_frame
                if frame is None and item.size == 0:
                    continue  # the seed skipped empty packets
                if av_frames and frame is not None:
                    item = FramePacket(
                        item.stream_index, item.codec_type, b"", item.pts,
                        item.dts, item.duration, item.is_keyframe,
                        item.time_base_num, item.time_base_den,
                        frame.to_av())
                yield item
                n += 1
                if n == COOPERATE_EVERY:
                    n = 0
                    await cooperate()
        finally:
            await self._aclose()

    # -- closing --
    async def _aclose(self) -> None:
        feeder, self._feeder = self._feeder, None
        if feeder is not None and not feeder.done():
            feeder.cancel()
            try:
                await feeder
            except (asyncio.CancelledError, Exception):
                pass
        self.close()

    def close(self) -> None:
        """Stop feeding, detach, close the broker's stream if this demuxer
        opened it, close the connection. Idempotent."""
        feeder, self._feeder = self._feeder, None
        if feeder is not None and not feeder.done():
            # Its finally ends the input and closes the pipe, once it
            # runs; a loop that is gone will never run it.
            feeder.cancel()
            if feeder.get_loop().is_closed():
                self._end_input(errno.ECANCELED)
        else:
            self._end_input(errno.ECANCELED)
        reader, self._reader = self._reader, None
        if reader is not None:
            close_reader(reader)
        conn, self._conn = self._conn, None
        if conn is not None:
            if self._owns_stream and self._stream_id is not None:
                try:
                    conn.close_stream(self._stream_id)
                except Exception:
                    pass  # it ended already
            conn.close()

    async def aclose(self) -> None:
        """close(), awaiting the feeding task's end."""
        await self._aclose()

    async def __aenter__(self) -> "Demuxer":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._aclose()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
