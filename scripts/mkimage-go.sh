#!/usr/bin/env bash
# golang:ARCH: Debian's Go toolchain (golang-go, golang-1.19-go, golang-1.19-src) over the busybox image of the same
# architecture, as a deterministic rootfs tar cached in cache/ (no registry image needed), imported into dockyard.
# Usage: mkimage-go.sh [--arch ARCH] [--tar-only] [dockyard global options, e.g. --root DIR]
# ARCH defaults to the host's; another one (arm64) is Debian's package of that architecture (apt-get download:
# nothing is installed on the host), run under qemu-user. CGO_ENABLED=0 in the image: no C compiler is needed.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache="${DOCKYARD_CACHE:-$here/cache}"; mkdir -p "$cache"
host=$(dpkg --print-architecture)
arch="$host"
if [ "${1:-}" = "--arch" ]; then arch="$2"; shift 2; fi
tar="$cache/golang-$arch.tar"
if [ ! -s "$tar" ]; then
  if [ "$arch" = "$host" ]; then
    bbtar=$("$here/scripts/mkimage-busybox.sh" --tar-only)
  else
    bbtar=$("$here/scripts/mkimage-busybox.sh" --arch "$arch" --tar-only)
  fi
  debs="$cache/golang-debs-$arch"
  if [ ! -s "$debs/done" ]; then
    mkdir -p "$debs"
    src=$(apt-cache depends "golang-go:$arch" | sed -n 's/^ *Depends: \(golang-[0-9.]*-go\).*/\1/p' | head -1)
    ver=${src#golang-}; ver=${ver%-go}
    # golang-VER-src is Architecture: all; the toolchain, the /usr/bin/go links and the C library the go
    # command is linked with (the compiler and linker are static) are the architecture's
    pkgs=("golang-go:$arch" "golang-$ver-go:$arch" "golang-$ver-src" "libc6:$arch")
    (cd "$debs" && apt-get download -q "${pkgs[@]}" >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get download -q "${pkgs[@]}" >/dev/null; })
    echo "$ver" > "$debs/done"
  fi
  ver=$(cat "$debs/done")
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  tar -xf "$bbtar" -C "$tmp"
  for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$tmp"; done
  rm -rf "$tmp/usr/share/doc" "$tmp/usr/share/man" "$tmp/usr/share/lintian" "$tmp/usr/share/locale" \
    "$tmp/usr/lib/locale" "$tmp/usr/lib/"*-linux-gnu*/gconv
  # what building a program does not read: the toolchain's own packages and sources, tests, extra tools
  share="$tmp/usr/share/go-$ver"; lib="$tmp/usr/lib/go-$ver"
  rm -rf "$lib"/pkg/linux_*/cmd "$share/src/cmd" "$share/test" "$share/misc" "$share/api"
  find "$share/src" -name testdata -type d -prune -exec rm -rf {} +
  find "$share/src" -name '*_test.go' -delete
  for t in "$lib"/pkg/tool/linux_*/*; do
    case "${t##*/}" in compile|link|asm|buildid|cgo|vet) ;; *) rm -f "$t" ;; esac
  done
  mkdir -p "$tmp/tmp" && chmod 1777 "$tmp/tmp"
  echo "$ver" > "$tmp/.goversion"
  "$here/.venv/bin/python" "$here/scripts/mkimage.py" dir "$tar" "$tmp"
fi
if [ "${1:-}" = "--tar-only" ]; then echo "$tar"; exit 0; fi
ver=$(tar -xOf "$tar" ./.goversion 2>/dev/null || tar -xOf "$tar" .goversion)
SOURCE_DATE_EPOCH=946684800 "$here/.venv/bin/dockyard" "$@" import --platform "linux/$arch" \
  --change "ENV PATH=/usr/lib/go-$ver/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
  --change "ENV GOROOT=/usr/lib/go-$ver" --change 'ENV CGO_ENABLED=0' --change 'ENV GOCACHE=/tmp/gocache' \
  --change 'ENV GOFLAGS=-buildvcs=false' --change 'CMD ["go", "version"]' "$tar" "golang:$arch"
