"""A core subset of `run` through each runtime: the built-in one, runc and crun, from the same OCI spec."""

from __future__ import annotations

import json
import shutil

import pytest

pytestmark = pytest.mark.e2e

RUNTIMES = ["dockyard", "runc", "crun"]


@pytest.fixture(params=RUNTIMES)
def runtime(request):
    if request.param != "dockyard" and shutil.which(request.param) is None:
        pytest.fail(f"{request.param} is not installed (scripts/deps.sh installs it)")
    return request.param


def test_output_exit_code_and_isolation(dy, busybox, runtime):
    p = dy("run", "--rm", "--runtime", runtime, "--hostname", "h1", "busybox", "sh", "-c",
           "echo out; echo err >&2; hostname; echo $$; grep CapEff /proc/self/status; exit 4")
    assert p.returncode == 4, p.stderr
    lines = p.stdout.split("\n")
    assert lines[:3] == ["out", "h1", "1"]
    assert int(lines[3].split()[1], 16) == 0xa80425fb
    assert p.stderr == "err\n"


def test_exec_stop_and_inspect(dy, busybox, runtime):
    cid = dy("run", "-d", "--runtime", runtime, "busybox", "sleep", "60", check=True).stdout.strip()
    assert dy("exec", cid, "sh", "-c", "echo $$ >/dev/null; ps -o pid | wc -l").returncode == 0
    info = json.loads(dy("inspect", cid).stdout)[0]
    assert info["State"]["Running"] and info["HostConfig"]["Runtime"] == runtime
    assert dy("stop", "-t", "0", cid).returncode == 0
    assert dy("inspect", "-f", "{{.State.ExitCode}}", cid).stdout.strip() == "137"
    dy("rm", cid, check=True)


def test_memory_limit(dy, busybox, runtime):
    cid = dy("run", "-d", "--runtime", runtime, "--memory", "32m", "busybox", "sh", "-c",
             "dd if=/dev/zero of=/dev/null bs=200M count=1", check=True).stdout.strip()
    assert dy("wait", cid).stdout.strip() == "137"
    dy("rm", cid, check=True)


def test_commands_that_cannot_start_exit_126_and_127(dy, busybox, runtime):
    p = dy("run", "--rm", "--runtime", runtime, "busybox", "no-such-command")
    assert p.returncode == 127 and "not found" in p.stderr
    p = dy("run", "--rm", "--runtime", runtime, "busybox", "/etc/passwd")
    assert p.returncode == 126, p.stderr
