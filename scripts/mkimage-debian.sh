#!/usr/bin/env bash
# debian:bookworm with debootstrap --variant=minbase (about half a minute; the tar is cached).
# Usage: mkimage-debian.sh [--tar-only] [dockyard global options, e.g. --root DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache="${DOCKYARD_CACHE:-$here/cache}"; mkdir -p "$cache"
tar="$cache/debian-bookworm.tar"
if [ ! -s "$tar" ]; then
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  work=$(mktemp -d "$cache/debootstrap.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  debootstrap --variant=minbase bookworm "$work/root" "$mirror" >"$work/log" 2>&1 || { tail -20 "$work/log"; exit 1; }
  rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"* "$work/root/var/log/"*
  "$here/.venv/bin/python" "$here/scripts/mkimage.py" dir "$tar.part" "$work/root"
  mv "$tar.part" "$tar"
fi
if [ "${1:-}" = "--tar-only" ]; then echo "$tar"; exit 0; fi
"$here/.venv/bin/dockyard" "$@" import --change 'CMD ["bash"]' "$tar" debian:bookworm
