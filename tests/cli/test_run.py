"""`dockyard run` as a Docker user sees it: output, exit codes, CMD/ENTRYPOINT, environment, flags."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.e2e


def test_hello_world_prints_the_greeting(dy, hello_world):
    p = dy("run", "--rm", "hello-world")
    assert p.returncode == 0, p.stderr
    assert "Hello from dockyard!" in p.stdout
    assert dy("ps", "-aq").stdout == ""  # --rm removed it


def test_exit_codes_follow_docker(dy, busybox):
    assert dy("run", "--rm", "busybox", "sh", "-c", "exit 3").returncode == 3
    p = dy("run", "--rm", "busybox", "no-such-command")
    assert p.returncode == 127
    assert 'executable file not found in $PATH' in p.stderr
    p = dy("run", "--rm", "busybox", "/etc/passwd")  # exists, not executable
    assert p.returncode == 126
    p = dy("run", "--rm", "--pull", "never", "no-such-image")
    assert p.returncode == 125
    assert "No such image" in p.stderr and "Traceback" not in p.stderr
    p = dy("run", "--rm", "no-such-image")  # as Docker: a missing image is pulled (test_registry.py)
    assert p.returncode == 125
    assert "Unable to find image 'no-such-image:latest' locally" in p.stderr and "Traceback" not in p.stderr
    p = dy("run", "--bogus-flag", "busybox")
    assert p.returncode == 125 and "unknown flag" in p.stderr


def test_stdout_and_stderr_are_separate(dy, busybox):
    p = dy("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert p.stdout == "out\n" and p.stderr == "err\n"


def test_cmd_and_entrypoint_as_docker(dy, busybox):
    # an image with ENTRYPOINT ["echo", "E"] and CMD ["c1"] made by commit --change
    cid = dy("create", "busybox", "true", check=True).stdout.strip()
    dy("commit", "-c", 'ENTRYPOINT ["echo", "E"]', "-c", 'CMD ["c1"]', cid, "ep:1", check=True)
    assert dy("run", "--rm", "ep:1").stdout == "E c1\n"
    assert dy("run", "--rm", "ep:1", "x", "y").stdout == "E x y\n"          # args replace CMD
    assert dy("run", "--rm", "--entrypoint", "echo", "ep:1").stdout == "\n"  # clears CMD too
    assert dy("run", "--rm", "--entrypoint", "echo", "ep:1", "z").stdout == "z\n"


def test_env_workdir_user_hostname(dy, busybox, tmp_path):
    envf = tmp_path / "env"
    envf.write_text("# comment\nFROM_FILE=yes\n")
    p = dy("run", "--rm", "-e", "A=1", "-e", "PASSED", "--env-file", str(envf), "-w", "/tmp", "-u", "nobody",
           "--hostname", "box1", "busybox", "sh", "-c", 'echo $A $PASSED $FROM_FILE; pwd; id -u; hostname',
           env={"PASSED": "through"})
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:4] == ["1 through yes", "/tmp", "65534", "box1"]


def test_detached_logs_ps_stop_rm(dy, busybox):
    name = "web-" + os.urandom(3).hex()
    cid = dy("run", "-d", "--name", name, "busybox", "sh", "-c", "echo ready; exec sleep 60",
             check=True).stdout.strip()
    assert len(cid) == 64
    from tests.helpers import wait_for

    wait_for(lambda: dy("logs", name).stdout == "ready\n", what="log line")
    ps = dy("ps").stdout
    assert name in ps and cid[:12] in ps and "Up " in ps
    p = dy("rm", name)
    assert p.returncode == 1 and "stop the container before removing" in p.stderr
    assert dy("stop", "-t", "1", name).returncode == 0
    st = dy("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", name).stdout.split()
    assert st == ["exited", "137"]  # sleep as pid 1 ignores SIGTERM: SIGKILL after the timeout
    assert dy("rm", name).stdout.strip() == name
    assert dy("ps", "-aq").stdout == ""
    assert not [ln for ln in open("/proc/mounts") if cid in ln]


def test_name_conflict_and_prefix_lookup(dy, busybox):
    name = "dup-" + os.urandom(3).hex()
    cid = dy("create", "--name", name, "busybox", "true", check=True).stdout.strip()
    p = dy("create", "--name", name, "busybox", "true")
    assert p.returncode == 1 and "is already in use" in p.stderr  # the Docker 28 CLI: create refused by the engine: 1
    assert dy("inspect", "-f", "{{.Name}}", cid[:12]).stdout.strip() == "/" + name
    assert dy("start", "-a", cid[:8]).returncode == 0


def test_read_only_rootfs_and_tmpfs(dy, busybox):
    p = dy("run", "--rm", "--read-only", "--tmpfs", "/scratch", "busybox", "sh", "-c",
           "touch /x 2>/dev/null && echo wrote-root; touch /scratch/y && echo wrote-tmpfs")
    assert p.stdout == "wrote-tmpfs\n"


def test_cidfile_and_labels(dy, busybox, tmp_path):
    cidfile = tmp_path / "cid"
    p = dy("run", "--rm", "--cidfile", str(cidfile), "-l", "a=b", "busybox", "true")
    assert p.returncode == 0
    assert len(cidfile.read_text()) == 64
    p = dy("run", "--rm", "--cidfile", str(cidfile), "busybox", "true")
    assert p.returncode == 125 and "Container ID file found" in p.stderr


def test_wait_returns_the_exit_code(dy, busybox):
    cid = dy("run", "-d", "busybox", "sh", "-c", "exit 7", check=True).stdout.strip()
    assert dy("wait", cid).stdout.strip() == "7"


def test_stdin_is_passed_with_i(dy, busybox):
    p = dy("run", "--rm", "-i", "busybox", "sh", "-c", "tr a-z A-Z", input="hello\n")
    assert p.stdout == "HELLO\n"


def test_restart_on_failure_by_the_monitor(dy, busybox):
    cid = dy("run", "-d", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; exit 1",
             check=True).stdout.strip()
    from tests.helpers import wait_for

    wait_for(lambda: dy("inspect", "-f", "{{.State.Status}} {{.RestartCount}}", cid).stdout.split()
             == ["exited", "2"], timeout=20, what="two restarts")
    assert dy("logs", cid).stdout == "run\n" * 3


def test_init_reaps_and_forwards_signals(dy, busybox):
    p = dy("run", "--rm", "--init", "busybox", "sh", "-c", "ps -o pid,comm | grep ' 1 '; exit 3")
    assert p.returncode == 3
    assert "docker-init" in p.stdout
    cid = dy("run", "-d", "--init", "busybox", "sleep", "60", check=True).stdout.strip()
    # without --init, sleep as pid 1 would ignore SIGTERM and need the SIGKILL after the timeout
    assert dy("stop", "-t", "30", cid).returncode == 0
    assert dy("inspect", "-f", "{{.State.ExitCode}}", cid).stdout.strip() == "143"


def test_restart_always_until_stopped(dy, busybox):
    cid = dy("run", "-d", "--restart", "always", "busybox", "true", check=True).stdout.strip()
    from tests.helpers import wait_for

    wait_for(lambda: int(dy("inspect", "-f", "{{.RestartCount}}", cid).stdout or 0) >= 3, timeout=20,
             what="three restarts")
    assert dy("stop", "-t", "1", cid).returncode == 0
    wait_for(lambda: dy("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() == "exited", what="stopped")
    n = dy("inspect", "-f", "{{.RestartCount}}", cid).stdout.strip()
    # a stopped container is not restarted again once its monitor has seen the stop
    assert dy("wait", cid).returncode == 0
    assert dy("inspect", "-f", "{{.State.Status}} {{.RestartCount}}", cid).stdout.split() == ["exited", n]


def test_kill_disables_the_restart_policy_but_usr1_does_not(dy, busybox):
    cid = dy("run", "-d", "--restart", "always", "busybox", "sh", "-c", "trap 'echo usr1' USR1; "
             "while true; do sleep 0.1; done", check=True).stdout.strip()
    from tests.helpers import wait_for

    assert dy("kill", "-s", "USR1", cid).returncode == 0
    wait_for(lambda: "usr1" in dy("logs", cid).stdout, what="trap")
    assert dy("inspect", "-f", "{{.State.Running}}", cid).stdout.strip() == "true"
    assert dy("kill", cid).returncode == 0
    assert dy("wait", cid).stdout.strip() == "137"
    assert dy("inspect", "-f", "{{.State.Status}} {{.RestartCount}}", cid).stdout.split() == ["exited", "0"]


def test_platform_must_match_the_image(dy, busybox):
    import platform as pf

    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(pf.machine(), pf.machine())
    other = "arm64" if arch == "amd64" else "amd64"
    p = dy("run", "--rm", "--platform", f"linux/{other}", "busybox", "true")
    assert p.returncode == 125 and "does not match the specified platform" in p.stderr
    assert dy("ps", "-aq").stdout == ""  # nothing was created
    assert dy("run", "--rm", "--platform", f"linux/{arch}", "busybox", "echo", "ok").stdout == "ok\n"
