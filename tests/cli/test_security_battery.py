"""Security battery: from inside a default container, every one of these attempts must fail."""

from __future__ import annotations

import os
import socket

import pytest

pytestmark = pytest.mark.e2e


def _run(dy, script, *flags):
    return dy("run", "--rm", *flags, "busybox", "sh", "-c", script)


def test_cannot_see_host_processes(dy, busybox):
    me = os.getpid()
    p = _run(dy, f"ls /proc | grep -x {me} || echo hidden; ps -o pid | wc -l")
    lines = p.stdout.split()
    assert lines[0] == "hidden"
    assert int(lines[1]) <= 4  # header, sh, ps, wc


def test_cannot_mount(dy, busybox):
    p = _run(dy, "mount -t tmpfs none /mnt && echo MOUNTED; mount --bind /bin /mnt && echo BOUND; echo done")
    assert "MOUNTED" not in p.stdout and "BOUND" not in p.stdout and "done" in p.stdout


@pytest.mark.parametrize("path", ["/proc/sys/kernel/domainname", "/proc/sys/vm/drop_caches",
                                  "/sys/kernel/uevent_helper", "/proc/sysrq-trigger"])
def test_cannot_write_proc_sys_or_sys(dy, busybox, path):
    p = _run(dy, f"echo 1 > {path} && echo WROTE; echo done")
    assert "WROTE" not in p.stdout and "done" in p.stdout


def test_cannot_load_kernel_modules(dy, busybox):
    # no CAP_SYS_MODULE in any set; the init_module syscall is refused
    p = _run(dy, "grep -E '^Cap(Eff|Bnd)' /proc/self/status; insmod /bin/busybox && echo LOADED; echo done")
    for ln in p.stdout.splitlines():
        if ln.startswith(("CapEff", "CapBnd")):
            mask = int(ln.split()[1], 16)
            assert not mask & (1 << 16)  # CAP_SYS_MODULE
            assert mask == 0xa80425fb  # exactly Docker's default set
    assert "LOADED" not in p.stdout and "done" in p.stdout


def test_cannot_change_host_hostname_or_time(dy, busybox):
    import time

    host = socket.gethostname()
    p = _run(dy, "hostname evil && echo RENAMED; date -s '2001-01-01 00:00:00'; date +%Y; echo done")
    assert "RENAMED" not in p.stdout and "done" in p.stdout
    assert "can't set date" in p.stderr  # busybox date reports EPERM but exits 0
    assert socket.gethostname() == host
    assert time.gmtime().tm_year > 2001


def test_cannot_read_host_devices(dy, busybox):
    st = os.stat("/dev/vda") if os.path.exists("/dev/vda") else os.stat(os.path.realpath("/proc/self/root"))
    major, minor = (os.major(st.st_rdev), os.minor(st.st_rdev)) if st.st_rdev else (8, 0)
    p = _run(dy, f"ls /dev; mknod /tmp/disk b {major} {minor} && head -c 1 /tmp/disk >/dev/null && echo READ;"
                 " echo done")
    assert "READ" not in p.stdout and "done" in p.stdout
    assert "vda" not in p.stdout.split() and "sda" not in p.stdout.split()


def test_cannot_escape_the_rootfs(dy, busybox, tmp_path):
    marker = tmp_path / "host-secret"
    marker.write_text("secret")
    p = _run(dy, f"cat /proc/1/root{marker} && echo ESCAPED1; ln -s / /tmp/up && cat /tmp/up/../..{marker} && "
                 f"echo ESCAPED2; cat /proc/*/root{marker} 2>/dev/null && echo ESCAPED3; echo done")
    assert "secret" not in p.stdout and "ESCAPED" not in p.stdout and "done" in p.stdout


def test_cp_does_not_follow_container_symlinks_out(dy, busybox, tmp_path):
    cid = dy("create", "busybox", "true", check=True).stdout.strip()
    dy("start", "-a", cid, check=True)
    # a hostile container: /evil -> ../../../../etc (absolute climb) ; cp must read the container's /etc
    evil = tmp_path / "evil"
    evil.symlink_to("/../../../../../etc")
    assert dy("cp", str(evil), f"{cid}:/evil").returncode == 0
    out = tmp_path / "out"
    assert dy("cp", f"{cid}:/evil/passwd", str(out)).returncode == 0
    assert out.read_text().startswith("root:x:0:0:root:/root:/bin/sh")  # busybox's, not the host's
    with open("/etc/passwd") as f:
        assert out.read_text() != f.read()
    dy("rm", cid, check=True)


def test_seccomp_blocks_user_namespaces_and_keyrings(dy, busybox):
    p = _run(dy, "grep Seccomp: /proc/self/status; unshare -U true && echo USERNS; unshare -n true && echo NETNS;"
                 " echo done")
    assert "Seccomp:\t2" in p.stdout  # a filter is installed
    assert "USERNS" not in p.stdout and "NETNS" not in p.stdout and "done" in p.stdout
    assert "Operation not permitted" in p.stderr


def test_seccomp_unconfined_privileged_and_cap_add(dy, busybox):
    p = _run(dy, "grep Seccomp: /proc/self/status; unshare -U true && echo USERNS", "--security-opt",
             "seccomp=unconfined")
    assert "Seccomp:\t0" in p.stdout and "USERNS" in p.stdout
    p = _run(dy, "grep -E '^(CapEff|Seccomp):' /proc/self/status", "--privileged")
    assert p.returncode == 0, p.stderr
    assert "Seccomp:\t0" in p.stdout
    assert int(p.stdout.split("CapEff:")[1].split()[0], 16) & (1 << 21)  # CAP_SYS_ADMIN
    p = _run(dy, "unshare -m true && echo MOUNTNS", "--cap-add", "SYS_ADMIN")
    assert "MOUNTNS" in p.stdout  # the profile follows the capabilities, as Docker's does
