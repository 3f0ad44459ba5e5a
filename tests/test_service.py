#!/usr/bin/env python3
"""shmdemuxd under a service manager, without systemd: this script plays
systemd's part by its documented protocols (sd_listen_fds(3), sd_notify(3)).

usage: test_service.py SHMDEMUXD SHMDEMUX MEDIA-DIR FFPROBE-PACKETS SRC-DIR

Checks:
 - socket activation: a listening SOCK_SEQPACKET socket passed as fd 3 with
   LISTEN_FDS=1 and LISTEN_PID is served; a client that connected before
   the broker started (waiting in the backlog, as under systemd) is
   answered; a file opened through it dumps exactly ffprobe's packets;
 - readiness: READY=1 (with STATUS=) arrives on $NOTIFY_SOCKET once the
   broker serves, STOPPING=1 on SIGTERM; the broker exits 0 and leaves
   the socket file in place (the manager owns it); a second broker
   started on the same passed socket serves again (a restart);
 - the manager's variables are not inherited by workers;
 - refused with a named cause and exit 1: two sockets, a stream socket,
   a socket not listening, an abstract one, garbage in LISTEN_FDS; a
   --socket that contradicts the passed one exits 2; LISTEN_PID naming
   another process is ignored (the broker binds its own --socket);
 - journal logging: with $JOURNAL_STREAM naming stderr, lines carry
   syslog priorities ("<6>"); --log-level warning drops info lines;
 - the units shipped in broker/systemd pass `systemd-analyze verify`
   without a warning (where systemd-analyze is installed).
"""
import os
import select
import signal
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from checks import check, failures, passed

SHMDEMUXD, SHMDEMUX, MEDIA, FFPROBE_PACKETS, SRC = sys.argv[1:6]
DEADLINE = 60.0
skips = []


class Manager:
    """A listening socket and a notification socket, as systemd holds them,
    and the broker it starts on them."""

    def __init__(self, tmp, name="s.sock", kind=socket.SOCK_SEQPACKET,
                 listen=True, bind=True, abstract=False):
        self.tmp = tmp
        self.path = os.path.join(tmp, name)
        self.sock = socket.socket(socket.AF_UNIX, kind)
        if abstract:
            self.sock.bind("\0shmdemux-test-%d-%s" % (os.getpid(), name))
        elif bind:
            self.sock.bind(self.path)
        if listen:
            self.sock.listen(16)
        self.npath = os.path.join(tmp, "notify." + name)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.npath)
        self.proc = None
        self.log = os.path.join(tmp, "broker.%s.log" % name)

    def start(self, args=(), nfds=1, listen_pid=None, env_extra=None,
              extra_fds=()):
        env = dict(os.environ)
        env["NOTIFY_SOCKET"] = self.npath
        env["LISTEN_FDS"] = str(nfds)
        env["LISTEN_FDNAMES"] = "shmdemuxd.socket"
        env.pop("SHMDEMUX_SOCKET", None)
        if env_extra:
            env.update(env_extra)
        fds = [self.sock.fileno()] + list(extra_fds)

        def child_fds():
            # fds 3, 4, ... as systemd lays them out
            tmp = [os.dup(f) for f in fds]
            for i, f in enumerate(tmp):
                os.dup2(f, 3 + i)
                os.close(f)
        pid_expr = "$$" if listen_pid is None else str(listen_pid)
        cmd = ["sh", "-c", 'LISTEN_PID=%s exec "$0" "$@"' % pid_expr,
               SHMDEMUXD, "--pidfile", os.path.join(self.tmp, "b.pid"),
               "--idle-exit", "120"] + list(args)
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=self.logf,
            stderr=self.logf, preexec_fn=child_fds,
            pass_fds=tuple(range(3, 3 + len(fds))))
        return self.proc

    def wait_notify(self, want, timeout=DEADLINE):
        """Notifications until one holds `want`; returns it, or None at the
        deadline or when the broker exits first."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.notify], [], [], min(left, 0.5))
            if r:
                msg = self.notify.recv(4096).decode()
                if want in msg.split("\n"):
                    return msg
            elif self.proc.poll() is not None:
                return None

    def stop(self, signal_it=True):
        """SIGTERM (unless signal_it is false: it is to exit by itself) and
        the exit status."""
        if self.proc is None:
            return None
        if signal_it and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.logf.close()
        self.proc = None
        return rc

    def close(self):
        self.stop()
        self.sock.close()
        self.notify.close()

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode(errors="replace")


def cli(sock, *args, stdin=None):
    env = dict(os.environ, SHMDEMUX_SOCKET=sock)
    return subprocess.run([SHMDEMUX] + list(args), env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=DEADLINE, stdin=stdin)


def activation(tmp):
    media = os.path.join(MEDIA, "h264_aac.mkv")
    ref = subprocess.run([FFPROBE_PACKETS, media], stdout=subprocess.PIPE,
                         check=True, timeout=DEADLINE).stdout
    m = Manager(tmp)
    try:
        # A client that connects before the broker runs waits in the
        # backlog, as it would under systemd.
        early = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        early.connect(m.path)
        m.start()
        msg = m.wait_notify("READY=1")
        check(msg is not None and "STATUS=serving " + m.path in msg,
              "READY=1 with STATUS on $NOTIFY_SOCKET")
        early.close()
        ls = cli(m.path, "ls")
        check(ls.returncode == 0, "ls through the passed socket")
        op = cli(m.path, "open", media, "--name", "act")
        check(op.returncode == 0, "open through the passed socket")
        env_ok = True
        for pid in subprocess.run(["pgrep", "-P", str(m.proc.pid)],
                                  stdout=subprocess.PIPE).stdout.split():
            try:
                with open("/proc/%s/environ" % pid.decode(), "rb") as f:
                    names = [e.split(b"=")[0] for e in f.read().split(b"\0")]
            except OSError:
                continue
            if any(n in names for n in (b"LISTEN_FDS", b"LISTEN_PID",
                                         b"NOTIFY_SOCKET", b"LISTEN_FDNAMES")):
                env_ok = False
        check(env_ok, "workers inherit none of the manager's variables")
        d = cli(m.path, "dump", "act", "--csv")
        check(d.returncode == 0 and d.stdout == ref,
              "dump through the passed socket = ffprobe's packets (%d lines)"
              % ref.count(b"\n"))
        m.proc.send_signal(signal.SIGTERM)
        check(m.wait_notify("STOPPING=1") is not None,
              "STOPPING=1 on SIGTERM")
        rc = m.stop()
        check(rc == 0, "exit 0 after SIGTERM (got %s)" % rc)
        check(os.path.exists(m.path),
              "the socket file stays (the manager owns it)")
        # A restart on the same socket, as Restart= does.
        m.start()
        check(m.wait_notify("READY=1") is not None, "restarted: READY=1")
        check(cli(m.path, "ls").returncode == 0, "restarted: ls")
        check(m.stop() == 0, "restarted: exit 0")
        text = m.log_text()
        check("serving the passed socket " + m.path in text,
              "the log names the passed socket")
    finally:
        m.close()


def refusals(tmp):
    cases = [
        ("two sockets", dict(nfds=2), "2 sockets passed", 1),
        ("garbage LISTEN_FDS", dict(env_extra={"LISTEN_FDS": "1x"}),
         "is not a count", 1),
    ]
    for what, kw, needle, want in cases:
        m = Manager(tmp, name="r%d.sock" % len(needle))
        try:
            extra = ()
            if kw.get("nfds") == 2:
                extra = (m.notify.fileno(),)
            m.start(extra_fds=extra, **kw)
            rc = m.stop(signal_it=False)
            text = m.log_text()
            check(rc == want and needle in text,
                  "refused: %s (exit %s: %s)" % (what, rc, text.strip()[:120]))
        finally:
            m.close()
    for i, (what, kw, needle) in enumerate([
            ("stream socket", dict(kind=socket.SOCK_STREAM), "SOCK_SEQPACKET"),
            ("not listening", dict(listen=False), "not listening"),
            ("abstract socket", dict(abstract=True), "no path")]):
        m = Manager(tmp, name="k%d.sock" % i, **kw)
        try:
            m.start()
            rc = m.stop(signal_it=False)
            text = m.log_text()
            check(rc == 1 and needle in text,
                  "refused: %s (exit %s: %s)" % (what, rc, text.strip()[:120]))
        finally:
            m.close()
    # --socket against the passed one: a usage error
    m = Manager(tmp, name="u.sock")
    try:
        m.start(args=["--socket", os.path.join(tmp, "other.sock")])
        rc = m.stop(signal_it=False)
        check(rc == 2 and "the service manager passed" in m.log_text(),
              "--socket contradicting the passed socket: exit 2")
    finally:
        m.close()
    # LISTEN_PID of another process: not ours; the broker binds --socket
    m = Manager(tmp, name="p.sock")
    own = os.path.join(tmp, "own.sock")
    try:
        m.start(args=["--socket", own], listen_pid=1)
        check(m.wait_notify("READY=1") is not None and
              os.path.exists(own) and cli(own, "ls").returncode == 0,
              "LISTEN_PID of another process is ignored")
        check(m.stop() == 0 and not os.path.exists(own),
              "its own socket is removed at exit")
    finally:
        m.close()


def journal(tmp):
    log = os.path.join(tmp, "journal.log")
    sock = os.path.join(tmp, "j.sock")
    m = Manager(tmp, name="jm.sock", bind=False, listen=False)
    try:
        with open(log, "wb") as f:
            st = os.fstat(f.fileno())
            env = dict(os.environ, NOTIFY_SOCKET=m.npath,
                       JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
            m.proc = subprocess.Popen(
                [SHMDEMUXD, "--socket", sock, "--pidfile", sock + ".pid"],
                env=env, stdout=f, stderr=f, stdin=subprocess.DEVNULL)
            m.logf = open(os.devnull, "wb")
            ready = m.wait_notify("READY=1") is not None
            rc = m.stop()
    finally:
        m.close()
    with open(log) as r:
        lines = r.read().splitlines()
    check(ready and rc == 0 and lines and
          all(ln.startswith(("<3>", "<4>", "<6>", "<7>")) for ln in lines)
          and any(ln.startswith("<6>info: listening on") for ln in lines),
          "journal stream: priorities on every line (%s)" % lines[:2])
    r = subprocess.run([SHMDEMUXD, "--socket", sock, "--pidfile",
                        sock + ".pid", "--log-level", "warning", "--idle-exit",
                        "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=DEADLINE)
    check(r.returncode == 0 and r.stderr == b"",
          "--log-level warning: no info lines (%r)" % r.stderr[:100])
    r = subprocess.run([SHMDEMUXD, "--log-level", "loud"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=DEADLINE)
    check(r.returncode == 2 and b"invalid --log-level" in r.stderr,
          "--log-level loud: exit 2")


def units(tmp):
    sa = shutil.which("systemd-analyze")
    if sa is None:
        skips.append("systemd-analyze not installed: the units were not "
                     "verified")
        return
    xdg = os.path.join(tmp, "xdg")
    os.mkdir(xdg, 0o700)
    for kind in ("user", "system"):
        d = os.path.join(tmp, "units-" + kind)
        os.mkdir(d)
        src = os.path.join(SRC, "broker", "systemd", kind)
        shutil.copy(os.path.join(src, "shmdemuxd.socket"), d)
        with open(os.path.join(src, "shmdemuxd.service.in")) as f:
            text = f.read().replace("@SHMDEMUXD@", os.path.abspath(SHMDEMUXD))
        with open(os.path.join(d, "shmdemuxd.service"), "w") as f:
            f.write(text)
        cmd = [sa] + (["--user"] if kind == "user" else []) + [
            "verify", "--man=no", "shmdemuxd.socket", "shmdemuxd.service"]
        r = subprocess.run(cmd, cwd=d, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=DEADLINE,
                           env=dict(os.environ, XDG_RUNTIME_DIR=xdg))
        out = r.stdout.decode(errors="replace").strip()
        check(r.returncode == 0 and out == "",
              "systemd-analyze verify: %s units (%s)" % (kind, out[:200]))


def main():
    tmp = tempfile.mkdtemp(prefix="shmdemux-service.")
    try:
        activation(tmp)
        refusals(tmp)
        journal(tmp)
        units(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for s in skips:
        print("SKIP", s)
    print("service: %d passed, %d failed, %d skipped" %
          (passed[0], len(failures), len(skips)))
    if failures:
        return 1
    return 77 if skips and passed[0] == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
