#!/usr/bin/env bash
# busybox:latest from Debian's busybox-static: a deterministic rootfs tar (cached), imported into dockyard.
# Usage: mkimage-busybox.sh [--tar-only] [dockyard global options, e.g. --root DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache="${DOCKYARD_CACHE:-$here/cache}"; mkdir -p "$cache"
tar="$cache/busybox.tar"
[ -s "$tar" ] || "$here/.venv/bin/python" "$here/scripts/mkimage.py" busybox "$tar"
if [ "${1:-}" = "--tar-only" ]; then echo "$tar"; exit 0; fi
SOURCE_DATE_EPOCH=946684800 "$here/.venv/bin/dockyard" "$@" import --change 'CMD ["sh"]' "$tar" busybox:latest
