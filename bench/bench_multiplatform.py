#!/usr/bin/env python3
"""A two-platform build, side by side:

    bench/bench_multiplatform.py [--runs N]

A 3-step Dockerfile (FROM the platform's busybox, two RUN steps; the linux/arm64 ones run under qemu-user) built
for linux/amd64,linux/arm64 with no cache: ``dockyard build --platform ... -t NAME`` (an index stored locally) vs
``podman build --platform linux/amd64,linux/arm64 --manifest NAME``. Goal: dockyard <= 0.7x podman.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOCKYARD, EPOCH, REPO, Podman, report, sh, timed  # noqa: E402

DOCKERFILE = ("ARG TARGETARCH\nFROM localhost/busybox:$TARGETARCH\n"
              "RUN uname -m > /arch && for i in 1 2 3 4 5 6 7 8; do sha256sum /bin/busybox; done > /sums\n"
              "RUN cat /arch /sums | wc -l > /count\n")


def _tar(*args: str) -> str:
    return subprocess.run([str(REPO / "scripts" / "mkimage-busybox.sh"), *args, "--tar-only"], check=True,
                          capture_output=True, text=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="dyb-multi-", dir="/var/tmp"))
    podman = Podman(work)
    root = work / "dy"
    try:
        amd, arm = _tar(), _tar("--arch", "arm64")
        for arch, tar in (("amd64", amd), ("arm64", arm)):
            sh(DOCKYARD, "--root", str(root), "import", "--platform", f"linux/{arch}", "--change", 'CMD ["sh"]',
               tar, f"localhost/busybox:{arch}", env=EPOCH)
            sh(*podman.base(), "import", "--arch", arch, "--change", 'CMD ["sh"]', tar,
               f"localhost/busybox:{arch}", env=podman.env)
        ctx = work / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(DOCKERFILE)
        plats = "linux/amd64,linux/arm64"
        dy, pm = [], []
        for i in range(a.runs):
            dy.append(timed([DOCKYARD, "--root", str(root), "build", "-q", "--no-cache", "--platform", plats,
                             "-t", f"multi{i}", str(ctx)]))
            pm.append(timed(podman.base() + ["build", "-q", "--no-cache", "--platform", plats, "--manifest",
                                             f"localhost/multi{i}", str(ctx)], env=podman.env))
        report([("2-platform build, emulated RUN (vs podman build --manifest)", dy, pm, 0.7)])
    finally:
        podman.reset()
        subprocess.run(["umount", "-R", str(work)], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
