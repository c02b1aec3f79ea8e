"""cgroup limits are enforced (cgroup v1 on these hosts, v2 elsewhere)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e


def test_memory_limit_oom_kill_gives_137_and_oomkilled(dy, busybox):
    cid = dy("run", "-d", "--memory", "32m", "busybox", "sh", "-c",
             "dd if=/dev/zero of=/dev/null bs=200M count=1", check=True).stdout.strip()
    assert dy("wait", cid).stdout.strip() == "137"
    st = json.loads(dy("inspect", cid).stdout)[0]["State"]
    assert st["OOMKilled"] is True and st["ExitCode"] == 137
    dy("rm", cid, check=True)


def test_pids_limit_contains_a_fork_bomb(dy, busybox):
    # the classic recursive bomb: with --pids-limit its forks fail (EAGAIN) and it dies out by itself
    p = dy("run", "--rm", "--pids-limit", "20", "busybox", "sh", "-c", "bomb() { bomb & bomb & wait; }; bomb",
           timeout=120)
    assert "can't fork: Resource temporarily unavailable" in p.stderr
    p = dy("run", "--rm", "--pids-limit", "20", "busybox", "sh", "-c",
           "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max")
    assert p.stdout.strip() == "20"
    assert dy("run", "--rm", "busybox", "true").returncode == 0  # and the host goes on


def test_cpu_flags_reach_the_cgroup(dy, busybox):
    p = dy("run", "--rm", "--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0", "busybox", "sh", "-c",
           "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null ||"
           " cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu.weight; grep Cpus_allowed_list /proc/self/status")
    out = p.stdout.split()
    assert out[0] in ("50000", "50000 100000".split()[0])
    assert out[-1] == "0"


def test_cpu_quota_is_enforced(dy, busybox):
    # a CPU-bound loop under --cpus 0.5 gets at most half of the wall time it takes (unlimited: all of it)
    p = dy("run", "--rm", "--cpus", "0.5", "busybox", "sh", "-c",
           "time sh -c 'i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done'")
    t = {}
    for ln in p.stderr.splitlines():
        parts = ln.split()
        if len(parts) == 3 and parts[0] in ("real", "user", "sys"):
            t[parts[0]] = int(parts[1].rstrip("m")) * 60 + float(parts[2].rstrip("s"))
    assert t["real"] > 0.3, p.stderr  # long enough to span several 100 ms CFS periods
    assert (t["user"] + t["sys"]) / t["real"] < 0.7, p.stderr
