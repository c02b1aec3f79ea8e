"""Fault injection (issue 11): kill -9 at random points of run, start, stop, rm, build, load, network create and
volume rm; after each round the store is consistent (every running row has a live process, no process of the root
is unrecorded), and after the prunes nothing is left: no mount, cgroup, process, bridge, nft table or staging file.

Figures are printed as one line starting with ``FAULT-INJECTION`` (run with -s to see them)."""

from __future__ import annotations

import glob
import os
import random
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import DOCKYARD
from tests.helpers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BUDGET = 150.0  # seconds of rounds (the whole test stays under 3 minutes)
OPS = ("run", "start", "stop", "rm", "build", "load", "network create", "volume rm")


def _alive(pid, start) -> bool:
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            rest = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return False
    return rest[0] != b"Z" and int(rest[19]) == start


def _rows(root: Path) -> list[sqlite3.Row]:
    c = sqlite3.connect(f"file:{root / 'dockyard.db'}?mode=ro", uri=True, timeout=30)
    c.row_factory = sqlite3.Row
    try:
        return c.execute("SELECT id, state, pid, pid_start, monitor_pid, monitor_start FROM containers").fetchall()
    finally:
        c.close()


def _bridges(root: Path) -> set[str]:
    c = sqlite3.connect(f"file:{root / 'dockyard.db'}?mode=ro", uri=True, timeout=30)
    try:
        return {r[0] for r in c.execute("SELECT bridge FROM networks")}
    finally:
        c.close()


def _procs_under(root: Path) -> dict[int, str]:
    """pid -> the path under the root that it has as its root, cwd or an open fd."""
    prefix = str(root) + "/"
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            links = [f"/proc/{pid}/root", f"/proc/{pid}/cwd"] + \
                [f"/proc/{pid}/fd/{n}" for n in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        for link in links:
            try:
                t = os.readlink(link)
            except OSError:
                continue
            if t.startswith(prefix):
                out[int(pid)] = t
                break
    return out


def _inconsistencies(root: Path) -> list[str]:
    bad = []
    rows = _rows(root)
    ids = {r["id"] for r in rows}
    for r in rows:
        if r["state"] in ("running", "paused", "restarting") and not _alive(r["pid"], r["pid_start"]) \
                and not _alive(r["monitor_pid"], r["monitor_start"]):
            bad.append(f"{r['id'][:12]} recorded {r['state']} with no live process")
    cdir = str(root / "containers") + "/"
    for pid, path in _procs_under(root).items():
        if path.startswith(cdir) and path[len(cdir):].split("/")[0] not in ids:
            try:
                st = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if st != "Z":
                bad.append(f"process {pid} in {path} of no recorded container")
    return bad


def _leaks(root: Path, names: set[str], bridges: set[str]) -> list[str]:
    out = []
    with open("/proc/mounts") as f:
        out += [f"mount {ln.split()[1]}" for ln in f if ln.split()[1].startswith(str(root) + "/")]
    for n in names:
        out += [f"cgroup {d}" for d in glob.glob(f"/sys/fs/cgroup/*/dockyard/{n}") + glob.glob(
            f"/sys/fs/cgroup/dockyard/{n}")]
        if os.path.exists(f"/run/dockyard/runtime/{n}"):
            out.append(f"runtime state {n}")
    out += [f"process {pid} ({path})" for pid, path in _procs_under(root).items()]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout.split()
    for b in bridges:
        if f": {b}:" in links or f": {b}@" in links:
            out.append(f"link {b}")
        if f"dockyard-{b}" in tables:
            out.append(f"nft table dockyard-{b}")
    tmp = root / "tmp"
    out += [f"staging {p.name}" for p in (tmp.iterdir() if tmp.exists() else []) if not p.name.startswith("reserve")]
    return out


def _kill_leftovers(root: Path) -> None:
    for pid in _procs_under(root):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_kill_9_at_random_points_leaves_a_consistent_store_and_nothing_after_prune(dy, root, busybox, tmp_path):
    rnd = random.Random(int(os.environ.get("FAULT_SEED", "11")))
    archive = tmp_path / "busybox.tar"
    dy("save", "-o", str(archive), "busybox", check=True)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN sleep 0.2 && echo a > /a\nRUN echo b > /b\n")
    names: set[str] = set()
    bridges: set[str] = set()
    rounds = landed = 0
    problems: list[str] = []
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < BUDGET and rounds < 120:
            op = OPS[rounds % len(OPS)]
            i = rounds
            net = "none" if i % 3 else "bridge"
            if op == "start":
                dy("create", "--name", f"s{i}", "--network", net, "busybox", "sleep", "30", check=True)
                argv = ["start", f"s{i}"]
            elif op in ("stop", "rm"):
                dy("run", "-d", "--name", f"s{i}", "--network", net, "busybox", "sleep", "30", check=True)
                argv = ["stop", "-t", "1", f"s{i}"] if op == "stop" else ["rm", "-f", f"s{i}"]
            elif op == "run":
                argv = ["run", "-d", "--name", f"r{i}", "--network", net, "busybox", "sleep", "30"]
            elif op == "build":
                argv = ["build", "--no-cache", "--network", net if net == "none" else "default", "-t", f"b{i}",
                        str(ctx)]
            elif op == "load":
                argv = ["load", "-i", str(archive)]
            elif op == "network create":
                argv = ["network", "create", f"n{i}"]
            else:
                dy("volume", "create", f"v{i}", check=True)
                argv = ["volume", "rm", f"v{i}"]
            p = subprocess.Popen([DOCKYARD, "--root", str(root), *argv], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
            time.sleep(rnd.uniform(0.0, 0.3))  # the random point of the kill (not a synchronisation)
            if p.poll() is None:
                landed += 1
            p.kill()
            p.wait()
            rounds += 1
            names |= {r["id"] for r in _rows(root)} | {p.name for p in (root / "tmp").glob("build-*")}
            bridges |= _bridges(root)
            bad: list[str] = []
            try:  # a process the kill left exiting may take a moment: poll
                wait_for(lambda: not _inconsistencies(root), timeout=10, what="a consistent store")
            except AssertionError:
                bad = _inconsistencies(root)
            problems += [f"round {rounds} ({op}): {b}" for b in bad]
        ids = dy("ps", "-aq", "--no-trunc").stdout.split()
        if ids:
            dy("rm", "-f", *ids, timeout=120)
        for argv in (("system", "prune", "-f"), ("builder", "prune", "-af"), ("volume", "prune", "-af"),
                     ("network", "prune", "-f")):
            p = dy(*argv, timeout=120)
            assert p.returncode == 0, (argv, p.stderr)
        leaks: list[str] = []
        try:
            wait_for(lambda: not _leaks(root, names, bridges), timeout=15, what="nothing left")
        except AssertionError:
            leaks = _leaks(root, names, bridges)
        print(f"\nFAULT-INJECTION rounds={rounds} landed_mid_operation={landed} inconsistencies={len(problems)} "
              f"leaks_after_prune={len(leaks)} seconds={time.monotonic() - t0:.0f}")
        assert problems == []
        assert leaks == []
        assert dy("run", "--rm", "--network", "none", "busybox", "true").returncode == 0
    finally:
        _kill_leftovers(root)
