"""Escapes through the runtime's process creation: the host binary and host fds (CVE-2019-5736 class) and sysctls
that would reach the host. Driven through the installed `dockyard` command, as a user (or an attacker) would."""

from __future__ import annotations

import os
import sys

import pytest

pytestmark = pytest.mark.e2e

HOST_PYTHON = os.path.realpath(sys.executable)

# A script run as its own interpreter's input: if /proc/self/exe is the host's python, this runs as Python.
SELF_EXE_SCRIPT = """#!/proc/self/exe
import os, sys
print("HOST-PYTHON", sys.version.split()[0], os.readlink("/proc/self/exe"))
"""


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


# ----- the host binary and host fds (CVE-2019-5736 class) ---------------------------------------------------------
def test_proc_self_exe_script_does_not_run_the_host_interpreter(dy, busybox, tmp_path):
    d = tmp_path / "entry"
    d.mkdir()
    (d / "entry.sh").write_text(SELF_EXE_SCRIPT)
    (d / "entry.sh").chmod(0o755)
    p = dy("run", "--rm", "--network", "none", "-v", f"{d}:/x:ro", "--entrypoint", "/x/entry.sh", "busybox")
    assert "HOST-PYTHON" not in p.stdout + p.stderr
    assert p.returncode == 126 and p.stderr.strip() == "dockyard-exec: not a container program", p.stderr
    # and the same through exec
    cid = dy("run", "-d", "--network", "none", "-v", f"{d}:/x:ro", "busybox", "sleep", "60", check=True).stdout.strip()
    p = dy("exec", cid, "/x/entry.sh")
    assert "HOST-PYTHON" not in p.stdout + p.stderr and p.returncode == 126, p
    # what the container program itself sees as its exe: its own binary, never the host's python
    p = dy("exec", cid, "sh", "-c", "readlink /proc/self/exe; readlink /proc/1/exe", check=True)
    assert p.stdout.split() == ["/bin/busybox", "/bin/busybox"]


def test_build_run_step_with_proc_self_exe_script(dy, busybox, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "entry.sh").write_text(SELF_EXE_SCRIPT)
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY entry.sh /entry.sh\nRUN chmod 755 /entry.sh\n"
                                       'RUN ["/entry.sh"]\n')
    p = dy("build", "-t", "selfexe", str(ctx), timeout=120)
    assert "HOST-PYTHON" not in p.stdout + p.stderr
    assert p.returncode != 0 and "not a container program" in p.stdout + p.stderr, p.stderr


def test_container_processes_hold_only_their_stdio(dy, busybox):
    cid = dy("run", "-d", "--network", "none", "busybox", "sleep", "60", check=True).stdout.strip()
    p = dy("exec", cid, "sh", "-c", "ls /proc/1/fd; echo -; ls /proc/$$/fd; :", check=True)
    pid1, _, mine = p.stdout.partition("-")
    assert pid1.split() == ["0", "1", "2"]
    assert mine.split() == ["0", "1", "2"]
    p = dy("exec", "-u", "1000", cid, "sh", "-c", "id -u; ls /proc/$$/fd; :", check=True)
    assert p.stdout.split() == ["1000", "0", "1", "2"]


RACE = r"""
while :; do
  for d in /proc/[0-9]*; do
    [ "$d" = /proc/$$ ] && continue
    if [ -e $d/exe ] && ! [ $d/exe -ef /bin/busybox ]; then
      echo "EXE $(readlink $d/exe)"
      for f in $d/fd/*; do echo "FD $(readlink $f)"; done
      echo x 2>/dev/null >> $d/exe && echo "WROTE $(readlink $d/exe)"
    fi
  done
done
"""


def test_exec_cannot_be_raced_to_the_host_binary_or_fds(dy, busybox, root):
    """A process in the container watches every new process while `exec` runs: it may only ever see container
    binaries or the sealed exec stub, never the host's python, a host fd (the store's database) or a file it can
    write."""
    cid = dy("run", "-d", "--network", "none", "busybox", "sh", "-c", RACE, check=True).stdout.strip()
    for _ in range(30):
        dy("exec", cid, "true", check=True)
        dy("exec", "-u", "1000", cid, "true", check=True)
    logs = dy("logs", cid, check=True).stdout + dy("logs", cid).stderr
    seen = set(ln for ln in logs.splitlines() if ln.strip())
    assert not any("python" in ln or HOST_PYTHON in ln for ln in seen), seen
    assert not any("dockyard.db" in ln or str(root) in ln for ln in seen), seen
    assert not any(ln.startswith("WROTE") for ln in seen), seen
    exes = {ln for ln in seen if ln.startswith("EXE ")}
    assert exes <= {"EXE /memfd:dockyard-exec (deleted)", "EXE /bin/busybox", "EXE "}, exes


def test_missing_exec_stub_is_a_clear_error_and_nothing_runs(tmp_path):
    """No fallback to exec'ing from python: without dockyard-exec the runtime refuses, naming scripts/deps.sh."""
    import json
    import subprocess

    from dockyard.runtime.defaults import default_spec
    from dockyard.runtime.testing import make_busybox_rootfs

    py = tmp_path / "venv" / "bin" / "python"  # a python whose libexec has no stub
    py.parent.mkdir(parents=True)
    py.symlink_to(HOST_PYTHON)
    b = tmp_path / "bundle"
    make_busybox_rootfs(str(b / "rootfs"))
    spec = default_spec("rootfs", ["sh", "-c", "echo RAN"], cgroups_path=f"/dockyard-test/nostub{tmp_path.name}")
    (b / "config.json").write_text(json.dumps(spec))
    src = os.path.dirname(os.path.dirname(os.path.abspath(__import__("dockyard").__file__)))
    p = subprocess.run([str(py), "-m", "dockyard.runtime", "--root", str(tmp_path / "state"), "run", "--bundle",
                        str(b), f"nostub{tmp_path.name}"], capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": src})
    assert p.returncode != 0 and "RAN" not in p.stdout
    assert p.stderr.count("\n") == 1 and "dockyard-exec" in p.stderr and "scripts/deps.sh" in p.stderr, p.stderr
