#!/usr/bin/env bash
# Installs, where missing, every Debian package the tests need (as root; `cargo xtask test`
# runs it first, so CI and a fresh machine need no step of their own). It installs nothing that is already there, so a second run is quick
# and a developer's machine keeps its own JDK or Node.js.
#
# - gcc, g++, valgrind: the fixture corpus is compiled and held to memcheck (crates/cli/tests/e2e.rs);
# - the rest: the real-program suite (crates/cli/tests/real_programs.rs, docs/real-programs.md)
#   runs these programs natively and under leakscope;
# - python3-protobuf: the end-to-end test of `--format pprof` decodes leakscope's profiles with
#   Google's protobuf library, a reader independent of leakscope's encoder
#   (crates/cli/tests/e2e/formats.rs).
set -euo pipefail

missing=()
# want PACKAGE FILE...: PACKAGE is missing when none of the FILEs is an executable.
want() {
  local package=$1
  shift
  local file
  for file in "$@"; do
    [ -x "$file" ] && return 0
  done
  missing+=("$package")
}
# want_file PACKAGE FILE: PACKAGE is missing when FILE does not exist (a library, not a program).
want_file() {
  [ -e "$2" ] || missing+=("$1")
}
# want_command PACKAGE COMMAND: PACKAGE is missing when COMMAND is not on PATH.
want_command() {
  command -v "$2" >/dev/null 2>&1 || missing+=("$1")
}

want_command gcc cc
want gcc /usr/bin/gcc
want g++ /usr/bin/g++
want valgrind /usr/bin/valgrind
want make /usr/bin/make
want bash /usr/bin/bash /bin/bash
want coreutils /usr/bin/sort
want sed /usr/bin/sed /bin/sed
want grep /usr/bin/grep /bin/grep
want gawk /usr/bin/gawk
want findutils /usr/bin/find
want gzip /usr/bin/gzip /bin/gzip
want tar /usr/bin/tar /bin/tar
want xz-utils /usr/bin/xz
want perl /usr/bin/perl
want python3 /usr/bin/python3
want_file python3-protobuf /usr/lib/python3/dist-packages/google/protobuf/__init__.py
want git /usr/bin/git
want jq /usr/bin/jq
want sqlite3 /usr/bin/sqlite3
want curl /usr/bin/curl
want gnupg /usr/bin/gpg
want openssh-client /usr/bin/ssh
want gdb /usr/bin/gdb
want redis-server /usr/bin/redis-server
want redis-tools /usr/bin/redis-cli
want redis-tools /usr/bin/redis-benchmark
want nginx-light /usr/sbin/nginx
want apache2-utils /usr/bin/ab
# The HTML report is opened in headless Chromium (crates/cli/tests/e2e/html.rs).
want chromium /usr/bin/chromium
# A JDK and Node.js only where there is none: a machine may have its own.
if ! command -v java >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1; then
  missing+=(openjdk-17-jdk-headless)
fi
want_command nodejs node

if [ ${#missing[@]} -gt 0 ]; then
  # One package may be wanted for two files.
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [ "$(id -u)" != 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: install them (as root: bash .ci/setup.sh), then run the tests again" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  # The server packages must not start their services on the machine (the tests start their
  # own instances on free ports); policy-rc.d tells the packages' scripts so while they install.
  policy=/usr/sbin/policy-rc.d
  made_policy=no
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=yes
  fi
  status=0
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" ||
    status=$?
  [ "$made_policy" = yes ] && rm -f "$policy"
  exit "$status"
fi
