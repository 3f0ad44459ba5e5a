"""Type stubs of the extension module (src/_shmdemux.c)."""

from fractions import Fraction
from types import TracebackType
from typing import (Any, Dict, Iterable, Iterator, List, Mapping, Optional,
                    Sequence, Tuple, Type, Union)

VERSION: str
ABI_VERSION: int
HAVE_STREAM_FD: int
WAIT_SLICE_MS: int
EOF: int
EOPEN: int
EDEMUX: int
ECRASHED: int
ESANDBOX: int
EMEMORY: int
EWATCHDOG: int
EKILLED: int
ECLOSED: int
EEXITED: int
EINPUT: int
ERING: int
EEXEC: int
EUNKNOWN: int
ESPOOL: int
EOVERRUN: int
EEVICTED: int
ECORRUPT: int
EABI: int
EBROKER: int
EREFUSED: int
STATE_STARTING: int
STATE_OPENING: int
STATE_RUNNING: int
STATE_ENDED: int
DECODE_VIDEO: int
DECODE_AUDIO: int
PKT_KEY: int
PKT_CORRUPT: int
PKT_DISCARD: int
PKT_TRUSTED: int
PKT_DISPOSABLE: int

StreamRef = Union[int, str]
Decode = Union[None, int, str, Iterable[Union[int, str]]]
DemuxOptions = Union[None, Mapping[str, Any], Sequence[str]]


def strerror(code: int) -> str: ...
def end_reason_name(reason: int) -> str: ...
def end_code(reason: int) -> int: ...
def is_end(code: int) -> bool: ...
def library_version() -> Tuple[str, int]: ...
def _shutdown() -> None: ...


class Connection:
    def __init__(self, socket_path: Optional[str] = ..., *,
                 autostart: bool = ...) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def socket_path(self) -> str: ...
    def open_path(self, path: str, *, name: Optional[str] = ...,
                  mode: Union[str, int, None] = ..., ring_size: int = ...,
                  wait_consumers: Optional[int] = ...,
                  lag_timeout_ms: int = ..., format: Optional[str] = ...,
                  probesize: int = ..., analyzeduration: int = ...,
                  demux_options: DemuxOptions = ..., realtime: bool = ...,
                  noseek: bool = ..., mem_limit: int = ...,
                  spool_limit: int = ..., watchdog_ms: int = ...,
                  decode: Decode = ..., decode_threads: int = ...,
                  decode_strict: bool = ...,
                  format_whitelist: Optional[str] = ...,
                  label: Optional[str] = ...) -> int: ...
    def open_fd(self, fd: int, **options: Any) -> int: ...
    def open_push(self, **options: Any) -> Tuple[int, int]: ...
    def push_end(self, stream_id: int, fd: int) -> None: ...
    def push_abort(self, stream_id: int, fd: int, error: int = ...) -> None: ...
    def attach(self, stream: StreamRef, *, start: Optional[str] = ...,
               observer: bool = ..., copy: Optional[bool] = ...) -> Reader: ...
    def list(self) -> List[Dict[str, Any]]: ...
    def close_stream(self, stream: StreamRef) -> None: ...
    def kill_stream(self, stream: StreamRef) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> "Connection": ...
    def __exit__(self, t: Optional[Type[BaseException]],
                 v: Optional[BaseException],
                 tb: Optional[TracebackType]) -> None: ...


class Reader(Iterator["Packet"]):
    @property
    def id(self) -> int: ...
    @property
    def tracks(self) -> List[Dict[str, Any]]: ...
    @property
    def format_name(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    @property
    def detached(self) -> bool: ...
    @property
    def exports(self) -> int: ...
    @property
    def live(self) -> bool: ...
    @property
    def copy(self) -> bool: ...
    @property
    def skipped(self) -> int: ...
    def read(self, timeout: Optional[float] = ..., *, events: bool = ...,
             overruns: bool = ...) -> Any: ...
    def read_nowait(self, *, events: bool = ...,
                    overruns: bool = ...) -> Any: ...
    def wait_running(self, timeout: Optional[float] = ...) -> Optional[int]: ...
    def status(self) -> Dict[str, Any]: ...
    # Only when HAVE_STREAM_FD (the library has shmdemux_stream_fd()).
    def fileno(self) -> int: ...
    def close(self) -> None: ...
    def _wait_ticket(self) -> int: ...
    def _wait_blocking(self, ticket: int) -> bool: ...
    def _interrupt(self, ticket: int) -> None: ...
    def __iter__(self) -> "Reader": ...
    def __next__(self) -> "Packet": ...
    def __enter__(self) -> "Reader": ...
    def __exit__(self, *exc: Any) -> None: ...


class Packet:
    @property
    def data(self) -> Union[memoryview, bytes]: ...
    stream_index: int
    codec_type: str
    pts: Optional[int]
    dts: Optional[int]
    duration: int
    is_keyframe: bool
    is_corrupt: bool
    is_discard: bool
    is_disposable: bool
    flags: int
    size: int
    pos: int
    seq: int
    track_gen: int
    time_base: Optional[Fraction]
    time_base_num: int
    time_base_den: int
    pts_seconds: Optional[float]
    dts_seconds: Optional[float]
    duration_seconds: Optional[float]
    side_data: Tuple[Tuple[int, bytes], ...]
    valid: bool
    decoded_frame: Optional["Frame"]
    def release(self) -> bool: ...


class Plane:
    index: int
    line_size: int
    height: int
    width: int
    buffer_size: int
    valid: bool
    def __len__(self) -> int: ...
    def __buffer__(self, flags: int) -> memoryview: ...


class Frame:
    stream_index: int
    codec_type: str
    pts: Optional[int]
    best_effort_timestamp: Optional[int]
    pkt_dts: Optional[int]
    duration: int
    time: Optional[float]
    time_base: Optional[Fraction]
    time_base_num: int
    time_base_den: int
    flags: int
    key_frame: bool
    interlaced_frame: bool
    top_field_first: bool
    is_corrupt: bool
    pict_type: str
    pict_type_id: int
    format: str
    format_id: int
    is_planar: bool
    bytes_per_sample: int
    width: int
    height: int
    sample_aspect_ratio: Optional[Fraction]
    color_range: int
    color_primaries: int
    color_trc: int
    color_space: int
    chroma_location: int
    sample_rate: int
    channels: int
    ch_order: int
    channel_mask: int
    samples: int
    seq: int
    planes: Tuple[Plane, ...]
    valid: bool
    def to_ndarray(self, copy: bool = ...) -> Any: ...
    def to_av(self) -> Any: ...
