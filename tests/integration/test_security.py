"""Security battery, tested from inside a default container: every escape attempt must fail."""

from __future__ import annotations

import os
import socket
import time

import pytest

from dockyard.runtime.testing import Harness

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def _attempts(secret: str) -> dict[str, str]:
    """name -> shell command that must FAIL (non-zero) inside a default container."""
    dev = os.stat("/").st_dev
    return {
        "mount tmpfs": "mount -t tmpfs none /mnt",
        "bind mount": "mkdir -p /mnt2 && mount --bind /bin /mnt2",
        "remount root": "mount -o remount,rw /proc/sys",
        "write /proc/sys": "echo evil > /proc/sys/kernel/hostname",
        "write /proc/sysrq-trigger": "echo h > /proc/sysrq-trigger",
        "write /sys": "echo 1 > /sys/kernel/profiling || touch /sys/evil",
        "load a kernel module": "echo x > /tmp/m.ko && insmod /tmp/m.ko",
        "set hostname": "hostname evil",
        # busybox's date exits 0 even when settimeofday fails: check the clock instead
        "set time": "date -s '2001-01-01 00:00:00'; date +%Y | grep -q 2001",
        "read host disk": f"mknod /tmp/disk b {os.major(dev)} {os.minor(dev)} && head -c 1 /tmp/disk >/dev/null",
        "read /dev/mem": "mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem >/dev/null",
        "see host file": f"cat {secret}",
        "escape via /proc/1/root": f"cat /proc/1/root{secret}",
        "escape via symlink": "cat /escape",
        "kill host process": "kill -0 1 && kill -9 999999",
    }


def test_escape_attempts_fail(h: Harness, tmp_path) -> None:
    secret = str(tmp_path / "secret")
    with open(secret, "w") as f:
        f.write("host secret\n")
    attempts = _attempts(secret)
    script = "".join(f"if ( {cmd} ) >/dev/null 2>&1; then echo 'ESCAPED {name}'; fi\n"
                     for name, cmd in attempts.items())
    script += "echo done\n"
    host_name = socket.gethostname()
    before = time.time()

    def setup(rootfs: str) -> None:
        os.symlink("../../../../../../../../.." + secret, os.path.join(rootfs, "escape"))

    r = h.run(["sh", "-c", script], hostname="sec", setup=setup)
    assert r.out.splitlines() == ["done"], r.out + r.err
    assert socket.gethostname() == host_name
    assert abs(time.time() - before) < 60


def test_masked_and_readonly_paths(h: Harness) -> None:
    r = h.run(["sh", "-c", "cat /proc/kcore 2>/dev/null | wc -c; wc -c < /proc/keys; ls -A /sys/firmware | wc -l; "
                           "grep -E ' /proc/(sys|bus|fs|irq|sysrq-trigger) ' /proc/mounts | grep -c ' ro,'"])
    kcore, keys, firmware, ro = r.out.split()
    assert (kcore, keys, firmware) == ("0", "0", "0")
    assert int(ro) >= 4  # /proc/bus may be absent on some kernels


def test_no_new_privileges_and_dropped_caps(h: Harness) -> None:
    def edit(spec: dict) -> None:
        spec["process"]["noNewPrivileges"] = True
        spec["process"]["capabilities"] = {k: ["CAP_CHOWN"] for k in ("bounding", "effective", "permitted")}

    r = h.run(["sh", "-c", "grep -E '^(NoNewPrivs|CapEff|CapBnd)' /proc/self/status; chown 1 /tmp; "
                           "mknod /tmp/x c 1 3 && echo MKNOD"], edit=edit)
    fields = dict(line.split(":\t") for line in r.out.splitlines() if ":\t" in line)
    assert fields == {"CapEff": "0000000000000001", "CapBnd": "0000000000000001", "NoNewPrivs": "1"}
    assert "MKNOD" not in r.out


def test_readonly_root(h: Harness) -> None:
    r = h.run(["sh", "-c", "touch /x && echo WROTE; touch /tmp/y && echo TMP; touch /dev/shm/z && echo SHM"],
              readonly=True)
    assert "WROTE" not in r.out and "TMP" not in r.out  # /tmp is part of the read-only root here
    assert "SHM" in r.out
