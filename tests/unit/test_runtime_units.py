"""Runtime logic without root: option parsing, path resolution, cgroup layout on fake trees, mount order through a
recording fake of the syscalls module, capability masks, executable lookup."""

from __future__ import annotations

import os

import pytest

from dockyard.runtime import caps, cgroups, mounts
from dockyard.runtime import syscalls as S
from dockyard.runtime.defaults import DEFAULT_CAPS, default_spec
from dockyard.runtime.linux import find_executable


def _named(path):  # type: ignore[no-untyped-def]
    """A target given as /proc/self/fd/<n>[/rest] (an fd resolved inside the root) as the host path it names."""
    if path and path.startswith("/proc/self/fd/"):
        n, _, rest = path[len("/proc/self/fd/"):].partition("/")
        return os.path.join(os.readlink(f"/proc/self/fd/{n}"), rest) if rest else os.readlink(f"/proc/self/fd/{n}")
    return path


class RecordingSyscalls:
    """Stands in for ``dockyard.runtime.syscalls``: records calls, touches nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mount(self, source, target, fstype, flags=0, data=None):  # type: ignore[no-untyped-def]
        self.calls.append(("mount", source, _named(target), fstype, flags, data))

    def umount2(self, target, flags=0):  # type: ignore[no-untyped-def]
        self.calls.append(("umount2", target, flags))

    def mknod(self, path, mode, device):  # type: ignore[no-untyped-def]
        self.calls.append(("mknod", _named(path), mode, device))
        open(path, "w").close()

    def prctl(self, *a):  # type: ignore[no-untyped-def]
        self.calls.append(("prctl", *a))
        return 0

    def capset(self, e, p, i):  # type: ignore[no-untyped-def]
        self.calls.append(("capset", e, p, i))


def test_docker_default_caps_mask() -> None:
    assert caps.mask(DEFAULT_CAPS) == 0xA80425FB
    assert caps.names(0xA80425FB) == sorted(caps.names(0xA80425FB), key=caps.CAP_NUMBERS.get)
    assert caps.mask(["chown", "CAP_NOPE"]) == 1


def test_parse_options() -> None:
    flags, prop, data = mounts.parse_options(["nosuid", "noexec", "ro", "rw", "rbind", "rprivate", "mode=755",
                                              "size=1m"])
    assert flags == S.MS_NOSUID | S.MS_NOEXEC | S.MS_BIND | S.MS_REC
    assert prop == S.MS_PRIVATE | S.MS_REC
    assert data == "mode=755,size=1m"


def test_secure_join_never_leaves_root(tmp_path) -> None:
    root = str(tmp_path)
    os.makedirs(tmp_path / "a" / "b")
    os.symlink("/etc", tmp_path / "abs")
    os.symlink("../../../../..", tmp_path / "a" / "up")
    os.symlink("loop2", tmp_path / "loop1")
    os.symlink("loop1", tmp_path / "loop2")
    assert mounts.secure_join(root, "/a/b") == f"{root}/a/b"
    assert mounts.secure_join(root, "/abs/passwd") == f"{root}/etc/passwd"
    assert mounts.secure_join(root, "/a/up/etc") == f"{root}/etc"
    assert mounts.secure_join(root, "/../../x") == f"{root}/x"
    with pytest.raises(OSError):
        mounts.secure_join(root, "/loop1/x")


def test_prepare_mounts_in_order_with_a_recording_fake(tmp_path) -> None:
    rootfs = str(tmp_path / "rootfs")
    os.makedirs(rootfs)
    spec = default_spec(rootfs, ["true"])
    spec["mounts"].append({"destination": "/data", "type": "bind", "source": str(tmp_path),
                           "options": ["rbind", "ro", "rslave"]})
    fake = RecordingSyscalls()
    mounts.prepare(spec, rootfs, None, fake, cgroup_dirs={"memory": "/x", "cpu,cpuacct": "/y"}, new_cgroupns=True)
    m = [c for c in fake.calls if c[0] == "mount"]
    assert m[0] == ("mount", None, "/", None, S.MS_SLAVE | S.MS_REC, None)
    assert m[1] == ("mount", rootfs, rootfs, None, S.MS_BIND | S.MS_REC, None)
    targets = [c[2][len(rootfs):] for c in m[2:]]
    assert targets == ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/sys/fs/cgroup/memory",
                       "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm",
                       "/data", "/data", "/data"]
    assert m[-3][4] == S.MS_BIND | S.MS_REC  # rbind, then read-only remount, then propagation
    assert m[-2][4] & (S.MS_REMOUNT | S.MS_RDONLY) == S.MS_REMOUNT | S.MS_RDONLY
    assert m[-1][4] == S.MS_SLAVE | S.MS_REC
    nodes = sorted(c[1][len(rootfs):] for c in fake.calls if c[0] == "mknod")
    assert nodes == ["/dev/full", "/dev/null", "/dev/random", "/dev/tty", "/dev/urandom", "/dev/zero"]
    assert os.readlink(f"{rootfs}/dev/fd") == "/proc/self/fd"
    assert os.path.islink(f"{rootfs}/sys/fs/cgroup/cpu") and os.path.islink(f"{rootfs}/sys/fs/cgroup/cpuacct")


def test_finalize_masks_and_readonly(tmp_path) -> None:
    root = str(tmp_path)
    os.makedirs(tmp_path / "proc" / "sys")
    os.makedirs(tmp_path / "sys" / "firmware")
    (tmp_path / "proc" / "kcore").write_text("")
    spec = {"linux": {"maskedPaths": ["/proc/kcore", "/sys/firmware", "/proc/missing"],
                      "readonlyPaths": ["/proc/sys", "/proc/absent"]}, "root": {"readonly": True}}
    fake = RecordingSyscalls()
    mounts.finalize(spec, fake, root=root)
    kinds = [(c[2][len(root):] or "/", c[3], c[4] & (S.MS_RDONLY | S.MS_BIND | S.MS_REMOUNT)) for c in fake.calls]
    assert kinds == [
        ("/proc/sys", None, S.MS_BIND), ("/proc/sys", None, S.MS_BIND | S.MS_REMOUNT | S.MS_RDONLY),
        ("/proc/absent", None, S.MS_BIND),  # the real kernel says ENOENT: skipped
        ("/proc/absent", None, S.MS_BIND | S.MS_REMOUNT | S.MS_RDONLY),
        ("/proc/kcore", None, S.MS_BIND), ("/sys/firmware", "tmpfs", S.MS_RDONLY),
        ("/proc/missing", None, S.MS_BIND),
        ("/", None, S.MS_BIND | S.MS_REMOUNT | S.MS_RDONLY),
    ]


def _fake_v1(root) -> None:  # type: ignore[no-untyped-def]
    for h in ("memory", "cpu,cpuacct", "cpuset", "pids", "freezer", "devices", "systemd"):
        d = root / h
        d.mkdir(parents=True)
        (d / "cgroup.procs").write_text("")
    (root / "cpuset" / "cpuset.cpus").write_text("0-3\n")
    (root / "cpuset" / "cpuset.mems").write_text("0\n")
    os.symlink("cpu,cpuacct", root / "cpu")


def _touch(d: str, *names: str) -> None:
    os.makedirs(d, exist_ok=True)
    for n in names:
        open(os.path.join(d, n), "a").close()


def test_cgroup_v1_layout_and_limits(tmp_path) -> None:
    _fake_v1(tmp_path)
    cg = cgroups.Cgroup.for_path("/dockyard/c1", str(tmp_path))
    assert not cg.v2
    assert cg.dirs["memory"] == f"{tmp_path}/memory/dockyard/c1"
    assert "cpu" not in cg.dirs  # the alias symlink is skipped
    # a fake tree has no kernel to create the control files: pre-create them like the kernel would
    for d in cg.dirs.values():
        _touch(d, "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "cpu.shares", "cpu.cfs_quota_us",
               "cpu.cfs_period_us", "pids.max", "devices.allow", "devices.deny")
    cg.apply({"memory": {"limit": 1 << 20, "swap": 2 << 20}, "cpu": {"shares": 512, "quota": 5, "period": 10},
              "pids": {"limit": 0}, "devices": [{"allow": False, "access": "rwm"},
                                                {"allow": True, "type": "c", "major": 1, "minor": 3}]})
    read = lambda p: (tmp_path / p).read_text()  # noqa: E731
    assert read("memory/dockyard/c1/memory.limit_in_bytes") == str(1 << 20)
    assert read("cpu,cpuacct/dockyard/c1/cpu.cfs_quota_us") == "5"
    assert read("pids/dockyard/c1/pids.max") == "max"
    assert read("devices/dockyard/c1/devices.allow") == "c 1:3 rwm"
    assert read("devices/dockyard/c1/devices.deny") == "a"


def test_cgroup_relative_path_uses_own_cgroup(tmp_path) -> None:
    _fake_v1(tmp_path)
    own = tmp_path / "self_cgroup"
    own.write_text("4:memory:/user/x\n3:cpu,cpuacct:/\n1:name=systemd:/s\n")
    cg = cgroups.Cgroup.for_path("ctr", str(tmp_path), str(own))
    assert cg.dirs["memory"] == f"{tmp_path}/memory/user/x/ctr"
    assert cg.dirs["systemd"] == f"{tmp_path}/systemd/s/ctr"
    with pytest.raises(Exception):
        cgroups.Cgroup.for_path("system.slice:docker:x", str(tmp_path))


def test_cgroup_v2_limits_and_oom(tmp_path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / "cgroup.procs").write_text("")
    cg = cgroups.Cgroup.for_path("/d/c", str(tmp_path))
    assert cg.v2 and cg.dirs == {"": f"{tmp_path}/d/c"}
    _touch(cg.dirs[""], "memory.max", "memory.swap.max", "cpu.max", "cpu.weight", "pids.max")
    cg.apply({"memory": {"limit": 100, "swap": 300}, "cpu": {"shares": 1024, "quota": 50000, "period": 100000},
              "pids": {"limit": 7}})
    read = lambda p: (tmp_path / "d" / "c" / p).read_text()  # noqa: E731
    assert (read("memory.max"), read("memory.swap.max"), read("cpu.max"), read("pids.max")) == \
        ("100", "200", "50000 100000", "7")
    assert read("cpu.weight") == "39"
    (tmp_path / "d" / "c" / "memory.events").write_text("low 0\noom 1\noom_kill 1\n")
    assert cg.oom_killed()


def test_shares_to_weight_and_device_rules() -> None:
    assert cgroups.shares_to_weight(2) == 1
    assert cgroups.shares_to_weight(262144) == 10000
    assert cgroups.device_rule({"allow": True, "type": "c", "major": 136, "access": "rwm"}) == "c 136:* rwm"
    assert cgroups.device_rule({"allow": False}) == "a"


def test_find_executable(tmp_path) -> None:
    (tmp_path / "prog").write_text("#!/bin/sh\n")
    os.chmod(tmp_path / "prog", 0o755)
    (tmp_path / "data").write_text("")
    assert find_executable("prog", f"/nonexistent:{tmp_path}") == (f"{tmp_path}/prog", 0, "")
    assert find_executable("nope", str(tmp_path))[1:] == (127, 'exec: "nope": executable file not found in $PATH')
    assert find_executable(str(tmp_path / "data"), "")[1] == 126
    assert find_executable(str(tmp_path), "")[1] == 126
    path, code, msg = find_executable("/no/such", "")
    assert (path, code) == (None, 127) and "no such file or directory" in msg


def test_capability_application_order() -> None:
    fake = RecordingSyscalls()
    caps.drop_bounding({"bounding": DEFAULT_CAPS}, fake)
    dropped = {c[2] for c in fake.calls if c[:2] == ("prctl", S.PR_CAPBSET_DROP)}
    assert dropped.isdisjoint({caps.CAP_NUMBERS[c] for c in DEFAULT_CAPS})
    assert caps.CAP_NUMBERS["CAP_SYS_ADMIN"] in dropped
    fake.calls.clear()
    caps.apply({"effective": ["CAP_KILL"], "permitted": ["CAP_KILL"], "ambient": ["CAP_KILL"],
                "inheritable": ["CAP_KILL"]}, fake)
    assert fake.calls[0] == ("capset", 1 << 5, 1 << 5, 1 << 5)
    assert fake.calls[-1] == ("prctl", S.PR_CAP_AMBIENT, S.PR_CAP_AMBIENT_RAISE, 5)
