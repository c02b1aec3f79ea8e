#!/usr/bin/env bash
# System packages and the Python virtual environment dockyard needs, on Debian 12, as root.
# Idempotent: a second run does no network work when everything is present.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
PKGS=(python3 python3-venv gcc libc6-dev musl-tools busybox-static iproute2 iptables kmod tar
      erofs-utils  # layers kept as EROFS images (snapshots/erofs.py); without it, unpacked directories
      autoconf automake libtool pkg-config uuid-dev liblz4-dev  # scripts/build-erofs-utils.sh (mkfs.erofs --tar=i)
      podman skopeo crun runc debootstrap hyperfine uidmap tmux zstd nftables wrk libseccomp2
      docker-registry apache2-utils openssl  # the registry tests: distribution 2.8, htpasswd, a test CA
      docker-compose  # the API service tests: Compose 1.29 (docker-py 5 era calls) against dockyard system service
      podman-compose  # bench/bench_compose.py: the side-by-side Compose (a script; starts no service)
      etcd-server etcd-client  # overlay networks' cluster store (network/etcd.py) and its tests; etcdctl to debug
      slirp4netns  # rootless networking (network/slirp.py); uidmap above gives newuidmap/newgidmap
      fuse-overlayfs  # rootless overlay where the kernel refuses it in a user namespace (rootless.overlay_driver)
      qemu-user-static)  # foreign-platform RUN steps and containers (runtime/binfmt.py registers it)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# arm64 package lists too (one apt-get update for both): the multi-platform tests take Debian's arm64
# busybox-static (scripts/mkimage-busybox.sh --arch arm64 downloads it; nothing arm64 is installed)
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  missing+=(--update-lists)
fi
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  pkgs=()
  for p in "${missing[@]}"; do [ "$p" = --update-lists ] || pkgs+=("$p"); done
  [ ${#pkgs[@]} -eq 0 ] || apt-get install -y -q --no-install-recommends "${pkgs[@]}"
fi
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import dockyard, pytest, pexpect, hypothesis, importlinter, h11, urllib3, docker, wheel, jsonschema, yaml" 2>/dev/null \
    || [ ! -x "$venv/bin/ruff" ] || [ ! -x "$venv/bin/lint-imports" ]; then
  "$venv/bin/pip" install -q --disable-pip-version-check -e "$here[test]"
fi
# the C slim loop of container monitors (src/dockyard/engine/monitor_loop.c), rebuilt when its source is newer
mon_src="$here/src/dockyard/engine/monitor_loop.c"
mon_bin="$venv/libexec/dockyard-monitor"
if [ "$mon_src" -nt "$mon_bin" ]; then
  mkdir -p "$venv/libexec"
  gcc -O2 -Wall -Wextra -o "$mon_bin.new" "$mon_src"
  mv "$mon_bin.new" "$mon_bin"  # a rename: monitors running the old binary keep it
fi
# pip's console script imports re and runs site (.pth hooks) at every start: dockyard needs neither (stdlib only),
# so its launcher starts the interpreter with -S and puts the source on the path itself.
cat > "$venv/bin/dockyard.new" <<LAUNCHER
#!$venv/bin/python -S
import os, sys
sys.path.insert(0, "$here/src")
from dockyard.cli.main import main
code = main()
try:
    sys.stdout.flush()
    sys.stderr.flush()
except BrokenPipeError:
    pass
os._exit(code)  # no interpreter teardown: nothing is left to clean, and it costs milliseconds
LAUNCHER
chmod 755 "$venv/bin/dockyard.new"
mv "$venv/bin/dockyard.new" "$venv/bin/dockyard"
"$here/scripts/build-helpers.sh"
# mkfs.erofs 1.8 (layers indexed in place over their tar); never fails this script: erofs-utils 1.5 is the fallback
"$here/scripts/build-erofs-utils.sh" || true
# byte-compile now: a start that has to compile its modules (e.g. under PYTHONDONTWRITEBYTECODE) is 3x slower
"$venv/bin/python" -m compileall -q "$here/src" >/dev/null
