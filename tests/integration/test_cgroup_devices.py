"""cgroup v2 device rules: the BPF program built from the OCI rules, attached by the runtime's v2 code path to a
real cgroup (this host is hybrid: the cgroup2 mount at /sys/fs/cgroup/unified is used), then a process in that
cgroup opens device nodes made with mknod."""

from __future__ import annotations

import os
import stat

import pytest

from dockyard.runtime.cgroups import Cgroup, is_v2
from dockyard.runtime.defaults import DEVICE_RULES

pytestmark = pytest.mark.e2e

UNIFIED = "/sys/fs/cgroup/unified"
V2_ROOT = "/sys/fs/cgroup" if is_v2("/sys/fs/cgroup") else UNIFIED


@pytest.fixture
def devs(tmp_path):
    """A host device (1:11, /dev/kmsg: this kernel has no /dev/mem) and /dev/null (1:3), made in a tmpdir."""
    for name, minor in (("mem", 11), ("null", 3)):
        os.mknod(tmp_path / name, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    return tmp_path


@pytest.fixture
def cgroup_with(request):
    """make(rules) -> a v2 cgroup (unique name, removed at teardown) created through Cgroup with those rules."""
    made: list[Cgroup] = []

    def make(rules: list[dict]) -> Cgroup:
        assert is_v2(V2_ROOT), f"no cgroup2 mount at {V2_ROOT}"
        cg = Cgroup.for_path(f"/dockyard-devtest-{os.getpid()}-{len(made)}", root=V2_ROOT)
        assert cg.v2
        made.append(cg)
        cg.create({"devices": rules})
        return cg

    yield make
    for cg in made:
        cg.kill_all(9)
        cg.remove(timeout=5)


def _in_cgroup(cg: Cgroup, attempts: list[tuple[str, int]]) -> list[str]:
    """Fork a process into ``cg``; it opens each (path, flags) and reports "ok" or the error name."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            cg.add(0)
            out = []
            for path, flags in attempts:
                try:
                    if flags < 0:  # mknod
                        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 11))
                    else:
                        os.close(os.open(path, flags | os.O_CLOEXEC))
                    out.append("ok")
                except OSError as e:
                    out.append(os.strerror(e.errno or 0))
            os.write(w, "\n".join(out).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 4096):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return data.decode().split("\n")


def test_default_rules_deny_mem_and_allow_null(cgroup_with, devs):
    cg = cgroup_with(DEVICE_RULES)
    got = _in_cgroup(cg, [(str(devs / "mem"), os.O_RDONLY), (str(devs / "null"), os.O_RDWR),
                          (str(devs / "mem2"), -1), (str(devs / "mem2"), os.O_RDONLY)])
    assert got == ["Operation not permitted", "ok", "ok", "Operation not permitted"]
    # the same opens from outside the cgroup work: the refusal is the program's
    os.close(os.open(devs / "mem", os.O_RDONLY))


def test_rules_allowing_the_device_let_it_open(cgroup_with, devs):
    rules = [*DEVICE_RULES, {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "r"}]
    cg = cgroup_with(rules)
    got = _in_cgroup(cg, [(str(devs / "mem"), os.O_RDONLY), (str(devs / "mem"), os.O_WRONLY)])
    assert got == ["ok", "Operation not permitted"]


def test_allow_all_then_deny_one(cgroup_with, devs):
    cg = cgroup_with([{"allow": True, "access": "rwm"},
                      {"allow": False, "type": "c", "major": 1, "minor": 11, "access": "w"}])
    got = _in_cgroup(cg, [(str(devs / "mem"), os.O_RDONLY), (str(devs / "mem"), os.O_RDWR),
                          (str(devs / "null"), os.O_WRONLY)])
    assert got == ["ok", "Operation not permitted", "ok"]
