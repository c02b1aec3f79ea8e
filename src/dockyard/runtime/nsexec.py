"""Forking into a container: the parent side (``spawn``) and the two child bodies (init of ``create``, process of
``exec``). See ``linux`` for the message protocol on the sync pipe."""

from __future__ import annotations

import os
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable

from dockyard.errors import DockyardError
from dockyard.runtime import seccomp as _seccomp_mod
from dockyard.runtime import linux as L
from dockyard.runtime import mounts
from dockyard.runtime import syscalls as S
from dockyard.runtime.base import Stdio
from dockyard.trace import mark


_PR_GET_DUMPABLE = 3


class SpawnError(Exception):
    def __init__(self, message: str, pid: int | None) -> None:
        super().__init__(message)
        self.pid = pid


def _report(w: int, e: BaseException) -> None:
    if isinstance(e, (L.SetupError, mounts.MountError, DockyardError)):
        msg = str(e)
    elif isinstance(e, OSError):
        msg = f"{e.filename + ': ' if e.filename else ''}{os.strerror(e.errno or 0).lower()}"
    else:
        msg = f"{type(e).__name__}: {e}"
    try:
        L.send(w, "error " + msg)
    except OSError:
        pass


def stdio_fds(stdio: Stdio) -> set[int]:
    return {fd for fd in (stdio.stdin, stdio.stdout, stdio.stderr, stdio.terminal_fd, stdio.console_socket)
            if fd is not None}


def _enter(keep: set[int], w: int, prepare: Callable[[], None]) -> int:
    """The first steps of every child, before its body: every fd but ``keep`` and the sync pipe closed, none of the
    caller's Python signal handlers left (they must never run in a container process), the sealed exec stub
    loaded while the host's paths are still ours (``prepare`` may join a mount namespace), then ``prepare``
    (cgroup, namespaces). Returns the stub's fd."""
    L.close_fds_except(keep | {w})
    L.reset_signals()
    stub = L.load_exec_stub()
    prepare()
    return stub


def _body(keep: set[int], w: int, stub: int, body: Callable[[int, int], None]) -> None:
    """Run ``body(w, stub)`` with nothing open but ``keep``, the sync pipe and the stub."""
    L.close_fds_except(keep | {w, stub})
    body(w, stub)


def spawn(prepare: Callable[[], None], body: Callable[[int, int], None], final: str, keep: set[int],
          cgroup: Any = None) -> int:
    """Fork an intermediate that runs ``prepare`` (join cgroup/namespaces), forks ``body(w, stub)`` and exits.
    Returns the pid of the body process once it has sent ``final``; raises SpawnError with its message.

    Before anything else, both children make themselves non-dumpable (no other process of the container may
    ptrace them or open their /proc/<pid>/exe or fd/ while they are the host's python: execve of the stub makes
    the body dumpable again) and close every fd but the sync pipe, ``keep`` (the stdio given) and the stub memfd,
    so that none of the caller's fds (its database, locks, logs) can ever reach a container process."""
    r, w = os.pipe()
    mid = cgroup.fork() if cgroup is not None else os.fork()  # born in its cgroup where the kernel can
    if mid == 0:  # intermediate
        try:
            S.prctl(S.PR_SET_DUMPABLE, 0)
            stub = _enter(keep, w, prepare)
            pid = os.fork()
            if pid == 0:
                try:
                    _body(keep, w, stub, body)
                except BaseException as e:  # noqa: BLE001
                    _report(w, e)
                finally:
                    os._exit(1)
            L.send(w, f"pid {pid}")
        except BaseException as e:  # noqa: BLE001
            _report(w, e)
            os._exit(1)
        finally:
            os._exit(0)
    os.close(w)
    pid: int | None = None
    done = False
    buf = b""
    try:
        while True:
            chunk = os.read(r, 4096)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode(errors="replace")
                # the body may report `final` before the intermediate reports its pid: wait for both
                if text.startswith("pid "):
                    pid = int(text[4:])
                elif text == final:
                    done = True
                elif text.startswith("error "):
                    raise SpawnError(text[6:], pid)
                if done and pid is not None:
                    return pid
        raise SpawnError("container process exited during setup", pid)
    finally:
        os.close(r)
        try:
            os.waitpid(mid, 0)
        except ChildProcessError:
            pass


def spawn_in_pidns(pid_ns: int | None, prepare: Callable[[], None], body: Callable[[int, int], None], final: str,
                   keep: set[int], cgroup: Any = None, new_pid_ns: bool = False) -> int:
    """As ``spawn``, with one fork instead of two: the caller sets its pid namespace for children to ``pid_ns``
    (an fd; None: ours) or, with ``new_pid_ns``, to a new one (the child is its init) around the fork, so that
    the child is born in it and joins or makes the rest itself (a pid namespace, joined or made, only ever
    applies to children). The caller's own pid namespace for children is restored at once, in the calling
    thread (the only one setns and unshare change).

    The caller is made non-dumpable across the fork so that the child is never dumpable (it inherits the flag)
    during its first instants in the container's pid namespace, where a process of the container could
    otherwise ptrace it or open its /proc/<pid>/exe or fd/ before it closes the caller's fds (runc's
    CVE-2019-5736 class). Its own namespaces (user) are not joined here: use ``spawn`` for those."""
    r, w = os.pipe()
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC) if pid_ns is not None or new_pid_ns else None
    dumpable = S.prctl(_PR_GET_DUMPABLE)
    pid = -1
    try:
        S.prctl(S.PR_SET_DUMPABLE, 0)
        if new_pid_ns:
            try:
                S.unshare(S.CLONE_NEWPID)
            except OSError as e:
                raise L.SetupError(f"cannot create namespaces: {os.strerror(e.errno or 0).lower()}") from None
        elif pid_ns is not None:
            S.setns(pid_ns, S.CLONE_NEWPID)
        pid = cgroup.fork() if cgroup is not None else os.fork()  # born in its cgroup where the kernel can
    finally:
        if pid != 0:
            if own is not None:
                S.setns(own, S.CLONE_NEWPID)  # our own, active namespace: always allowed
                os.close(own)
            S.prctl(S.PR_SET_DUMPABLE, dumpable)
    if pid == 0:
        try:
            _body(keep, w, _enter(keep, w, prepare), body)
        except BaseException as e:  # noqa: BLE001
            _report(w, e)
        finally:
            os._exit(1)
    os.close(w)
    buf = b""
    try:
        while True:
            chunk = os.read(r, 4096)
            if not chunk:
                raise SpawnError("container process exited during setup", pid)
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                text = line.decode(errors="replace")
                if text == final:
                    return pid
                if text.startswith("error "):
                    raise SpawnError(text[6:], pid)
    finally:
        os.close(r)


# ----- create -------------------------------------------------------------------------------------------------
def init_prepare(spec: dict[str, Any], cgroup: Any, pid_by_caller: bool = False) -> Callable[[], None]:
    """``pid_by_caller``: the pid namespace is joined or made by the caller of ``spawn_in_pidns``, not here."""
    def prepare() -> None:
        if cgroup is not None:
            cgroup.enter()  # the intermediate: one thread, forked by spawn
            mark("joined")
        flags = 0
        user = False
        for ns in (spec.get("linux") or {}).get("namespaces") or []:
            t = ns.get("type")
            if t not in L.NS_FLAGS:
                raise L.SetupError(f"unknown namespace type: {t}")
            if t == "pid" and pid_by_caller:
                continue
            if t == "user":
                if ns.get("path"):
                    raise L.SetupError("joining a user namespace by path is not supported by the built-in runtime")
                user = True
            elif ns.get("path"):
                try:
                    fd = os.open(ns["path"], os.O_RDONLY | os.O_CLOEXEC)
                    try:
                        S.setns(fd, L.NS_FLAGS[t])
                    finally:
                        os.close(fd)
                except OSError as e:
                    raise L.SetupError(f"cannot join {t} namespace {ns['path']}: "
                                       f"{os.strerror(e.errno or 0).lower()}") from None
            else:
                flags |= L.NS_FLAGS[t]
        if user:  # after joining the namespaces given by path (they belong to our user namespace), before the rest
            _new_userns(spec.get("linux") or {})
        if flags:
            try:
                S.unshare(flags)
            except OSError as e:
                raise L.SetupError(f"cannot create namespaces: {os.strerror(e.errno or 0).lower()}") from None
    return prepare


def _id_map(entries: Any, what: str) -> bytes:
    lines = []
    for m in entries or []:
        try:
            lines.append(f"{int(m['containerID'])} {int(m['hostID'])} {int(m['size'])}")
        except (KeyError, TypeError, ValueError):
            raise L.SetupError(f"invalid {what}: {m!r}") from None
    if not lines:
        raise L.SetupError(f"a new user namespace needs {what}")
    return ("\n".join(lines) + "\n").encode()


def _new_userns(linux: dict[str, Any]) -> None:
    """Unshare a user namespace and have its id maps written from outside (only a process of the parent
    namespace with CAP_SETUID there may write a map of more than its own id): a helper forked before the unshare
    waits for the word, writes ``/proc/<us>/uid_map`` and ``gid_map`` and exits. We then become its root, with
    every capability in it (what the rest of the setup needs) and none outside."""
    uid_map = _id_map(linux.get("uidMappings"), "uidMappings")
    gid_map = _id_map(linux.get("gidMappings"), "gidMappings")
    me = os.getpid()
    r, w = os.pipe()
    helper = os.fork()
    if helper == 0:
        code = 1
        try:
            os.close(w)
            if os.read(r, 1) == b"1":
                for name, data in (("uid_map", uid_map), ("gid_map", gid_map)):
                    fd = os.open(f"/proc/{me}/{name}", os.O_WRONLY | os.O_CLOEXEC)
                    try:
                        os.write(fd, data)
                    finally:
                        os.close(fd)
                code = 0
        finally:
            os._exit(code)
    os.close(r)
    err = None
    try:
        S.unshare(S.CLONE_NEWUSER)
        os.write(w, b"1")
    except OSError as e:
        err = f"cannot create a user namespace: {os.strerror(e.errno or 0).lower()}"
    finally:
        os.close(w)
    _, status = os.waitpid(helper, 0)
    if err:
        raise L.SetupError(err)
    if status != 0:
        raise L.SetupError("cannot write the user namespace's id maps (are they within the engine's own?)")
    try:
        os.setresgid(0, 0, 0)
        os.setresuid(0, 0, 0)
        os.setgroups([])
    except OSError as e:
        raise L.SetupError(f"cannot become root of the new user namespace: {os.strerror(e.errno or 0).lower()}")


def init_body(spec: dict[str, Any], rootfs: str, stdio: Stdio, cgroup: Any, fifo: str,
              seccomp: tuple[bytes, list[str]] | None = None) -> Callable[[int, int], None]:
    """``seccomp``: the compiled filter and its flags (compiled by the caller: see runtime.seccomp)."""
    _preload_console(stdio)

    def body(w: int, stub: int) -> None:
        linux = spec.get("linux") or {}
        new = {ns["type"] for ns in linux.get("namespaces") or [] if not ns.get("path")}
        process = spec.get("process") or {}
        os.setsid()
        L.setup_stdio(stdio.stdin, stdio.stdout, stdio.stderr, stdio.terminal_fd)
        if "network" in new:
            try:
                S.ioctl_lo_up()
            except OSError as e:
                raise L.SetupError(f"cannot bring up the loopback interface: {os.strerror(e.errno or 0)}")
        if spec.get("hostname") or spec.get("domainname"):
            if "uts" not in new:
                raise L.SetupError("unable to set hostname without a private UTS namespace")
            try:
                if spec.get("hostname"):
                    S.sethostname(spec["hostname"])
                if spec.get("domainname"):
                    S.setdomainname(spec["domainname"])
            except OSError as e:
                raise L.SetupError(f"cannot set hostname: {os.strerror(e.errno or 0).lower()}") from None
        console = None
        if stdio.terminal_fd is not None:
            try:
                console = os.ttyname(stdio.terminal_fd)
            except OSError:
                console = f"/proc/self/fd/{stdio.terminal_fd}"
        fifo_fd = os.open(fifo, os.O_PATH | os.O_CLOEXEC)
        mounts.prepare(spec, rootfs, console, cgroup_dirs=cgroup.dirs if cgroup else {},
                       new_cgroupns="cgroup" in new)
        mounts.pivot(rootfs)
        if stdio.console_socket is not None and process.get("terminal"):
            _container_console(stdio.console_socket, bind_console=True)
        L.write_sysctls(linux.get("sysctl"))
        cwd = process.get("cwd") or "/"
        try:
            os.makedirs(cwd, 0o755, exist_ok=True)
        except OSError as e:
            raise L.SetupError(f"cannot create working directory {cwd}: {os.strerror(e.errno or 0).lower()}")
        mounts.finalize(spec)
        L.set_oom_score_adj(process.get("oomScoreAdj"))
        L.set_rlimits(process.get("rlimits"))
        _seccomp(seccomp)
        L.set_user_and_caps(process)
        L.chdir(cwd)
        _check_command(process)
        L.send(w, "ready")
        os.close(w)
        # created: wait here until `start` opens the fifo for reading
        # (allowed although we are not dumpable: a process may always open its own /proc/self/fd/N)
        fd = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
        os.write(fd, b"0")
        os.close(fd)
        L.close_fds_except({stub})
        L.exec_process(process, stub)
    return body


def _check_command(process: dict[str, Any]) -> None:
    """As runc: the command is looked up (as the container's user, in its root, with its PATH) before the init
    reports ``ready``, so that a command that is missing or cannot be executed fails ``create`` with Docker's
    message and the container is never started; ``exec_process`` looks it up again when it runs it."""
    args = process.get("args") or []
    if not args:
        raise L.SetupError("no command specified")
    path, _code, msg = L.find_executable(args[0], L.env_dict(process.get("env")).get("PATH", L.DEFAULT_PATH))
    if path is None:
        raise L.SetupError(msg)


def _preload_console(stdio: Stdio) -> None:
    """Import what sending a pty master needs now, in the caller: the child cannot import anything once it is in
    the container's mount namespace (setns(mnt) or pivot_root)."""
    if stdio.console_socket is not None:
        import socket  # noqa: F401


def _container_console(sock_fd: int, bind_console: bool) -> None:
    """Allocate the terminal in the container's own devpts (we are in its mount namespace, past pivot_root),
    make it our controlling terminal and 0/1/2, bind it on /dev/console, and send the master to the caller."""
    from dockyard.runtime.base import send_console

    try:
        master, slave = os.openpty()
        if bind_console:
            name = os.ttyname(slave)
            if not os.path.exists("/dev/console"):
                os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
            S.mount(name, "/dev/console", None, S.MS_BIND)
        send_console(sock_fd, master)
    except OSError as e:
        raise L.SetupError(f"cannot set up the container's terminal: {os.strerror(e.errno or 0).lower()}") from None
    os.close(master)
    L.setup_stdio(None, None, None, slave)
    os.close(slave)


# ----- exec ---------------------------------------------------------------------------------------------------
def exec_prepare(init_pid: int, cgroup: Any) -> Callable[[], None]:
    def prepare() -> None:
        if cgroup is not None:
            cgroup.enter()  # the intermediate: one thread, forked by spawn
        fds = []
        try:
            _join_userns(init_pid)
            for t in L.JOIN_ORDER:
                p = f"/proc/{init_pid}/ns/{L.NS_PROC[t]}"
                try:
                    if os.stat(p).st_ino == os.stat(f"/proc/self/ns/{L.NS_PROC[t]}").st_ino:
                        continue
                    fds.append((t, os.open(p, os.O_RDONLY | os.O_CLOEXEC)))
                except FileNotFoundError:
                    continue
            for t, fd in fds:
                try:
                    S.setns(fd, L.NS_FLAGS[t])
                except OSError as e:
                    raise L.SetupError(f"cannot join {t} namespace: {os.strerror(e.errno or 0).lower()}") from None
        finally:
            for _, fd in fds:
                os.close(fd)
    return prepare


def _join_userns(init_pid: int) -> None:
    """A container with a user namespace of its own (``--userns=keep-id``): join it first, since its other
    namespaces belong to it (setns there needs its capabilities, which the join gives)."""
    p = f"/proc/{init_pid}/ns/user"
    try:
        if os.stat(p).st_ino == os.stat("/proc/self/ns/user").st_ino:
            return
        fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        S.setns(fd, S.CLONE_NEWUSER)
    except OSError as e:
        raise L.SetupError(f"cannot join user namespace: {os.strerror(e.errno or 0).lower()}") from None
    finally:
        os.close(fd)


def _seccomp(compiled: tuple[bytes, list[str]] | None) -> None:
    """Install the container's seccomp filter: after our own mounts, while CAP_SYS_ADMIN is still held."""
    if not compiled:
        return
    try:
        _seccomp_mod.install_bpf(*compiled)
    except OSError as e:
        raise L.SetupError(f"cannot install the seccomp filter: {e}") from None


def exec_body(process: dict[str, Any], stdio: Stdio,
              seccomp: tuple[bytes, list[str]] | None = None) -> Callable[[int, int], None]:
    _preload_console(stdio)

    def body(w: int, stub: int) -> None:
        os.setsid()
        L.setup_stdio(stdio.stdin, stdio.stdout, stdio.stderr, stdio.terminal_fd)
        if stdio.console_socket is not None and process.get("terminal"):
            _container_console(stdio.console_socket, bind_console=False)
        L.set_oom_score_adj(process.get("oomScoreAdj"))
        L.set_rlimits(process.get("rlimits"))
        _seccomp(seccomp)
        L.set_user_and_caps(process)
        L.chdir(process.get("cwd") or "/")
        L.send(w, "exec")
        os.close(w)
        L.close_fds_except({stub})
        L.exec_process(process, stub)
    return body
