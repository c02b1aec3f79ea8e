"""Shared fixtures: a private state root per test, the installed `dockyard` command, local base images."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKYARD = str(Path(sys.executable).parent / "dockyard")
CACHE = Path(os.environ.get("DOCKYARD_CACHE", REPO / "cache"))


def _script_tar(name: str) -> Path:
    out = subprocess.run([str(REPO / "scripts" / name), "--tar-only"], check=True, capture_output=True,
                         text=True).stdout.strip()
    return Path(out)


@pytest.fixture(scope="session")
def busybox_tar() -> Path:
    """A deterministic busybox rootfs tar (Debian's busybox-static), cached under cache/."""
    return _script_tar("mkimage-busybox.sh")


@pytest.fixture(scope="session")
def hello_tar() -> Path:
    return _script_tar("mkimage-hello-world.sh")


@pytest.fixture(scope="session")
def debian_tar() -> Path:
    """debian:bookworm minbase rootfs tar (debootstrap, ~30 s the first time, then cached)."""
    return _script_tar("mkimage-debian.sh")


def cleanup_root(r: Path) -> None:
    """Remove every container of a test's root (killing its processes) and unmount anything left under it."""
    import sqlite3

    db = r / "dockyard.db"
    if db.exists():
        try:
            with sqlite3.connect(db, timeout=30) as c:
                ids = [row[0] for row in c.execute("SELECT id FROM containers")]
        except sqlite3.Error:
            ids = []
        if ids:
            subprocess.run([DOCKYARD, "--root", str(r), "rm", "-f", *ids], capture_output=True, timeout=120)
    prefix = str(r) + "/"
    with open("/proc/mounts") as f:
        left = [ln.split()[1] for ln in f if ln.split()[1].startswith(prefix)]
    for m in sorted(left, key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)


@pytest.fixture
def root(tmp_path: Path):
    """A private dockyard state root for one test; its containers and mounts are removed afterwards."""
    r = tmp_path / "root"
    r.mkdir()
    yield r
    cleanup_root(r)


Runner = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def dy(root: Path) -> Runner:
    """Run the installed dockyard command against the test's own root: dy("images", "-q")."""

    def run(*args: str, input: str | bytes | None = None, timeout: float = 60, check: bool = False,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        text = not isinstance(input, bytes)
        p = subprocess.run([DOCKYARD, "--root", str(root), *args], input=input, capture_output=True,
                           text=text, timeout=timeout, env={**os.environ, **(env or {})})
        if check and p.returncode != 0:
            raise AssertionError(f"dockyard {' '.join(args)} exited {p.returncode}: {p.stderr}")
        return p

    return run


@pytest.fixture
def busybox(dy: Runner, busybox_tar: Path) -> str:
    """busybox:latest imported into the test's root; returns its image ID."""
    p = dy("import", "--change", 'CMD ["sh"]', str(busybox_tar), "busybox:latest",
           env={"SOURCE_DATE_EPOCH": "946684800"}, check=True)
    return p.stdout.strip()


@pytest.fixture
def hello_world(dy: Runner, hello_tar: Path) -> str:
    p = dy("import", "--change", 'CMD ["/hello"]', str(hello_tar), "hello-world:latest",
           env={"SOURCE_DATE_EPOCH": "946684800"}, check=True)
    return p.stdout.strip()
