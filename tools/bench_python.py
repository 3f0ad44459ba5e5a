#!/usr/bin/python3
"""Packets per second through the Python binding against the seed.

usage: tools/bench_python.py [--build DIR] [--runs N] [--loops K]
                             [--file FILE]... [--work len|crc32]
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
reported with their ratio (and the rate from the first packet on, which
leaves out opening), and the CPU time this process spent per packet
(the seed demuxes in this process; the binding's demuxing runs in the
broker's worker, so its figure is the consumer's own cost). Each file
(--file, repeatable) is measured in turn in the same run, against the
same broker. The default inputs are two small-packet files, 60 s clips
stream-copied --loops times, made with the ffmpeg CLI and cached in
DIR/bench-media:
  - AAC in ADTS (two channels, 96 kb/s, 48 kHz: 46.9 packets/s of ~260
    bytes);
  - Opus in Ogg (two channels, 64 kb/s, 20 ms frames: 50 packets/s of
    ~160 bytes).
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


#: The default inputs: name, extension, encoder arguments for a 60 s clip.
DEFAULT_INPUTS = (
    ("aac", "adts", ["-c:a", "aac", "-b:a", "96k", "-ac", "2",
                     "-f", "adts"]),
    ("opus", "ogg", ["-c:a", "libopus", "-b:a", "64k", "-ac", "2",
                     "-frame_duration", "20", "-f", "ogg"]),
)


def make_input(build: str, loops: int, name: str, ext: str,
               encode: list) -> str:
    out_dir = os.path.join(build, "bench-media")
    os.makedirs(out_dir, exist_ok=True)
    clip = os.path.join(out_dir, "pybench_clip_%s.%s" % (name, ext))
    out = os.path.join(out_dir, "pybench_small_%s_x%d.%s" % (name, loops, ext))
    quiet = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if not os.path.exists(clip):
        subprocess.run(quiet + [
            "-f", "lavfi", "-i", "sine=f=440:r=48000:d=60", *encode,
            "-fflags", "+bitexact", "-flags:a", "+bitexact", clip + ".tmp"],
            check=True)
        os.rename(clip + ".tmp", clip)
    if not os.path.exists(out):
        subprocess.run(quiet + [
            "-stream_loop", str(loops - 1), "-i", clip, "-c", "copy",
            "-f", encode[-1], out + ".tmp"], check=True)
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
    t1 = None
    if work == "crc32":
        crc = 0
        async for pkt in demuxer.iter_packets():
            if t1 is None:
                t1 = time.perf_counter()
            crc = zlib.crc32(pkt.data, crc)
            n += 1
        total = crc
    else:
        async for pkt in demuxer.iter_packets():
            if t1 is None:
                t1 = time.perf_counter()
            total += len(pkt.data)
            n += 1
    t2 = time.perf_counter()
    return n, total, t2 - t0, t2 - t1, time.process_time() - c0


def measure(arms: dict, path: str, a) -> dict:
    """Both arms on one file, alternately, a.runs times each; their
    medians. None when a run or the arms disagree on the packets."""
    with open(path, "rb") as f:
        data = f.read()
    runs = {k: [] for k in arms}
    steady = {k: [] for k in arms}
    cpu = {k: [] for k in arms}
    counts = {}
    for _ in range(a.runs):
        for name, cls in arms.items():
            n, total, secs, after_first, cpus = asyncio.run(
                consume(cls, data, a.chunk, a.work))
            counts.setdefault(name, (n, total))
            if counts[name] != (n, total) or n < 2:
                print("%s: %s: run saw %d packets (%d), earlier %r" % (
                    path, name, n, total, counts[name]), file=sys.stderr)
                return None
            runs[name].append(n / secs)
            steady[name].append((n - 1) / after_first)
            cpu[name].append(cpus / n * 1e6)
    if counts["seed"] != counts["shmdemux"]:
        print("%s: the arms disagree: seed %r, shmdemux %r" % (
            path, counts["seed"], counts["shmdemux"]), file=sys.stderr)
        return None
    med = {k: statistics.median(v) for k, v in runs.items()}
    return {"file": path, "packets": counts["seed"][0], "bytes": len(data),
            "runs": runs, "median_pps": med,
            "ratio": med["shmdemux"] / med["seed"],
            "pair_ratio": statistics.median(
                b / s for s, b in zip(runs["seed"], runs["shmdemux"])),
            "median_pps_after_first": {
                k: statistics.median(v) for k, v in steady.items()},
            "cpu_us_per_packet": {
                k: statistics.median(v) for k, v in cpu.items()}}


def report(r: dict, a) -> None:
    print("input: %s (%d bytes, %d packets), %d runs each, work=%s" % (
        r["file"], r["bytes"], r["packets"], a.runs, a.work))
    for k in ("seed", "shmdemux"):
        print("  %-9s median %8.0f packets/s (%8.0f after the first "
              "packet), %6.2f us CPU/packet in this process; runs: %s" % (
                  k, r["median_pps"][k], r["median_pps_after_first"][k],
                  r["cpu_us_per_packet"][k],
                  " ".join("%.0f" % v for v in r["runs"][k])))
    print("  ratio shmdemux/seed: %.1fx (median of the runs' own ratios "
          "%.1fx)" % (r["ratio"], r["pair_ratio"]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(SRC, "build"),
                    help="build directory (binaries, python/, bench-media/)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--loops", type=int, default=15,
                    help="60 s clips in each default input (15: 42k and "
                    "45k packets)")
    ap.add_argument("--file", action="append",
                    help="an input instead of the defaults (repeatable)")
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

    paths = a.file or [make_input(a.build, a.loops, *d)
                       for d in DEFAULT_INPUTS]
    broker = Broker(os.path.join(a.build, "bin"))
    os.environ["SHMDEMUX_SOCKET"] = broker.socket
    arms = {"seed": pyav_demuxer.PyAVDemuxer, "shmdemux": shmdemux.Demuxer}
    results = []
    try:
        for path in paths:
            r = measure(arms, path, a)
            if r is None:
                return 1
            results.append(r)
    finally:
        broker.stop()
    if a.json:
        print(json.dumps({"work": a.work, "files": results}))
        return 0
    for r in results:
        report(r, a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
