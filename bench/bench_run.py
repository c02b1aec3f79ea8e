#!/usr/bin/env python3
"""Containers, dockyard vs podman (crun), side by side in one run, each with a private store.

    bench/bench_run.py [--runs N]

1. ``run --rm busybox true`` with ``--network none`` on both sides. Goal: dockyard <= 0.25x podman.
2. ``exec CTR true`` into a running container. Goal: <= 0.5x docker's (docker 0.075 s measured here; no dockerd
   runs on these machines, so podman is the side-by-side peer and docker's figure is quoted).
3. 20 ``run -d`` started in parallel (wall time until all have returned). Goal: <= 0.5x podman.
   Then ``rm -f`` of those 20 (podman ``rm -f -t 0``). Goal: <= 0.5x podman.
4. ``ps -a`` with 50 containers. Goal: <= podman.
5. Memory per idle detached container: PSS of dockyard's monitor vs podman's conmon, 20 containers. Goal <= 3 MiB.

Every container of both sides is on ``--network none``: podman's always were here; until 2026-12-01 dockyard's
``run -d`` and ``create`` used its default bridge, a heavier set-up than the peer's, so that comparison was uneven.

Prints medians and ratios dockyard/podman. Not a test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOCKYARD, REPO, Podman, import_busybox, report, sh, timed  # noqa: E402


def pss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith("Pss:"))


class Sides:
    def __init__(self, work: Path) -> None:
        self.root = work / "dy"
        self.podman = Podman(work)
        import_busybox(self.root, self.podman)

    def dy(self, *args: str) -> list[str]:
        return [DOCKYARD, "--root", str(self.root), *args]

    def pm(self, *args: str) -> list[str]:
        return self.podman.base() + list(args)

    def out(self, cmd: list[str], env: dict[str, str] | None = None) -> str:
        return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env or os.environ).stdout

    def clean(self) -> None:
        ids = self.out(self.dy("ps", "-aq")).split()
        if ids:
            sh(*self.dy("rm", "-f", *ids))
        subprocess.run(self.pm("rm", "-af", "-t", "0"), capture_output=True, env=self.podman.env)


def alternate(runs: int, dy_cmd: list[str], pm_cmd: list[str], pm_env: dict[str, str]) -> tuple[list, list]:
    dy: list[float] = []
    pm: list[float] = []
    timed(dy_cmd)
    timed(pm_cmd, pm_env)
    for _ in range(runs):
        dy.append(timed(dy_cmd))
        pm.append(timed(pm_cmd, pm_env))
    return dy, pm


def parallel(cmds: list[list[str]], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env or os.environ)
             for c in cmds]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"parallel run failed: {err.decode().strip()}")
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    work = Path(tempfile.mkdtemp(prefix="bench-run-", dir=str(REPO / "cache")))
    s = Sides(work)
    pe = s.podman.env
    rows = []
    notes = []
    try:
        dy, pm = alternate(a.runs, s.dy("run", "--rm", "--network", "none", "busybox", "true"),
                           s.pm("run", "--rm", "--network", "none", "busybox", "true"), pe)
        rows.append(("run --rm --network none busybox true", dy, pm, 0.25))

        sh(*s.dy("run", "-d", "--network", "none", "--name", "bx", "busybox", "sleep", "1000"))
        sh(*s.pm("run", "-d", "--network", "none", "--name", "bx", "busybox", "sleep", "1000"), env=pe)
        dy, pm = alternate(a.runs, s.dy("exec", "bx", "true"), s.pm("exec", "bx", "true"), pe)
        rows.append(("exec CTR true", dy, pm, 0.5 * 0.075 / statistics.median(pm)))
        notes.append(f"exec: dockyard {statistics.median(dy):.3f} s vs docker's 0.075 s measured on these hosts "
                     f"= {statistics.median(dy) / 0.075:.2f}x (goal <= 0.5x docker)")
        s.clean()

        dy, pm, dy_rm, pm_rm = [], [], [], []
        for _ in range(3):
            dy.append(parallel([s.dy("run", "-d", "--network", "none", "busybox", "sleep", "1000")
                                for _ in range(20)]))
            dy_rm.append(timed(s.dy("rm", "-f", *s.out(s.dy("ps", "-aq")).split())))
            s.clean()
            pm.append(parallel([s.pm("run", "-d", "--network", "none", "busybox", "sleep", "1000")
                                for _ in range(20)], pe))
            pm_rm.append(timed(s.pm("rm", "-f", "-t", "0", *s.out(s.pm("ps", "-aq"), pe).split()), pe))
            s.clean()
        rows.append(("20 parallel run -d", dy, pm, 0.5))
        rows.append(("rm -f of those 20 (podman: -t 0)", dy_rm, pm_rm, 0.5))

        for i in range(50):
            sh(*s.dy("create", "--network", "none", "busybox", "true"))
            sh(*s.pm("create", "--network", "none", "busybox", "true"), env=pe)
        dy, pm = alternate(a.runs, s.dy("ps", "-a"), s.pm("ps", "-a"), pe)
        rows.append(("ps -a (50 containers)", dy, pm, 1.0))
        s.clean()

        for i in range(20):
            sh(*s.dy("run", "-d", "--network", "none", "busybox", "sleep", "1000"))
            sh(*s.pm("run", "-d", "--network", "none", "busybox", "sleep", "1000"), env=pe)
        time.sleep(1.0)  # let every monitor pass its grace period and slim down before measuring
        import sqlite3

        with sqlite3.connect(s.root / "dockyard.db") as c:
            mons = [r[0] for r in c.execute("SELECT monitor_pid FROM containers WHERE state='running'")]
        conmons = [int(p) for p in subprocess.run(["pgrep", "-x", "conmon"], capture_output=True,
                                                   text=True).stdout.split()]
        dy_pss = [pss_kib(p) / 1024 for p in mons]
        pm_pss = [pss_kib(p) / 1024 for p in conmons]
        s.clean()
    finally:
        s.clean()
        s.podman.reset()
        shutil.rmtree(s.podman.runroot, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    report(rows)
    print(f"\nmemory per idle container (PSS, {len(dy_pss)} dockyard monitors / {len(pm_pss)} conmons):")
    print(f"  dockyard monitor {statistics.mean(dy_pss):.2f} MiB   conmon {statistics.mean(pm_pss):.2f} MiB"
          f"   goal <= 3 MiB: {'ok' if statistics.mean(dy_pss) <= 3 else 'MISSED'}")
    for n in notes:
        print(n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
