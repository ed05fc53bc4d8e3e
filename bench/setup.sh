#!/usr/bin/env bash
# Install what the benchmark suite (bench/run.py, `cargo xtask bench`) needs and a fresh
# machine may lack: compilers for the workloads, the tools it compares leakscope with, and the
# programs two workloads run. Debian packages; run as root (or with sudo). Idempotent: only
# what is missing is installed. `cargo xtask bench --install` runs this script first.
set -euo pipefail

need=()
command -v gcc >/dev/null || need+=(gcc)
command -v g++ >/dev/null || need+=(g++)
command -v heaptrack >/dev/null || need+=(heaptrack)
command -v valgrind >/dev/null || need+=(valgrind)
command -v zstd >/dev/null || need+=(zstd)         # heaptrack compresses with it (else gzip)
command -v sqlite3 >/dev/null || need+=(sqlite3)
[ -x /usr/bin/python3 ] || need+=(python3)          # Debian's interpreter, not a pyenv shim
[ -e /usr/lib/x86_64-linux-gnu/liblsan.so.0 ] || need+=(liblsan0)

if [ ${#need[@]} -eq 0 ]; then
  echo "bench/setup.sh: everything is installed"
  exit 0
fi

echo "bench/setup.sh: installing ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
