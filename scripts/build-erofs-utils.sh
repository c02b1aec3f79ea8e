#!/usr/bin/env bash
# Build mkfs.erofs from erofs-utils 1.8.6 (Debian trixie's source) into $DOCKYARD_LIBEXEC/erofs (default
# .venv/libexec/erofs). Debian 12 ships erofs-utils 1.5, which has no `--tar`; 1.8 has `mkfs.erofs --tar=i`
# (index mode: a metadata image whose file data points into the layer tar), so a loaded layer is stored once
# (snapshots/erofs.py). Skipped when already built. Exit status 0 even on failure: the 1.5 path is the fallback,
# and this script must never fail scripts/deps.sh.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out="${DOCKYARD_LIBEXEC:-$here/.venv/libexec}/erofs"
ver=1.8.6
sha=5b221dc3fd6d151425b30534ede46fb7a90dc233a8659cba0372796b0a066547
url="http://deb.debian.org/debian/pool/main/e/erofs-utils/erofs-utils_${ver}.orig.tar.gz"
stamp="$ver-root0755"
if [ -x "$out/mkfs.erofs" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
build() {
  curl -sSfL --retry 2 -o "$work/src.tar.gz" "$url" || { echo "build-erofs-utils: download failed" >&2; return 1; }
  echo "$sha  $work/src.tar.gz" | sha256sum -c --quiet - || { echo "build-erofs-utils: sha256 mismatch" >&2; return 1; }
  tar -xzf "$work/src.tar.gz" -C "$work" || return 1
  cd "$work/erofs-utils-$ver" || return 1
  # a tar's root (and the parents it does not list, which inherit its group/other write bits) is 0777 in 1.8.6;
  # dockyard's extractor makes it 0755, as Docker does: the same here (checked, so a changed source fails loudly)
  grep -q 'root->i_mode = S_IFDIR | 0777;' lib/inode.c || { echo "build-erofs-utils: root mode line not found" >&2; return 1; }
  sed -i 's/root->i_mode = S_IFDIR | 0777;/root->i_mode = S_IFDIR | 0755;/' lib/inode.c
  # only mkfs.erofs is needed: no fuse, no compression libraries beyond what configure finds (lz4 if present)
  { ./autogen.sh && ./configure --prefix="$out" --disable-fuse --without-selinux --without-libzstd \
      --without-libdeflate --without-qpl --without-xxhash \
    && make -j2 -C lib && make -j2 -C mkfs; } >"$work/build.log" 2>&1 \
    || { echo "build-erofs-utils: build failed (tail of the log follows)" >&2; tail -20 "$work/build.log" >&2; return 1; }
  mkdir -p "$out" && install -m 755 mkfs/mkfs.erofs "$out/mkfs.erofs.new" && mv "$out/mkfs.erofs.new" "$out/mkfs.erofs" \
    && echo "$stamp" > "$out/.stamp"
}
if build; then
  echo "build-erofs-utils: $("$out/mkfs.erofs" --version 2>&1 | head -1) in $out"
else
  echo "build-erofs-utils: not built; layers keep the system mkfs.erofs path" >&2
fi
exit 0
