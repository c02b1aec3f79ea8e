#!/usr/bin/env python3
"""Scaling: how dockyard's verbs grow with the number of containers and images in one store.

    bench/bench_scale.py [--stages 100:50,300:150,1000:500] [--runs 7] [--running-every 20] [--keep]

One private store grows through the stages (N containers : M images). At each stage, and once on the empty store
(stage 0:0, the fixed cost), each verb is timed ``--runs`` times (median):

    ps -a, ps (running only), inspect NAME, inspect ID-PREFIX, images, create, rm (of that one),
    run --rm --network none busybox true, run --rm busybox true (default bridge)

Containers are made with ``create`` (busybox true, never started), and one in ``--running-every`` is a running
``sleep`` (alternately on the default bridge and on ``--network none``), so 1,000 containers hold 50 processes.
Images are tiny one-file ``import``s (each its own layer and image), as bench_images.py makes them.

Goal (issue 16): nothing worse than linear up to 1,000 containers and 500 images; create, inspect, rm and run
should not grow with N at all. The report gives each verb's median per stage, the growth from the smallest to the
largest stage, and the marginal cost per container/image between consecutive stages: a marginal cost that rises
from stage to stage is super-linear growth. Figures are given as wall time and as the command's CPU time (user+sys, from
wait4), which a loaded host disturbs much less. Not a test: numbers depend on the machine and its load.
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOCKYARD, EPOCH, REPO, sh, tiny_tar  # noqa: E402

# verb -> does it list the store (linear allowed) or touch one object (should stay flat)
LISTS = {"ps -a", "images"}  # the others (ps: the running ones only) should stay flat


def timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds user+sys) of one command. CPU time is what the figures compare: on a shared,
    loaded host the wall time of a 60 ms command varies by 2x, its CPU time much less. (The CPU time of a ``run``
    leaves out its monitor, which is not the caller's child.)"""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode() if p.stderr else ""
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {err.strip()}")
    return dt, ru.ru_utime + ru.ru_stime


class Scale:
    def __init__(self, work: Path, workers: int) -> None:
        self.work = work
        self.root = work / "dy"
        self.workers = workers
        self.containers = 0
        self.running: list[str] = []
        self.images = 0
        self.serial = 0
        tar = subprocess.run([str(REPO / "scripts" / "mkimage-busybox.sh"), "--tar-only"], check=True,
                             capture_output=True, text=True).stdout.strip()
        sh(*self.dy("import", "--change", 'CMD ["sh"]', tar, "busybox"), env=EPOCH)
        (work / "tiny").mkdir()

    def dy(self, *args: str) -> list[str]:
        return [DOCKYARD, "--root", str(self.root), *args]

    def _one_container(self, i: int, every: int) -> None:
        if every and i % every == every - 1:
            net = "none" if (i // every) % 2 else "bridge"
            sh(*self.dy("run", "-d", "--name", f"s{i}", "--network", net, "busybox", "sleep", "1000000"))
            self.running.append(f"s{i}")
        else:
            sh(*self.dy("create", "--name", f"c{i}", "--network", "none", "busybox", "true"))

    def _one_image(self, i: int) -> None:
        t = self.work / "tiny" / f"{i}.tar"
        t.write_bytes(tiny_tar(i))
        sh(*self.dy("import", str(t), f"bench/img{i}:v1"), env=EPOCH)

    def grow(self, n: int, m: int, every: int) -> float:
        t = time.perf_counter()
        with ThreadPoolExecutor(self.workers) as ex:
            list(ex.map(lambda i: self._one_container(i, every), range(self.containers, n)))
            list(ex.map(self._one_image, range(self.images, m)))
        self.containers, self.images = max(n, self.containers), max(m, self.images)
        return time.perf_counter() - t

    def out(self, *args: str) -> str:
        return subprocess.run(self.dy(*args), check=True, capture_output=True, text=True).stdout

    def measure(self, runs: int, every: int) -> dict[str, tuple[float, float]]:
        """Median (wall, CPU) seconds of each verb on the store as it is now."""
        samples: dict[str, list[tuple[float, float]]] = {}
        k = self.containers // 2
        while every and k % every == every - 1:
            k -= 1  # a created one (c<k>), not a running one (s<k>)
        mid = f"c{k}" if self.containers else ""
        mid_id = self.out("inspect", "-f", "{{.Id}}", mid).strip()[:12] if mid else ""
        for _ in range(runs):
            self.serial += 1
            name = f"probe{self.serial}"
            verbs: list[tuple[str, list[str]]] = [
                ("ps -a", self.dy("ps", "-a")),
                ("ps", self.dy("ps")),
                ("images", self.dy("images")),
                ("create", self.dy("create", "--name", name, "--network", "none", "busybox", "true")),
                ("inspect NAME", self.dy("inspect", name)),
                ("rm", self.dy("rm", name)),
                ("run --rm (none)", self.dy("run", "--rm", "--network", "none", "busybox", "true")),
                ("run --rm (bridge)", self.dy("run", "--rm", "busybox", "true")),
            ]
            if mid:
                verbs.append(("inspect ID-PREFIX", self.dy("inspect", mid_id)))
            for verb, cmd in verbs:
                samples.setdefault(verb, []).append(timed(cmd))
        return {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
                for k, v in samples.items()}

    def clean(self) -> None:
        if self.running:
            subprocess.run(self.dy("rm", "-f", *self.running), capture_output=True)


def report(stages: list[tuple[int, int]], figures: list[dict[str, tuple[float, float]]], which: int) -> None:
    """One table: each verb's median per stage, its growth from the smallest non-empty stage to the largest, and
    the marginal cost per object between consecutive stages ((t(k) - t(k-1)) / (objects(k) - objects(k-1)))."""
    verbs = list(figures[-1])
    head = "".join(f"{f'{n}c/{m}i':>12}" for n, m in stages)
    what = "wall" if which == 0 else "CPU"
    print(f"\n{f'verb ({what}, median ms)':<22}{head}{'growth':>9}{'marginal ms/object':>28}  verdict")
    for v in verbs:
        vals = [f[v][which] if v in f else None for f in figures]
        cells = "".join(f"{x * 1000:>12.1f}" if x is not None else f"{'-':>12}" for x in vals)
        known = [(s, x) for s, x in zip(stages, vals) if x is not None and s != (0, 0)]
        growth = known[-1][1] / known[0][1]
        margins = []
        prev = (stages[0], vals[0]) if vals[0] is not None else None
        for st, x in known:
            if prev is not None:
                objs = (st[1] - prev[0][1]) if v == "images" else (st[0] - prev[0][0])
                margins.append((x - prev[1]) / objs * 1000 if objs else 0.0)
            prev = (st, x)
        mtxt = " ".join(f"{x:.3f}" for x in margins)
        if v in LISTS:  # linear: the marginal cost per object must not rise (noise allowance: 1.5x + 0.02 ms)
            rising = len(margins) >= 2 and margins[-1] > max(margins[-2], 0.0) * 1.5 + 0.02
            verdict = "SUPER-LINEAR?" if rising else "ok (linear or better)"
        else:
            verdict = "GROWS" if growth > 1.25 else "ok (flat)"
        print(f"{v:<22}{cells}{growth:>8.2f}x{mtxt:>28}  {verdict}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", default="100:50,300:150,1000:500", help="N:M,... containers:images per stage")
    ap.add_argument("--runs", type=int, default=7, help="timed runs of each verb per stage (default 7)")
    ap.add_argument("--running-every", type=int, default=20, help="one running container in this many")
    ap.add_argument("--workers", type=int, default=2, help="parallel creates/imports while growing")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    stages = [(0, 0)] + [tuple(int(x) for x in s.split(":")) for s in a.stages.split(",")]  # type: ignore[misc]
    (REPO / "cache").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=str(REPO / "cache")))
    s = Scale(work, a.workers)
    figures: list[dict[str, float]] = []
    try:
        for n, m in stages:
            took = s.grow(n, m, a.running_every)
            if n or m:
                print(f"grew to {n} containers ({len(s.running)} running) and {m} images in {took:.0f} s",
                      flush=True)
            figures.append(s.measure(a.runs, a.running_every))
            print(f"  {n}c/{m}i: " + ", ".join(f"{k} {w * 1000:.0f}/{c * 1000:.0f} ms"
                                              for k, (w, c) in figures[-1].items()) + " (wall/CPU)", flush=True)
    finally:
        s.clean()
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(stages, figures, 0)  # type: ignore[arg-type]
    report(stages, figures, 1)  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
