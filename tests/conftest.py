"""Shared fixtures: a private state root per test, the installed `dockyard` command, local base images."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
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


ROOTS: set[str] = set()  # every state root this session made


def debian_module_root(tmp_path_factory: pytest.TempPathFactory, debian_tar: Path, name: str,
                       timeout: int) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """For a module-scoped fixture: a state root with debian:bookworm imported, and a runner of the CLI on it
    (``run(*args, check=True, timeout=..., cwd=None)``); at teardown its containers go and its ~1.8 GB of images
    and build cache are deleted (not left in the pytest temp folder)."""
    root = tmp_path_factory.mktemp(name) / "root"
    root.mkdir()
    ROOTS.add(str(root))

    def run(*args: str, check: bool = True, timeout: int = timeout,
            cwd: str | None = None) -> subprocess.CompletedProcess[str]:
        p = subprocess.run([DOCKYARD, "--root", str(root), *args], capture_output=True, text=True, timeout=timeout,
                           cwd=cwd)
        if check and p.returncode != 0:
            raise AssertionError(f"dockyard {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        return p

    run("import", "--change", 'CMD ["bash"]', str(debian_tar), "debian:bookworm")
    yield run
    cleanup_root(root)
    from dockyard.fsutil import rmtree

    rmtree(str(root))


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
    ROOTS.add(str(r))  # the session checks its bridges and tables at the end (host_left_as_found)
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


# ---- the host as the suite found it ------------------------------------------------------------------------------

def _host_leftovers(base: Path) -> list[str]:
    """What this session's roots (``ROOTS``, and any under ``base``, its temporary folder) left on the host: their
    bridges (the default one named after the root, and those of the networks dockyard made while the root still
    exists), firewall tables, and mounts under ``base``."""
    import glob
    import sqlite3

    from dockyard.network.store import default_bridge_name

    bridges = {default_bridge_name(r) for r in ROOTS}
    for db in glob.glob(str(base / "*" / "*" / "dockyard.db")) + glob.glob(str(base / "*" / "dockyard.db")):
        bridges.add(default_bridge_name(os.path.dirname(db)))
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
                bridges.update(row[0] for row in c.execute("SELECT bridge FROM networks WHERE own_bridge = 1"))
        except sqlite3.Error:
            pass
    left = [f"bridge {b}" for b in sorted(bridges) if os.path.exists(f"/sys/class/net/{b}")]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout.split()
    left += [f"nft table ip dockyard-{b}" for b in sorted(bridges) if f"dockyard-{b}" in tables]
    with open("/proc/mounts") as f:
        left += [f"mount {m}" for m in (ln.split()[1] for ln in f) if m.startswith(str(base) + "/")]
    return left


def _remove_leftovers(left: list[str]) -> None:
    for item in sorted(left, key=len, reverse=True):  # deeper mounts first
        kind, _, name = item.partition(" ")
        if kind == "bridge":
            subprocess.run(["ip", "link", "del", name], capture_output=True)
        elif kind == "nft":
            subprocess.run(["nft", "delete", *name.split()], capture_output=True)
        elif kind == "mount":
            subprocess.run(["umount", "-l", name], capture_output=True)


@pytest.fixture(scope="session", autouse=True)
def host_left_as_found(tmp_path_factory: pytest.TempPathFactory):
    """The suite leaves the host as it found it: net.ipv4.ip_forward is restored, and no bridge, firewall table
    or mount made by this session's roots is left (found, removed, and reported as a failure: a test leaked it).
    Temporary folders of passed tests are removed by pytest (tmp_path_retention_policy = "failed")."""
    fwd_path = "/proc/sys/net/ipv4/ip_forward"
    try:
        with open(fwd_path) as f:
            fwd: str | None = f.read()
    except OSError:
        fwd = None
    yield
    if os.geteuid() != 0:
        return
    import time

    base = tmp_path_factory.getbasetemp()
    # a monitor deletes its veth and an unused bridge just after it reports the exit: let them settle
    deadline = time.monotonic() + float(os.environ.get("DOCKYARD_TEST_SETTLE", "30"))
    left = _host_leftovers(base)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = _host_leftovers(base)
    _remove_leftovers(left)
    if fwd is not None:
        with open(fwd_path) as f:
            now = f.read()
        if now != fwd:
            with open(fwd_path, "w") as f:
                f.write(fwd)
    assert not left, f"the test session left these on the host (now removed): {', '.join(left)}"


@pytest.fixture
def registry(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real registry server (Debian's docker-registry) on a free loopback port, stopped at teardown."""
    from tests.registry_servers import Registry

    r = Registry(tmp_path / "registry")
    yield r
    r.stop()


@pytest.fixture
def denv(tmp_path: Path) -> dict[str, str]:
    """The environment of a CLI run whose registry credentials live in this test's own config directory."""
    from tests.registry_servers import env_with_config

    return env_with_config(tmp_path)
