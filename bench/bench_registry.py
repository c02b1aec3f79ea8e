#!/usr/bin/env python3
"""Registry speed, side by side, against Debian's docker-registry on loopback (plain HTTP).

    bench/bench_registry.py [--runs N] [--images busybox,debian]

Per image (busybox from scripts/mkimage-busybox.sh, the ~121 MB debian from scripts/mkimage-debian.sh):
1. push: ``dockyard push`` of the image vs ``skopeo copy docker-archive:<save> docker://...`` (a fresh repository
   each run, so every blob is uploaded). Goal: dockyard <= 1x skopeo.
2. cold pull into an empty store: ``dockyard pull`` vs ``podman pull`` (each store emptied before every run).
   Goal: dockyard <= 0.5x podman.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import DOCKYARD, EPOCH, REPO, Podman, report, sh, timed  # noqa: E402

from tests.registry_servers import Registry  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--images", default="busybox,debian")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dyb-registry-", dir="/var/tmp"))
    reg = Registry(work / "registry")
    podman = Podman(work)
    rows = []
    try:
        for name in a.images.split(","):
            script = {"busybox": "mkimage-busybox.sh", "debian": "mkimage-debian.sh"}[name]
            tar = subprocess.run([str(REPO / "scripts" / script), "--tar-only"], check=True, capture_output=True,
                                 text=True).stdout.strip()
            src = work / f"src-{name}"
            src.mkdir()
            sh(DOCKYARD, "--root", str(src), "import", "--change", 'CMD ["sh"]', tar, f"{name}:latest", env=EPOCH)
            archive = work / f"{name}.tar"
            sh(DOCKYARD, "--root", str(src), "save", "-o", str(archive), f"{name}:latest")
            push_dy, push_sk, pull_dy, pull_pm = [], [], [], []
            for i in range(a.runs):
                ref = f"{reg.host}/bench/{name}-dy{i}:latest"
                sh(DOCKYARD, "--root", str(src), "tag", f"{name}:latest", ref)
                push_dy.append(timed([DOCKYARD, "--root", str(src), "push", ref]))
                push_sk.append(timed(["skopeo", "copy", "-q", "--dest-tls-verify=false",
                                      f"docker-archive:{archive}", f"docker://{reg.host}/bench/{name}-sk{i}:latest"]))
            pulled = f"{reg.host}/bench/{name}-dy0:latest"
            for _ in range(a.runs):
                dst = work / "pull-root"
                if dst.exists():
                    subprocess.run([DOCKYARD, "--root", str(dst), "rmi", "-f", pulled], capture_output=True)
                    shutil.rmtree(dst)
                dst.mkdir()
                pull_dy.append(timed([DOCKYARD, "--root", str(dst), "pull", pulled]))
                podman.reset()
                pull_pm.append(timed(podman.base() + ["pull", "-q", "--tls-verify=false", pulled], env=podman.env))
            rows.append((f"push {name} (vs skopeo copy)", push_dy, push_sk, 1.0))
            rows.append((f"cold pull {name} (vs podman pull)", pull_dy, pull_pm, 0.5))
        report(rows)
    finally:
        podman.reset()
        reg.stop()
        subprocess.run(["umount", "-R", str(work)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
