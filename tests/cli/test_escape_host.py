"""What a container, or another local user, must not reach on the host: the caller's terminal through `exec`, the
monitors' attach sockets, the state root's secrets, and clients' input in any process's command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pexpect
import pytest

from tests.conftest import DOCKYARD, cleanup_root
from tests.helpers import wait_for

pytestmark = pytest.mark.e2e

NOBODY = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
PYTHON = str(Path(DOCKYARD).parent / "python")  # the interpreter of the dockyard under test
MONITOR_C = str(Path(DOCKYARD).parent.parent / "libexec" / "dockyard-monitor")
LOOPS = {"c": {}, "python": {"DOCKYARD_MONITOR_LOOP": "python"}}


def _wait_slim(root: Path, cid: str, loop: str) -> int:
    """Wait until the container's monitor has exec'd its slim loop (after the 0.2 s grace period)."""
    import sqlite3

    with sqlite3.connect(root / "dockyard.db", timeout=30) as c:
        pid = int(c.execute("SELECT monitor_pid FROM containers WHERE id=?", (cid,)).fetchone()[0])

    def slim() -> bool:
        try:
            if loop == "c":
                return os.readlink(f"/proc/{pid}/exe") == MONITOR_C
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return b"dockyard.engine.monitor_loop" in f.read()
        except OSError:
            return False

    wait_for(slim, what="the monitor's slim loop")
    return pid


# ---- exec: pipes, never the caller's terminal --------------------------------------------------------------------
def _spawn(root, *args) -> pexpect.spawn:
    return pexpect.spawn(DOCKYARD, ["--root", str(root), *args], timeout=20, encoding="utf-8")


@pytest.mark.parametrize("flags", [[], ["-i"]])
def test_exec_without_tty_gives_pipes_not_the_callers_terminal(root, dy, busybox, flags):
    cid = dy("run", "-d", "busybox", "sleep", "60", check=True).stdout.strip()
    child = _spawn(root, "exec", *flags, cid, "sh", "-c", "for i in 0 1 2; do echo fd$i=$(readlink /proc/$$/fd/$i); done")
    child.expect(pexpect.EOF)
    child.close()
    out = child.before.replace("\r", "")
    fds = dict(ln.split("=", 1) for ln in out.split() if ln.startswith("fd"))
    assert child.exitstatus == 0 and set(fds) == {"fd0", "fd1", "fd2"}, out
    assert fds["fd0"] == ("/dev/null" if not flags else fds["fd0"]) and fds["fd0"] != ""
    for name, target in fds.items():  # the terminal dockyard runs on never reaches the container
        assert target == "/dev/null" or target.startswith("pipe:["), (name, target)


def test_a_process_left_by_exec_cannot_read_the_callers_terminal(root, dy, busybox):
    cid = dy("run", "-d", "busybox", "sleep", "60", check=True).stdout.strip()
    # the background reader keeps the exec's stdin (an asynchronous list would otherwise get /dev/null)
    child = _spawn(root, "exec", "-i", cid, "sh", "-c",
                   'exec 3<&0; (read x <&3; echo "got:$x" > /tmp/stolen) >/dev/null 2>&1 &')
    wait_for(lambda: not child.isalive(), what="exec to return")
    assert child.exitstatus == 0
    child.sendline("typed-later-in-the-admins-shell")  # what the admin types once exec has returned
    got = wait_for(lambda: dy("exec", cid, "cat", "/tmp/stolen").stdout, what="the background reader")
    child.close(force=True)
    assert got == "got:\n"  # it read end-of-file, not the keys


def test_exec_relays_stdin_stdout_stderr_and_the_exit_code(dy, busybox):
    cid = dy("run", "-d", "busybox", "sleep", "60", check=True).stdout.strip()
    p = dy("exec", "-i", cid, "cat", input="hi\n")
    assert (p.returncode, p.stdout) == (0, "hi\n")
    p = dy("exec", cid, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (p.returncode, p.stdout, p.stderr) == (3, "out\n", "err\n")
    big = "".join(f"line {i}\n" for i in range(200_000))  # more than any pipe holds, both ways
    p = dy("exec", "-i", cid, "cat", input=big)
    assert p.returncode == 0 and p.stdout == big
    p = dy("exec", "-i", cid, "true", input=big)  # a process that never reads its stdin
    assert p.returncode == 0
    p = dy("exec", cid, "cat")  # without -i: stdin is /dev/null (EOF at once)
    assert (p.returncode, p.stdout) == (0, "")
    p = dy("exec", cid, "sh", "-c", "kill -TERM $$")
    assert p.returncode == 128 + 15


# ---- the monitors' attach sockets --------------------------------------------------------------------------------
def _probe(address: str, cid: str) -> subprocess.CompletedProcess:
    """Connect to ``address`` (a path, or "@name" for an abstract socket) as nobody; print the outcome, and whether
    /proc/net/unix names the container."""
    code = r"""
import socket, sys
a = sys.argv[1]
a = "\0" + a[1:] if a.startswith("@") else a
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(a)
    print("connected")
except OSError as e:
    print(type(e).__name__)
print("listed" if sys.argv[2] in open("/proc/net/unix").read() else "hidden")
"""
    return subprocess.run([*NOBODY, sys.executable, "-I", "-S", "-c", code, address, cid],
                          capture_output=True, text=True, timeout=30)


def test_monitors_are_out_of_reach_of_host_network_containers_and_other_users(dy, busybox):
    from dockyard.engine import attach

    cid = dy("run", "-d", "-i", "busybox", "cat", check=True).stdout.strip()
    # a --network host container shares the host's network namespace, hence its abstract unix sockets
    p = dy("run", "--rm", "--network", "host", "busybox", "cat", "/proc/net/unix")
    assert p.returncode == 0 and len(p.stdout.splitlines()) > 1
    assert cid not in p.stdout  # (monitors of older versions may be listed: only ours is checked)
    # no monitor's socket names its directory either (other dockyard sockets, the API service's or a rootless
    # user's slirp4netns API, are not monitors)
    sock_dir = os.path.dirname(attach.address(cid))
    assert not [ln for ln in p.stdout.splitlines() if sock_dir in ln]
    p = dy("run", "--rm", "--network", "host", "busybox", "sh", "-c",
           f"nc -U {attach.address(cid)} </dev/null; ls /run/dockyard")
    assert p.returncode != 0
    # another user of the host finds nothing and cannot connect, by the old name or the new path
    for address in (attach.address(cid), "@dockyard-" + cid):
        p = _probe(address.replace("\0", "@"), cid)
        assert p.stdout.split() in (["PermissionError", "hidden"], ["ConnectionRefusedError", "hidden"],
                                    ["FileNotFoundError", "hidden"]), (address, p.stdout, p.stderr)
    # root still attaches
    s = attach.connect(cid, timeout=10)
    assert s is not None
    s.sendall(b'{"stdin": true}\n' + attach.frame(attach.STDIN, b"from-root\n"))
    wait_for(lambda: "from-root" in dy("logs", cid).stdout, what="root's input")
    s.close()


SWITCH_EUID = r"""
import ctypes, json, os, socket, sys
sys.path.insert(0, sys.argv[1])
from dockyard.engine import attach
# uid nobody as far as the socket's peer credentials go, but root for the path (fsuid), so that only the
# monitor's SO_PEERCRED check stands between this process and the container
os.setresuid(0, 65534, 0)
ctypes.CDLL(None).setfsuid(0)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(attach.address(sys.argv[2]))
s.settimeout(10)
try:
    s.sendall(b'{"stdin": true}\n' + attach.frame(attach.STDIN, b"INJECTED\n"))
    got = s.recv(65536)
except OSError as e:
    got = type(e).__name__.encode()
print(json.dumps(got.decode("latin-1")))
"""


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_the_monitor_serves_only_clients_of_its_own_user(dy, root, busybox, loop):
    from dockyard.engine import attach

    cid = dy("run", "-d", "-i", "busybox", "cat", env=LOOPS[loop], check=True).stdout.strip()
    _wait_slim(root, cid, loop)
    src = str(Path(attach.__file__).parents[2])
    p = subprocess.run([sys.executable, "-I", "-S", "-c", SWITCH_EUID, src, cid], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) in ("", "ConnectionResetError", "BrokenPipeError")  # dropped at once, unserved
    s = attach.connect(cid, timeout=10)
    assert s is not None
    s.sendall(b'{"stdin": true}\n' + attach.frame(attach.STDIN, b"from-root\n"))
    wait_for(lambda: "from-root" in dy("logs", cid).stdout, what="root's input")
    s.close()
    assert "INJECTED" not in dy("logs", cid).stdout


# ---- no client input in any command line ---------------------------------------------------------------------------
START_WAITING = r"""
import sys
sys.path.insert(0, sys.argv[1])
from dockyard.engine import local
from dockyard.engine.containers import ContainerStore
from dockyard.state.db import Store
st = Store(sys.argv[2])
local.start(st, ContainerStore(st).get(sys.argv[3]), wait_attach=True)  # the monitor waits for START
"""


def _cmdlines() -> str:
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    out.append(f.read().decode("latin-1"))
            except OSError:
                pass
    return "\n".join(out)


@pytest.mark.parametrize("loop", sorted(LOOPS))
def test_unread_client_input_never_reaches_a_command_line(dy, root, busybox, loop):
    from dockyard.engine import attach

    cid = dy("create", "-i", "busybox", "cat", check=True).stdout.strip()
    src = str(Path(attach.__file__).parents[2])
    subprocess.run([PYTHON, "-I", "-S", "-c", START_WAITING, src, str(root), cid], check=True, timeout=60,
                   env={**os.environ, **LOOPS[loop]})
    secret = f"password-{uuid.uuid4().hex}"
    first, rest = secret[:20].encode(), (secret[20:] + "\n").encode()
    s = attach.connect(cid, timeout=10)
    assert s is not None
    # a stdin frame whose payload has only half arrived when the monitor hands over to its slim loop
    s.sendall(b'{"stdin": true}\n' + attach.frame(attach.START) + attach.frame(attach.STDIN, first + rest)[:8 + 20])
    _wait_slim(root, cid, loop)
    lines = _cmdlines()
    assert first.decode() not in lines and first.hex() not in lines
    s.sendall(rest)
    wait_for(lambda: secret in dy("logs", cid).stdout, what="the whole input delivered")
    s.sendall(attach.frame(attach.STDIN))  # EOF: cat exits
    assert dy("wait", cid).stdout.strip() == "0"
    s.close()


# ---- the state root ----------------------------------------------------------------------------------------------
@pytest.fixture
def open_root():
    """A state root whose parents any user may traverse (pytest's tmp_path is private to root), made 0755 as an
    administrator's mkdir would."""
    d = Path(tempfile.mkdtemp(prefix="dy-perm-", dir="/tmp"))
    d.chmod(0o755)
    r = d / "root"
    r.mkdir(mode=0o755)
    r.chmod(0o755)
    yield r
    cleanup_root(r)
    shutil.rmtree(d, ignore_errors=True)


def _dy(root: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run([DOCKYARD, "--root", str(root), *args], capture_output=True, text=True, timeout=120,
                       env={**os.environ, **(env or {})})
    if check and p.returncode:
        raise AssertionError(f"dockyard {' '.join(args)}: {p.stderr}")
    return p


def _as_nobody_read(path: Path) -> str:
    p = subprocess.run([*NOBODY, "cat", str(path)], capture_output=True, text=True, timeout=30)
    return "denied" if p.returncode and "Permission denied" in p.stderr else f"read: {p.stdout[:80]!r} {p.stderr}"


def test_other_users_cannot_read_the_state_and_containers_still_run_as_any_user(open_root, busybox_tar, tmp_path):
    r = open_root
    _dy(r, "import", "--change", 'CMD ["sh"]', str(busybox_tar), "busybox:latest",
        env={"SOURCE_DATE_EPOCH": "946684800"})
    cid = _dy(r, "run", "-d", "-e", "SECRET=hunter2", "busybox", "sh", "-c",
              "echo logged-hunter2; sleep 60").stdout.strip()
    wait_for(lambda: "logged" in _dy(r, "logs", cid).stdout, what="the log")
    cdir = r / "containers" / cid
    assert "hunter2" in (cdir / "config.json").read_text()
    blob = next((r / "content" / "blobs" / "sha256").iterdir())
    for path in (r / "dockyard.db", cdir / "config.json", cdir / f"{cid}-json.log", blob):
        assert _as_nobody_read(path) == "denied", path
    assert r.stat().st_mode & 0o777 == 0o700
    # SQLite removes -wal when the last connection closes: its mode is checked when it is there
    wal = [r / "dockyard.db-wal"] if (r / "dockyard.db-wal").exists() else []
    for path in (r / "dockyard.db", *wal, cdir / "config.json", cdir / f"{cid}-json.log", blob):
        try:
            mode = path.stat().st_mode & 0o777
        except FileNotFoundError:
            assert path in wal, path
            continue
        assert mode == 0o600, path
    run = Path("/run/dockyard")
    assert run.stat().st_mode & 0o077 == 0
    assert subprocess.run([*NOBODY, "ls", str(run / "runtime")], capture_output=True).returncode != 0
    # a container of another user still runs, with a named volume, a bind mount and its own files
    host = tmp_path / "bind"
    host.mkdir()
    (host / "f").write_text("from-host\n")
    p = _dy(r, "run", "--rm", "-u", "1000", "-v", "data:/data", "-v", f"{host}:/b:ro", "busybox", "sh", "-c",
            "cat /b/f; ls -d /data; echo ok > /tmp/x && cat /tmp/x; id -u")
    assert p.stdout == "from-host\n/data\nok\n1000\n"
    assert _dy(r, "exec", "-u", "1000", cid, "id", "-u").stdout == "1000\n"


def test_a_root_left_wide_by_an_older_dockyard_is_narrowed(open_root, busybox_tar):
    r = open_root
    _dy(r, "import", "--change", 'CMD ["sh"]', str(busybox_tar), "busybox:latest",
        env={"SOURCE_DATE_EPOCH": "946684800"})
    blob = next((r / "content" / "blobs" / "sha256").iterdir())
    r.chmod(0o711)  # as older versions left it
    (r / "dockyard.db").chmod(0o644)
    blob.chmod(0o644)
    _dy(r, "images")
    assert r.stat().st_mode & 0o777 == 0o700
    assert (r / "dockyard.db").stat().st_mode & 0o777 == 0o600
    assert blob.stat().st_mode & 0o777 == 0o600
