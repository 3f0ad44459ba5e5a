"""A consumer written against the seed's demuxer, the way its users call it
(pyav_demuxer.py's own usage: start(), the stream fields, iter_packets()).

test_seed_compat.py runs this file twice on the same bytes: as it is,
against the seed (seed/pyav_demuxer.py, on PyAV), and with only the import
line below changed to ``from shmdemux import PyAVDemuxer``. What it returns
is what a consumer sees: the stream fields and, per packet, every field
and property the seed documents, the payload's size and MD5, and for a
decoded frame its picture or samples (to_ndarray()) MD5.
"""

import hashlib

from pyav_demuxer import PyAVDemuxer


def describe_stream(s):
    if s is None:
        return None
    return {
        "index": s.index, "codec_name": s.codec_name,
        "codec_type": s.codec_type, "width": s.width, "height": s.height,
        "fps": s.fps, "pixel_format": s.pixel_format,
        "sample_rate": s.sample_rate, "channels": s.channels,
        "time_base": [s.time_base_num, s.time_base_den],
        "duration_seconds": s.duration_seconds,
        "extradata_md5": hashlib.md5(s.extradata).hexdigest(),
    }


def describe_packet(packet):
    frame = packet.decoded_frame
    out = {
        "stream_index": packet.stream_index,
        "codec_type": packet.codec_type,
        "pts": packet.pts, "dts": packet.dts, "duration": packet.duration,
        "is_keyframe": packet.is_keyframe,
        "time_base": [packet.time_base_num, packet.time_base_den],
        "pts_seconds": packet.pts_seconds,
        "dts_seconds": packet.dts_seconds,
        "duration_seconds": packet.duration_seconds,
        "size": len(packet.data),
        "md5": hashlib.md5(packet.data).hexdigest(),
    }
    if frame is not None:
        out["frame_pts"] = frame.pts
        out["frame_md5"] = hashlib.md5(frame.to_ndarray().tobytes()).hexdigest()
    return out


async def consume(source, decode_video=False, decode_audio=False):
    """Everything the demuxer yields for the async byte iterator source."""
    demuxer = PyAVDemuxer(decode_video=decode_video, decode_audio=decode_audio)
    await demuxer.start(source)
    # The seed's demux thread waits (up to 10 s each) for these decisions
    # when they were not made at construction.
    demuxer.enable_video_decode(decode_video)
    demuxer.enable_audio_decode(decode_audio)
    streams = {
        "video": describe_stream(demuxer.video_stream),
        "audio": describe_stream(demuxer.audio_stream),
    }
    packets = []
    async for packet in demuxer.iter_packets():
        packets.append(describe_packet(packet))
    return streams, packets
