"""The runtime on the real kernel: a core subset run through the built-in runtime, runc and crun."""

from __future__ import annotations

import os
import time

import pytest

from dockyard.errors import DockyardError
from dockyard.runtime.base import Stdio
from dockyard.runtime.testing import Harness, wait

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0, reason="needs root")]


def test_output_and_exit_code(h: Harness) -> None:
    r = h.run(["sh", "-c", "echo hello; echo oops >&2; exit 3"])
    assert (r.code, r.out, r.err) == (3, "hello\n", "oops\n")


def test_process_is_pid_1_and_host_processes_are_invisible(h: Harness) -> None:
    r = h.run(["sh", "-c", "echo $$; ls /proc | grep -c '^[0-9]'"])
    pid1, count = r.out.split()
    assert pid1 == "1"
    assert int(count) <= 3  # sh, ls, grep


def test_hostname_and_environment(h: Harness) -> None:
    r = h.run(["sh", "-c", "hostname; echo $FOO; pwd"], hostname="box1", env=["FOO=bar"], cwd="/tmp")
    assert r.out.split() == ["box1", "bar", "/tmp"]


def test_default_capabilities_are_dockers(h: Harness) -> None:
    r = h.run(["sh", "-c", "grep -E '^Cap(Eff|Bnd|Prm)' /proc/self/status"])
    caps = dict(line.split(":") for line in r.out.splitlines())
    assert {k: v.strip() for k, v in caps.items()} == {k: "00000000a80425fb" for k in ("CapPrm", "CapEff", "CapBnd")}


def test_command_not_found_fails_create_with_127(h: Harness) -> None:
    # every runtime (as runc) looks the command up before the container is created: create fails, nothing runs
    from dockyard.errors import CannotExecute, CommandNotFound

    with pytest.raises(DockyardError, match="executable file.* not found") as e:
        h.run(["nosuchcmd"])
    if h.runtime_name == "dockyard":
        assert isinstance(e.value, CommandNotFound) and str(e.value) == \
            'exec: "nosuchcmd": executable file not found in $PATH'
    with pytest.raises(DockyardError, match="(?i)permission denied") as e:
        h.run(["/etc/noexec"])
    if h.runtime_name == "dockyard":
        assert isinstance(e.value, CannotExecute)


def test_rlimits_above_the_hard_limit_do_not_fail(h: Harness) -> None:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    r = h.run(["sh", "-c", "ulimit -n"])  # the default spec asks for 1048576
    assert r.code == 0, r.err
    assert int(r.out) == min(hard, 1048576)


def test_user_and_groups(h: Harness) -> None:
    def edit(spec: dict) -> None:
        spec["process"]["user"] = {"uid": 65534, "gid": 65534, "additionalGids": [5]}

    r = h.run(["sh", "-c", "id -u; id -g; id -G; grep CapEff /proc/self/status"], edit=edit)
    lines = r.out.split("\n")
    assert lines[:3] == ["65534", "65534", "65534 5"]
    assert lines[3].split()[1] == "0000000000000000"


def test_exec_joins_the_running_container(h: Harness) -> None:
    cid, pid, out, err = h.create(["sleep", "300"], hostname="exec1")
    h.rt.start(cid)
    assert h.rt.state(cid)["status"] == "running"
    rd, wr = os.pipe()
    try:
        epid = h.rt.exec(cid, {"args": ["sh", "-c", "hostname; tr '\\0' _ </proc/1/cmdline; echo; echo $$"],
                               "env": ["PATH=/bin"], "cwd": "/"}, Stdio(None, wr, wr))
    finally:
        os.close(wr)
    assert wait(epid) == 0
    text = os.read(rd, 65536).decode()
    os.close(rd)
    host, n, mypid = text.split()
    assert host == "exec1" and n == "sleep_300_" and int(mypid) > 1
    h.rt.kill(cid, 9)
    assert wait(pid) == 137


def test_exec_leaves_the_callers_pid_namespace_and_dumpable_flag(h: Harness) -> None:
    """The built-in runtime forks an exec'd process directly into the container's pid namespace (one fork): the
    caller (the API service forks monitors afterwards, from any thread) gets its own pid namespace for children
    and its dumpable flag back, and the process runs in the container's pid namespace."""
    import threading

    from dockyard.runtime import syscalls

    cid, pid, _out, _err = h.create(["sleep", "300"])
    h.rt.start(cid)
    ns = os.stat("/proc/self/ns/pid").st_ino
    before = syscalls.prctl(3)  # PR_GET_DUMPABLE
    seen: dict[str, object] = {}

    def run() -> None:
        rd, wr = os.pipe()
        try:
            seen["pid"] = h.rt.exec(cid, {"args": ["sh", "-c", "echo $$"], "env": ["PATH=/bin"], "cwd": "/"},
                                    Stdio(None, wr, wr))
        finally:
            os.close(wr)
        seen["out"] = os.read(rd, 100).decode().strip()
        os.close(rd)
        seen["for_children"] = os.stat("/proc/thread-self/ns/pid_for_children").st_ino

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert wait(int(seen["pid"])) == 0  # type: ignore[call-overload]
    assert seen["for_children"] == ns  # the exec's thread has its own back
    assert os.stat("/proc/self/ns/pid_for_children").st_ino == ns
    assert syscalls.prctl(3) == before
    assert int(seen["out"]) != seen["pid"]  # type: ignore[call-overload]  # its pid in the container's namespace
    h.rt.kill(cid, 9)
    assert wait(pid) == 137


def test_create_makes_the_pid_namespace_for_its_init_and_leaves_the_callers(h: Harness) -> None:
    """The built-in runtime makes the container's pid namespace for the init's fork (one fork): the init is its
    pid 1, and the caller (the monitor, which forks later) gets its own pid namespace for children back."""
    from dockyard.runtime import syscalls

    ns = os.stat("/proc/self/ns/pid").st_ino
    before = syscalls.prctl(3)  # PR_GET_DUMPABLE
    cid, pid, out, _err = h.create(["sh", "-c", "echo $$"])
    assert os.stat("/proc/self/ns/pid_for_children").st_ino == ns
    assert syscalls.prctl(3) == before
    assert os.stat(f"/proc/{pid}/ns/pid").st_ino != ns
    h.rt.start(cid)
    assert wait(pid) == 0
    with open(out) as f:
        assert f.read().strip() == "1"


def test_state_lifecycle_and_kill(h: Harness) -> None:
    cid, pid, _, _ = h.create(["sleep", "300"])
    st = h.rt.state(cid)
    assert st["status"] == "created" and st["pid"] == pid and st["id"] == cid
    h.rt.start(cid)
    assert h.rt.state(cid)["status"] == "running"
    h.rt.kill(cid, 9)
    assert wait(pid) == 137
    assert h.rt.state(cid)["status"] == "stopped"
    h.rt.delete(cid)
    h.ids.remove(cid)
    with pytest.raises(DockyardError):
        h.rt.state(cid)


def test_pause_and_resume(h: Harness) -> None:
    cid, pid, _, _ = h.create(["sleep", "300"])
    h.rt.start(cid)
    h.rt.pause(cid)
    assert h.rt.state(cid)["status"] == "paused"
    h.rt.resume(cid)
    assert h.rt.state(cid)["status"] == "running"
    h.rt.delete(cid, force=True)
    h.ids.remove(cid)
    assert wait(pid) == 137


# ----- built-in runtime only -------------------------------------------------------------------------------------
@pytest.fixture
def hb(tmp_path, busybox_template: str):  # type: ignore[no-untyped-def]
    harness = Harness(str(tmp_path), busybox_template, "dockyard")
    yield harness
    harness.cleanup()


def _read_pty(master: int) -> str:
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: every slave closed
            break
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")


def test_terminal_is_the_controlling_tty_and_console(hb: Harness) -> None:
    master, slave = os.openpty()
    try:
        def edit(spec: dict) -> None:
            spec["process"]["terminal"] = True

        cid, b = hb.bundle(["sh", "-c", "tty; test -t 0 && test -t 1 && echo ISATTY; "
                                        "ps -o pid,tty | sed -n 2p; test -c /dev/console && echo CONSOLE"], edit)
        hb.ids.append(cid)
        pid = hb.rt.create(cid, b, Stdio(None, None, None, terminal_fd=slave))
        os.close(slave)
        slave = -1
        hb.rt.start(cid)
        text = _read_pty(master)
        assert wait(pid) == 0
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    lines = text.replace("\r", "").split("\n")
    assert lines[0].startswith("/dev/")
    assert "ISATTY" in lines and "CONSOLE" in lines
    assert lines[2].split()[0] == "1" and lines[2].split()[1] != "?"  # pid 1 has a controlling tty


def test_setup_error_is_one_line_and_leaves_nothing(hb: Harness, tmp_path) -> None:
    def edit(spec: dict) -> None:
        spec["mounts"].append({"destination": "/data", "type": "bind", "source": str(tmp_path / "missing"),
                               "options": ["rbind"]})

    cid, b = hb.bundle(["true"], edit)
    with pytest.raises(DockyardError) as ei:
        hb.rt.create(cid, b, Stdio(None, None, None))
    assert str(ei.value) == "cannot mount bind on /data: no such file or directory"
    assert not os.path.exists(os.path.join(hb.rt.state_root, cid))  # type: ignore[attr-defined]
    assert not os.path.exists(f"/sys/fs/cgroup/memory/dockyard-test/{cid}")
    assert not os.path.exists(f"/sys/fs/cgroup/dockyard-test/{cid}")


def test_bind_mounts_readonly_and_tmpfs(hb: Harness, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "f").write_text("from host\n")

    def edit(spec: dict) -> None:
        spec["mounts"] += [
            {"destination": "/data", "type": "bind", "source": str(data), "options": ["rbind", "ro"]},
            {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m", "mode=1777"]},
        ]

    r = hb.run(["sh", "-c", "cat /data/f; touch /data/g || echo RO; touch /scratch/x && echo TMPFS; "
                            "cat /proc/sys/kernel/shmmax"],
               edit=edit)
    assert r.out.split("\n")[:3] == ["from host", "RO", "TMPFS"]


def test_sysctl_oom_score_adj_and_cwd_created(hb: Harness) -> None:
    def edit(spec: dict) -> None:
        spec["linux"]["sysctl"] = {"kernel.shmmax": "1048576", "net.ipv4.ip_forward": "1"}
        spec["process"]["oomScoreAdj"] = 500
        spec["process"]["cwd"] = "/work/dir"

    r = hb.run(["sh", "-c", "cat /proc/sys/kernel/shmmax /proc/sys/net/ipv4/ip_forward /proc/self/oom_score_adj;"
                            " pwd; ip link 2>/dev/null | grep -c LOOPBACK,UP || cat /sys/class/net/lo/operstate"],
               edit=edit)
    assert r.out.split() [:4] == ["1048576", "1", "500", "/work/dir"]


def test_start_from_another_process_via_the_command(hb: Harness) -> None:
    import subprocess
    import sys

    cid, b = hb.bundle(["sh", "-c", "echo started"])
    root = os.path.join(hb.tmp, "cmdroot")
    out = os.path.join(hb.tmp, "out")
    # the container inherits the command's stdio: files, so that nothing waits for a pipe to close
    with open(out, "w") as f, open(out + ".err", "w+") as ferr:
        p = subprocess.run([sys.executable, "-m", "dockyard.runtime", "--root", root, "create", "--bundle", b,
                            "--pid-file", os.path.join(hb.tmp, "pid"), cid], stdin=subprocess.DEVNULL,
                           stdout=f, stderr=ferr, timeout=30)
        ferr.seek(0)
        assert p.returncode == 0, ferr.read()
    try:
        st = subprocess.run([sys.executable, "-m", "dockyard.runtime", "--root", root, "state", cid],
                            capture_output=True, text=True, timeout=30)
        assert '"status": "created"' in st.stdout
        s = subprocess.run([sys.executable, "-m", "dockyard.runtime", "--root", root, "start", cid],
                           capture_output=True, text=True, timeout=30)
        assert s.returncode == 0, s.stderr
        with open(os.path.join(hb.tmp, "pid")) as f:
            pid = int(f.read())
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{pid}") and open(f"/proc/{pid}/stat").read().split(") ")[1][0] != "Z":
            assert time.monotonic() < deadline
        with open(out) as f:
            assert f.read() == "started\n"
    finally:
        subprocess.run([sys.executable, "-m", "dockyard.runtime", "--root", root, "delete", "--force", cid],
                       timeout=30)
    assert not os.path.exists(os.path.join(root, cid))


def test_run_command_exit_code(hb: Harness) -> None:
    import subprocess
    import sys

    cid, b = hb.bundle(["sh", "-c", "exit 7"])
    p = subprocess.run([sys.executable, "-m", "dockyard.runtime", "--root", os.path.join(hb.tmp, "r"), "run",
                        "--bundle", b, cid], stdin=subprocess.DEVNULL, timeout=30)
    assert p.returncode == 7
