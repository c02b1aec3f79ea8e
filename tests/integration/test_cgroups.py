"""cgroup limits are enforced (memory/OOM, pids, cpu, cpuset) and visible, through every runtime."""

from __future__ import annotations

import os
import time

import pytest

from dockyard.runtime.testing import Harness, wait

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]

MiB = 1024 * 1024


def _resources(**r: dict) -> dict:
    return r


def test_memory_limit_oom_kill_gives_137(h: Harness) -> None:
    cid, pid, _, _ = h.create(["tail", "/dev/zero"],  # tail buffers an endless line: grows until killed
                              resources=_resources(memory={"limit": 32 * MiB, "swap": 32 * MiB}))
    h.rt.start(cid)
    assert wait(pid, timeout=60) == 137
    assert h.rt.oom_killed(cid) is True


def test_no_oom_flag_without_oom(h: Harness) -> None:
    cid, pid, _, _ = h.create(["true"], resources=_resources(memory={"limit": 32 * MiB}))
    h.rt.start(cid)
    assert wait(pid) == 0
    assert h.rt.oom_killed(cid) is False


def test_pids_limit_contains_a_fork_bomb(h: Harness) -> None:
    # the inner shell forks until fork fails (then exits); pid 1 survives and keeps the forked sleeps
    cid, pid, _, err = h.create(["sh", "-c", "sh -c 'while :; do sleep 1000 & done'; sleep 1000"],
                                resources=_resources(pids={"limit": 20}))
    h.rt.start(cid)
    deadline = time.monotonic() + 20
    while True:
        with open(err) as f:
            if "can't fork" in f.read():
                break
        assert time.monotonic() < deadline, "fork never failed"
        assert h.rt.stats(cid)["pids"]["current"] <= 20
    for _ in range(50):
        st = h.rt.stats(cid)["pids"]
        assert 15 <= st["current"] <= 20 and st["limit"] == 20
    assert h.rt.state(cid)["status"] == "running"
    h.rt.delete(cid, force=True)
    h.ids.remove(cid)
    assert wait(pid) == 137


def test_cpu_and_cpuset_limits_are_visible_inside(h: Harness) -> None:
    v1 = not os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    res = _resources(cpu={"quota": 50000, "period": 100000, "shares": 512, "cpus": "0", "mems": ""})
    if v1:
        cmd = ("cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares "
               "/sys/fs/cgroup/cpuset/cpuset.cpus")
        want = ["50000", "512", "0"]
    else:
        cmd = "cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu.weight /sys/fs/cgroup/cpuset.cpus"
        want = ["50000", "100000", "20", "0"]
    r = h.run(["sh", "-c", cmd], resources=res)
    assert r.code == 0, r.err
    assert r.out.split() == want


def test_memory_limit_and_usage_in_stats(h: Harness) -> None:
    cid, pid, _, _ = h.create(["sleep", "300"], resources=_resources(memory={"limit": 64 * MiB}))
    h.rt.start(cid)
    st = h.rt.stats(cid)
    assert st["memory"]["limit"] == 64 * MiB
    assert st["memory"]["usage"] > 0
    assert st["pids"]["current"] >= 1
    assert st["cpu"]["usage_ns"] > 0
    h.rt.delete(cid, force=True)
    h.ids.remove(cid)
    assert wait(pid) == 137


def test_delete_removes_the_cgroup(h: Harness) -> None:
    cid, pid, _, _ = h.create(["sleep", "300"])
    h.rt.start(cid)
    v1 = not os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    with open(f"/proc/{pid}/cgroup") as f:
        mem = next(line.split(":", 2)[2].strip() for line in f if (":memory:" in line if v1 else line[:3] == "0::"))
    assert mem.endswith(cid)
    path = ("/sys/fs/cgroup/memory" if v1 else "/sys/fs/cgroup") + mem
    assert os.path.isdir(path)
    h.rt.delete(cid, force=True)
    h.ids.remove(cid)
    assert wait(pid) == 137
    assert not os.path.exists(path)


def _cgroup_lines(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/cgroup") as f:
        return {ln.split(":", 2)[1]: ln.split(":", 2)[2].strip() for ln in f if ln.strip()}


def test_init_and_exec_are_in_the_cgroup_of_every_hierarchy(h: Harness) -> None:
    """The built-in runtime joins cgroups on the cheap paths (born in the v2 cgroup by clone3, v1 through `tasks`):
    the init and an exec'd process must still be in the container's cgroup in every hierarchy, v2 included."""
    cid, pid, _, _ = h.create(["sleep", "300"])
    h.rt.start(cid)
    from dockyard.runtime.base import Stdio

    epid = h.rt.exec(cid, {"args": ["sleep", "300"]}, Stdio())
    try:
        for p in (pid, epid):
            lines = _cgroup_lines(p)
            wanted = {k: v for k, v in lines.items() if k != "hugetlb" or v != "/"}  # hugetlb unmounted here
            assert wanted and all(v.endswith("/" + cid) for v in wanted.values()), lines
    finally:
        os.kill(epid, 9)
        wait(epid)


def test_a_child_of_cgroup_fork_is_born_in_its_v2_cgroup() -> None:
    """clone3(CLONE_INTO_CGROUP): the child is in the container's v2 cgroup before it writes any cgroup file, so
    the start path pays no migration under the global lock there (an RCU grace period, 10-16 ms here)."""
    from dockyard.runtime.cgroups import Cgroup

    cg = Cgroup.for_path(f"/dockyard-test/born-{os.getpid()}-{time.monotonic_ns()}")
    dfl = cg.dirs.get("") if cg.v2 else cg.dirs.get("unified")
    if dfl is None:
        pytest.skip("no cgroup v2 hierarchy on this host")
    cg.create({})
    try:
        r, w = os.pipe()
        pid = cg.fork()
        if pid == 0:
            try:
                os.write(w, open("/proc/self/cgroup").read().encode())
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r) as f:
            text = f.read()
        os.waitpid(pid, 0)
        v2_line = next(ln for ln in text.splitlines() if ln.startswith("0::"))
        rel = os.path.relpath(dfl, "/sys/fs/cgroup" if cg.v2 else "/sys/fs/cgroup/unified")
        assert v2_line == "0::/" + rel
    finally:
        cg.remove()  # the shared /dockyard-test parent stays, as the runtime harness leaves it
