#!/usr/bin/env python3
"""Image speed, dockyard vs podman, side by side in one run (each with a private, empty store).

    bench/bench_images.py [--runs N] [--images-runs N] [--keep]

1. ``load``: the debian:bookworm save file (~120 MB; made with debootstrap by scripts/mkimage-debian.sh, cached,
   then ``dockyard import`` + ``dockyard save``) loaded into an empty store. Runs alternate between the two tools,
   with a ``sync`` before each so that neither pays for the other's write-back. Goal: dockyard <= 0.5x podman.
2. ``images`` with 50 images in the store. Goal: dockyard <= podman.

Prints medians (and min/max) and the ratio dockyard/podman. Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import DOCKYARD, EPOCH, REPO, Podman, report, sh, timed, tiny_tar  # noqa: E402


def debian_save_file(work: Path) -> Path:
    out = work / "debian-bookworm-save.tar"
    tar = subprocess.run([str(REPO / "scripts" / "mkimage-debian.sh"), "--tar-only"], check=True,
                         capture_output=True, text=True).stdout.strip()
    root = work / "dy-src"
    sh(DOCKYARD, "--root", str(root), "import", "--change", 'CMD ["bash"]', tar, "debian:bookworm", env=EPOCH)
    sh(DOCKYARD, "--root", str(root), "save", "-o", str(out), "debian:bookworm")
    shutil.rmtree(root)
    return out


def du(path: Path) -> int:
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True).stdout.split()[0])


def bench_load(work: Path, podman: Podman, runs: int) -> tuple[list[float], list[float], list[float], int,
                                                               dict[str, int]]:
    """Samples of dockyard's default snapshotter (EROFS images where the host has them), of its unpacked
    directories (DOCKYARD_SNAPSHOTTER=dir) and of podman; the save file's size; the store size of each."""
    archive = debian_save_file(work)
    dy: list[float] = []
    dy_dir: list[float] = []
    pm: list[float] = []
    sizes: dict[str, int] = {}
    for i in range(runs):
        order = ["dy", "dir", "pm"] if i % 2 == 0 else ["pm", "dir", "dy"]
        for who in order:
            root = work / "dy-load"
            shutil.rmtree(root, ignore_errors=True)
            podman.reset()
            sh("sync")
            if who == "dy":
                dy.append(timed([DOCKYARD, "--root", str(root), "load", "-q", "-i", str(archive)]))
                sizes["dockyard"] = du(root)
            elif who == "dir":
                env = {**os.environ, "DOCKYARD_SNAPSHOTTER": "dir"}
                dy_dir.append(timed([DOCKYARD, "--root", str(root), "load", "-q", "-i", str(archive)], env))
                sizes["dockyard (dir)"] = du(root)
            else:
                pm.append(timed(podman.base() + ["load", "-q", "-i", str(archive)], podman.env))
        shutil.rmtree(work / "dy-load", ignore_errors=True)
        podman.reset()
    return dy, dy_dir, pm, archive.stat().st_size, sizes


def bench_images(work: Path, podman: Podman, n_images: int, runs: int) -> tuple[list[float], list[float]]:
    root = work / "dy-images"
    shutil.rmtree(root, ignore_errors=True)
    podman.reset()
    tars = work / "tiny"
    tars.mkdir(exist_ok=True)
    for i in range(n_images):
        t = tars / f"{i}.tar"
        t.write_bytes(tiny_tar(i))
        sh(DOCKYARD, "--root", str(root), "import", str(t), f"bench/img{i}:v1", env=EPOCH)
        sh(*podman.base(), "import", str(t), f"localhost/bench/img{i}:v1", env=podman.env)
    for cmd, env in (([DOCKYARD, "--root", str(root), "images"], None), (podman.base() + ["images"], podman.env)):
        out = subprocess.run(cmd, capture_output=True, text=True, env=env or os.environ, check=True).stdout
        assert len(out.splitlines()) == n_images + 1, out
    dy: list[float] = []
    pm: list[float] = []
    for _ in range(3):  # warm both
        timed([DOCKYARD, "--root", str(root), "images"])
        timed(podman.base() + ["images"], podman.env)
    for _ in range(runs):
        dy.append(timed([DOCKYARD, "--root", str(root), "images"]))
        pm.append(timed(podman.base() + ["images"], podman.env))
    shutil.rmtree(root, ignore_errors=True)
    podman.reset()
    return dy, pm


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="load runs per tool (default 5)")
    ap.add_argument("--images-runs", type=int, default=30, help="`images` runs per tool (default 30)")
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root")
    work = Path(tempfile.mkdtemp(prefix="bench-images-", dir=str(REPO / "cache")))
    podman = Podman(work)
    rows = []
    try:
        if not a.skip_load:
            dy, dy_dir, pm, size, sizes = bench_load(work, podman, a.runs)
            rows.append((f"load debian:bookworm ({size / 1e6:.0f} MB save file)", dy, pm, 0.3))
            rows.append(("load, DOCKYARD_SNAPSHOTTER=dir", dy_dir, pm, 0.3))
            for k, v in sizes.items():
                print(f"store after load, {k}: {v / 1e6:.1f} MB = {v / size:.2f}x the save file (goal <= 1.15x)")
        dy, pm = bench_images(work, podman, 50, a.images_runs)
        rows.append(("images (50 images)", dy, pm, 1.0))
    finally:
        podman.reset()
        shutil.rmtree(podman.runroot, ignore_errors=True)
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
