#!/bin/bash
# Install the Debian 12 packages needed to build shmdemux and run its tests.
# Does nothing unless run as root, or when SHMDEMUX_NO_APT=1.
set -euo pipefail
DEPS=(build-essential cmake pkg-config dpkg-dev
	libavformat-dev libavcodec-dev libavutil-dev libbsd-dev libseccomp-dev
	libjemalloc-dev
	ffmpeg clang libclang-rt-14-dev
	gstreamer1.0-tools gstreamer1.0-plugins-good iproute2 systemd
	python3 python3-dev python3-setuptools python3-wheel python3-pip
	python3-pytest python3-av python3-numpy python3-prometheus-client
	coreutils util-linux findutils diffutils procps nodejs)
if [ "${SHMDEMUX_NO_APT:-0}" = 1 ]; then
	echo "SHMDEMUX_NO_APT=1: not installing packages"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "not root: not installing packages (needs: ${DEPS[*]})"
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${DEPS[@]}"
# npm (test deploy validates the Kubernetes manifests with an npm package):
# Debian's own package, unless the installed nodejs brings one (NodeSource's
# does, and conflicts with Debian's).
command -v npm >/dev/null || apt-get install -y --no-install-recommends npm
