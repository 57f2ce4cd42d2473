#!/usr/bin/env bash
# Installs what MiniGPT needs on a fresh Debian/Ubuntu machine (idempotent, quick when done):
#   libzmq3-dev    the ZeroMQ C library the Wire module links (DESIGN.md "Wire")
#   python3 pkgs   numpy (the reference oracle), tokenizers / safetensors / mcap (format cross-checks),
#                  pyzmq (example subscribers and end-to-end tests)
set -euo pipefail
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if [ ! -f /usr/include/zmq.h ]; then
  echo "setup: installing libzmq3-dev pkg-config" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libzmq3-dev pkg-config >/dev/null
fi
PY_PKGS=(numpy tokenizers safetensors pyzmq mcap)
if ! python3 -c "import numpy, tokenizers, safetensors, zmq, mcap" 2>/dev/null; then
  echo "setup: pip install ${PY_PKGS[*]}" >&2
  python3 -m pip install -q --disable-pip-version-check "${PY_PKGS[@]}"
fi
