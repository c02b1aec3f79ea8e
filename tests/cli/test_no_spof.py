"""No single point of failure: killing any dockyard process never stops an unrelated container."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.conftest import DOCKYARD
from tests.helpers import pid_alive, wait_for

pytestmark = pytest.mark.e2e


def _state(dy, ref):
    return json.loads(dy("inspect", ref).stdout)[0]["State"]


def _monitor_pid(root, cid):
    import sqlite3

    with sqlite3.connect(os.path.join(root, "dockyard.db")) as c:
        return c.execute("SELECT monitor_pid FROM containers WHERE id=?", (cid,)).fetchone()[0]


def test_kill_9_of_the_starting_command_leaves_the_container_running(dy, busybox, root):
    # a foreground `run` whose CLI is killed: the container goes on, as with docker
    p = subprocess.Popen([DOCKYARD, "--root", str(root), "run", "--name", "fg", "busybox", "sh", "-c",
                          "echo up; exec sleep 60"], stdout=subprocess.PIPE)
    assert p.stdout.readline() == b"up\n"
    p.send_signal(signal.SIGKILL)
    p.wait()
    st = _state(dy, "fg")
    assert st["Running"] and pid_alive(st["Pid"])
    assert dy("exec", "fg", "echo", "still").stdout == "still\n"
    assert dy("logs", "fg").stdout == "up\n"
    assert dy("stop", "-t", "0", "fg").returncode == 0
    assert _state(dy, "fg")["ExitCode"] == 137
    dy("rm", "fg", check=True)


def test_kill_9_of_a_monitor_spares_other_containers_and_is_reported_truthfully(dy, busybox, root):
    a = dy("run", "-d", "busybox", "sleep", "60", check=True).stdout.strip()
    b = dy("run", "-d", "busybox", "sleep", "60", check=True).stdout.strip()
    mon_a = _monitor_pid(root, a)
    os.kill(mon_a, signal.SIGKILL)
    wait_for(lambda: not pid_alive(mon_a), what="monitor gone")
    # b is untouched; a itself still runs (its monitor only watched it)
    assert _state(dy, b)["Running"]
    st = _state(dy, a)
    assert st["Running"] and pid_alive(st["Pid"])
    # ps, exec, logs and stop still work on a container whose monitor died
    assert a[:12] in dy("ps").stdout
    assert dy("exec", a, "true").returncode == 0
    assert dy("stop", "-t", "0", a).returncode == 0
    st = _state(dy, a)
    assert not st["Running"] and st["Status"] == "exited"  # never reported running when it is not
    assert "Exited" in dy("ps", "-a", "--filter", f"id={a}").stdout
    assert _state(dy, b)["Running"]
    dy("rm", "-f", a, b, check=True)
    assert not [ln for ln in open("/proc/mounts") if a in ln or b in ln]


def test_concurrent_run_and_rm_lose_nothing(dy, busybox, root):
    n = 50
    procs = [subprocess.Popen([DOCKYARD, "--root", str(root), "run", "-d", "busybox", "sleep", "60"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(n)]
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        ids.append(out.decode().strip())
    assert sorted(dy("ps", "-q", "--no-trunc").stdout.split()) == sorted(ids)
    pids = [_state(dy, i)["Pid"] for i in ids]
    rms = [subprocess.Popen([DOCKYARD, "--root", str(root), "rm", "-f", i], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE) for i in ids]
    for p in rms:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
    assert dy("ps", "-aq").stdout == ""
    assert not [ln for ln in open("/proc/mounts") if str(root) in ln]
    assert not [pid for pid in pids if pid_alive(pid)]
    for ctrl in ("memory", "pids", "cpu"):
        base = f"/sys/fs/cgroup/{ctrl}/dockyard"
        if os.path.isdir(base):
            assert not [d for d in os.listdir(base) if d in ids]
    assert os.listdir(os.path.join(root, "containers")) == []


def test_the_monitor_is_small(dy, busybox, root):
    cid = dy("run", "-d", "busybox", "sleep", "60", check=True).stdout.strip()
    mon = _monitor_pid(root, cid)
    with open(f"/proc/{mon}/smaps_rollup") as f:
        pss_kb = next(int(ln.split()[1]) for ln in f if ln.startswith("Pss:"))
    print(f"monitor PSS: {pss_kb} kB")
    assert pss_kb < 64 * 1024  # a sanity bound; bench/ measures the real figure against conmon
    dy("rm", "-f", cid, check=True)
    t0 = time.monotonic()
    wait_for(lambda: not pid_alive(mon), what="monitor exit")
    assert time.monotonic() - t0 < 10
