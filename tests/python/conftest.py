"""pytest fixtures for the Python binding's tests.

Every test file is one ctest test and one pytest session; the session
starts its own broker on a socket in a private temporary directory
(``broker``) and stops it at the end; tests that need a broker set up
differently (fault injection) start their own with ``start_broker()``.
Everything a session starts is stopped on every path: fixtures' finalizers
run on failures, SIGTERM (ctest's timeout) is turned into an exit that runs
them, and each broker runs with --idle-exit as a backstop should this
process be SIGKILLed.

Environment (set by tests/CMakeLists.txt; defaults suit a manual run from
the source tree after a build in build/):
  SHMDEMUX_BIN     directory holding shmdemuxd, shmdemux-worker, shmdemux
  SHMDEMUX_SRC     source tree
  SHMDEMUX_MEDIA   where tests/media/gen.sh caches the generated media
  SHMDEMUX_FAULT_INJECTION=1  the build has the worker's fault switches
  PYTHONPATH       the build's python/ directory (the shmdemux package)
"""

import os
import pathlib
import select
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("SHMDEMUX_SRC") or os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("SHMDEMUX_BIN") or os.path.join(SRC, "build", "bin")
MEDIA = os.environ.get("SHMDEMUX_MEDIA") or os.path.join(
    os.path.dirname(BIN), "media")
FAULTS = os.environ.get("SHMDEMUX_FAULT_INJECTION") == "1"

_pkg = os.path.join(os.path.dirname(BIN), "python")
if os.path.isdir(os.path.join(_pkg, "shmdemux")) and _pkg not in sys.path:
    sys.path.insert(0, _pkg)
sys.path.insert(0, HERE)


def _on_term(signum, frame):
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _on_term)
signal.signal(signal.SIGHUP, _on_term)


def wait_gone(pid, timeout):
    """Wait (bounded) for a process that is not our child to exit."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


class Broker:
    """A private shmdemuxd: socket, pid, log, temporary directory."""

    def __init__(self, env=None, args=(), bindir=BIN):
        self.tmp = tempfile.mkdtemp(prefix="shmdemux-pytest.")
        self.socket = os.path.join(self.tmp, "ctl.sock")
        self.pidfile = os.path.join(self.tmp, "broker.pid")
        self.log = os.path.join(self.tmp, "broker.log")
        self.pid = None
        e = dict(os.environ)
        e.update(env or {})
        if "SHMDEMUX_FAULT" in (env or {}):
            # sanitizer builds: let the workers die of the faults
            e["ASAN_OPTIONS"] = (e.get("ASAN_OPTIONS", "") +
                                 ":handle_segv=0:handle_abort=0").lstrip(":")
        try:
            with open(self.log, "wb") as log:
                # --daemon returns once the socket listens.
                subprocess.run(
                    [os.path.join(bindir, "shmdemuxd"), "--daemon", "--socket",
                     self.socket, "--pidfile", self.pidfile, "--idle-exit",
                     "120", *args], check=True, env=e,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    timeout=60)
            with open(self.pidfile) as f:
                self.pid = int(f.read().strip())
        except BaseException:
            self.stop()
            raise

    def log_tail(self, n=20):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        pid, self.pid = self.pid, None
        ok = True
        if pid is not None:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pid = None
        if pid is not None and not wait_gone(pid, 40):
            os.kill(pid, signal.SIGKILL)
            wait_gone(pid, 5)
            ok = False
        shutil.rmtree(self.tmp, ignore_errors=True)
        return ok


def start_broker(request, env=None, args=(), bindir=BIN):
    """A broker of the test's own, stopped when the test ends."""
    b = Broker(env, args, bindir)
    request.addfinalizer(b.stop)
    return b


@pytest.fixture(scope="session")
def broker():
    """The session's broker; SHMDEMUX_SOCKET points at it."""
    b = Broker()
    old = os.environ.get("SHMDEMUX_SOCKET")
    os.environ["SHMDEMUX_SOCKET"] = b.socket
    try:
        yield b
    finally:
        if old is None:
            os.environ.pop("SHMDEMUX_SOCKET", None)
        else:
            os.environ["SHMDEMUX_SOCKET"] = old
        if not b.stop():
            pytest.fail("the broker did not exit within 40 s of SIGTERM")


class Scratch:
    """Temporary directories removed when the session ends (pytest's own
    tmp_path keeps its last three sessions' around)."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="shmdemux-pytest-tmp.")
        self.n = 0

    def mktemp(self, name):
        self.n += 1
        d = pathlib.Path(self.root) / ("%s%d" % (name, self.n))
        d.mkdir()
        return d


@pytest.fixture(scope="session")
def scratch():
    s = Scratch()
    try:
        yield s
    finally:
        shutil.rmtree(s.root, ignore_errors=True)


@pytest.fixture
def tmp_path(scratch):
    """A fresh directory, removed with the session's scratch."""
    return scratch.mktemp("t")


@pytest.fixture(scope="session")
def media():
    """The generated media set (tests/media/gen.sh, cached)."""
    subprocess.run([os.path.join(SRC, "tests", "media", "gen.sh"), MEDIA],
                   check=True, stdout=subprocess.DEVNULL)
    return MEDIA


def ffmpeg(*args):
    """Run the ffmpeg CLI quietly; raises on failure."""
    subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel",
                    "error", "-y", *args], check=True, timeout=300)


def ffprobe_packets(path, *entries, md5=False):
    """ffprobe's packets of path: one tuple per packet of the entries (and
    the payload's MD5 last, with md5=True)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_data_hash", "MD5",
         "-show_entries", "packet=" + ",".join(entries) + ",data_hash",
         "-of", "csv=p=0", path],
        check=True, capture_output=True, text=True, timeout=120).stdout
    # A packet's side data continues its line on lines starting with ",".
    lines = []
    for line in out.splitlines():
        if line.startswith(",") and lines:
            lines[-1] += line
        elif line:
            lines.append(line)
    res = []
    for line in lines:
        f = line.split(",")
        row = tuple(f[:len(entries)])
        if md5:
            row += (next(x for x in f if x.startswith("MD5:"))[4:],)
        res.append(row)
    return res


@pytest.fixture
def shm(broker):
    """The shmdemux package, with the session's broker."""
    import shmdemux
    return shmdemux
