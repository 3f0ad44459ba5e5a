#!/usr/bin/python3
"""Packets per second through the Python binding against the seed.

usage: tools/bench_python.py [--build DIR] [--runs N] [--loops K]
                             [--file FILE] [--work len|crc32]
                             [--chunk BYTES] [--json]

Both arms run the same consumer on the same bytes, in the same process:
an async byte iterator (chunks of --chunk bytes of the file, held in
memory) goes to ``await demuxer.start(...)``, then ``async for pkt in
demuxer.iter_packets()`` reads every packet and touches its payload
(--work len: len(pkt.data); crc32: zlib.crc32 over every byte). The clock
runs from before start() until the iteration has ended, so it includes
opening (the seed's threads and probing; the binding's broker request,
worker start and probing).

* seed: tests/python/seed/pyav_demuxer.py (PyAV in-process); the consumer
  calls enable_video_decode(False) / enable_audio_decode(False) after
  start(), as the seed asks (its demux thread waits up to 10 s each for
  them otherwise);
* shmdemux: shmdemux.Demuxer with a private broker (started here on a
  socket in a temporary directory, stopped at the end).

The runs alternate (seed, shmdemux, seed, ...) and the medians are
reported with their ratio, and the CPU time this process spent per packet
(the seed demuxes in this process; the binding's demuxing runs in the
broker's worker, so its figure is the consumer's own cost). The default
input is a small-packet file: AAC
in ADTS, a 60 s clip (two channels, 96 kb/s, 48 kHz: 46.9 packets/s of
~260 bytes) stream-copied --loops times, made with the ffmpeg CLI and
cached in DIR/bench-media.
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)


def make_input(build: str, loops: int) -> str:
    out_dir = os.path.join(build, "bench-media")
    os.makedirs(out_dir, exist_ok=True)
    clip = os.path.join(out_dir, "pybench_clip_aac.adts")
    out = os.path.join(out_dir, "pybench_small_aac_x%d.adts" % loops)
    quiet = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if not os.path.exists(clip):
        subprocess.run(quiet + [
            "-f", "lavfi", "-i", "sine=f=440:r=48000:d=60", "-c:a", "aac",
            "-b:a", "96k", "-ac", "2", "-fflags", "+bitexact",
            "-flags:a", "+bitexact", "-f", "adts", clip + ".tmp"], check=True)
        os.rename(clip + ".tmp", clip)
    if not os.path.exists(out):
        subprocess.run(quiet + [
            "-stream_loop", str(loops - 1), "-i", clip, "-c", "copy",
            "-f", "adts", out + ".tmp"], check=True)
        os.rename(out + ".tmp", out)
    return out


class Broker:
    """A private shmdemuxd on a socket in a temporary directory."""

    def __init__(self, bindir: str) -> None:
        self.tmp = tempfile.mkdtemp(prefix="shmdemux-pybench.")
        self.socket = os.path.join(self.tmp, "ctl.sock")
        self.pidfile = os.path.join(self.tmp, "broker.pid")
        with open(os.path.join(self.tmp, "broker.log"), "wb") as log:
            subprocess.run([os.path.join(bindir, "shmdemuxd"), "--daemon",
                            "--socket", self.socket, "--pidfile",
                            self.pidfile, "--idle-exit", "120"], check=True,
                           stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        with open(self.pidfile) as f:
            self.pid = int(f.read().strip())

    def stop(self) -> None:
        try:
            os.kill(self.pid, signal.SIGTERM)
            # The broker holds a lock on its pidfile until it exits.
            subprocess.run(["flock", "-w", "10", self.pidfile, "true"],
                           check=False)
        except ProcessLookupError:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)


async def chunks(data: bytes, size: int):
    for i in range(0, len(data), size):
        yield data[i:i + size]


async def consume(cls, data: bytes, chunk: int, work: str):
    demuxer = cls()
    t0 = time.perf_counter()
    c0 = time.process_time()
    await demuxer.start(chunks(data, chunk))
    demuxer.enable_video_decode(False)
    demuxer.enable_audio_decode(False)
    n = total = 0
    if work == "crc32":
        crc = 0
        async for pkt in demuxer.iter_packets():
            crc = zlib.crc32(pkt.data, crc)
            n += 1
        total = crc
    else:
        async for pkt in demuxer.iter_packets():
            total += len(pkt.data)
            n += 1
    return n, total, time.perf_counter() - t0, time.process_time() - c0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SRC, "build"),
                    help="build directory (binaries, python/, bench-media/)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--loops", type=int, default=15,
                    help="60 s clips in the default input (15: 42k packets)")
    ap.add_argument("--file", help="input file instead of the default")
    ap.add_argument("--chunk", type=int, default=65536)
    ap.add_argument("--work", choices=("len", "crc32"), default="len")
    ap.add_argument("--seed", default=os.path.join(
        SRC, "tests", "python", "seed", "pyav_demuxer.py"))
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    sys.path.insert(0, os.path.join(a.build, "python"))
    sys.path.insert(0, os.path.dirname(os.path.abspath(a.seed)))
    import pyav_demuxer
    import shmdemux

    path = a.file or make_input(a.build, a.loops)
    with open(path, "rb") as f:
        data = f.read()
    broker = Broker(os.path.join(a.build, "bin"))
    os.environ["SHMDEMUX_SOCKET"] = broker.socket
    arms = {"seed": pyav_demuxer.PyAVDemuxer, "shmdemux": shmdemux.Demuxer}
    runs = {k: [] for k in arms}
    cpu = {k: [] for k in arms}
    counts = {}
    try:
        for _ in range(a.runs):
            for name, cls in arms.items():
                n, total, secs, cpus = asyncio.run(
                    consume(cls, data, a.chunk, a.work))
                counts.setdefault(name, (n, total))
                if counts[name] != (n, total):
                    print("%s: run saw %d packets (%d), earlier %r" % (
                        name, n, total, counts[name]), file=sys.stderr)
                    return 1
                runs[name].append(n / secs)
                cpu[name].append(cpus / n * 1e6)
    finally:
        broker.stop()
    if counts["seed"] != counts["shmdemux"]:
        print("the arms disagree: seed %r, shmdemux %r" % (
            counts["seed"], counts["shmdemux"]), file=sys.stderr)
        return 1
    med = {k: statistics.median(v) for k, v in runs.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    ratio = med["shmdemux"] / med["seed"]
    pairs = statistics.median(b / s for s, b in zip(runs["seed"],
                                                    runs["shmdemux"]))
    if a.json:
        print(json.dumps({"file": path, "packets": counts["seed"][0],
                          "bytes": len(data), "work": a.work,
                          "runs": runs, "median_pps": med, "ratio": ratio,
                          "cpu_us_per_packet": med_cpu,
                          "pair_ratio": pairs}))
        return 0
    print("input: %s (%d bytes, %d packets), %d runs each, work=%s" % (
        path, len(data), counts["seed"][0], a.runs, a.work))
    for k in arms:
        print("  %-9s median %10.0f packets/s  %6.2f us CPU/packet in this "
              "process   runs: %s" % (k, med[k], med_cpu[k],
                                     " ".join("%.0f" % v for v in runs[k])))
    print("  ratio shmdemux/seed: %.1fx (median of the runs' own ratios "
          "%.1fx)" % (ratio, pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
