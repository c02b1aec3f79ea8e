#!/usr/bin/env bash
# hello-world:latest from the project's own static C program (images/hello-world/hello.c).
# Usage: mkimage-hello-world.sh [--tar-only] [dockyard global options, e.g. --root DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache="${DOCKYARD_CACHE:-$here/cache}"; mkdir -p "$cache"
bin="$cache/hello"; tar="$cache/hello-world.tar"
if [ ! -s "$bin" ]; then
  cc=gcc; command -v musl-gcc >/dev/null && cc=musl-gcc
  $cc -static -Os -s -o "$bin.tmp" "$here/images/hello-world/hello.c" && mv "$bin.tmp" "$bin"
fi
[ -s "$tar" ] || "$here/.venv/bin/python" "$here/scripts/mkimage.py" hello-world "$tar" "$bin"
if [ "${1:-}" = "--tar-only" ]; then echo "$tar"; exit 0; fi
SOURCE_DATE_EPOCH=946684800 "$here/.venv/bin/dockyard" "$@" import --change 'CMD ["/hello"]' "$tar" hello-world:latest
