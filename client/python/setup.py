"""Build the shmdemux package with setuptools (pip install
--no-build-isolation . from this directory), with no download.

Where libshmdemux comes from, first match:
  SHMDEMUX_BUILD_DIR=DIR   a CMake build tree of this source: its header
                           (../shmdemux.h) and DIR/lib, with an RPATH to it
  pkg-config shmdemux      an installed library (PKG_CONFIG_PATH for a
                           prefix of `cmake --install`)
  ../../build              the default build tree, if it has the library
libavutil (names of pixel and sample formats) comes from pkg-config.
"""

import os
import re
import shlex
import subprocess
import sys

from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
TREE_HEADER_DIR = os.path.dirname(HERE)  # client/, holding shmdemux.h
SYSTEM_LIBDIRS = {"/lib", "/usr/lib", "/lib64", "/usr/lib64",
                  "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu"}


def pkg_config(*args):
    try:
        out = subprocess.run(["pkg-config", *args], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return shlex.split(out)


def split_flags(flags):
    inc, libdirs, libs = [], [], []
    for f in flags:
        if f.startswith("-I"):
            inc.append(f[2:])
        elif f.startswith("-L"):
            libdirs.append(f[2:])
        elif f.startswith("-l"):
            libs.append(f[2:])
    return inc, libdirs, libs


def locate():
    build = os.environ.get("SHMDEMUX_BUILD_DIR")
    if not build:
        shm = pkg_config("--cflags", "--libs", "shmdemux")
        if shm is not None:
            return split_flags(shm)
        build = os.path.join(os.path.dirname(TREE_HEADER_DIR), "build")
    build = os.path.abspath(build)
    lib = os.path.join(build, "lib")
    hdir = TREE_HEADER_DIR
    try:  # the build tree's own source, wherever this copy is
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            m = re.search(r"^CMAKE_HOME_DIRECTORY:INTERNAL=(.*)$", f.read(),
                          re.M)
        if m:
            hdir = os.path.join(m.group(1), "client")
    except OSError:
        pass
    if not os.path.exists(os.path.join(lib, "libshmdemux.so")) or \
            not os.path.exists(os.path.join(hdir, "shmdemux.h")):
        sys.exit("setup.py: libshmdemux not found: install it (pkg-config "
                 "shmdemux), or set SHMDEMUX_BUILD_DIR to a build tree")
    return [hdir], [lib], ["shmdemux"]


def header_of(include_dirs):
    for d in include_dirs + ["/usr/include", "/usr/local/include"]:
        p = os.path.join(d, "shmdemux.h")
        if os.path.exists(p):
            return p
    sys.exit("setup.py: shmdemux.h not found")


def header_version(header):
    with open(header) as f:
        text = f.read()
    parts = [re.search(r"#define SHMDEMUX_VERSION_%s (\d+)" % k, text)
             for k in ("MAJOR", "MINOR", "PATCH")]
    if not all(parts):
        sys.exit("setup.py: no version in %s" % header)
    return ".".join(p.group(1) for p in parts), text


inc, libdirs, libs = locate()
avutil = pkg_config("--cflags", "--libs", "libavutil")
if avutil is None:
    sys.exit("setup.py: pkg-config libavutil failed (Debian: libavutil-dev)")
a_inc, a_libdirs, a_libs = split_flags(avutil)
header = header_of(inc)
version, header_text = header_version(header)
macros = [("_GNU_SOURCE", None)]
# The pollable stream descriptor, once the library has it (see _wait.py).
if re.search(r"shmdemux_stream_fd\s*\(", header_text):
    macros.append(("SHMDEMUX_HAVE_STREAM_FD", None))
runtime = [d for d in libdirs if os.path.abspath(d) not in SYSTEM_LIBDIRS]

setup(
    version=version,
    ext_modules=[Extension(
        "shmdemux._shmdemux", ["src/_shmdemux.c"],
        include_dirs=inc + a_inc, library_dirs=libdirs + a_libdirs,
        libraries=libs + a_libs, runtime_library_dirs=runtime,
        define_macros=macros,
        extra_compile_args=["-std=gnu11", "-Wall", "-Wextra"])],
)
