"""Escapes through the runtime's process creation: the host binary and host fds (CVE-2019-5736 class) and sysctls
that would reach the host. Driven through the installed `dockyard` command, as a user (or an attacker) would."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def _read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


# ----- sysctls ---------------------------------------------------------------------------------------------------
def test_host_sysctl_refused_and_host_unchanged(dy, busybox):
    before = _read("/proc/sys/vm/swappiness")
    new = "37" if before != "37" else "38"
    p = dy("run", "--rm", "--network", "none", "--sysctl", f"vm.swappiness={new}", "busybox", "true")
    assert p.returncode == 125
    assert p.stderr.count("\n") == 1 and "vm.swappiness" in p.stderr and "not allowed" in p.stderr
    assert _read("/proc/sys/vm/swappiness") == before
    # nothing was created either
    assert dy("ps", "-aq").stdout.strip() == ""


@pytest.mark.parametrize("name", ["kernel.shmmax/../../vm/swappiness", "net..ipv4.ip_forward", "kernel.hostname",
                                  "kernel.core_pattern", "fs.file-max"])
def test_other_host_or_malformed_sysctls_refused(dy, busybox, name):
    p = dy("create", "--network", "none", "--sysctl", f"{name}=1", "busybox", "true")
    assert p.returncode == 125 and p.stderr.count("\n") == 1, p.stderr


def test_net_sysctl_applies_in_the_container_only(dy, busybox):
    fwd = _read("/proc/sys/net/ipv4/ip_forward")
    port = _read("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    new = "77" if port != "77" else "78"
    p = dy("run", "--rm", "--network", "none", "--sysctl", f"net.ipv4.ip_forward={1 - int(fwd)}", "busybox",
           "cat", "/proc/sys/net/ipv4/ip_forward", check=True)
    assert p.stdout.strip() == str(1 - int(fwd))
    assert _read("/proc/sys/net/ipv4/ip_forward") == fwd
    # default networking (the bridge): the container's own namespace too
    p = dy("run", "--rm", "--sysctl", f"net.ipv4.ip_unprivileged_port_start={new}", "--sysctl",
           "kernel.shmmax=1048576", "busybox", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start",
           "/proc/sys/kernel/shmmax", check=True)
    assert p.stdout.split() == [new, "1048576"]
    assert _read("/proc/sys/net/ipv4/ip_unprivileged_port_start") == port


def test_net_sysctl_refused_with_host_network(dy, busybox):
    port = _read("/proc/sys/net/ipv4/ip_unprivileged_port_start")
    p = dy("run", "--rm", "--network", "host", "--sysctl", "net.ipv4.ip_unprivileged_port_start=99", "busybox",
           "true")
    assert p.returncode == 125 and "network namespace" in p.stderr and p.stderr.count("\n") == 1
    assert _read("/proc/sys/net/ipv4/ip_unprivileged_port_start") == port


def test_runtime_command_refuses_a_host_sysctl_in_a_spec(tmp_path):
    """The built-in runtime refuses too: another engine may hand it any config.json."""
    import json
    import subprocess
    import sys

    from dockyard.runtime.defaults import default_spec
    from dockyard.runtime.testing import make_busybox_rootfs

    before = _read("/proc/sys/vm/swappiness")
    b = tmp_path / "bundle"
    make_busybox_rootfs(str(b / "rootfs"))
    for sysctls in ({"vm.swappiness": "37" if before != "37" else "38"},
                    {"kernel.shmmax/../../../vm/swappiness": "37"}):
        spec = default_spec("rootfs", ["true"], cgroups_path=f"/dockyard-test/sysctl{tmp_path.name}")
        spec["linux"]["sysctl"] = sysctls
        (b / "config.json").write_text(json.dumps(spec))
        p = subprocess.run([sys.executable, "-m", "dockyard.runtime", "--root", str(tmp_path / "state"), "run",
                            "--bundle", str(b), f"sysctl{tmp_path.name}"], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        assert p.returncode == 1 and ("not allowed" in p.stderr or "invalid sysctl" in p.stderr), p.stderr
        assert _read("/proc/sys/vm/swappiness") == before
