#!/usr/bin/env bash
# One-step set-up on a fresh Debian/Ubuntu machine: the system libraries Qt needs
# (also offscreen), a virtual environment in .venv, and Lightbox installed into it.
#   bash resources/install.sh          # the app and engine
#   bash resources/install.sh --test   # ... plus the test extras
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

# Qt's offscreen and xcb platforms load these at run time; pip cannot provide them.
# The xcb set is what `ldd` lists for PySide6's plugins/platforms/libqxcb.so and
# lib/libQt6XcbQpa.so.6 (tests/test_app_install.py fails when one is missing).
# "a|b": the first name the package index knows (Ubuntu 24.04 renamed some to *t64).
packages="libegl1 libgl1 libglx0 libglvnd0 libfontconfig1 libfreetype6 libdbus-1-3 libglib2.0-0t64|libglib2.0-0
  fonts-dejavu-core libx11-6 libx11-xcb1 libxcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-randr0 libxcb-render0 libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-util1|libxcb-util0
  libxcb-xfixes0 libxcb-xkb1 libxkbcommon0 libxkbcommon-x11-0"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
updated=""
missing=""
for choice in $packages; do
  found=""
  for p in ${choice//|/ }; do
    if dpkg -s "$p" >/dev/null 2>&1; then found="installed"; break; fi
  done
  [ -n "$found" ] && continue
  if command -v apt-get >/dev/null; then
    if [ -z "$updated" ]; then $sudo apt-get update -qq; updated=1; fi
    for p in ${choice//|/ }; do
      if apt-cache show "$p" >/dev/null 2>&1; then missing="$missing $p"; found=1; break; fi
    done
  fi
  [ -z "$found" ] && echo "warning: no package for $choice; the Qt window may not start" >&2
done
if [ -n "$missing" ]; then
  echo "installing system packages:$missing"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".$extras"
echo "Lightbox installed in $(pwd)/.venv"
