"""The exceptions of shmdemux: one class per way a stream ends (the
library's SHMDEMUX_E* end codes) and one per reader condition.

Every exception carries the library code (``code``) and, for a stream's
end, the stream's status at that moment (``status``, a dict, and the most
useful fields as attributes: ``end_reason_name``, ``exit_code``, ``signal``,
``signal_name``, ``syscall``, ``worker_pid``, ``packets``). Its message says
what happened in words, e.g. "worker crashed with signal 11 (SIGSEGV)".

Errors of the control requests themselves (no such stream, a duplicate
name, no broker) are ``OSError`` subclasses with the errno value and the
broker's reason: ``FileNotFoundError``, ``FileExistsError``,
``ConnectionRefusedError``, ...

This module does not import the extension (the extension imports it).
"""

from __future__ import annotations

import signal as _signal
from typing import Any, Dict, Optional

__all__ = [
    "ShmdemuxError", "StreamEnded", "EndOfStream", "StreamFailed",
    "OpenFailed", "DemuxFailed", "WorkerCrashed", "SandboxViolation",
    "MemoryLimitExceeded", "WatchdogTimeout", "StreamKilled", "StreamClosed",
    "WorkerExited", "InputFailed", "RingError", "ExecFailed",
    "SpoolLimitExceeded", "UnknownEnd", "ReaderError", "Overrun", "Evicted",
    "CorruptRecord", "AbiMismatch", "BrokerGone", "BrokerRefused",
    "TRACKS_CHANGED",
    "error_from_code",
]


class _TracksChanged:
    """Returned by ``read(events=True)`` when the track table changed."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "shmdemux.TRACKS_CHANGED"

    def __reduce__(self) -> str:
        return "TRACKS_CHANGED"


TRACKS_CHANGED = _TracksChanged()


class ShmdemuxError(Exception):
    """Base class of every shmdemux error but the OSError ones."""

    #: The library's code (negative, below -4096).
    code: int = 0

    def __init__(self, message: str, *, code: Optional[int] = None,
                 status: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        #: The stream's status when it was raised, or None.
        self.status: Optional[Dict[str, Any]] = status
        #: The broker's or worker's one-line message ("" if none).
        self.message: str = (status or {}).get("message", "") or ""


class StreamEnded(ShmdemuxError):
    """The stream has ended; ``status`` says how."""

    def _field(self, name: str, default: Any) -> Any:
        return (self.status or {}).get(name, default)

    @property
    def end_reason(self) -> int:
        """SHMDEMUX_END_* value."""
        return self._field("end_reason", 0)

    @property
    def end_reason_name(self) -> str:
        """The end as ``shmdemux ls`` names it ("eof", "crashed", ...)."""
        return self._field("end_reason_name", "")

    @property
    def exit_code(self) -> int:
        """The worker's exit status, -1 if it did not exit."""
        return self._field("exit_code", -1)

    @property
    def signal(self) -> int:
        """The signal that ended the worker, 0 if none."""
        return self._field("signal", 0)

    @property
    def signal_name(self) -> str:
        """"SIGSEGV", ... or "" when no signal ended the worker."""
        return _signal_name(self.signal) if self.signal else ""

    @property
    def syscall(self) -> int:
        """The forbidden system call's number (sandbox), else -1."""
        return self._field("syscall", -1)

    @property
    def averror(self) -> int:
        """libavformat's error code (AVERROR), 0 if none."""
        return self._field("averror", 0)

    @property
    def worker_pid(self) -> int:
        return self._field("worker_pid", 0)

    @property
    def packets(self) -> int:
        """Packets the worker published before the end."""
        return self._field("packets", 0)


class EndOfStream(StreamEnded):
    """The stream ended cleanly and everything was read (SHMDEMUX_EOF).
    Iteration ends instead of raising it; ``read()`` raises it."""


class StreamFailed(StreamEnded):
    """The stream ended otherwise than by a clean end of input. Every
    packet published before the end was returned first."""


class OpenFailed(StreamFailed):
    """The worker could not open the input (SHMDEMUX_EOPEN): not media,
    a format off the whitelist, a decoder refused, ..."""


class DemuxFailed(StreamFailed):
    """A demux error mid-stream (SHMDEMUX_EDEMUX)."""


class WorkerCrashed(StreamFailed):
    """The worker died from a signal (SHMDEMUX_ECRASHED); see ``signal``."""


class SandboxViolation(StreamFailed):
    """The sandbox killed the worker for a forbidden system call
    (SHMDEMUX_ESANDBOX); see ``syscall``."""


class MemoryLimitExceeded(StreamFailed):
    """The worker hit its address-space limit (SHMDEMUX_EMEMORY)."""


class WatchdogTimeout(StreamFailed):
    """The worker made no progress with input waiting and was killed by the
    broker's watchdog (SHMDEMUX_EWATCHDOG)."""


class StreamKilled(StreamFailed):
    """An operator killed the stream (SHMDEMUX_EKILLED)."""


class StreamClosed(StreamFailed):
    """An operator closed the stream before its end (SHMDEMUX_ECLOSED)."""


class WorkerExited(StreamFailed):
    """The worker exited unexpectedly (SHMDEMUX_EEXITED); see
    ``exit_code``."""


class InputFailed(StreamFailed):
    """The source failed: a read error, a producer that went away or
    aborted its push (SHMDEMUX_EINPUT)."""


class RingError(StreamFailed):
    """A packet or frame did not fit the ring (SHMDEMUX_ERING)."""


class ExecFailed(StreamFailed):
    """The worker could not be started (SHMDEMUX_EEXEC)."""


class SpoolLimitExceeded(StreamFailed):
    """A non-seekable input needed more spool than its limit, e.g. an MP4
    with its moov at the end (SHMDEMUX_ESPOOL)."""


class UnknownEnd(StreamFailed):
    """The stream ended for a reason this library does not know
    (SHMDEMUX_EUNKNOWN)."""


class ReaderError(ShmdemuxError):
    """A condition of this reader rather than of the stream."""


class Overrun(ReaderError):
    """Live mode: the reader was lapped and lost packets (SHMDEMUX_EOVERRUN).
    Not fatal: reading continues at a keyframe. Iteration counts and skips
    it; ``read()`` raises it."""


class Evicted(ReaderError):
    """Lossless mode: the reader fell too far behind and was detached
    (SHMDEMUX_EEVICTED). Fatal for this reader."""


class CorruptRecord(ReaderError):
    """A record failed validation and was skipped (SHMDEMUX_ECORRUPT): the
    worker wrote something no honest worker writes. Reading may go on."""


class AbiMismatch(ReaderError):
    """Ring or protocol version mismatch (SHMDEMUX_EABI)."""


class BrokerGone(ReaderError):
    """The broker connection is gone (SHMDEMUX_EBROKER): nobody will end
    this stream any more."""


class BrokerRefused(ShmdemuxError):
    """The broker turned the connection away (SHMDEMUX_EREFUSED): it holds
    as many connections as it may (``--max-connections``) or is out of
    memory. The message names the cause; the broker still runs, so a
    later try may be served."""


def _signal_name(n: int) -> str:
    try:
        return _signal.Signals(n).name
    except ValueError:
        return "signal %d" % n


# code: (class, how it is said)
_ENDS = {
    -4201: (EndOfStream, "stream ended (everything was read)"),
    -4202: (OpenFailed, "worker could not open the input"),
    -4203: (DemuxFailed, "demux error"),
    -4204: (WorkerCrashed, None),
    -4205: (SandboxViolation, None),
    -4206: (MemoryLimitExceeded, "worker hit its memory limit"),
    -4207: (WatchdogTimeout,
            "worker made no progress and was killed by the watchdog"),
    -4208: (StreamKilled, "stream killed by an operator"),
    -4209: (StreamClosed, "stream closed by an operator before its end"),
    -4210: (WorkerExited, None),
    -4211: (InputFailed, "the source failed"),
    -4212: (RingError, "a packet or frame did not fit the ring"),
    -4213: (ExecFailed, "worker could not be started"),
    -4214: (UnknownEnd, "stream ended for an unknown reason"),
    -4215: (SpoolLimitExceeded,
            "non-seekable input needed more spool than its limit"),
    -4220: (Overrun, "live reader was lapped and lost packets"),
    -4221: (Evicted, "reader fell too far behind and was evicted"),
    -4222: (CorruptRecord, "a ring record failed validation (skipped)"),
    -4223: (AbiMismatch, "ring or protocol version mismatch"),
    -4224: (BrokerGone, "the broker connection is gone"),
    -4227: (BrokerRefused, "broker refused the connection"),
}


def error_from_code(code: int, message: str = "",
                    status: Optional[Dict[str, Any]] = None) -> ShmdemuxError:
    """The exception for a library code; message is the broker's or
    worker's reason (may be empty), status the stream's status dict."""
    cls, said = _ENDS.get(code, (ShmdemuxError, None))
    st = status or {}
    if cls is WorkerCrashed:
        sig = st.get("signal", 0)
        said = "worker crashed with signal %d (%s)" % (sig, _signal_name(sig))
    elif cls is SandboxViolation:
        said = "worker killed by the sandbox"
        if st.get("syscall", -1) >= 0 and not message:
            said += ": forbidden syscall %d" % st["syscall"]
    elif cls is WorkerExited:
        said = "worker exited unexpectedly with status %d" % st.get(
            "exit_code", -1)
    elif said is None:
        said = "shmdemux error %d" % code
    if cls is BrokerRefused and message.startswith(said):
        said = message
    elif message and message not in said:
        said = "%s: %s" % (said, message)
    return cls(said, code=code, status=status)


for _cls in (ShmdemuxError, StreamEnded, EndOfStream, StreamFailed, OpenFailed,
             DemuxFailed, WorkerCrashed, SandboxViolation,
             MemoryLimitExceeded, WatchdogTimeout, StreamKilled, StreamClosed,
             WorkerExited, InputFailed, RingError, ExecFailed,
             SpoolLimitExceeded, UnknownEnd, ReaderError, Overrun, Evicted,
             CorruptRecord, AbiMismatch, BrokerGone, BrokerRefused):
    _cls.__module__ = "shmdemux"
del _cls
