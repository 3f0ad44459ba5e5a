#!/usr/bin/env python3
"""What an operator sees: logs, ended streams, top, stats, errors at open,
auto-start failures and version mismatches.

usage: test_ops.py SHMDEMUXD SHMDEMUX MEDIA-DIR FFPROBE-PACKETS

Checks:
 - every broker log line on stderr starts with the local time (ISO 8601,
   milliseconds, UTC offset), the program and a level; stream lines name
   the stream's id and name;
 - an ended stream nobody holds leaves the table after --retain-ended,
   with its descriptors; `ls --all` still shows it (reaped, ended:eof, the
   packet count ffprobe gives); uptime stops at the end;
 - `top -b` shows a running stream's packets/s, its worker's CPU and RSS;
 - `stats --prometheus` parses as the Prometheus text format (with
   prometheus_client where installed, else a strict line grammar) and its
   counters equal `ls --json`'s;
 - `open` of an empty file, garbage, text, an unknown --format, a format
   outside the whitelist or an unknown --demux-opt exits 1 with the
   worker's reason and leaves no stream; conflicting flags exit 2;
 - a failed first open leaves no auto-started broker behind; an auto-start
   that cannot work says why (binary missing, pidfile impossible);
 - a broker of another control protocol version is named as such, in both
   directions.
"""
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from checks import check, failures, passed, until

SHMDEMUXD, SHMDEMUX, MEDIA, FFPROBE_PACKETS = sys.argv[1:5]
DEADLINE = 30.0


def run(args, env=None, timeout=120):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          stdin=subprocess.DEVNULL, env=env, timeout=timeout,
                          text=True, errors="replace")


class Broker:
    def __init__(self, tmp, name, args):
        self.sock = os.path.join(tmp, name + ".sock")
        self.log = os.path.join(tmp, name + ".log")
        self.env = dict(os.environ, SHMDEMUX_SOCKET=self.sock)
        with open(self.log, "w") as f:
            r = subprocess.run([SHMDEMUXD, "--daemon", "--no-config",
                                "--socket", self.sock] + args,
                               stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                               timeout=60)
        if r.returncode != 0:
            raise RuntimeError("shmdemuxd: " + open(self.log).read())
        with open(self.sock + ".pid") as f:
            self.pid = int(f.read().split()[0])

    def cli(self, *args, timeout=120):
        return run([SHMDEMUX] + list(args), env=self.env, timeout=timeout)

    def ls(self, *extra):
        r = self.cli("ls", "--json", *extra)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def stop(self):
        try:
            os.kill(self.pid, 15)
        except ProcessLookupError:
            return
        until(lambda: not os.path.exists("/proc/%d" % self.pid), 10)
        if os.path.exists("/proc/%d" % self.pid):
            os.kill(self.pid, 9)


def ffprobe_count(path):
    r = subprocess.run([FFPROBE_PACKETS, path], stdout=subprocess.PIPE,
                       timeout=120)
    return len(r.stdout.splitlines())


STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4} "
                   r"shmdemuxd: (error|warning|info|debug): ")


def test_logs(b):
    lines = open(b.log).read().splitlines()
    check(lines and all(STAMP.match(ln) for ln in lines),
          "log lines: time, program, level (%s)" % lines[:1])
    check(any(re.search(r"info: stream \d+ \(clip\): worker \d+ "
                        r"\((forked|spare|exec'd)\) started", ln)
              for ln in lines),
          "stream lines name the stream")


def test_reap(tmp, media, want):
    b = Broker(tmp, "reap", ["--retain-ended", "1", "--keep-ended", "0",
                             "--spare-workers", "0"])
    try:
        check(b.ls() == [], "a fresh broker lists nothing")
        # one stream's life first: the timers it makes stay for the next
        r = b.cli("open", "--name", "first", media)
        check(r.returncode == 0 and b.cli("dump", "first").returncode == 0,
              "a first stream, read")
        check(until(lambda: b.ls() == [], 15), "the first stream reaped")
        fds0 = b.fds()
        r = b.cli("open", "--name", "clip", media)
        check(r.returncode == 0, "open clip (%s)" % r.stderr.strip())
        r = b.cli("dump", "clip", "--csv")
        check(r.returncode == 0 and len(r.stdout.splitlines()) == want,
              "clip read to its end: %d packets" % want)
        gone = until(lambda: b.ls() == [], 15)
        check(gone, "the ended stream left the table by itself")
        hist = b.ls("--all") or []
        clip = [s for s in hist if s["name"] == "clip"]
        check(len(clip) == 1 and clip[0]["reaped"] and
              clip[0]["state"] == "ended:eof" and
              clip[0]["packets"] == want,
              "ls --all: reaped, ended:eof, %d packets (%s)" % (want, clip))
        check(b.fds() == fds0,
              "its descriptors are gone (%d before, %d after)" %
              (fds0, b.fds()))
        again = [s for s in (b.ls("--all") or []) if s["name"] == "clip"]
        check(clip and again and
              again[0]["uptime_ms"] == clip[0]["uptime_ms"] and
              again[0]["ended_ago_ms"] >= clip[0]["ended_ago_ms"],
              "uptime stops at the end, its age goes on")
        r = b.cli("open", "--name", "clip", media)
        check(r.returncode == 0, "its name is free again")
        test_logs(b)
    finally:
        b.stop()


def parse_prometheus(text):
    """{(name, frozenset(labels)): value}, strictly."""
    out = {}
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        text_string_to_metric_families = None
    if text_string_to_metric_families is not None:
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out, "prometheus_client"
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? '
                         r'(-?[0-9.e+]+|NaN|[+-]Inf)$')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for ln in text.splitlines():
        if ln.startswith("# HELP ") or ln.startswith("# TYPE "):
            continue
        m = line_re.match(ln)
        if not m:
            raise ValueError("not a sample line: %r" % ln)
        labels = {}
        if m.group(3):
            rest = m.group(3)
            for lm in label_re.finditer(rest):
                labels[lm.group(1)] = lm.group(2)
            if ",".join(x.group(0) for x in label_re.finditer(rest)) != rest:
                raise ValueError("bad labels: %r" % ln)
        out[(m.group(1), frozenset(labels.items()))] = float(m.group(4))
    return out, "the line grammar"


def test_views(tmp, media, want, long_clip):
    b = Broker(tmp, "views", ["--retain-ended", "forever"])
    try:
        r = b.cli("open", "--name", "done", media)
        check(r.returncode == 0, "open done")
        r = b.cli("dump", "done", "--csv")
        check(r.returncode == 0 and len(r.stdout.splitlines()) == want,
              "done read to its end")
        r = b.cli("open", "--name", "live", "--mode", "live", "--realtime",
                  long_clip)
        check(r.returncode == 0, "open a paced live stream")
        live_id = r.stdout.strip()
        r = b.cli("top", "-b", "-n", "2", "-d", "0.5")
        blocks = [x for x in r.stdout.split("\n\n") if x.strip()]
        check(r.returncode == 0 and len(blocks) == 4,
              "top -b -n 2: two refreshes (exit %d)" % r.returncode)
        rows = [ln.split() for ln in blocks[-1].splitlines()]
        head = rows[0] if rows else []
        row = [x for x in rows[1:] if len(x) > 1 and x[1] == "live"]
        ok = False
        if row and head[:3] == ["ID", "NAME", "STATE"]:
            cell = dict(zip(head, row[0]))
            try:
                ok = (cell["STATE"] == "running" and
                      float(cell["PKT/S"]) > 0 and
                      float(cell["CPU%"]) >= 0 and cell["RSS"] != "-")
            except (KeyError, ValueError):
                ok = False
        check(ok, "top: the live stream's packets/s, CPU and RSS (%s)" %
              (row[0] if row else blocks[-1:]))
        check(re.match(r"shmdemux top - \d\d:\d\d:\d\d  streams: 1 running, "
                       r"1 ended", blocks[-2] if len(blocks) > 1 else ""),
              "top: the totals line")
        r = b.cli("kill", "live")
        check(r.returncode == 0, "kill the live stream")
        until(lambda: all(s["state"].startswith("ended")
                          for s in (b.ls() or [{"state": ""}])), 10)

        listed = b.ls()
        r = b.cli("stats", "--prometheus")
        try:
            samples, how = parse_prometheus(r.stdout)
        except ValueError as e:
            samples, how = {}, str(e)
        check(r.returncode == 0 and samples,
              "stats --prometheus parses (%s)" % how)

        def val(name, s):
            return samples.get((name, frozenset({"id": str(s["id"]),
                                                 "name": s["name"]}.items())))
        same = listed and all(
            val("shmdemux_stream_packets_total", s) == s["packets"] and
            val("shmdemux_stream_payload_bytes_total", s) == s["bytes"] and
            val("shmdemux_stream_drops_total", s) == s["drops"]
            for s in listed)
        check(same, "prometheus counters equal ls --json's")
        check(samples.get(("shmdemux_streams",
                           frozenset({"state": "ended"}.items()))) == 2.0,
              "shmdemux_streams{state=ended} is 2")
        killed = [s for s in listed or [] if s["id"] == int(live_id or 0)]
        check(killed and killed[0]["state"] == "ended:killed" and
              killed[0]["worker_cpu_ms"] >= 0,
              "the killed stream: ended:killed")
        r = b.cli("stats")
        check(r.returncode == 0 and re.search(r"^streams: +2 \(0 not ended, "
                                              r"2 ended\)$", r.stdout, re.M),
              "stats: the totals")

        test_open_errors(b, tmp, media)
        test_version_broker(b)
        test_quit_busy(b)
    finally:
        b.stop()


def test_open_errors(b, tmp, media):
    text = os.path.join(tmp, "notes.mkv")
    with open(text, "w") as f:
        f.write("just some text, not media\n" * 40)
    before = len(b.ls() or [])
    cases = [
        ("empty file", [os.path.join(MEDIA, "empty.bin")],
         "open refused: input could not be opened"),
        ("garbage", [os.path.join(MEDIA, "garbage.bin")],
         "open refused: input could not be opened"),
        ("text", [text], "open refused: input could not be opened"),
        ("unknown --format", ["--format", "nosuchformat", media],
         "unknown input format 'nosuchformat'"),
        ("outside the whitelist", ["--format-whitelist", "mpegts", media],
         "not on whitelist"),
        ("unknown --demux-opt", ["--demux-opt", "nosuch_opt=1", media],
         "demuxer option 'nosuch_opt' is not known"),
    ]
    for what, args, want in cases:
        r = b.cli("open", *args)
        check(r.returncode == 1 and r.stdout == "" and
              len(r.stderr.splitlines()) == 1 and want in r.stderr,
              "open, %s: exit 1, one line with the reason (%d: %s)" %
              (what, r.returncode, r.stderr.strip()))
    check(len(b.ls() or []) == before, "refused opens leave no stream")
    for what, args in [
            ("--decode-strict without --decode", ["--decode-strict"]),
            ("--format outside --format-whitelist",
             ["--format", "mpegts", "--format-whitelist", "mov"]),
            ("--no-wait with --timeout", ["--no-wait", "--timeout", "5"])]:
        r = b.cli("open", *(args + [media]))
        check(r.returncode == 2 and r.stdout == "",
              "open %s: exit 2 (%d)" % (what, r.returncode))


def test_autostart(tmp):
    d = os.path.join(tmp, "auto")
    os.mkdir(d, 0o700)
    sock = os.path.join(d, "a.sock")
    env = dict(os.environ, SHMDEMUX_SOCKET=sock)
    r = run([SHMDEMUX, "open", os.path.join(MEDIA, "empty.bin")], env=env)
    check(r.returncode == 1 and "open refused" in r.stderr,
          "first open of an empty file fails (%s)" % r.stderr.strip())

    def broker_gone():
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    if sock.encode() in f.read():
                        return False
            except OSError:
                pass
        return not os.path.exists(sock)
    check(until(broker_gone, 15), "the broker it started is gone")

    env2 = dict(env, SHMDEMUX_BROKER=os.path.join(tmp, "no-such-shmdemuxd"))
    r = run([SHMDEMUX, "ls"], env=env2)
    check(r.returncode == 1, "ls does not start a broker")
    r = run([SHMDEMUX, "open", os.path.join(MEDIA, "empty.bin")], env=env2)
    check(r.returncode == 1 and "no-such-shmdemuxd" in r.stderr and
          "does not exist" in r.stderr,
          "auto-start: a missing broker binary is named (%s)" %
          r.stderr.strip())
    env3 = dict(os.environ,
                SHMDEMUX_SOCKET=os.path.join(tmp, "missing-dir", "x.sock"))
    r = run([SHMDEMUX, "open", os.path.join(MEDIA, "empty.bin")], env=env3)
    check(r.returncode == 1 and "cannot start the broker" in r.stderr and
          "pidfile" in r.stderr and "No such file" in r.stderr,
          "auto-start: the broker's own error is shown (%s)" %
          r.stderr.strip())


CTL_MAGIC = 0x584d4453


def test_version_client(tmp):
    """A broker that speaks control protocol 1 (an older one)."""
    path = os.path.join(tmp, "old.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv.bind(path)
    srv.listen(1)
    p = subprocess.Popen([SHMDEMUX, "--socket", path, "ls"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True)
    try:
        srv.settimeout(DEADLINE)
        c, _ = srv.accept()
        c.settimeout(DEADLINE)
        req = c.recv(65536)
        rid = struct.unpack_from("<IHHII", req)[4] if len(req) >= 16 else 0
        # an ERROR in version 1: header, code, pad, message
        msg = struct.pack("<IHHIIii256s", CTL_MAGIC, 1, 65, 16 + 8 + 256,
                          rid, -71, 0, b"control protocol version mismatch")
        c.send(msg)
        out, err = p.communicate(timeout=DEADLINE)
        c.close()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        srv.close()
    check(p.returncode == 1 and "control protocol version 1" in err and
          "version 2" in err and "restart the broker" in err,
          "an old broker is named: %s" % err.strip())


def test_version_broker(b):
    """A client that speaks another version gets the broker's versions."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(DEADLINE)
    s.connect(b.sock)
    s.send(struct.pack("<IHHIIII", CTL_MAGIC, 1, 3, 24, 7, 0, 0))
    rep = s.recv(65536)
    s.close()
    text = rep[24:].split(b"\0")[0].decode(errors="replace")
    check("speaks version 2" in text and "client version 1" in text,
          "the broker names both versions: %s" % text)


def test_quit_busy(b):
    """QUIT_IDLE to a broker with streams: refused (-EBUSY), it stays."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(DEADLINE)
    s.connect(b.sock)
    s.send(struct.pack("<IHHII", CTL_MAGIC, 2, 7, 16, 9))
    rep = s.recv(65536)
    s.close()
    typ, rid = struct.unpack_from("<HI", rep, 6)[0], \
        struct.unpack_from("<I", rep, 12)[0]
    code = struct.unpack_from("<i", rep, 16)[0] if len(rep) >= 20 else 0
    check(typ == 65 and rid == 9 and code == -16 and b.ls() is not None,
          "QUIT_IDLE with streams: -EBUSY, the broker stays (%d, %d)" %
          (typ, code))


def main():
    media = os.path.join(MEDIA, "h264_aac.mkv")
    if not os.path.exists(media):
        print("missing generated media %s (the media_generate test makes "
              "it)" % media)
        return 1
    tmp = tempfile.mkdtemp(prefix="shmdemux-ops.")
    try:
        long_clip = os.path.join(tmp, "long.mkv")
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi",
                        "-i", "testsrc=d=30:s=160x120:r=25", "-c:v",
                        "mpeg4", long_clip], check=True, timeout=120)
        want = ffprobe_count(media)
        test_reap(tmp, media, want)
        test_views(tmp, media, want, long_clip)
        test_autostart(tmp)
        test_version_client(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("ops: %d passed, %d failed" % (passed[0], len(failures)))
    for f in failures:
        print("  failed:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
