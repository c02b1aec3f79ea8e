#!/usr/bin/env bash
# busybox:latest from Debian's busybox-static: a deterministic rootfs tar (cached), imported into dockyard.
# Usage: mkimage-busybox.sh [--arch ARCH] [--tar-only] [dockyard global options, e.g. --root DIR]
# --arch arm64 (any Debian architecture): that architecture's busybox-static (apt-get download, after adding the
# architecture to dpkg once), imported as busybox:ARCH with --platform linux/ARCH.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache="${DOCKYARD_CACHE:-$here/cache}"; mkdir -p "$cache"
arch=""
if [ "${1:-}" = "--arch" ]; then arch="$2"; shift 2; fi
host=$(dpkg --print-architecture)
if [ -z "$arch" ] || [ "$arch" = "$host" ]; then
  tar="$cache/busybox.tar"
  [ -s "$tar" ] || "$here/.venv/bin/python" "$here/scripts/mkimage.py" busybox "$tar"
  tag=busybox:latest; plat=()
else
  tar="$cache/busybox-$arch.tar"
  if [ ! -s "$tar" ]; then
    bin="$cache/busybox-static-$arch/bin/busybox"
    if [ ! -s "$bin" ]; then
      if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
        dpkg --add-architecture "$arch"
      fi
      tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
      (cd "$tmp" && { apt-get download -q "busybox-static:$arch" >/dev/null 2>&1 \
          || { apt-get update -q >/dev/null && apt-get download -q "busybox-static:$arch" >/dev/null; }; })
      dpkg-deb -x "$tmp"/busybox-static_*.deb "$cache/busybox-static-$arch"
    fi
    "$here/.venv/bin/python" "$here/scripts/mkimage.py" busybox "$tar" "$bin"
  fi
  tag="busybox:$arch"; plat=(--platform "linux/$arch")
fi
if [ "${1:-}" = "--tar-only" ]; then echo "$tar"; exit 0; fi
SOURCE_DATE_EPOCH=946684800 "$here/.venv/bin/dockyard" "$@" import "${plat[@]}" --change 'CMD ["sh"]' "$tar" "$tag"
