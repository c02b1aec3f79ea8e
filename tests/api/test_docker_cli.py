"""The docker CLI against ``dockyard system service``: ps, logs, exec, cp, top, diff, export, stats."""

from __future__ import annotations

import re

import pytest

from tests.api.conftest import Service, name
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


def test_ps_format_names_status(svc: Service) -> None:
    up, done = name(), name()
    assert svc.docker("run", "-d", "--name", up, "busybox", "sleep", "300").returncode == 0
    assert svc.docker("run", "--name", done, "busybox", "sh", "-c", "exit 4").returncode == 4
    p = svc.docker("ps", "-a", "--format", "{{.Names}} {{.Status}}")
    assert p.returncode == 0, p.stderr
    lines = dict(ln.split(" ", 1) for ln in p.stdout.splitlines())
    assert re.fullmatch(r"Up (Less than a second|\d+ seconds?)", lines[up]), lines
    assert re.fullmatch(r"Exited \(4\) (Less than a second|\d+ seconds?) ago", lines[done]), lines
    p = svc.docker("ps", "--format", "{{.Names}}|{{.Command}}|{{.State}}|{{.Image}}", "--no-trunc")
    assert p.stdout.splitlines() == [f'{up}|"sleep 300"|running|busybox'], p.stderr
    assert svc.docker("rm", "-f", up, done).returncode == 0


def test_logs_and_follow(svc: Service) -> None:
    n = name()
    p = svc.docker("run", "--name", n, "busybox", "sh", "-c", "echo out1; echo err1 >&2; echo out2")
    assert p.returncode == 0, p.stderr
    p = svc.docker("logs", n)
    assert (p.returncode, p.stdout, p.stderr) == (0, "out1\nout2\n", "err1\n")
    p = svc.docker("logs", "-t", n)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z out1\n", p.stdout), p.stdout
    assert svc.docker("logs", "--until", "1h", n).stdout == ""  # everything was logged after an hour ago
    f = name()
    p = svc.docker("run", "-d", "--name", f, "busybox", "sh", "-c",
                   "for i in 1 2 3; do echo tick$i; sleep 0.3; done; echo done >&2")
    assert p.returncode == 0, p.stderr
    p = svc.docker("logs", "-f", f, timeout=30)  # returns once the container has exited
    assert (p.returncode, p.stdout, p.stderr) == (0, "tick1\ntick2\ntick3\n", "done\n")
    p = svc.docker("logs", "--tail", "2", f)
    assert (p.stdout, p.stderr) == ("tick3\n", "done\n")
    t = name()
    assert svc.docker("run", "-t", "-d", "--name", t, "busybox", "echo", "tty").returncode == 0
    svc.docker("wait", t)
    assert svc.docker("logs", t).stdout.replace("\r", "") == "tty\n"  # raw, not framed
    assert svc.docker("rm", n, f, t).returncode == 0


def test_exec(svc: Service) -> None:
    n = name()
    assert svc.docker("run", "-d", "--name", n, "busybox", "sleep", "300").returncode == 0
    p = svc.docker("exec", n, "echo", "hi")
    assert (p.returncode, p.stdout, p.stderr) == (0, "hi\n", "")
    p = svc.docker("exec", "-i", n, "cat", input="data\n")
    assert (p.returncode, p.stdout) == (0, "data\n"), p.stderr
    p = svc.docker("exec", n, "sh", "-c", "echo oops >&2; exit 7")
    assert (p.returncode, p.stdout, p.stderr) == (7, "", "oops\n")
    p = svc.docker("exec", "-d", n, "sh", "-c", "echo detached > /tmp/d")
    assert p.returncode == 0, p.stderr
    wait_for(lambda: svc.docker("exec", n, "cat", "/tmp/d").stdout == "detached\n", 15, what="the detached exec")
    ppid = svc.docker("exec", n, "sh", "-c", "cut -d' ' -f4 /proc/$$/stat").stdout.strip()
    assert ppid == "0"  # the exec's parent is outside the container (the helper), as with dockerd
    p = svc.docker("exec", n, "nosuchcommand")
    assert p.returncode in (126, 127), (p.returncode, p.stderr)
    p = svc.docker("exec", "nosuchcontainer", "true")
    assert p.returncode == 1 and "No such container" in p.stderr, p.stderr
    assert svc.docker("rm", "-f", n).returncode == 0


def test_exec_it(svc: Service) -> None:
    import pexpect

    n = name()
    assert svc.docker("run", "-d", "--name", n, "busybox", "sleep", "300").returncode == 0
    child = pexpect.spawn("docker", ["exec", "-it", n, "sh"], env=svc.env, timeout=20, dimensions=(30, 100))
    try:
        child.expect(r"[#$] ")
        child.sendline("stty size; echo $((6*7))")
        child.expect("30 100")
        child.expect("42")
        child.sendline("exit 3")
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 3
    finally:
        if child.isalive():
            child.terminate(force=True)
    assert svc.docker("rm", "-f", n).returncode == 0


def test_cp_top_diff_export_stats(svc: Service, tmp_path) -> None:
    import subprocess

    n = name()
    assert svc.docker("run", "-d", "--name", n, "busybox", "sh", "-c",
                      "echo hello > /tmp/f; sleep 300").returncode == 0
    wait_for(lambda: svc.docker("exec", n, "cat", "/tmp/f").stdout == "hello\n", 15, what="the file")
    src = tmp_path / "in.txt"
    src.write_text("from the host\n")
    p = svc.docker("cp", str(src), f"{n}:/tmp/")
    assert p.returncode == 0, p.stderr
    assert svc.docker("exec", n, "cat", "/tmp/in.txt").stdout == "from the host\n"
    p = svc.docker("cp", f"{n}:/tmp/f", str(tmp_path / "out.txt"))
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "out.txt").read_text() == "hello\n"
    p = svc.docker("cp", f"{n}:/nonexistent", str(tmp_path / "x"))
    assert p.returncode == 1 and "Could not find the file" in p.stderr, p.stderr
    p = svc.docker("top", n)
    assert p.returncode == 0 and "sleep 300" in p.stdout and p.stdout.startswith("UID"), (p.stdout, p.stderr)
    p = svc.docker("diff", n)
    assert p.returncode == 0 and "A /tmp/f" in p.stdout.splitlines() and "C /tmp" in p.stdout, p.stdout
    e = subprocess.run(f"docker export {n} | tar t", shell=True, capture_output=True, text=True, env=svc.env,
                       timeout=60)
    assert e.returncode == 0 and "bin/busybox" in e.stdout.split() and "tmp/f" in e.stdout.split(), e.stderr
    p = svc.docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}} {{.CPUPerc}}", n)
    assert p.returncode == 0, p.stderr
    nm, mem, _, _, pids, cpu = p.stdout.split()
    assert (nm, pids) == (n, "1") and mem.endswith("B") and cpu.endswith("%"), p.stdout
    assert svc.docker("rm", "-f", n).returncode == 0
