"""shmdemux: demux untrusted media in a sandboxed broker worker and read
the packets from shared memory, from asyncio or plain scripts.

Seed-shaped (asyncio)::

    demuxer = shmdemux.Demuxer(decode_video=False, decode_audio=False)
    await demuxer.start(async_byte_iterator)      # or a path, or an fd
    print(demuxer.video_stream, demuxer.audio_stream)
    async for pkt in demuxer.iter_packets():
        handle(pkt.stream_index, pkt.pts, bytes(pkt.data))

Scripts::

    with shmdemux.open("/media/movie.mkv") as stream:
        for pkt in stream:                        # every track
            print(pkt.stream_index, pkt.pts, len(pkt.data))

Many consumers of one stream: ``shmdemux.attach("cam1")``.

``pkt.data`` is a zero-copy view of the ring record, valid until the next
packet is read; ``bytes(pkt.data)`` keeps a copy. docs/PYTHON.md has the
whole API, the migration from the seed and the error classes.
"""

from . import _errors, _shmdemux
from ._errors import *  # noqa: F401,F403 - the exception classes
from ._shmdemux import (ABI_VERSION, DECODE_AUDIO, DECODE_VIDEO,  # noqa: F401
                        HAVE_STREAM_FD, PKT_CORRUPT, PKT_DISCARD,
                        PKT_DISPOSABLE, PKT_KEY, PKT_TRUSTED, STATE_ENDED,
                        STATE_OPENING, STATE_RUNNING, STATE_STARTING,
                        Connection, Frame, Packet, Plane, Reader,
                        library_version, strerror)
from ._stream import Stream, Track, attach, open  # noqa: F401
from ._demuxer import Demuxer, FramePacket  # noqa: F401

__version__ = _shmdemux.VERSION

#: The seed's names, for code migrating from pyav_demuxer.
PyAVDemuxer = Demuxer
DemuxedStream = Track
DemuxedPacket = Packet

__all__ = [
    "Connection", "Reader", "Stream", "Track", "Packet", "Frame", "Plane",
    "Demuxer", "FramePacket", "open", "attach", "library_version",
    "strerror", "HAVE_STREAM_FD", "PyAVDemuxer", "DemuxedStream",
    "DemuxedPacket",
] + _errors.__all__
