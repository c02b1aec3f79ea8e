#!/usr/bin/env bash
# Build the project's small static helper programs into $DOCKYARD_LIBEXEC (default .venv/libexec):
#   dockyard-init   the init of `run --init` (images/init/init.c)
#   dockyard-exec   the sealed stub through which the built-in runtime execs every container program (images/exec/exec.c)
# Rebuilds only what is older than its source.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out="${DOCKYARD_LIBEXEC:-$here/.venv/libexec}"
mkdir -p "$out"
cc=gcc; command -v musl-gcc >/dev/null && cc=musl-gcc
build() {  # build NAME SOURCE
  if [ ! -x "$out/$1" ] || [ "$2" -nt "$out/$1" ]; then
    $cc -static -Os -s -Wall -o "$out/$1.tmp" "$2" && mv "$out/$1.tmp" "$out/$1"
  fi
}
build dockyard-init "$here/images/init/init.c"
build dockyard-exec "$here/images/exec/exec.c"
