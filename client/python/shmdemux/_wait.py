"""Waiting for a stream from asyncio: the only place shmdemux waits.

Every asynchronous read (Stream's ``async for``, ``Demuxer.start()`` and
``Demuxer.iter_packets()``) first drains the ring with non-blocking reads
(``Reader.read_nowait()``) and only when that finds nothing awaits
``wait_readable()``, then reads again. Nothing else in the package waits
for a stream, and nothing busy-polls or sleeps.

Two ways to wait, chosen once at import:

* ``HAVE_STREAM_FD`` (the extension was built against a libshmdemux that
  has ``shmdemux_stream_fd()``): the loop watches the stream's descriptor
  with ``loop.add_reader()``; readable means a record or the end is there.
  Closing the reader closes that descriptor, which would leave the wait
  pending forever (and the loop watching a number the next stream may
  get): ``close_reader()`` ends the wait and stops watching first.
* otherwise: one blocking wait in a thread of a private executor, with the
  GIL released (``Reader._wait_blocking``). It reads the next record into
  the reader, where the next ``read_nowait()`` finds it, so a cancelled
  wait loses nothing. A cancelled, closed or interpreter-exit-interrupted
  wait ends within the library's wait slice (``WAIT_SLICE_MS``, 100 ms).
  Each stream being waited on holds one thread of the executor while it
  waits (at most ``MAX_WAITING`` at once; more queue until one is woken).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
# Imported now, so that its exit hook (which joins the executor's threads)
# is registered before ours below, and ours runs first.
import concurrent.futures.thread  # noqa: F401
import threading
import types
from typing import Dict, Tuple

from . import _shmdemux

HAVE_STREAM_FD = bool(_shmdemux.HAVE_STREAM_FD)

#: Streams that can wait at the same time without a stream descriptor.
MAX_WAITING = 256

#: Waits on a stream descriptor, by id() of their reader: (loop, fd,
#: future).
_fd_waits: Dict[int, Tuple[asyncio.AbstractEventLoop, int,
                           "asyncio.Future[None]"]] = {}

_executor = None
_executor_lock = threading.Lock()

#: Records read in a row before an asynchronous iterator lets the event
#: loop run other tasks (a busy stream never has to wait, so it would
#: never yield otherwise).
COOPERATE_EVERY = 64


def _get_executor() -> concurrent.futures.ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=MAX_WAITING, thread_name_prefix="shmdemux-wait")
        return _executor


def _interrupt_all() -> None:
    # Runs before concurrent.futures joins its threads at exit: waits end
    # within a slice instead of holding the interpreter's exit forever.
    _shmdemux._shutdown()


try:
    # Called in reverse order of registration, so after this import this
    # runs before concurrent.futures' own join (registered at its import).
    threading._register_atexit(_interrupt_all)  # type: ignore[attr-defined]
except (AttributeError, RuntimeError):  # pragma: no cover
    import atexit
    atexit.register(_interrupt_all)


async def wait_readable(reader: "_shmdemux.Reader") -> None:
    """Return once ``reader.read_nowait()`` has something to return (a
    record, the end) or the reader was closed."""
    loop = asyncio.get_running_loop()
    if HAVE_STREAM_FD:
        fd = reader.fileno()
        fut = loop.create_future()
        loop.add_reader(fd, _set_done, fut)
        key = id(reader)
        _fd_waits[key] = (loop, fd, fut)
        try:
            await fut
        finally:
            # Unless close_reader() has already stopped watching.
            if _fd_waits.get(key, (None, None, None))[2] is fut:
                del _fd_waits[key]
                loop.remove_reader(fd)
        return
    ticket = reader._wait_ticket()
    fut = loop.run_in_executor(_get_executor(), reader._wait_blocking, ticket)
    try:
        await fut
    except asyncio.CancelledError:
        reader._interrupt(ticket)
        raise


def _set_done(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


def close_reader(reader: "_shmdemux.Reader") -> None:
    """Close reader, first ending a wait on its descriptor: the waiting
    task wakes, finds the reader closed and ends its iteration. From the
    waiting loop's thread the descriptor is unwatched before it is
    closed; from another thread the loop unwatches it at its next turn.
    (Without a descriptor, ``Reader.close()`` itself interrupts the
    waiting thread.)"""
    w = _fd_waits.pop(id(reader), None)
    if w is not None:
        loop, fd, fut = w

        def end() -> None:
            loop.remove_reader(fd)
            _set_done(fut)

        try:
            here = asyncio.get_running_loop() is loop
        except RuntimeError:
            here = False
        if here:
            end()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(end)
    reader.close()


@types.coroutine
def cooperate():
    """Let the event loop run the other ready tasks once (what
    ``asyncio.sleep(0)`` does, without its timer machinery)."""
    yield
