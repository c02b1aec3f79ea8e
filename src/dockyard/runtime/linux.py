"""The code that runs in the forked container processes: the init of ``create`` and the process of ``exec``.

Both are forked twice from the caller: the first child joins the cgroup and the namespaces (``setns`` to paths,
``unshare`` of new ones), forks the real process (which is then pid 1 of a new pid namespace) and exits, so the real
process is reparented to the caller (a child subreaper). The child reports on a pipe with one-line messages:
``pid N`` (intermediate), then ``ready`` (init, stopped before execve until ``start``) or ``exec`` (exec process,
about to execve), or ``error <message>``. Nothing here may return into the caller's stack: every path ends in
``os._exit`` or ``execve``.
"""

from __future__ import annotations

import fcntl
import os
import resource
import signal
import stat
import termios
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Everything the child processes need is imported here: after pivot_root / setns(mnt) nothing can be imported.
from dockyard.runtime import caps as _caps
from dockyard.runtime.defaults import DEFAULT_PATH
from dockyard.runtime import syscalls as S

NS_FLAGS = {
    "pid": S.CLONE_NEWPID, "network": S.CLONE_NEWNET, "ipc": S.CLONE_NEWIPC, "uts": S.CLONE_NEWUTS,
    "mount": S.CLONE_NEWNS, "cgroup": S.CLONE_NEWCGROUP, "user": S.CLONE_NEWUSER, "time": S.CLONE_NEWTIME,
}
NS_PROC = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt", "cgroup": "cgroup"}
# order in which namespaces are joined: mount last (it changes what paths mean)
JOIN_ORDER = ["ipc", "uts", "network", "pid", "cgroup", "mount"]

RLIMITS = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4, "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}


class SetupError(Exception):
    """A failure inside the container process before execve; ``str()`` is the one-line message."""


def _msg(action: str, e: OSError) -> SetupError:
    reason = os.strerror(e.errno) if e.errno else str(e)
    return SetupError(f"{action}: {reason[:1].lower() + reason[1:]}")


def send(fd: int, line: str) -> None:
    os.write(fd, (line.replace("\n", " ") + "\n").encode())


# ----- sysctls -----------------------------------------------------------------------------------------------
#: sysctls of the IPC namespace (runc's list); fs.mqueue.* belongs to it as well
IPC_SYSCTLS = frozenset({"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                         "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"})
_SYSCTL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-:@+")


def sysctl_refusal(name: str, value: str, private: set[str], host_netns: bool = False) -> str | None:
    """Why the sysctl ``name=value`` may not be set in a container whose new (or non-host) namespaces are
    ``private`` (e.g. ``{"ipc", "network", "uts"}``), or None when it may. Only namespaced sysctls are allowed,
    as runc/Docker: the IPC ones and fs.mqueue.* with a private IPC namespace, net.* with a private network
    namespace, kernel.domainname with a private UTS namespace. The name becomes a /proc/sys path, so its form is
    checked first: dot-separated words of letters, digits and ``_-:@+`` (no ``/``, no empty word, no ``..``)."""
    parts = name.split(".")
    if len(parts) < 2 or not all(p and set(p) <= _SYSCTL_CHARS for p in parts):
        return f"invalid sysctl name {name!r}"
    if "\n" in str(value) or "\0" in str(value):
        return f"invalid value for sysctl {name}"
    if name in IPC_SYSCTLS or name.startswith("fs.mqueue."):
        return None if "ipc" in private else f"sysctl {name!r} is not allowed without a private IPC namespace"
    if name.startswith("net."):
        if "network" not in private or host_netns:
            return f"sysctl {name!r} is not allowed in the host's network namespace"
        return None
    if name == "kernel.domainname":
        return None if "uts" in private else f"sysctl {name!r} is not allowed without a private UTS namespace"
    if name == "kernel.hostname":
        return f"sysctl {name!r} is not allowed: it conflicts with the hostname setting"
    return f"sysctl {name!r} is not allowed: it is not namespaced and would change the host"


def check_sysctls(linux: dict[str, Any]) -> None:
    """Refuse the spec's ``linux.sysctl`` entries that would reach the host (see ``sysctl_refusal``). A namespace
    joined by path counts as private unless it is the caller's own (the host's, for network)."""
    sysctls = linux.get("sysctl") or {}
    if not sysctls:
        return
    private: set[str] = set()
    host_netns = False
    for ns in linux.get("namespaces") or []:
        t = ns.get("type")
        if not ns.get("path"):
            private.add(t)
            continue
        try:
            same = os.stat(ns["path"]).st_ino == os.stat(f"/proc/self/ns/{NS_PROC.get(t, t)}").st_ino
        except OSError:
            same = False
        if not same:
            private.add(t)
        elif t == "network":
            host_netns = True
    for k, v in sysctls.items():
        why = sysctl_refusal(str(k), str(v), private, host_netns)
        if why:
            raise SetupError(why)


def write_sysctls(sysctls: dict[str, Any] | None) -> None:
    """Write the (already checked) sysctls, in the container's /proc after pivot_root."""
    for k, v in (sysctls or {}).items():
        if sysctl_refusal(str(k), str(v), {"ipc", "network", "uts"}) is not None:  # form, again, before the path
            raise SetupError(f"invalid sysctl name {k!r}")
        try:
            fd = os.open("/proc/sys/" + str(k).replace(".", "/"), os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
            try:
                os.write(fd, str(v).encode())
            finally:
                os.close(fd)
        except OSError as e:
            raise SetupError(f"cannot set sysctl {k}={v}: {os.strerror(e.errno or 0).lower()}") from None


# ----- stdio ------------------------------------------------------------------------------------------------
def setup_stdio(stdin: int | None, stdout: int | None, stderr: int | None, terminal_fd: int | None) -> None:
    """Make the given fds 0, 1, 2 (``None``: /dev/null); with a terminal, make it the controlling tty."""
    if terminal_fd is not None:
        fcntl.ioctl(terminal_fd, termios.TIOCSCTTY, 0)
        srcs = [terminal_fd] * 3
    else:
        srcs = [stdin, stdout, stderr]  # type: ignore[list-item]
    # duplicate above 2 first so that one target cannot clobber another source
    high = []
    null = -1
    for s in srcs:
        if s is None:
            if null < 0:
                null = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
            s = null
        high.append(os.dup(s) if s < 3 else s)
    for i, s in enumerate(high):
        os.dup2(s, i, inheritable=True)


# ----- process attributes -----------------------------------------------------------------------------------
def set_rlimits(rlimits: list[dict[str, Any]] | None) -> None:
    """Apply ``process.rlimits``. Without CAP_SYS_RESOURCE a hard limit cannot be raised: the current hard
    limit is kept (and the soft limit capped to it) instead of failing."""
    if not rlimits:
        return
    for r in rlimits:
        res = RLIMITS.get(str(r.get("type", "")).upper())
        if res is None:
            raise SetupError(f"unknown rlimit type: {r.get('type')}")
        soft, hard = int(r.get("soft", 0)), int(r.get("hard", 0))
        try:
            resource.setrlimit(res, (soft, hard))
        except (ValueError, PermissionError, OSError):
            cur_hard = resource.getrlimit(res)[1]
            inf = resource.RLIM_INFINITY
            h = hard if cur_hard == inf or (hard != inf and hard <= cur_hard) else cur_hard
            s = soft if (h == inf or (soft != inf and soft <= h)) else h
            try:
                resource.setrlimit(res, (s, h))
            except (ValueError, OSError) as e:
                raise SetupError(f"cannot set rlimit {r.get('type')}: {e}") from None


def set_user_and_caps(process: dict[str, Any], sc: Any = S) -> None:
    """Bounding set, then uid/gid/groups (keeping capabilities), then the capability sets, then no_new_privs."""
    user = process.get("user") or {}
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    capobj = process.get("capabilities")
    try:
        _caps.drop_bounding(capobj, sc)
        sc.prctl(S.PR_SET_KEEPCAPS, 1)
        os.setgroups([int(g) for g in user.get("additionalGids") or []])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
        sc.prctl(S.PR_SET_KEEPCAPS, 0)
        _caps.apply(capobj, sc)
        if process.get("noNewPrivileges"):
            sc.prctl(S.PR_SET_NO_NEW_PRIVS, 1)
    except OSError as e:
        raise _msg(f"cannot set user {uid}:{gid} and capabilities", e) from None
    if user.get("umask") is not None:
        os.umask(int(user["umask"]))
    else:
        os.umask(0o022)


def set_oom_score_adj(value: int | None) -> None:
    if value is None:
        return
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError as e:
        raise _msg("cannot set oom_score_adj", e) from None


def env_dict(env: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for kv in env or []:
        k, sep, v = kv.partition("=")
        if k:
            out[k] = v
    return out


def chdir(cwd: str) -> None:
    try:
        os.chdir(cwd or "/")
    except OSError as e:
        raise _msg(f"cannot chdir to {cwd}", e) from None


def reset_signals() -> None:
    for s in range(1, signal.NSIG):
        if s in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(s, signal.SIG_DFL)
        except (OSError, ValueError, RuntimeError):
            pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def find_executable(name: str, path: str) -> tuple[str | None, int, str]:
    """Resolve ``name`` like Go's exec.LookPath (what runc does): (path, 0, "") or (None, exit code, message)."""
    def check(p: str) -> OSError | None:
        try:
            st = os.stat(p)
        except OSError as e:
            return e
        if stat.S_ISDIR(st.st_mode):
            return IsADirectoryError(21, os.strerror(21))
        if not st.st_mode & 0o111:
            return PermissionError(13, os.strerror(13))
        return None

    if "/" in name:
        err = check(name)
        if err is None:
            return name, 0, ""
        reason = os.strerror(err.errno or 0).lower()
        if isinstance(err, (FileNotFoundError, NotADirectoryError)):
            return None, 127, f'exec: "{name}": stat {name}: {reason}'
        return None, 126, f'exec: "{name}": {reason}'
    for d in path.split(":"):
        p = os.path.join(d or ".", name)
        if check(p) is None:
            return p, 0, ""
    return None, 127, f'exec: "{name}": executable file not found in $PATH'


# ----- the exec stub -----------------------------------------------------------------------------------------
STUB_NAME = "dockyard-exec"


def stub_path() -> str | None:
    """dockyard-exec (images/exec/exec.c), built into the package or the venv (``dockyard.libexec``)."""
    from dockyard import libexec

    return libexec.find(STUB_NAME)


def load_exec_stub() -> int:
    """A sealed memfd holding dockyard-exec, through which the container program is exec'd (see exec.c): made
    in the container process before it loses the host's paths (setns(mnt), pivot_root). Close-on-exec, and no
    write, shrink or grow is possible, so a container that opens it through /proc/<pid>/exe can only run it.
    There is no fallback: without the stub, execve from Python would expose the host interpreter."""
    from dockyard import libexec

    path = stub_path()
    try:
        if path is None:
            raise FileNotFoundError(2, "not found")
        src = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        raise SetupError(f"the runtime's exec stub is missing: {libexec.describe(STUB_NAME)}") from None
    try:
        fd = os.memfd_create(STUB_NAME, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        size = os.fstat(src).st_size
        done = 0
        while done < size:
            n = os.sendfile(fd, src, done, size - done)
            if n == 0:
                break
            done += n
    finally:
        os.close(src)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    return fd


def exec_process(process: dict[str, Any], stub: int) -> None:
    """Look up ``process.args[0]`` with the container's PATH and exec it through the sealed ``stub`` (a memfd
    from ``load_exec_stub``): this process stops being the host's python before any container code can look at
    it. On failure write Docker's message to stderr and exit 127 (not found) or 126 (cannot execute); the stub
    does the same when its own execve fails. Never returns."""
    args = process.get("args") or []
    env = env_dict(process.get("env"))
    code = 127
    try:
        if not args:
            raise SetupError("no command specified")
        path, code, msg = find_executable(args[0], env.get("PATH", DEFAULT_PATH))
        if path is None:
            raise SetupError(msg)
        reset_signals()
        try:
            os.execve(stub, [STUB_NAME, path, *args], env)
        except OSError as e:
            code = 126
            raise SetupError(f"exec {path}: cannot run the exec stub: {os.strerror(e.errno or 0).lower()}") from None
    except BaseException as e:  # noqa: BLE001 - report anything, then exit
        try:
            os.write(2, f"{e}\n".encode())
        finally:
            os._exit(code)


def close_fds_except(keep: set[int]) -> None:
    lo = 3
    for fd in sorted(k for k in keep if k >= 3) + [1 << 20]:
        if fd > lo:
            os.closerange(lo, fd)
        lo = fd + 1
