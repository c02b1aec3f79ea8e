"""What the benchmarks share: running and timing commands, a podman with a private store, result tables.

Benchmarks compare dockyard with podman side by side in one run and report ratios; they are not tests.
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCKYARD = str(REPO / ".venv" / "bin" / "dockyard")
EPOCH = {**os.environ, "SOURCE_DATE_EPOCH": "946684800"}


def sh(*cmd: str, env: dict[str, str] | None = None, quiet: bool = True) -> None:
    subprocess.run(cmd, check=True, env=env or os.environ, stdout=subprocess.DEVNULL if quiet else None,
                   stderr=subprocess.PIPE if quiet else None)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env or os.environ)
    dt = time.perf_counter() - t
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {p.stderr.decode().strip()}")
    return dt


class Podman:
    """podman on a private store. This host lacks CAP_SYS_RESOURCE, so podman's default ulimits (above the hard
    limits) make every `run` fail: a private containers.conf sets them to the current hard limits."""

    def __init__(self, work: Path) -> None:
        self.root = work / "podman-storage"
        self.runroot = Path(tempfile.mkdtemp(prefix="dyb-", dir="/tmp"))  # podman wants < 50 chars
        conf = work / "containers.conf"
        import resource

        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
        conf.write_text(f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n')
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.driver: list[str] = []
        if subprocess.run(self.base() + ["images"], capture_output=True, env=self.env).returncode != 0:
            self.driver = ["--storage-driver", "vfs"]

    def base(self) -> list[str]:
        return ["podman", "--root", str(self.root), "--runroot", str(self.runroot), *self.driver]

    def reset(self) -> None:
        subprocess.run(self.base() + ["rm", "-af"], capture_output=True, env=self.env)
        subprocess.run(self.base() + ["rmi", "-af"], capture_output=True, env=self.env)
        shutil.rmtree(self.root, ignore_errors=True)
        shutil.rmtree(self.runroot, ignore_errors=True)
        self.runroot.mkdir(mode=0o700)


def import_busybox(root: Path, podman: Podman) -> None:
    """busybox:latest (scripts/mkimage-busybox.sh) into a dockyard root and into podman's private store."""
    tar = subprocess.run([str(REPO / "scripts" / "mkimage-busybox.sh"), "--tar-only"], check=True,
                         capture_output=True, text=True).stdout.strip()
    sh(DOCKYARD, "--root", str(root), "import", "--change", 'CMD ["sh"]', tar, "busybox", env=EPOCH)
    sh(*podman.base(), "import", "--change", 'CMD ["sh"]', tar, "localhost/busybox:latest", env=podman.env)


def tiny_tar(i: int) -> bytes:
    """A one-file layer tar, different for each ``i`` (distinct images for `import`)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = f"image {i}\n".encode()
        ti = tarfile.TarInfo(f"file{i}")
        ti.size, ti.mtime = len(data), 946684800
        tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def fmt(xs: list[float], unit: str = "s") -> str:
    return f"{statistics.median(xs):8.3f} {unit}  (min {min(xs):.3f}, max {max(xs):.3f}, n={len(xs)})"


def report(rows: list[tuple[str, list[float], list[float], float]], unit: str = "s") -> None:
    """rows: (name, dockyard samples, podman samples, goal ratio); prints medians and dockyard/podman ratios."""
    print(f"\n{'benchmark':<48} {'dockyard (median)':>18} {'podman (median)':>17} {'ratio':>7} {'goal':>8}")
    for name, dy, pm, goal in rows:
        r = statistics.median(dy) / statistics.median(pm)
        print(f"{name:<48} {statistics.median(dy):>16.3f} {unit} {statistics.median(pm):>15.3f} {unit} {r:>7.2f} "
              f"{'<= ' + format(goal, '.2g'):>8} {'ok' if r <= goal else 'MISSED'}")
    print()
    for name, dy, pm, _ in rows:
        print(f"{name}\n  dockyard {fmt(dy, unit)}\n  podman   {fmt(pm, unit)}")
