#!/usr/bin/python3
"""Example: print every packet of a media file, demuxed in a sandboxed
shmdemux worker, one CSV line per packet:

    TRACK,CODEC_TYPE,PTS,DTS,DURATION,KEY,SIZE,MD5

usage: packets.py [--async] [--decode] [--socket PATH] FILE
       packets.py --attach STREAM [--socket PATH]

Default: the synchronous API for scripts (shmdemux.open, a plain for
loop). --async: the seed's asyncio shape (shmdemux.Demuxer fed from an
async byte iterator, async for). --attach: join an existing stream (by id
or name) as one more consumer. --decode: frames decoded in the worker;
the MD5 is then the picture's or samples' (to_ndarray(), needs numpy).
A per-user broker is started if none answers (autostart).
"""

import argparse
import asyncio
import hashlib
import sys

import shmdemux


def line(pkt):
    frame = pkt.decoded_frame
    if frame is not None:
        digest = hashlib.md5(frame.to_ndarray().tobytes()).hexdigest()
    else:
        # pkt.data views the ring: hash it before the next packet is read
        digest = hashlib.md5(pkt.data).hexdigest()
    na = lambda v: "N/A" if v is None else str(v)  # noqa: E731
    return "%d,%s,%s,%s,%d,%d,%d,%s" % (
        pkt.stream_index, pkt.codec_type, na(pkt.pts), na(pkt.dts),
        pkt.duration, pkt.is_keyframe, pkt.size, digest)


def describe(tracks):
    for t in tracks:
        if t.codec_type == "video":
            print("# track %d: %s %dx%d %s fps=%s" % (
                t.index, t.codec_name, t.width, t.height, t.pixel_format,
                t.fps), file=sys.stderr)
        else:
            print("# track %d: %s %s %d Hz %d ch" % (
                t.index, t.codec_type, t.codec_name, t.sample_rate,
                t.channels), file=sys.stderr)


def run_sync(args):
    decode = "all" if args.decode else None
    if args.attach:
        ref = int(args.attach) if args.attach.isdigit() else args.attach
        stream = shmdemux.attach(ref, socket=args.socket, autostart=True)
    else:
        stream = shmdemux.open(args.file, socket=args.socket, decode=decode)
    with stream:
        describe(stream.tracks)
        for pkt in stream:
            print(line(pkt))


async def file_chunks(path, size=64 * 1024):
    """An async byte source (a network download would be one)."""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(size)
            if not chunk:
                return
            yield chunk


async def run_async(args):
    demuxer = shmdemux.Demuxer(decode_video=args.decode,
                               decode_audio=args.decode, all_tracks=True,
                               socket=args.socket)
    await demuxer.start(file_chunks(args.file))
    describe(demuxer.streams)
    async for pkt in demuxer.iter_packets():
        print(line(pkt))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("file", nargs="?")
    ap.add_argument("--async", dest="use_async", action="store_true")
    ap.add_argument("--decode", action="store_true")
    ap.add_argument("--attach")
    ap.add_argument("--socket")
    args = ap.parse_args()
    if (args.file is None) == (args.attach is None):
        ap.error("give a FILE or --attach STREAM")
    try:
        if args.use_async and args.file:
            asyncio.run(run_async(args))
        else:
            run_sync(args)
    except shmdemux.StreamFailed as e:
        # e.g. "worker crashed with signal 11 (SIGSEGV)"
        print("packets.py: %s" % e, file=sys.stderr)
        return 1
    except (OSError, shmdemux.ShmdemuxError) as e:
        print("packets.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
