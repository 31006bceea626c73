#!/usr/bin/env bash
# Install napari-afm-style into ./.venv on a fresh Debian/Ubuntu machine.
#   bash scripts/install.sh            # runtime: API, CLI, napari GUI
#   bash scripts/install.sh --testing  # + pytest, pytest-qt, pytest-xvfb (and Xvfb itself)
#   bash scripts/install.sh --testing --constraints .ci/constraints.txt   # CI: the versions of the last green run
# torch is pinned to the CPU build 2.13.0 first, so that no multi-GB CUDA build is pulled
# in on CPU-only machines; on a GPU machine install the CUDA build of torch before this.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="gui"
constraints=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --testing) extras="gui,testing"; shift ;;
    --constraints) constraints=(-c "$(realpath "$2")"); shift 2 ;;
    *) echo "install.sh: unknown option $1 (use --testing, --constraints FILE)" >&2; exit 2 ;;
  esac
done

# System libraries Qt needs for a window, Xvfb for headless tests/screenshots, and
# Debian's PoCL (OpenCL on the CPU for ppafm): the PoCL inside the pip wheel cannot
# compile kernels for some recent CPUs ("unknown target CPU"), Debian's can.
if command -v apt-get >/dev/null && [[ $(id -u) == 0 ]]; then
  if ! dpkg -s xvfb libxcb-cursor0 libxkbcommon-x11-0 pocl-opencl-icd >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0 libxcb-xinerama0 \
      libxcb-cursor0 libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xkb1 \
      libgl1 libegl1 libdbus-1-3 libfontconfig1 pocl-opencl-icd >/dev/null
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
# installed as a user installs it (a built wheel, not an editable link to src/), so that the
# tests run against what ships; developers who edit src/ re-run this or use `pip install -e .`
# built from a copy of the tracked files, so that nothing (build/, *.egg-info) is written
# into the source tree and nothing untracked is packaged
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$src"
else
  cp -r . "$src"; rm -rf "$src/.venv"
fi
.venv/bin/python -m pip install -q "${constraints[@]}" "${src}[${extras}]"
echo "installed napari-afm-style into $(pwd)/.venv (extras: ${extras})"
