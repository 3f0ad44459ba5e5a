"""Streams: tracks, attaching, reading synchronously and from asyncio."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from typing import (Any, AsyncIterator, Dict, Iterator, List, Optional,
                    Union)

from . import _shmdemux
from ._errors import EndOfStream, ShmdemuxError
from ._wait import COOPERATE_EVERY, close_reader, cooperate, wait_readable

Connection = _shmdemux.Connection
Packet = _shmdemux.Packet


def _rate(num: int, den: int) -> Optional[float]:
    return num / den if num > 0 and den > 0 else None


@dataclass(slots=True)
class Track:
    """One track (elementary stream) of a stream.

    The first fields are the seed's ``DemuxedStream``'s, in its order, with
    one difference: a value the container does not give is ``None`` where
    the seed made one up (``fps`` 24.0, ``pixel_format`` "yuv420p",
    ``duration_seconds`` 0.0). Fields of the other media type keep the
    seed's defaults (a video track's ``sample_rate`` is 0).
    """

    index: int
    codec_name: str
    codec_type: str
    width: int = 0
    height: int = 0
    fps: Optional[float] = 0.0
    pixel_format: Optional[str] = ""
    sample_rate: int = 0
    channels: int = 0
    time_base_num: int = 1
    time_base_den: int = 1000
    duration_seconds: Optional[float] = 0.0
    extradata: bytes = b""
    #: AVStream.id (e.g. the MPEG-TS PID).
    id: int = 0
    #: Audio sample format name ("fltp"), "" for other tracks.
    sample_format: str = ""
    #: Start time and duration in time_base units, None if unset.
    start_time: Optional[int] = None
    duration: Optional[int] = None
    language: str = ""
    title: str = ""
    #: Every value of the library's track entry (struct shmdemux_track).
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def time_base(self) -> Optional[Fraction]:
        """The time base of the track's timestamps."""
        if self.time_base_den == 0:
            return None
        return Fraction(self.time_base_num, self.time_base_den)

    @property
    def average_rate(self) -> Optional[Fraction]:
        """The average frame rate as a Fraction (None when unknown)."""
        r = self.raw
        if r.get("avg_fr_num", 0) > 0 and r.get("avg_fr_den", 0) > 0:
            return Fraction(r["avg_fr_num"], r["avg_fr_den"])
        return None

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Track":
        """The Track of one of ``Reader.tracks``' dicts."""
        video = d["codec_type"] == "video"
        audio = d["codec_type"] == "audio"
        dur = d["duration"]
        return cls(
            index=d["index"], codec_name=d["codec_name"],
            codec_type=d["codec_type"],
            width=d["width"] if video else 0,
            height=d["height"] if video else 0,
            fps=_rate(d["avg_fr_num"], d["avg_fr_den"]) if video else 0.0,
            pixel_format=(d["format"] or None) if video else "",
            sample_rate=d["sample_rate"] if audio else 0,
            channels=d["channels"] if audio else 0,
            time_base_num=d["tb_num"], time_base_den=d["tb_den"],
            duration_seconds=(dur * d["tb_num"] / d["tb_den"]
                              if dur is not None and d["tb_den"] else None),
            extradata=d["extradata"], id=d["id"],
            sample_format=d["format"] if audio else "",
            start_time=d["start_time"], duration=dur,
            language=d["language"], title=d["title"], raw=d)


def _first(tracks: List[Track], kind: str) -> Optional[Track]:
    for t in tracks:
        if t.codec_type == kind:
            return t
    return None


class Stream:
    """An attached stream: one consumer of a broker's stream.

    Made by ``shmdemux.open()`` or ``shmdemux.attach()``. Iterate it with
    ``for`` (blocking, with the GIL released) or ``async for`` (waiting
    without blocking the event loop); both yield ``Packet`` objects of
    every track, skip live overruns (counted in ``status()['overruns']``),
    stop at the clean end and raise the end's exception otherwise
    (``WorkerCrashed``, ``OpenFailed``, ...).

    ``Packet.data`` is a view of the ring, valid until the next packet is
    read; ``bytes(pkt.data)`` keeps a copy. Close the stream (``close()``,
    or use it as a context manager, sync or async) to detach; a stream
    opened by ``shmdemux.open()`` is also closed in the broker then.
    """

    def __init__(self, reader: "_shmdemux.Reader",
                 connection: Optional[Connection] = None,
                 close_stream: bool = False) -> None:
        self._reader = reader
        self._conn = connection
        self._close_stream = close_stream

    # -- metadata --
    @property
    def id(self) -> int:
        """The stream's id in the broker."""
        return self._reader.id

    @property
    def reader(self) -> "_shmdemux.Reader":
        """The extension's reader (the low-level API)."""
        return self._reader

    @property
    def tracks(self) -> List[Track]:
        """Every track, in index order."""
        return [Track.from_dict(d) for d in self._reader.tracks]

    @property
    def video_stream(self) -> Optional[Track]:
        """The first video track, or None."""
        return _first(self.tracks, "video")

    @property
    def audio_stream(self) -> Optional[Track]:
        """The first audio track, or None."""
        return _first(self.tracks, "audio")

    @property
    def format_name(self) -> str:
        """The input format libavformat detected (e.g. "matroska,webm")."""
        return self._reader.format_name

    @property
    def live(self) -> bool:
        """True for a live stream (the producer never waits for readers)."""
        return self._reader.live

    def status(self) -> Dict[str, Any]:
        """State, end reason, exit code, signal, counters, end message."""
        return self._reader.status()

    def wait_running(self, timeout: Optional[float] = None) -> Optional[int]:
        """Block until the track table is there or the stream ended."""
        return self._reader.wait_running(timeout)

    def _wait_tracks(self, observer: bool = False) -> None:
        # The track table, or the end that came instead of it (OpenFailed,
        # ...), raised here rather than at the first read.
        r = self._reader
        if r.wait_running() == _shmdemux.STATE_ENDED and not r.tracks \
                and not observer:
            try:
                r.read(0)
            except EndOfStream:
                pass

    # -- reading --
    def read(self, timeout: Optional[float] = None) -> Optional[Packet]:
        """The next packet (None after timeout seconds). Raises
        EndOfStream at the clean end, Overrun when a live reader lost
        packets, the end's exception otherwise."""
        return self._reader.read(timeout)

    def __iter__(self) -> Iterator[Packet]:
        return iter(self._reader)

    def __aiter__(self) -> AsyncIterator[Packet]:
        return self.packets()

    async def packets(self, *, events: bool = False) -> AsyncIterator[Any]:
        """Asynchronous iteration; with events=True the iterator also
        yields ``TRACKS_CHANGED`` when the track table changes."""
        read = self._reader.read_nowait
        n = 0
        while True:
            try:
                item = read(events=events)
            except EndOfStream:
                return
            if item is None:
                if self._reader.closed:
                    return
                await wait_readable(self._reader)
                if self._reader.closed:
                    return  # closed while waiting: the iteration ends
                n = 0
                continue
            yield item
            n += 1
            if n == COOPERATE_EVERY:
                n = 0
                await cooperate()

    # -- closing --
    @property
    def closed(self) -> bool:
        """True once close() was called."""
        return self._reader.closed

    def close(self) -> None:
        """Detach (and close the stream in the broker when this object
        opened it). Idempotent."""
        close_reader(self._reader)
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                if self._close_stream:
                    try:
                        conn.close_stream(self._reader.id)
                    except (OSError, ShmdemuxError):
                        pass  # already gone or ended
            finally:
                conn.close()

    async def aclose(self) -> None:
        """close(), for ``async with`` and asynchronous cleanup."""
        self.close()

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "Stream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return "<shmdemux.Stream id=%d tracks=%d%s>" % (
            self.id, len(self._reader.tracks),
            " closed" if self.closed else "")


Source = Union[str, "os.PathLike[str]", int]


def open_source(conn: Connection, source: Source, **options: Any) -> int:
    """Open a path (made absolute: the broker resolves it) or an fd."""
    if isinstance(source, bool):
        raise TypeError("source must be a path or a file descriptor")
    if isinstance(source, int):
        return conn.open_fd(source, **options)
    if hasattr(source, "fileno") and not isinstance(source, (str, bytes)):
        return conn.open_fd(source.fileno(), **options)
    return conn.open_path(os.path.abspath(os.fspath(source)), **options)


def open(source: Source, *, socket: Optional[str] = None,
         autostart: bool = True, start: str = "oldest",
         copy: Optional[bool] = None, wait: bool = True,
         **options: Any) -> Stream:
    """Open a file (path) or a descriptor (int, or an object with
    ``fileno()``: pipe, socket, fifo, file) in a sandboxed worker and attach
    to it. ``options`` are the open options (``name``, ``mode`` "lossless"
    or "live", ``decode`` "video"/"audio"/"all", ``realtime``,
    ``format``, ``demux_options``, ``mem_limit``, ``watchdog_ms``, ...; see
    docs/PYTHON.md). With wait, returns once the track table is there
    (raising OpenFailed, ... when the stream ended instead). The returned
    Stream closes the broker's stream too when it is closed."""
    conn = Connection(socket, autostart=autostart)
    try:
        sid = open_source(conn, source, **options)
        reader = conn.attach(sid, start=start, copy=copy)
    except BaseException:
        conn.close()
        raise
    stream = Stream(reader, conn, close_stream=True)
    try:
        if wait:
            stream._wait_tracks()
    except BaseException:
        stream.close()
        raise
    return stream


def attach(stream: Union[int, str], *, socket: Optional[str] = None,
           autostart: bool = False, start: str = "oldest",
           observer: bool = False, copy: Optional[bool] = None,
           wait: bool = True) -> Stream:
    """Attach to an existing stream by id or name, as one more consumer.
    ``start``: "oldest" (oldest packet still in the ring), "keyframe"
    (newest keyframe) or "live" (the next packet published). With wait,
    returns once the track table is there (or the stream ended); a
    producer attaching to its own push stream before it pushes passes
    wait=False."""
    with Connection(socket, autostart=autostart) as conn:
        reader = conn.attach(stream, start=start, observer=observer,
                             copy=copy)
    s = Stream(reader)
    try:
        if wait:
            s._wait_tracks(observer)
    except BaseException:
        s.close()
        raise
    return s
