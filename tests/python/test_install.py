"""The package as users get it: `cmake --install` into a scratch prefix
(lib/python3/dist-packages/shmdemux, found by Debian's python3 through
PYTHONPATH here, by site-packages of a real /usr/local), and
`pip install --no-build-isolation` from client/python against that
prefix's library (pkg-config). Each install reads a stream through the
installed broker with no LD_LIBRARY_PATH and yields ffprobe's packets.
"""

import glob
import os
import shutil
import subprocess
import sys

import pytest

from conftest import BIN, SRC, ffprobe_packets, start_broker

BUILD = os.path.dirname(BIN)

READ = """
import sys, shmdemux
print(shmdemux.__file__)
with shmdemux.open(sys.argv[1], socket=sys.argv[2], autostart=False) as s:
    print(sum(1 for _ in s))
"""


def run_clean(args, **kw):
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_LIBRARY_PATH", "PYTHONPATH", "SHMDEMUX_SOCKET")}
    env.update(kw.pop("env", {}))
    return subprocess.run(args, env=env, capture_output=True, text=True,
                          timeout=600, **kw)


@pytest.fixture(scope="module")
def prefix(scratch):
    root = scratch.mktemp("install")
    p = run_clean(["cmake", "--install", BUILD, "--prefix", str(root)])
    assert p.returncode == 0, p.stderr
    return str(root)


def read_with(request, prefix, pythonpath, media):
    b = start_broker(request, bindir=os.path.join(prefix, "bin"))
    path = os.path.join(media, "h264_aac.mkv")
    p = run_clean([sys.executable, "-c", READ, path, b.socket],
                  env={"PYTHONPATH": pythonpath})
    assert p.returncode == 0, p.stderr
    where, count = p.stdout.split()
    assert int(count) == len(ffprobe_packets(path, "stream_index"))
    return where


def test_cmake_install(request, prefix, media):
    pkg = os.path.join(prefix, "lib", "python3", "dist-packages")
    files = set(os.listdir(os.path.join(pkg, "shmdemux")))
    assert {"__init__.py", "_demuxer.py", "_stream.py", "_wait.py",
            "_errors.py", "_frames.py", "_shmdemux.pyi", "py.typed"} <= files
    ext = glob.glob(os.path.join(pkg, "shmdemux", "_shmdemux.cpython-*.so"))
    assert len(ext) == 1
    dyn = subprocess.run(["readelf", "-d", ext[0]], capture_output=True,
                         text=True, check=True).stdout
    assert "$ORIGIN" in dyn and BUILD not in dyn
    where = read_with(request, prefix, pkg, media)
    assert where.startswith(pkg)


def test_pip_install(request, prefix, media, tmp_path):
    if subprocess.run([sys.executable, "-m", "pip", "--version"],
                      capture_output=True).returncode != 0:
        pytest.skip("pip is not installed for %s (Debian: python3-pip)" %
                    sys.executable)
    src = tmp_path / "src"
    shutil.copytree(os.path.join(SRC, "client", "python"), src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                  "__pycache__"))
    pc = glob.glob(os.path.join(prefix, "**", "shmdemux.pc"), recursive=True)
    assert len(pc) == 1
    site = tmp_path / "site"
    p = run_clean([sys.executable, "-m", "pip", "install", "--no-index",
                   "--no-build-isolation", "--no-deps", "--target",
                   str(site), str(src)],
                  env={"PKG_CONFIG_PATH": os.path.dirname(pc[0]),
                       "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert p.returncode == 0, p.stdout + p.stderr
    where = read_with(request, prefix, str(site), media)
    assert where.startswith(str(site))
