"""Rootless dockyard (issue 17): an ordinary user with subordinate ids runs containers with no root.

Each test makes its own user (useradd, its own /etc/subuid and /etc/subgid range) and runs the installed command
as that user (runuser). Teardown kills the user's processes by pid (the pause process, monitors, slirp4netns),
removes its runtime directory, home (the store) and the user. /dev/net/tun is made 0666 only for the network
tests (slirp4netns opens it as the user) and put back as found.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CACHE, DOCKYARD, ROOTS, cleanup_root
from tests.helpers import free_port, loopback_get, wait_for

pytestmark = pytest.mark.e2e

CAD_BEFORE = Path("/proc/sys/kernel/ctrl-alt-del").read_text()
SUB_START = 300000 + (os.getpid() % 50) * 65536  # a range of our own per test session


class User:
    def __init__(self, name: str, subids: bool = True) -> None:
        self.name = name
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, capture_output=True)
        pw = pwd.getpwnam(name)
        self.uid, self.gid, self.home = pw.pw_uid, pw.pw_gid, Path(pw.pw_dir)
        for f in ("/etc/subuid", "/etc/subgid"):
            _drop_lines(f, name)  # useradd may have added a range: ours is known
            if subids:
                with open(f, "a") as fh:
                    fh.write(f"{name}:{SUB_START}:65536\n")

    def run(self, *args: str, env: dict[str, str] | None = None, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
        e = ["env", "-i", f"HOME={self.home}", "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
             *(f"{k}={v}" for k, v in (env or {}).items())]
        return subprocess.run(["runuser", "-u", self.name, "--", *e, DOCKYARD, *args], capture_output=True,
                              text=True, timeout=timeout, input=input, cwd="/")

    def pids(self) -> list[int]:
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if os.stat(f"/proc/{d}").st_uid == self.uid:
                        out.append(int(d))
                except FileNotFoundError:
                    pass
        return out

    def remove(self) -> None:
        def killed() -> bool:
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return not [p for p in self.pids() if _state(p) not in ("Z", "")]

        wait_for(killed, timeout=15, what=f"the processes of {self.name} to end")
        shutil.rmtree(f"/tmp/dockyard-{self.uid}", ignore_errors=True)
        subprocess.run(["userdel", "-r", "-f", self.name], capture_output=True)
        shutil.rmtree(self.home, ignore_errors=True)
        for f in ("/etc/subuid", "/etc/subgid"):
            _drop_lines(f, self.name)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return ""


def _drop_lines(path: str, name: str) -> None:
    with open(path) as f:
        lines = f.readlines()
    with open(path, "w") as f:
        f.writelines(ln for ln in lines if not ln.startswith(name + ":"))


def _new_user(subids: bool = True) -> User:
    return User("dyr" + uuid.uuid4().hex[:8], subids)


@pytest.fixture
def user(busybox_tar: Path, hello_tar: Path) -> Iterator[User]:
    u = _new_user()
    try:
        for tar, ref, cmd in ((busybox_tar, "busybox:latest", '["sh"]'), (hello_tar, "hello-world:latest",
                                                                          '["/hello"]')):
            dst = u.home / tar.name
            shutil.copyfile(tar, dst)
            os.chown(dst, u.uid, u.gid)
            p = u.run("import", "--change", f"CMD {cmd}", str(dst), ref)
            assert p.returncode == 0, p.stderr
        yield u
    finally:
        u.remove()


@pytest.fixture
def tun() -> Iterator[None]:
    """slirp4netns opens /dev/net/tun as the user: 0666 for the test (as udev makes it), then as found."""
    mode = stat.S_IMODE(os.stat("/dev/net/tun").st_mode)
    os.chmod("/dev/net/tun", 0o666)
    try:
        yield
    finally:
        os.chmod("/dev/net/tun", mode)


def test_hello_world_and_busybox_run_as_the_user_in_their_own_store(user: User, tun: None) -> None:
    p = user.run("run", "--rm", "hello-world")
    assert p.returncode == 0, p.stderr
    assert "Hello" in p.stdout
    p = user.run("run", "--rm", "--network", "none", "busybox", "sh", "-c", "id -u; cat /proc/self/uid_map")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split()
    assert lines[0] == "0"  # root inside ...
    assert lines[1:4] == ["0", str(user.uid), "1"]  # ... is the user outside
    assert lines[4:7] == ["1", str(SUB_START), "65536"]  # and 1..N the subordinate range
    store = user.home / ".local/share/dockyard"
    assert (store / "dockyard.db").exists()
    assert stat.S_IMODE(store.stat().st_mode) == 0o700 and store.stat().st_uid == user.uid
    run = Path(f"/tmp/dockyard-{user.uid}")  # no XDG_RUNTIME_DIR given: the private fallback
    assert run.is_dir() and run.stat().st_uid == user.uid and stat.S_IMODE(run.stat().st_mode) == 0o700
    p = user.run("ps", "-a", "-q")
    assert p.returncode == 0 and p.stdout == ""
    p = user.run("images", "--format", "{{.Repository}}")
    assert sorted(p.stdout.split()) == ["busybox", "hello-world"]


def test_xdg_dirs_are_used(user: User) -> None:
    xdg = user.home / "xdg-run"
    xdg.mkdir(mode=0o700)
    os.chown(xdg, user.uid, user.gid)
    data = user.home / "xdg-data"
    env = {"XDG_RUNTIME_DIR": str(xdg), "XDG_DATA_HOME": str(data)}
    p = user.run("images", "-q", env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""  # a store of its own: nothing imported there
    assert (data / "dockyard" / "dockyard.db").exists()
    assert (xdg / "dockyard" / "pause.pid").exists()


def test_a_run_dir_made_by_someone_else_is_refused(user: User) -> None:
    d = Path(f"/tmp/dockyard-{user.uid}")
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(mode=0o777)  # root made it first (or another user): never used
    try:
        p = user.run("run", "--rm", "--network", "none", "busybox", "true")
        assert p.returncode == 125
        assert f"{d} is not a directory of uid {user.uid} with mode 0700" in p.stderr
        assert "Traceback" not in p.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_bind_mount_files_belong_to_the_user_and_the_container_gains_nothing(user: User, tmp_path: Path) -> None:
    share = user.home / "share"
    share.mkdir()
    os.chown(share, user.uid, user.gid)
    rootfile = share / "root-owned"
    rootfile.write_text("host\n")
    os.chmod(rootfile, 0o644)  # root's file in the user's directory
    p = user.run("run", "--rm", "--network", "none", "-v", f"{share}:/data", "busybox", "sh", "-c",
                 "touch /data/made && mkdir /data/d && chown 1000:1000 /data/d;"
                 " echo x >> /data/root-owned; echo w=$?;"
                 " echo 1 > /proc/sys/kernel/ctrl-alt-del; echo s=$?;"
                 " cat /etc/shadow-not-there 2>/dev/null; mknod /dev/sdx b 8 0; echo m=$?")
    assert p.returncode == 0, p.stderr
    assert "w=1" in p.stdout  # root inside is not root of the host's file
    assert "s=1" in p.stdout  # /proc/sys is read-only, and not the user's anyway
    assert "m=1" in p.stdout  # no devices
    assert rootfile.read_text() == "host\n"
    assert (share / "made").stat().st_uid == user.uid  # container root's file is the user's on the host
    assert (share / "d").stat().st_uid == SUB_START + 999  # uid 1000 inside: the subordinate range
    host_cad = Path("/proc/sys/kernel/ctrl-alt-del").read_text()
    assert host_cad.strip() == CAD_BEFORE.strip()


def test_named_volume(user: User) -> None:
    p = user.run("run", "--rm", "--network", "none", "-v", "vol1:/v", "busybox", "sh", "-c", "echo kept > /v/f")
    assert p.returncode == 0, p.stderr
    p = user.run("run", "--rm", "--network", "none", "-v", "vol1:/v", "busybox", "cat", "/v/f")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "kept\n"
    p = user.run("volume", "ls", "-q")
    assert "vol1" in p.stdout.split()


def test_a_resource_limit_is_refused_with_one_line(user: User) -> None:
    p = user.run("run", "--rm", "--network", "none", "-m", "64m", "busybox", "true")
    assert p.returncode == 125
    assert "resource limits need cgroup v2 with delegation" in p.stderr
    assert "Traceback" not in p.stderr
    p = user.run("run", "--rm", "--network", "none", "busybox", "true")  # without: runs
    assert p.returncode == 0, p.stderr


def test_exec_logs_stop_as_the_user(user: User) -> None:
    p = user.run("run", "-d", "--name", "c1", "--network", "none", "busybox", "sh", "-c", "echo up; sleep 60")
    assert p.returncode == 0, p.stderr
    p = user.run("exec", "c1", "cat", "/proc/1/cmdline")
    assert p.returncode == 0, p.stderr
    assert "sleep" in p.stdout
    wait_for(lambda: user.run("logs", "c1").stdout == "up\n", what="the log line")
    p = user.run("rm", "-f", "c1")
    assert p.returncode == 0, p.stderr


def test_published_port_is_answered_on_loopback(user: User, tun: None) -> None:
    port = free_port()
    p = user.run("run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:8000", "busybox", "sh", "-c",
                 "echo hello-rootless > /tmp/index.html; httpd -f -p 8000 -h /tmp")
    assert p.returncode == 0, p.stderr

    def get() -> str:
        return loopback_get(port, "/index.html")

    assert "hello-rootless" in wait_for(get, what="the published port to answer")
    slirp = [pid for pid in user.pids() if _comm(pid) == "slirp4netns"]
    assert slirp
    p = user.run("rm", "-f", "web")
    assert p.returncode == 0, p.stderr
    wait_for(lambda: all(_state(pid) in ("Z", "") for pid in slirp), what="slirp4netns to stop")


def test_the_hosts_loopback_is_out_of_reach(user: User, tun: None) -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        p = user.run("run", "--rm", "busybox", "sh", "-c",
                     f"ip -4 addr show tap0 | grep -q 10.0.2.100 && echo net-ok;"
                     f" nc -w 2 10.0.2.2 {port} </dev/null && echo reached || echo refused")
        assert p.returncode == 0, p.stderr
        assert "net-ok" in p.stdout and "refused" in p.stdout


def test_build_of_a_small_dockerfile(user: User) -> None:
    ctx = user.home / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt > /copy && "
                                    "mkdir /app && chown 1234:1234 /app\nUSER 1234\nCMD [\"cat\", \"/copy\"]\n")
    (ctx / "hello.txt").write_text("built rootless\n")
    for f in ctx.rglob("*"):
        os.chown(f, user.uid, user.gid)
    os.chown(ctx, user.uid, user.gid)
    p = user.run("build", "--network", "none", "-q", "-t", "mine", str(ctx), timeout=120)
    assert p.returncode == 0, p.stderr
    p = user.run("run", "--rm", "--network", "none", "mine")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "built rootless\n"
    p = user.run("run", "--rm", "--network", "none", "mine", "stat", "-c", "%u %U", "/app", "/copy")
    assert p.stdout == "1234 UNKNOWN\n0 root\n"


def test_info_says_rootless_and_what_is_missing(busybox_tar: Path) -> None:
    u = _new_user(subids=False)
    try:
        p = u.run("info")
        assert p.returncode == 0, p.stderr
        assert "rootless" in p.stdout
        assert f"no subordinate id range for uid {u.uid} in /etc/subuid" in p.stderr
        assert f"usermod --add-subuids 100000-165535 {u.name}" in p.stderr
        p = u.run("run", "--rm", "busybox", "true")
        assert p.returncode == 125
        assert "no subordinate id range" in p.stderr and "Traceback" not in p.stderr
    finally:
        u.remove()


def test_custom_network_two_containers_reach_each_other_by_name(user: User, tun: None) -> None:
    """User-defined networks live in the user's own network namespace (bridge, nft, DNS), outward by slirp4netns;
    -p on such a network is answered on the host's loopback."""
    port = free_port()
    p = user.run("network", "create", "appnet")
    assert p.returncode == 0, p.stderr
    bridge = "dy-" + p.stdout.strip()[:12]
    p = user.run("run", "-d", "--name", "web", "--network", "appnet", "-p", f"127.0.0.1:{port}:8000", "busybox",
                 "sh", "-c", "echo hello-by-name > /tmp/index.html; httpd -f -p 8000 -h /tmp")
    assert p.returncode == 0, p.stderr
    p = user.run("run", "--rm", "--network", "appnet", "busybox", "sh", "-c",
                 "for i in $(seq 50); do wget -q -O- http://web:8000/index.html && exit 0; sleep 0.1; done;"
                 " exit 1")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hello-by-name\n"
    p = user.run("run", "--rm", "--network", "appnet", "busybox", "nslookup", "web")
    assert p.returncode == 0, p.stdout + p.stderr  # the embedded DNS server answers in the user's netns

    def get() -> str:
        return loopback_get(port, "/index.html")

    assert "hello-by-name" in wait_for(get, what="the published port on the custom network to answer")
    assert bridge not in os.listdir("/sys/class/net")  # nothing made on the host: all in the user's netns
    p = user.run("run", "-d", "--name", "other", "busybox", "sleep", "60")  # on the default (slirp4netns)
    assert p.returncode == 0, p.stderr
    p = user.run("network", "connect", "appnet", "other")  # live connect, also in the user's netns
    assert p.returncode == 0, p.stderr
    p = user.run("exec", "other", "wget", "-q", "-O-", "http://web:8000/index.html")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "hello-by-name\n"
    p = user.run("network", "disconnect", "appnet", "other")
    assert p.returncode == 0, p.stderr
    p = user.run("rm", "-f", "web")
    assert p.returncode == 0, p.stderr
    wait_for(lambda: not get(), what="the forward to go")
    p = user.run("network", "rm", "appnet")
    assert p.returncode == 0, p.stderr


def test_userns_keep_id_runs_as_the_user_with_their_uid_inside(user: User) -> None:
    """Podman's --userns=keep-id: the user's uid/gid are the same inside, the rest of the subordinate range
    around it; the process runs as that uid with a passwd entry and $HOME; files it makes are the user's."""
    share = user.home / "kid"
    share.mkdir()
    os.chown(share, user.uid, user.gid)
    u = user.uid
    p = user.run("run", "--rm", "--network", "none", "--userns=keep-id", "-v", f"{share}:/data", "busybox", "sh",
                 "-c", "id -u; id -g; id -un; echo $HOME; cat /proc/self/uid_map; touch /data/made; ls -ln /data")
    assert p.returncode == 0, p.stderr
    out = p.stdout.split("\n")
    assert out[:4] == [str(u), str(user.gid), user.name, "/"]  # $HOME: the working dir (home not mounted)
    # the map as Podman shows it: ids of the user's namespace (0 = the user, 1.. = the subordinate range)
    assert [ln.split() for ln in out[4:7]] == [["0", "1", str(u)], [str(u), "0", "1"],
                                               [str(u + 1), str(u + 1), str(65536 - u)]]
    assert f" {u} " in out[8] and "made" in out[8]  # the user's file, seen as the user's uid inside
    assert (share / "made").stat().st_uid == user.uid  # and on the host
    # --user wins; the home directory mounted in is $HOME, as Podman does
    p = user.run("run", "--rm", "--network", "none", "--userns", "keep-id", "-v", f"{user.home}:{user.home}",
                 "busybox", "sh", "-c", "echo $HOME; grep ^" + user.name + ": /etc/passwd")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:2] == [str(user.home), f"{user.name}:*:{u}:{user.gid}::{user.home}:/bin/sh"]
    p = user.run("run", "--rm", "--network", "none", "--userns=keep-id:uid=200,gid=210", "--user", "0",
                 "busybox", "sh", "-c", "id -u; awk '$1 == 200' /proc/self/uid_map")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0", "200", "0", "1"]
    # exec joins the container's own user namespace and runs as its user
    p = user.run("run", "-d", "--name", "kid", "--network", "none", "--userns=keep-id", "busybox", "sleep", "60")
    assert p.returncode == 0, p.stderr
    p = user.run("exec", "kid", "sh", "-c", "id -u; id -un")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [str(u), user.name]
    p = user.run("rm", "-f", "kid")
    assert p.returncode == 0, p.stderr
    p = user.run("run", "--rm", "--network", "none", "--userns=auto", "busybox", "true")
    assert p.returncode == 125 and "invalid --userns" in p.stderr and "Traceback" not in p.stderr


def test_userns_keep_id_is_refused_for_root_and_host_accepted(dy: Any, busybox: str) -> None:
    p = dy("run", "--rm", "--network", "none", "--userns=keep-id", busybox, "true")
    assert p.returncode == 125
    assert p.stderr.strip().splitlines() == ["dockyard: keep-id is only supported in rootless mode"] \
        or p.stderr.strip().endswith("keep-id is only supported in rootless mode")
    assert "Traceback" not in p.stderr
    p = dy("run", "--rm", "--network", "none", "--userns=host", busybox, "cat", "/proc/self/uid_map")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0", "0", "4294967295"]


PY_BASE = "FROM debian:bookworm\nRUN apt-get update && apt-get install -y --no-install-recommends python3 " \
          "&& rm -rf /var/lib/apt/lists/*\n"
APP = """import http.server


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = open("/app/greeting.txt", "rb").read()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


http.server.ThreadingHTTPServer(("0.0.0.0", 8000), Hello).serve_forever()
"""
APP_DOCKERFILE = """FROM python:3-bookworm
WORKDIR /app
COPY app.py /app/
RUN python3 -m compileall -q /app && python3 -c "import sys; print('hello from python', sys.version_info[0])" \
    > /app/greeting.txt
EXPOSE 8000
CMD ["python3", "/app/app.py"]
"""


@pytest.fixture(scope="module")
def python_tar(debian_tar: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The local Python base (python:3-bookworm: Debian's python3 on debian:bookworm), built once as root in a
    private root and saved to cache/ (its apt-get needs the Debian mirror the first time only)."""
    tar = CACHE / "python3-bookworm.tar"
    if tar.exists() and tar.stat().st_size > 0:
        return tar
    work = tmp_path_factory.mktemp("pybase")
    root = work / "root"
    root.mkdir()
    ROOTS.add(str(root))
    ctx = work / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(PY_BASE)

    def dy(*args: str, timeout: float = 120) -> None:
        p = subprocess.run([DOCKYARD, "--root", str(root), *args], capture_output=True, text=True, timeout=timeout)
        assert p.returncode == 0, f"dockyard {args[0]}: {p.stdout}{p.stderr}"

    try:
        dy("import", "--change", 'CMD ["bash"]', str(debian_tar), "debian:bookworm")
        dy("build", "-q", "-t", "python:3-bookworm", str(ctx), timeout=600)
        part = tar.with_suffix(".tar.part")
        dy("save", "-o", str(part), "python:3-bookworm")
        part.rename(tar)
    finally:
        cleanup_root(root)
        from dockyard.fsutil import rmtree

        rmtree(str(root))
    return tar


def _chown_tree(path: Path, user: User) -> None:
    os.chown(path, user.uid, user.gid)
    for f in path.rglob("*"):
        os.chown(f, user.uid, user.gid)


def test_python_app_is_built_and_run_as_the_user_and_answers_on_loopback(user: User, tun: None,
                                                                         python_tar: Path) -> None:
    """The seed's example: a Python web app built from a Dockerfile (FROM the Python base, COPY, RUN, CMD) and run
    with -p by the user; the page answers on the host's 127.0.0.1."""
    dst = user.home / "python.tar"
    shutil.copyfile(python_tar, dst)
    os.chown(dst, user.uid, user.gid)
    p = user.run("load", "-q", "-i", str(dst), timeout=300)
    assert p.returncode == 0, p.stderr
    ctx = user.home / "app"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(APP_DOCKERFILE)
    (ctx / "app.py").write_text(APP)
    _chown_tree(ctx, user)
    p = user.run("build", "--network", "none", "-q", "-t", "pyapp", str(ctx), timeout=300)
    assert p.returncode == 0, p.stderr
    port = free_port()
    p = user.run("run", "-d", "--name", "pyapp", "-p", f"127.0.0.1:{port}:8000", "pyapp")
    assert p.returncode == 0, p.stderr

    def get() -> str:
        return loopback_get(port, "/")

    reply = wait_for(get, timeout=30, what="the Python app to answer")
    assert reply.startswith("HTTP/1.0 200") and reply.endswith("hello from python 3\n"), reply
    p = user.run("rm", "-f", "pyapp")
    assert p.returncode == 0, p.stderr


@pytest.fixture
def fuse() -> Iterator[None]:
    """fuse-overlayfs opens /dev/fuse as the user: 0666 for the test (as udev makes it), then as found."""
    mode = stat.S_IMODE(os.stat("/dev/fuse").st_mode)
    os.chmod("/dev/fuse", 0o666)
    try:
        yield
    finally:
        os.chmod("/dev/fuse", mode)


@pytest.mark.skipif(shutil.which("fuse-overlayfs") is None, reason="needs fuse-overlayfs (scripts/deps.sh)")
def test_fuse_overlayfs_fallback_when_forced(user: User, fuse: None) -> None:
    """Where the kernel refuses overlay in a user namespace, containers' roots are fuse-overlayfs mounts. This
    kernel allows it, so the fallback is forced with DOCKYARD_ROOTLESS_OVERLAY=fuse-overlayfs (the switch for
    tests and for hosts whose kernel overlay misbehaves); without it the probe picks the kernel's."""
    p = user.run("info")
    assert p.returncode == 0, p.stderr
    assert "Storage Driver: overlay\n" in p.stdout
    env = {"DOCKYARD_ROOTLESS_OVERLAY": "fuse-overlayfs"}
    p = user.run("info", env=env)
    assert p.returncode == 0, p.stderr
    assert "Storage Driver: fuse-overlayfs\n" in p.stdout
    p = user.run("run", "--rm", "--network", "none", "busybox", "sh", "-c",
                 "awk '$2 == \"/\" {print $3}' /proc/mounts; rm /etc/passwd && echo gone; echo hi > /f && cat /f",
                 env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["fuse.fuse-overlayfs", "gone", "hi"]
    p = user.run("run", "-d", "--name", "f1", "--network", "none", "busybox", "sleep", "60", env=env)
    assert p.returncode == 0, p.stderr
    p = user.run("exec", "f1", "sh", "-c", "echo x > /made && cat /made")
    assert p.returncode == 0 and p.stdout == "x\n", p.stderr
    p = user.run("run", "--rm", "--network", "none", "busybox", "cat", "/etc/passwd")  # the image is untouched
    assert p.returncode == 0 and p.stdout.startswith("root:"), p.stderr

    def daemons() -> list[int]:
        return [pid for pid in user.pids() if _comm(pid) == "fuse-overlayfs" and _state(pid) not in ("Z", "")]

    assert daemons()
    p = user.run("rm", "-f", "f1")
    assert p.returncode == 0, p.stderr
    wait_for(lambda: not daemons(), what="the fuse-overlayfs daemons to end with their mounts")


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def test_a_killed_pause_process_is_made_again(user: User) -> None:
    """The per-user holders stay when idle (docs/decisions.md); killing them is safe: the next command makes them
    again."""
    p = user.run("run", "--rm", "--network", "none", "busybox", "true")
    assert p.returncode == 0, p.stderr
    pid = int(Path(f"/tmp/dockyard-{user.uid}/pause.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: _state(pid) in ("Z", ""), what="the pause process to die")
    p = user.run("run", "--rm", "--network", "none", "busybox", "echo", "again")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "again\n"
    assert int(Path(f"/tmp/dockyard-{user.uid}/pause.pid").read_text().split()[0]) != pid
