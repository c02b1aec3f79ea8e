"""The C slim loop of the monitor (engine/monitor_loop.c, built as .venv/libexec/dockyard-monitor).

Every test here keeps its container alive past the monitor's grace period (0.2 s), so that the output, input,
attach clients and exit are handled by the C loop, and the finish phase by Python after the C loop execs back.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import DOCKYARD
from tests.helpers import pid_alive, wait_for

pytestmark = pytest.mark.e2e

BINARY = str(Path(sys.executable).parent.parent / "libexec" / "dockyard-monitor")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


@pytest.fixture(autouse=True)
def _built() -> None:
    assert os.access(BINARY, os.X_OK), "dockyard-monitor is not built: run scripts/deps.sh"


def _monitor_pid(root: Path, cid: str) -> int:
    with sqlite3.connect(root / "dockyard.db", timeout=30) as c:
        return c.execute("SELECT monitor_pid FROM containers WHERE id=?", (cid,)).fetchone()[0]


def _exe(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _slim(root: Path, cid: str) -> int:
    """Wait until the container's monitor runs the C loop; returns its pid."""
    pid = _monitor_pid(root, cid)
    wait_for(lambda: _exe(pid) == BINARY, what="the monitor to exec the C loop")
    return pid


def _records(root: Path, cid: str, suffix: str = "") -> list[dict]:
    path = root / "containers" / cid / f"{cid}-json.log{suffix}"
    return [json.loads(ln) for ln in path.read_bytes().splitlines()]


def test_logs_written_over_time_by_the_c_loop(dy, busybox, root):
    cid = dy("run", "-d", "busybox", "sh", "-c",
             "i=0; while [ $i -lt 20 ]; do echo out $i; echo err $i >&2; i=$((i+1)); sleep 0.05; done",
             check=True).stdout.strip()
    _slim(root, cid)
    assert dy("wait", cid).stdout.strip() == "0"
    p = dy("logs", cid)
    assert p.stdout == "".join(f"out {i}\n" for i in range(20))
    assert p.stderr == "".join(f"err {i}\n" for i in range(20))
    recs = _records(root, cid)
    assert len(recs) == 40
    for r in recs:
        assert set(r) == {"log", "stream", "time"}
        assert TIME.match(r["time"]), r["time"]
        assert r["stream"] == ("stdout" if r["log"].startswith("out") else "stderr")
    assert [r["time"] for r in recs if r["stream"] == "stdout"] == \
        sorted(r["time"] for r in recs if r["stream"] == "stdout")


def test_json_escaping_and_invalid_utf8(dy, busybox, root):
    cid = dy("run", "-d", "busybox", "sh", "-c",
             r"sleep 0.5; printf 'q\042b\134s\t\001\033x\303\251 \377\n'", check=True).stdout.strip()
    _slim(root, cid)
    assert dy("wait", cid).stdout.strip() == "0"
    line = (root / "containers" / cid / f"{cid}-json.log").read_bytes()
    assert line.startswith(b'{"log": "q\\"b\\\\s\\t\\u0001\\u001bx\xc3\xa9 \xef\xbf\xbd\\n", "stream": "stdout", '
                           b'"time": "')
    p = subprocess.run([DOCKYARD, "--root", str(root), "logs", cid], capture_output=True)
    assert p.stdout == 'q"b\\s\t\x01\x1bxé \ufffd\n'.encode()


def test_long_line_and_partial_line_at_exit(dy, busybox, root):
    cid = dy("run", "-d", "busybox", "sh", "-c",
             "sleep 0.5; head -c 20000 /dev/zero | tr '\\0' a; echo; printf 'no newline'; sleep 0.3",
             check=True).stdout.strip()
    _slim(root, cid)
    assert dy("wait", cid).stdout.strip() == "0"
    assert dy("logs", cid).stdout == "a" * 20000 + "\nno newline"
    recs = _records(root, cid)
    assert recs[-1]["log"] == "no newline"  # a partial line at exit is written without a newline
    assert "".join(r["log"] for r in recs[:-1]) == "a" * 20000 + "\n"
    assert all(r["stream"] == "stdout" and TIME.match(r["time"]) for r in recs)


def test_a_partial_line_is_written_once_it_reaches_16_kib(dy, busybox, root):
    cid = dy("run", "-d", "busybox", "sh", "-c",
             "sleep 0.5; head -c 17000 /dev/zero | tr '\\0' b; sleep 60", check=True).stdout.strip()
    _slim(root, cid)
    path = root / "containers" / cid / f"{cid}-json.log"
    wait_for(lambda: path.stat().st_size > 16384, what="a record of the partial line")
    recs = _records(root, cid)
    assert recs[0]["log"] and set(recs[0]["log"]) == {"b"} and len(recs[0]["log"]) >= 16384
    assert dy("inspect", "-f", "{{.State.Running}}", cid).stdout.strip() == "true"
    dy("stop", "-t", "0", cid, check=True)
    assert dy("logs", cid).stdout == "b" * 17000  # the rest is flushed at exit


def test_log_rotation(dy, busybox, root):
    n = 300000  # 2 x 2 MB of output, 2 x 24 MB of records: more than both files hold
    cid = dy("run", "-d", "busybox", "sh", "-c", f"sleep 0.5; seq 1 {n}; seq 1 {n}", check=True).stdout.strip()
    _slim(root, cid)
    assert dy("wait", cid, timeout=120).stdout.strip() == "0"
    log = root / "containers" / cid / f"{cid}-json.log"
    assert os.path.getsize(log) <= 20 * 1024 * 1024
    assert os.path.getsize(str(log) + ".1") <= 20 * 1024 * 1024
    p = dy("logs", cid)
    lines = p.stdout.splitlines()
    whole = [str(i) for i in range(1, n + 1)] * 2
    assert 0 < len(lines) < len(whole) and lines == whole[-len(lines):]  # the oldest records were rotated away
    assert "oldest output of this container was dropped" in p.stderr  # and logs says so
    short = dy("run", "-d", "busybox", "echo", "hi", check=True).stdout.strip()
    dy("wait", short, check=True)
    assert (dy("logs", short).stderr, dy("logs", short).stdout) == ("", "hi\n")  # nothing dropped: no notice


def test_stdin_reaches_a_container_after_the_grace_period(dy, busybox):
    p = dy("run", "--rm", "-i", "busybox", "sh", "-c", "sleep 0.5; tr a-z A-Z; echo done", input="hello\n")
    assert (p.returncode, p.stdout) == (0, "HELLO\ndone\n")
    import hashlib

    for _ in range(3):  # frames larger than a pipe holds: one is often half-read at the hand-over to the C loop
        data = os.urandom(150000).hex()
        p = dy("run", "--rm", "-i", "busybox", "sh", "-c", "sleep 0.5; md5sum", input=data)
        assert (p.returncode, p.stdout.split()[:1]) == (0, [hashlib.md5(data.encode()).hexdigest()]), p.stderr


def test_attached_run_gets_output_and_exit_code(dy, busybox):
    p = dy("run", "--rm", "busybox", "sh", "-c", "sleep 0.5; echo out; echo err >&2; exit 3")
    assert (p.returncode, p.stdout, p.stderr) == (3, "out\n", "err\n")


def test_attach_to_a_running_container_sees_new_output(dy, busybox, root):
    cid = dy("run", "-d", "busybox", "sh", "-c", "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done",
             check=True).stdout.strip()
    _slim(root, cid)
    a = subprocess.Popen([DOCKYARD, "--root", str(root), "attach", cid], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        first = int(a.stdout.readline().split()[1])
        second = int(a.stdout.readline().split()[1])
        assert second == first + 1
        assert f"tick {first}\n" in dy("logs", cid).stdout
        dy("kill", cid, check=True)
        assert a.wait(timeout=20) == 137
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()


def test_wait_gets_the_exit_code(dy, busybox, root):
    cid = dy("run", "-d", "busybox", "sh", "-c", "sleep 1; exit 42", check=True).stdout.strip()
    _slim(root, cid)
    assert dy("wait", cid).stdout.strip() == "42"
    assert dy("inspect", "-f", "{{.State.ExitCode}}", cid).stdout.strip() == "42"
    cid = dy("run", "-d", "busybox", "sleep", "30", check=True).stdout.strip()
    _slim(root, cid)
    w = subprocess.Popen([DOCKYARD, "--root", str(root), "wait", cid], stdout=subprocess.PIPE, text=True)
    try:
        dy("kill", "-s", "KILL", cid, check=True)
        assert w.communicate(timeout=20)[0].strip() == "137"  # 128 + signal
    finally:
        if w.poll() is None:
            w.kill()
            w.wait()


def test_restart_policy_after_the_grace_period(dy, busybox, root):
    cid = dy("run", "-d", "--restart", "on-failure:2", "busybox", "sh", "-c", "echo run; sleep 0.5; exit 1",
             check=True).stdout.strip()
    _slim(root, cid)
    wait_for(lambda: dy("inspect", "-f", "{{.State.Status}} {{.RestartCount}}", cid).stdout.split()
             == ["exited", "2"], timeout=30, what="two restarts")
    assert dy("logs", cid).stdout == "run\n" * 3
    assert dy("inspect", "-f", "{{.State.ExitCode}}", cid).stdout.strip() == "1"


def test_run_rm_removes_a_container_that_outlived_the_grace_period(dy, busybox, root):
    p = dy("run", "--rm", "--name", "gone", "busybox", "sh", "-c", "sleep 0.5; echo bye")
    assert (p.returncode, p.stdout) == (0, "bye\n")
    wait_for(lambda: dy("ps", "-aq").stdout == "", what="removal")


def test_the_idle_monitor_is_the_small_c_process(dy, busybox, root):
    cid = dy("run", "-d", "busybox", "sleep", "60", check=True).stdout.strip()
    mon = _slim(root, cid)
    with open(f"/proc/{mon}/smaps_rollup") as f:
        pss_kb = next(int(ln.split()[1]) for ln in f if ln.startswith("Pss:"))
    print(f"C monitor PSS: {pss_kb} kB")
    assert pss_kb < 1536
    dy("rm", "-f", cid, check=True)
    wait_for(lambda: not pid_alive(mon), what="monitor exit")


def test_the_c_and_python_loops_write_the_same_records(dy, busybox, root):
    script = r"sleep 0.5; printf 'a\042b\134c\t\001\033\r\n\n'; echo x >&2; sleep 0.1; printf 'tail'"
    logs = []
    for env in ({}, {"DOCKYARD_MONITOR_LOOP": "python"}):
        cid = dy("run", "-d", "busybox", "sh", "-c", script, env=env, check=True).stdout.strip()
        pid = _monitor_pid(root, cid)
        wait_for(lambda: _exe(pid) == (BINARY if not env else os.path.realpath(sys.executable)),
                 what="the slim loop")
        assert dy("wait", cid).stdout.strip() == "0"
        raw = (root / "containers" / cid / f"{cid}-json.log").read_bytes()
        logs.append(re.sub(rb'"time": "[^"]*"', b'"time": ""', raw))
    assert logs[0] == logs[1]
    assert logs[0].count(b"\n") == 4


LAUNCHER = r"""
import os, sys
script, binary, src, root, lst, a, b = sys.argv[1:]
out_r, out_w = os.pipe()
err_r, err_w = os.pipe()
in_r, in_w = os.pipe()
pid = os.fork()
if pid == 0:
    os.dup2(in_r, 0); os.dup2(out_w, 1); os.dup2(err_w, 2)
    os.execv("/bin/sh", ["sh", "-c", script])
for fd in (in_r, out_w, err_w):
    os.close(fd)
os.set_blocking(out_r, False); os.set_blocking(err_r, False)
pidfd = os.pidfd_open(pid)
log = os.open(os.path.join(root, "log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
os.set_inheritable(pidfd, True); os.set_inheritable(log, True)
for fd in (out_r, err_r, in_w):
    os.set_inheritable(fd, True)
items = [f"python={sys.executable}", f"src={src}", f"root={root}", "cid=x", f"pid={pid}",
         f"pidfd={pidfd}", f"log_fd={log}", "log_size=0", f"log_path={root}/log", f"out={out_r}:1",
         f"out={err_r}:2", f"stdin={in_w}", f"listener={lst}", "partial1=" + b"part ".hex(),
         f"client={a}:1:1:1:0:", f"pending={a}:" + bytes([0, 0, 0, 0, 0, 0, 0, 6]).hex(),
         f"pending={a}:" + b"hel".hex(), f"client={b}:0:0:0:0:" + b'{"stdout": false, "std'.hex()]
state = os.memfd_create("state", 0)  # the state goes through a memfd, never argv
os.write(state, "\0".join(items).encode())
os.lseek(state, 0, os.SEEK_SET)
os.set_inheritable(state, True)
os.execv(binary, [binary, "cid=x", f"state={state}"])
"""

FINISH = r"""
import json, os
def finish_main(state):
    with open(int(state), closefd=True) as f:  # a memfd
        d = json.loads(f.read())
    open_fds = [fd for fd in [d["listener"], d["log_fd"]] + [c["fd"] for c in d["clients"]] if os.fstat(fd)]
    with open(os.path.join(d["root"], "state.json"), "w") as f:
        json.dump({**d, "open": open_fds}, f)
    os._exit(0)
"""


def _frames(sock) -> list[tuple[int, bytes]]:
    from dockyard.engine import attach as proto

    r = proto.FrameReader()
    out = []
    while True:
        data = sock.recv(65536)
        if not data:
            return out
        out += r.feed(data)


def test_hand_over_and_hand_back_arguments(tmp_path):
    """The C loop alone, with a fake finish phase: clients handed over mid-hello and mid-frame, a new client,
    stdin, streams per client, a partial line, 128+signal, and the state it hands back."""
    import socket

    src = tmp_path / "src"
    (src / "dockyard" / "engine").mkdir(parents=True)
    (src / "dockyard" / "__init__.py").write_text("")
    (src / "dockyard" / "engine" / "__init__.py").write_text("")
    (src / "dockyard" / "engine" / "monitor.py").write_text(FINISH)
    name = f"dockyard-test-{os.getpid()}-{tmp_path.name}"
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lst.bind("\0" + name)
    lst.listen(8)
    lst.setblocking(False)
    a_mon, a = socket.socketpair()
    b_mon, b = socket.socketpair()
    script = "read line; echo \"got $line\"; echo err >&2; printf 'no newline'; kill -TERM $$"
    p = subprocess.Popen([sys.executable, "-c", LAUNCHER, script, BINARY, str(src), str(tmp_path),
                          str(lst.fileno()), str(a_mon.fileno()), str(b_mon.fileno())],
                         pass_fds=(lst.fileno(), a_mon.fileno(), b_mon.fileno()))
    try:
        for s in (lst, a_mon, b_mon):
            s.close()
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect("\0" + name)
        c.sendall(b'{"stdin": false, "stdout": true, "stderr": true}\n')
        b.sendall(b'err": true}\n')
        a.sendall(b"lo\n")  # completes the stdin frame handed over half-read
        assert p.wait(timeout=20) == 0
        state = json.loads((tmp_path / "state.json").read_text())
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert state["status"] == 128 + 15
    assert (state["pidfd"], state["out"], state["stdin"], state["tty"]) == (None, {}, None, None)
    assert state["partial"] == {"1": "", "2": ""} and state["log_path"] == f"{tmp_path}/log"
    assert len(state["clients"]) == 3 and len(state["open"]) == 5
    opts = sorted((cl["hello"], cl["opts"]["stdout"], cl["opts"]["stderr"], cl["pending"])
                  for cl in state["clients"])
    assert opts == [(True, False, True, ""), (True, True, False, ""), (True, True, True, "")]
    recs = [json.loads(ln) for ln in (tmp_path / "log").read_text().splitlines()]
    assert [(r["stream"], r["log"]) for r in recs] == [
        ("stdout", "part got hello\n"), ("stderr", "err\n"), ("stdout", "no newline")]
    assert state["log_size"] == os.path.getsize(tmp_path / "log")
    # clients get the streams they asked for (and EOF here, where a real finish phase sends the exit)
    for sock in (a, b, c):
        sock.settimeout(10)
    assert b"".join(x[1] for x in _frames(a)) == b"got hello\nno newline"
    assert _frames(b) == [(2, b"err\n")]
    got = _frames(c)
    assert b"".join(x[1] for x in got if x[0] == 1) == b"got hello\nno newline" and (2, b"err\n") in got


def _mounted(path: Path) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(ln.split()[4].startswith(str(path)) for ln in f)


@pytest.mark.parametrize("phase", ["c", "python"])
def test_rm_f_of_an_attached_container(dy, busybox, root, phase):
    """rm -f tells the monitor the container is being removed: it hands the status to the attached client and to
    the remover and leaves, with no finish phase (C loop) or no record (Python monitor, within its grace period:
    the container is killed as soon as it has printed); the remover emits die then destroy and leaves nothing."""
    t0 = time.time() - 1
    name = f"rmf-{phase}-{os.getpid()}"
    script = "echo ready; sleep 1000" if phase == "python" else "sleep 0.5; echo ready; sleep 1000"
    a = subprocess.Popen([DOCKYARD, "--root", str(root), "run", "--name", name, "busybox", "sh", "-c", script],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert a.stdout.readline() == "ready\n"
        cid = dy("inspect", "-f", "{{.Id}}", name, check=True).stdout.strip()
        mon = _slim(root, cid) if phase == "c" else _monitor_pid(root, cid)
        if phase == "python":
            assert _exe(mon) != BINARY
        cdir = root / "containers" / cid
        assert _mounted(cdir)
        p = dy("rm", "-f", name)
        assert (p.returncode, p.stdout.strip()) == (0, name), p.stderr
        assert a.wait(timeout=20) == 137
        assert not pid_alive(mon)
        assert not cdir.exists() and not _mounted(cdir)
        assert not list(Path("/sys/fs/cgroup").glob(f"*/dockyard/{cid}"))
        assert dy("ps", "-aq").stdout == ""
        p = dy("events", "--since", f"{t0:.3f}", "--until", f"{time.time() + 0.5:.3f}", "--filter",
               f"container={name}", "--format", "{{.Action}} {{.Actor.Attributes.exitCode}}", timeout=20)
        assert p.stdout.split("\n")[-3:] == ["die 137", "destroy <no value>", ""], p.stdout
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()


def test_a_start_after_a_cut_short_rm_f_records_the_exit(dy, busybox, root):
    """An rm -f killed once the container had died leaves its word to the monitor (containers/<id>/removing); a
    later start clears it, so that the new monitor records the next exit instead of leaving it to the remover."""
    cid = dy("run", "-d", "busybox", "sleep", "1000", check=True).stdout.strip()
    try:
        dy("kill", cid, check=True)
        assert dy("inspect", "-f", "{{.State.Status}}", cid).stdout.strip() == "exited"
        (root / "containers" / cid / "removing").write_text("")
        dy("start", cid, check=True)
        dy("kill", cid, check=True)
        assert dy("wait", cid).stdout.strip() == "137"
        assert dy("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Error}}", cid).stdout.strip() \
            == "exited 137"
    finally:
        dy("rm", "-f", cid)


def test_rm_f_finishes_a_removal_cut_short_before_its_kill(dy, busybox, root):
    """An rm -f killed between marking the row "removing" and its SIGKILL leaves a live container marked for
    removal: the next rm -f kills it as a running one (die 137, then destroy) and removes everything. (Without
    that, the runtime's forced delete still ended the process, but no die was reported.)"""
    t0 = time.time() - 1
    cid = dy("run", "-d", "busybox", "sleep", "1000", check=True).stdout.strip()
    pid = int(dy("inspect", "-f", "{{.State.Pid}}", cid, check=True).stdout)
    mon = _slim(root, cid)
    (root / "containers" / cid / "removing").write_text("")
    with sqlite3.connect(root / "dockyard.db", timeout=30) as c:
        c.execute("UPDATE containers SET state='removing' WHERE id=?", (cid,))
    c.close()
    p = dy("rm", "-f", cid)
    assert p.returncode == 0, p.stderr
    wait_for(lambda: not pid_alive(pid) and not pid_alive(mon), what="the container and its monitor to end")
    assert dy("ps", "-aq").stdout == ""
    assert not (root / "containers" / cid).exists()
    p = dy("events", "--since", f"{t0:.3f}", "--until", f"{time.time() + 0.5:.3f}", "--filter",
           f"container={cid}", "--format", "{{.Action}} {{.Actor.Attributes.exitCode}}", timeout=20)
    assert p.stdout.split("\n")[-3:] == ["die 137", "destroy <no value>", ""], p.stdout
