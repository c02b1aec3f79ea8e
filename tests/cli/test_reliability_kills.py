"""Reliability (issue 11): a kill -9 of a command at any moment leaves nothing that prune cannot find and collect."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import DOCKYARD
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

RUNTIME_STATE = "/run/dockyard/runtime"


def _mounts_under(root: Path) -> list[str]:
    with open("/proc/mounts") as f:
        return [ln.split()[1] for ln in f if ln.split()[1].startswith(str(root) + "/")]


def _cgroup_dirs(names: list[str]) -> list[str]:
    out: list[str] = []
    for n in names:
        out += glob.glob(f"/sys/fs/cgroup/*/dockyard/{n}") + glob.glob(f"/sys/fs/cgroup/dockyard/{n}")
    return out


def _processes_of(root: Path, names: list[str]) -> list[int]:
    """Processes in a cgroup of ``names`` or whose root, cwd or an fd is under ``root``."""
    prefix = str(root) + "/"
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                cg = f.read()
            links = [f"/proc/{pid}/root", f"/proc/{pid}/cwd"] + \
                [f"/proc/{pid}/fd/{n}" for n in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        hit = any(f"/dockyard/{n}" in cg for n in names)
        for link in links:
            try:
                hit = hit or os.readlink(link).startswith(prefix)
            except OSError:
                pass
        if hit:
            found.append(int(pid))
    return found


def _gone(fn, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while fn():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _describe(pids: list[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:100]
            fds = [os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")]
            out.append(f"{pid} {cmd} root={os.readlink(f'/proc/{pid}/root')} fds={fds}")
        except OSError:
            continue
    return out


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _workspaces(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "tmp").glob("build-*")) if (root / "tmp").exists() else []


def test_killed_builds_leave_nothing_after_builder_prune(dy, root, busybox, tmp_path):
    """kill -9 of `build` while its RUN runs (3 rounds, default bridge and --network none): the overlay mounts,
    runtime state, cgroups, the RUN's processes and the staging files are all found and removed by
    `builder prune -f` (there was no builder prune, and nothing found them)."""
    names: list[str] = []
    try:
        for i, net in enumerate(["none", "default", "none"]):
            ctx = tmp_path / f"ctx{i}"
            ctx.mkdir()
            (ctx / "Dockerfile").write_text(f"FROM busybox\nRUN echo {i} > /started && sleep 1000\n")
            before = set(_workspaces(root))
            p = subprocess.Popen([DOCKYARD, "--root", str(root), "build", "--network", net, "-t", f"k{i}", str(ctx)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                ws = wait_for(lambda: [w for w in _workspaces(root) if w not in before
                                       and (root / "tmp" / w / "diff" / "started").exists()],
                              timeout=60, what="the RUN step to start")
            finally:
                p.kill()
                p.wait()
            names += ws
        assert len(names) == 3
        assert _mounts_under(root) and _cgroup_dirs(names) and _processes_of(root, names)  # what a kill leaves
        pr = dy("builder", "prune", "-f", timeout=120)
        assert pr.returncode == 0, pr.stderr
        assert pr.stdout.splitlines()[-1].startswith("Total reclaimed space: ")
        for n in names:
            assert n in pr.stdout
        assert _mounts_under(root) == []
        assert [n for n in names if os.path.exists(os.path.join(RUNTIME_STATE, n))] == []
        assert _cgroup_dirs(names) == []
        # SIGKILLed processes finish exiting asynchronously: poll, then name what is left
        if not _gone(lambda: _processes_of(root, names)):
            assert _describe(_processes_of(root, names)) == []
        assert list((root / "tmp").iterdir()) == []
        assert dy("network", "ls", "-q").returncode == 0
        # the engine still builds
        ok = tmp_path / "ok"
        ok.mkdir()
        (ok / "Dockerfile").write_text("FROM busybox\nRUN echo ok > /ok\n")
        assert dy("build", "--network", "none", "-t", "ok", str(ok), timeout=120).returncode == 0
    finally:
        _kill_all(_processes_of(root, names))
        for d in _cgroup_dirs(names):
            for sub in sorted(glob.glob(d + "/**/"), key=len, reverse=True):
                try:
                    os.rmdir(sub)
                except OSError:
                    pass


def test_prune_keeps_a_live_build(dy, root, busybox, tmp_path):
    """A build that is still running is not a leftover: `builder prune` / `system prune` leave its workspace."""
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN touch /started && sleep 3 && echo done > /done\n")
    p = subprocess.Popen([DOCKYARD, "--root", str(root), "build", "--network", "none", "-t", "live", str(ctx)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: any((root / "tmp" / w / "diff" / "started").exists() for w in _workspaces(root)),
                 timeout=60, what="the RUN step to start")
        assert dy("builder", "prune", "-af", timeout=60).returncode == 0
        assert dy("system", "prune", "-f", timeout=60).returncode == 0
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0, out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert dy("image", "inspect", "live").returncode == 0


def test_system_prune_prompt_and_output(dy, root, busybox):
    dy("create", "--name", "stopped", "busybox", check=True)
    p = dy("system", "prune", input="n\n")
    assert p.returncode == 0
    assert p.stdout.startswith("WARNING! This will remove:\n  - all stopped containers\n"
                               "  - all networks not used by at least one container\n  - all dangling images\n"
                               "  - unused build cache\n\nAre you sure you want to continue? [y/N] ")
    assert dy("ps", "-aq").stdout.strip() != ""
    p = dy("system", "prune", "-f")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("Deleted Containers:\n") and p.stdout.splitlines()[-1].startswith(
        "Total reclaimed space: ")
    assert dy("ps", "-aq").stdout.strip() == ""
    assert dy("system", "prune", "-f", "--volumes", "--filter", "until=1h").returncode != 0
    assert dy("builder", "prune", "-f", "--filter", "bogus=1").returncode != 0
    assert dy("builder", "prune", "-af", "--keep-storage", "1g", "--filter", "until=1h").returncode == 0


# ---- start failures and stuck monitors ---------------------------------------------------------------------------

def test_run_rm_whose_start_fails_leaves_no_container(dy, busybox):
    """`run --rm` whose start fails (here: a uid the kernel refuses) removes its container (38 piled up)."""
    for _ in range(3):
        p = dy("run", "--rm", "--network", "none", "--user", "99999999999", "busybox", "true")
        assert p.returncode == 125 and p.stderr.count("Error") == 1, p.stderr
    assert dy("ps", "-aq").stdout.strip() == ""


def _stopped_under(root: Path) -> list[int]:
    out = []
    for pid in _processes_of(root, []):
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "T":
                    out.append(pid)
        except OSError:
            pass
    return out


def test_stuck_monitor_cannot_hang_run_d(dy, root, busybox):
    """A monitor that never reports (stopped before creating its container): `run -d` gives up after its start
    timeout with one line and kills the monitor (it waited forever)."""
    t0 = time.monotonic()
    try:
        p = dy("run", "-d", "--name", "stuck", "--network", "none", "busybox", "sleep", "100", timeout=60,
               env={"DOCKYARD_TEST_HOOK": "monitor-stop", "DOCKYARD_START_TIMEOUT": "3"})
        assert p.returncode == 125, p.stderr
        assert p.stderr.count("\n") == 1 and "timed out waiting for its monitor" in p.stderr, p.stderr
        assert time.monotonic() - t0 < 30
        assert _gone(lambda: _processes_of(root, [])), _describe(_processes_of(root, []))
        assert dy("rm", "-f", "stuck").returncode == 0
    finally:
        _kill_all(_stopped_under(root))


def test_rm_f_ends_a_stuck_monitor_whose_caller_was_killed(dy, root, busybox, tmp_path):
    """kill -9 of `run -d` while its monitor is stuck (stopped): `rm -f` of the container ends the monitor too
    (it was left running)."""
    cidfile = tmp_path / "cid"
    p = subprocess.Popen([DOCKYARD, "--root", str(root), "run", "-d", "--cidfile", str(cidfile), "--network", "none",
                          "busybox", "sleep", "100"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env={**os.environ, "DOCKYARD_TEST_HOOK": "monitor-stop"}, start_new_session=True)
    try:
        wait_for(lambda: cidfile.exists() and cidfile.read_text() and _stopped_under(root), timeout=30,
                 what="the monitor to stop")
        p.kill()
        p.wait()
        cid = cidfile.read_text()
        t0 = time.monotonic()
        rm = dy("rm", "-f", cid, timeout=60)
        assert rm.returncode == 0, rm.stderr
        assert time.monotonic() - t0 < 20
        assert _gone(lambda: _processes_of(root, [])), _describe(_processes_of(root, []))
        assert dy("ps", "-aq").stdout.strip() == ""
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        _kill_all(_stopped_under(root))


# ---- log followers -----------------------------------------------------------------------------------------------

def test_logs_follow_loses_nothing_across_rotations(dy, root, busybox):
    """A follower that keeps up sees every line of a fast writer, in order, across two rotations of the 20 MB
    json-file log (it lost 76% of 2,000,000 lines), and the log stays bounded."""
    n = 600_000
    dy("run", "-d", "--name", "flood", "--network", "none", "busybox", "sh", "-c",
       f"echo ready; while [ ! -e /go ]; do sleep 0.05; done; seq 1 {n}", check=True)
    f = subprocess.Popen([DOCKYARD, "--root", str(root), "logs", "-f", "flood"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        assert f.stdout.readline() == b"ready\n"
        dy("exec", "flood", "touch", "/go", check=True)
        expect = 1
        for line in f.stdout:
            assert line == b"%d\n" % expect, (line, expect)
            expect += 1
        assert expect == n + 1
        assert f.wait(timeout=60) == 0
    finally:
        if f.poll() is None:
            f.kill()
            f.wait()
    cid = dy("inspect", "-f", "{{.Id}}", "flood", check=True).stdout.strip()
    logs = [p for p in (root / "containers" / cid).glob(f"{cid}-json.log*") if not p.name.endswith(".dropped")]
    assert len(logs) == 2 and sum(p.stat().st_size for p in logs) <= 40 * 1024 * 1024
    assert (root / "containers" / cid / f"{cid}-json.log.dropped").exists()  # two rotations: `logs` says so
