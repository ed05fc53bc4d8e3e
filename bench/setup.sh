#!/usr/bin/env bash
# Install what the benchmark suite (bench/run.py, `cargo xtask bench`) needs and a fresh
# machine may lack: compilers for the workloads, the tools it compares leakscope with, and the
# programs that four workloads run (sqlite3, python3, redis-server with redis-tools' clients).
# Debian packages; run as root (or with sudo). Idempotent: only what is missing is installed.
# `cargo xtask bench --install` runs this script first.
#
# Then memray, from PyPI (binary wheel), into a virtualenv of Debian's /usr/bin/python3 under
# the build directory: ${CARGO_TARGET_DIR:-target}/bench/venv (BENCH_VENV overrides it; run.py
# looks in the same place). The venv's python is a symlink to /usr/bin/python3, so every tool
# on the Python workloads (native, leakscope, memray, tracemalloc) runs the same interpreter.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
case "$TARGET" in /*) ;; *) TARGET="$PWD/$TARGET" ;; esac   # relative: to the cwd, as for cargo
VENV="${BENCH_VENV:-$TARGET/bench/venv}"
MEMRAY_VERSION="${MEMRAY_VERSION:-1.20.0}"   # pinned: the numbers of two runs stay comparable

need=()
command -v gcc >/dev/null || need+=(gcc)
command -v g++ >/dev/null || need+=(g++)
command -v heaptrack >/dev/null || need+=(heaptrack)
command -v valgrind >/dev/null || need+=(valgrind)
command -v zstd >/dev/null || need+=(zstd)         # heaptrack compresses with it (else gzip)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v redis-server >/dev/null || need+=(redis-server)   # the redis workload's server
{ command -v redis-cli >/dev/null && command -v redis-benchmark >/dev/null; } || need+=(redis-tools)
[ -x /usr/bin/python3 ] || need+=(python3)          # Debian's interpreter, not a pyenv shim
[ -e /usr/lib/x86_64-linux-gnu/liblsan.so.0 ] || need+=(liblsan0)
# memray's venv: Debian ships venv and ensurepip apart from the interpreter
if ! { [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null; }; then
  need+=(python3-venv)
fi

if [ ${#need[@]} -eq 0 ]; then
  echo "bench/setup.sh: every Debian package is installed"
else
  echo "bench/setup.sh: installing ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi

# memray in the venv, unless it is there already at the pinned version and the venv's python
# still is /usr/bin/python3 (a venv made by another interpreter is made anew)
same_python() {
  [ -x "$VENV/bin/python" ] &&
    [ "$(readlink -f "$VENV/bin/python")" = "$(readlink -f /usr/bin/python3)" ]
}
if same_python && "$VENV/bin/python" -c "import memray, sys
sys.exit(memray.__version__ != '$MEMRAY_VERSION')" 2>/dev/null; then
  echo "bench/setup.sh: memray $MEMRAY_VERSION is installed in $VENV"
  exit 0
fi
if [ -e "$VENV" ] && ! same_python; then
  if [ ! -f "$VENV/pyvenv.cfg" ]; then
    echo "bench/setup.sh: $VENV exists and is no venv: not touching it" >&2
    exit 1
  fi
  echo "bench/setup.sh: $VENV is not a venv of /usr/bin/python3: making it anew"
  rm -rf "$VENV"
fi
mkdir -p "$(dirname "$VENV")"
[ -x "$VENV/bin/python" ] || /usr/bin/python3 -m venv "$VENV"
echo "bench/setup.sh: pip install memray==$MEMRAY_VERSION into $VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --only-binary=:all: \
  "memray==$MEMRAY_VERSION"
"$VENV/bin/python" -c 'import memray; print("bench/setup.sh: memray", memray.__version__, "in", memray.__file__)'
