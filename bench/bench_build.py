#!/usr/bin/env python3
"""Build speed, dockyard vs podman (buildah inside), side by side in one run, each with a private store.

    bench/bench_build.py [--runs N]

A 5-step Dockerfile FROM busybox (COPY, RUN, ENV, RUN, CMD):
1. cold build (no cache; the base image is present). Goal: dockyard <= 0.6x podman.
2. fully cached rebuild. Goal (issue 16): dockyard <= 0.5x docker's 0.088 s measured on these hosts (no dockerd runs
   here, so podman is the side-by-side peer and docker's figure is quoted).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOCKYARD, REPO, Podman, import_busybox, report, timed  # noqa: E402

DOCKERFILE = """FROM busybox
COPY app.txt /app/app.txt
RUN echo built > /app/built
ENV MODE=bench
RUN cat /app/app.txt /app/built > /app/all
CMD ["cat", "/app/all"]
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    work = Path(tempfile.mkdtemp(prefix="bench-build-", dir=str(REPO / "cache")))
    podman = Podman(work)
    ctx = work / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "app.txt").write_text("hello\n")
    root = work / "dy"
    import_busybox(root, podman)
    dy_build = [DOCKYARD, "--root", str(root), "build", "-q", "-t", "bench:1", str(ctx)]
    pm_build = podman.base() + ["build", "-q", "--network", "host", "-t", "bench:1", str(ctx)]
    rows = []
    try:
        dy_cold, pm_cold, dy_hot, pm_hot = [], [], [], []
        for _ in range(a.runs):
            dy_cold.append(timed(dy_build[:4] + ["--no-cache"] + dy_build[4:]))
            pm_cold.append(timed(pm_build[:-1] + ["--no-cache", str(ctx)], podman.env))
        timed(dy_build)
        timed(pm_build, podman.env)
        for _ in range(a.runs):
            dy_hot.append(timed(dy_build))
            pm_hot.append(timed(pm_build, podman.env))
        rows.append(("build, 5 steps FROM busybox, cold (--no-cache)", dy_cold, pm_cold, 0.6))
        rows.append(("build, fully cached", dy_hot, pm_hot, 0.5 * 0.088 / statistics.median(pm_hot)))
    finally:
        podman.reset()
        shutil.rmtree(podman.runroot, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    report(rows)
    print(f"\nfully cached: dockyard {statistics.median(dy_hot):.3f} s vs docker's 0.088 s on these hosts = "
          f"{statistics.median(dy_hot) / 0.088:.2f}x (goal <= 0.5x docker)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
