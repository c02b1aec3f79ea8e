"""Rootless mode: an ordinary user runs dockyard with no root and no daemon.

Vocabulary:

* **the user namespace** - one per user (per runtime directory), made the first time the user runs dockyard:
  container root is the user outside (uid 0 inside -> the user's uid), ids 1..N are the user's subordinate range
  from ``/etc/subuid`` and ``/etc/subgid`` (written by the setuid ``newuidmap``/``newgidmap`` of Debian's
  ``uidmap``). A mount namespace owned by it goes with it. Both are held by a *pause* process (``sleep
  infinity`` exec'd in them; namespaces outlive nothing else) whose pid and namespace inode numbers are kept in
  ``<run dir>/pause.pid``. Every later command joins them (``setns``: two syscalls, no process started), so that
  image layers are extracted with their owners shifted into the range, overlay roots are mounted (Linux >= 5.11
  allows overlay in a user namespace) and found again by ``exec``/``cp``/``commit``, exactly as root's are.
  Podman keeps its rootless state the same way.
* **the data dir** - ``$XDG_DATA_HOME/dockyard`` (default ``~/.local/share/dockyard``): the state root.
* **the run dir** - ``$XDG_RUNTIME_DIR/dockyard`` when that directory is the user's own and 0700, else
  ``/tmp/dockyard-<uid>``, made with ``mkdir`` (which never follows a symlink) and accepted only if it is a
  directory of the user's, 0700. It replaces ``/run/dockyard`` (attach sockets, runtime state, the seccomp cache,
  locks).

Inside, dockyard runs as uid 0 of the user namespace with every capability there and none on the host: what a
container may do is bounded by what the user may do. ``ENV`` tells the processes of a command (the monitor, the
runtime) that they are rootless; it is trusted only where ``/proc/self/uid_map`` shows a real mapping.
"""

from __future__ import annotations

import os
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard.errors import DockyardError

ENV = "_DOCKYARD_ROOTLESS"  # "<uid outside>:<run dir>" inside the user namespace
ROOT_RUN_DIR = "/run/dockyard"
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000
MS_REC, MS_PRIVATE = 16384, 1 << 18
LIMITS_ERROR = ("resource limits need cgroup v2 with delegation: rootless containers run here without a cgroup "
                "of their own (drop the limit flags, or run as root)")


class RootlessError(DockyardError):
    """The user namespace cannot be made or joined; the message says what to install or configure."""


def active() -> bool:
    """True in a rootless dockyard process (inside the user's namespace)."""
    return ENV in os.environ


def run_dir() -> str:
    """``/run/dockyard`` for root, the user's run dir when rootless."""
    v = os.environ.get(ENV)
    return v.split(":", 1)[1] if v else ROOT_RUN_DIR


def outside_uid() -> int:
    v = os.environ.get(ENV)
    return int(v.split(":", 1)[0]) if v else 0


def verify() -> None:
    """Called for euid 0: the marker counts only inside a user namespace that maps a real range."""
    try:
        with open("/proc/self/uid_map") as f:
            lines = f.read().split()
    except OSError:
        lines = []
    if lines[:3] == ["0", "0", "4294967295"]:
        os.environ.pop(ENV, None)


# ----- paths (as the user, outside) ------------------------------------------------------------------------
def _home(uid: int) -> str:
    h = os.environ.get("HOME")
    if h and os.path.isabs(h):
        return h
    import pwd

    return pwd.getpwuid(uid).pw_dir


def data_dir(uid: int | None = None) -> str:
    uid = os.getuid() if uid is None else uid
    base = os.environ.get("XDG_DATA_HOME")
    if not base or not os.path.isabs(base):
        base = os.path.join(_home(uid), ".local", "share")
    return os.path.join(base, "dockyard")


def _own_private_dir(path: str, uid: int) -> bool:
    import stat

    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid and st.st_mode & 0o077 == 0


def user_run_dir(uid: int | None = None) -> str:
    """The run dir (made if missing). ``/tmp/dockyard-<uid>``: another user may have made it first (a symlink,
    a wider mode, another owner): refused, never followed or used."""
    uid = os.getuid() if uid is None else uid
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and os.path.isabs(xdg) and _own_private_dir(xdg, uid):
        path = os.path.join(xdg, "dockyard")
    else:
        path = f"/tmp/dockyard-{uid}"
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as e:
        raise RootlessError(f"cannot make the runtime directory {path}: {os.strerror(e.errno or 0).lower()}") from None
    if not _own_private_dir(path, uid):
        raise RootlessError(f"{path} is not a directory of uid {uid} with mode 0700: remove it or set "
                            "XDG_RUNTIME_DIR to a private directory")
    return path


# ----- subordinate ids --------------------------------------------------------------------------------------
def _name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def subid_range(file: str, uid: int) -> tuple[int, int] | None:
    """The first ``user:start:count`` line of ``file`` naming the user (by name or uid), or None."""
    name = _name(uid)
    try:
        with open(file) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] in (name, str(uid)) and parts[1].isdigit() and parts[2].isdigit():
                    if int(parts[2]) > 0:
                        return int(parts[1]), int(parts[2])
    except OSError:
        return None
    return None


def missing() -> list[str]:
    """What rootless mode lacks on this host for the calling user, each with its fix (shown by ``info``)."""
    import shutil

    uid = outside_uid() if active() else os.getuid()
    out = []
    for tool in ("newuidmap", "newgidmap"):
        if shutil.which(tool) is None:
            out.append(f"{tool} not found: install the uidmap package (apt-get install uidmap)")
    for file, flag in (("/etc/subuid", "--add-subuids"), ("/etc/subgid", "--add-subgids")):
        if subid_range(file, uid) is None:
            out.append(f"no subordinate id range for uid {uid} in {file}: as root, "
                       f"usermod {flag} 100000-165535 {_name(uid)}")
    if active() and os.environ.get(DATA_ENV) and overlay_driver(os.environ[DATA_ENV]) == FUSE_OVERLAYFS \
            and shutil.which(FUSE_OVERLAYFS) is None:
        out.append("the kernel refuses overlay in the user namespace and fuse-overlayfs is not found "
                   "(apt-get install fuse-overlayfs)")
    if shutil.which("slirp4netns") is None and shutil.which("pasta") is None:
        out.append("neither slirp4netns nor pasta found: containers get no network but --network none "
                   "(apt-get install slirp4netns)")
    return out


# ----- the namespace ----------------------------------------------------------------------------------------
FAILED = "_DOCKYARD_ROOTLESS_FAILED"  # why ``enter`` failed, for ``info``


DATA_ENV = "_DOCKYARD_ROOTLESS_DATA"  # the default state root, for the re-executed command


def start(verb: str) -> str | None:
    """The CLI's entry when rootless; returns the default state root (None: root's).

    As the user (outside): enter the namespace, then execute the command again from the start. The second exec
    is what makes the rest work: a process's /proc files belong to the user namespace its memory was made in,
    and while dockyard's forks are not dumpable (runtime.nsexec) only that namespace's root may open them, so
    they must be made inside (slirp4netns joins a created container's network namespace through /proc, a
    container's init writes its own oom_score_adj). ``info`` still runs when the namespace cannot be made (it
    reports why). Inside (uid 0 with the marker): check the marker and return the user's data dir."""
    if os.geteuid() == 0:
        verify()
        return os.environ.get(DATA_ENV) if active() else None
    root = data_dir()
    try:
        enter()
    except RootlessError as e:
        if verb not in ("info",):
            raise
        os.environ[FAILED] = str(e)
        return root
    import sys

    os.environ[DATA_ENV] = root
    if sys.argv[0].endswith("__main__.py"):
        argv = [sys.executable, "-m", "dockyard", *sys.argv[1:]]
    else:
        argv = [sys.executable, "-S", *sys.argv]
    os.execv(sys.executable, argv)
    return root  # not reached


def enter() -> None:
    """Run the rest of this process inside the user's user and mount namespaces (made on first use). Must be
    called while the process has a single thread (setns of a user namespace requires it)."""
    uid = os.getuid()
    run = user_run_dir(uid)
    cwd = _cwd()
    if not _join(run):
        import fcntl

        lock = os.open(os.path.join(run, "pause.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not _join(run):
                _make(run, uid)
                if not _join(run):
                    raise RootlessError("cannot join the user namespace just made")
        finally:
            os.close(lock)
    os.environ[ENV] = f"{uid}:{run}"
    if cwd:
        try:
            os.chdir(cwd)
        except OSError:
            os.chdir("/")


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:
        return None


def _read_pause(run: str) -> tuple[int, int, int] | None:
    try:
        with open(os.path.join(run, "pause.pid")) as f:
            pid, user_ino, mnt_ino = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return None
    return pid, user_ino, mnt_ino


def _libc() -> Any:
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _call(ret: int) -> None:
    if ret != 0:
        import ctypes

        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def _join(run: str) -> bool:
    libc = _libc()
    rec = _read_pause(run)
    if rec is None:
        return False
    pid, user_ino, mnt_ino = rec
    fds: list[int] = []
    try:
        for name, ino in (("user", user_ino), ("mnt", mnt_ino)):
            fd = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            fds.append(fd)
            if os.fstat(fd).st_ino != ino:  # the pause process is gone and its pid reused
                return False
        _call(libc.setns(fds[0], CLONE_NEWUSER))
        _call(libc.setns(fds[1], CLONE_NEWNS))
    except OSError:
        return False
    finally:
        for fd in fds:
            os.close(fd)
    return True


def _run_map(tool: str, pid: int, own: int, rng: tuple[int, int] | None) -> None:
    import shutil
    import subprocess

    path = shutil.which(tool)
    if path is None:
        raise RootlessError(f"{tool} not found: install the uidmap package (apt-get install uidmap)")
    argv = [path, str(pid), "0", str(own), "1"]
    if rng is not None:
        argv += ["1", str(rng[0]), str(rng[1])]
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise RootlessError(f"{tool} failed: {p.stderr.strip() or p.returncode}")


def _make(run: str, uid: int) -> None:
    """Fork the pause process into new user and mount namespaces, map its ids, record it."""
    import shutil

    libc = _libc()
    uids = subid_range("/etc/subuid", uid)
    gids = subid_range("/etc/subgid", uid)
    if uids is None or gids is None:
        file, flag = ("/etc/subuid", "--add-subuids") if uids is None else ("/etc/subgid", "--add-subgids")
        raise RootlessError(f"no subordinate id range for uid {uid} in {file}: ask root to run "
                            f"`usermod {flag} 100000-165535 {_name(uid)}` (see `dockyard info`)")
    sleep = shutil.which("sleep") or "/bin/sleep"
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:  # the pause process
        try:
            os.close(r1)
            os.close(w2)
            os.setsid()
            _call(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS))
            os.write(w1, b"1")
            if os.read(r2, 1) != b"1":
                os._exit(1)
            _call(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None))
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, 65536)
            os.execv(sleep, ["sleep", "infinity"])
        finally:
            os._exit(127)
    os.close(w1)
    os.close(r2)
    try:
        if os.read(r1, 1) != b"1":
            raise RootlessError("cannot create a user namespace (is kernel.unprivileged_userns_clone 0, or "
                                "user.max_user_namespaces 0?)")
        _run_map("newuidmap", pid, uid, uids)
        _run_map("newgidmap", pid, os.getgid(), gids)
        os.write(w2, b"1")
        ino = [os.stat(f"/proc/{pid}/ns/{n}").st_ino for n in ("user", "mnt")]
        from dockyard.fsutil import atomic_write

        atomic_write(os.path.join(run, "pause.pid"), f"{pid} {ino[0]} {ino[1]}\n".encode(), 0o600, durable=False)
    except BaseException:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        raise
    finally:
        os.close(r1)
        os.close(w2)
        _reap_later(pid)


def _reap_later(pid: int) -> None:
    """The pause process is our child: this short-lived command must not leave it a zombie when it exits (it is
    reparented then); nothing to do while we live, since it never exits on its own."""
    del pid


# ----- overlay: the kernel's, or fuse-overlayfs --------------------------------------------------------------
OVERLAY_ENV = "DOCKYARD_ROOTLESS_OVERLAY"  # "overlay" | "fuse-overlayfs": skip the probe (tests; hosts that lie)
FUSE_OVERLAYFS = "fuse-overlayfs"


def overlay_driver(near: str) -> str:
    """``overlay`` when the kernel mounts overlay in the user's namespace (Linux >= 5.11, a file system with user
    xattrs), else ``fuse-overlayfs`` (Debian package of that name, as Podman falls back to). Probed once per run
    dir by mounting a tiny overlay in a scratch directory of ``near`` (the state root's file system), the answer
    kept in ``<run dir>/overlay-driver``; ``DOCKYARD_ROOTLESS_OVERLAY`` forces either (for tests, and hosts whose
    kernel mounts overlay here but breaks on it)."""
    forced = os.environ.get(OVERLAY_ENV)
    if forced in ("overlay", FUSE_OVERLAYFS):
        return forced
    cache = os.path.join(run_dir(), "overlay-driver")
    try:
        with open(cache) as f:
            got = f.read().strip()
        if got in ("overlay", FUSE_OVERLAYFS):
            return got
    except OSError:
        pass
    driver = "overlay" if _kernel_overlay_works(near) else FUSE_OVERLAYFS
    from dockyard.fsutil import atomic_write

    try:
        atomic_write(cache, driver.encode(), 0o600, durable=False)
    except OSError:
        pass
    return driver


def _kernel_overlay_works(near: str) -> bool:
    import shutil
    import tempfile

    try:
        os.makedirs(near, 0o700, exist_ok=True)
        d = tempfile.mkdtemp(prefix=".overlay-probe-", dir=near)
    except OSError:
        return True  # nowhere to probe: the kernel's, and its error if it refuses
    try:
        for sub in ("l", "u", "w", "m"):
            os.mkdir(os.path.join(d, sub))
        libc = _libc()
        opts = f"lowerdir={d}/l,upperdir={d}/u,workdir={d}/w,userxattr".encode()
        if libc.mount(b"overlay", f"{d}/m".encode(), b"overlay", 0, opts) != 0:
            return False
        libc.umount2(f"{d}/m".encode(), 2)  # MNT_DETACH
        return True
    finally:
        shutil.rmtree(d, ignore_errors=True)


def fuse_overlay_options(options: tuple[str, ...]) -> tuple[str, ...]:
    """The kernel overlay's options as fuse-overlayfs takes them (the layer dirs; it marks whiteouts and opaque
    directories in the same format, reading ``user.overlay.opaque``)."""
    keep = ("lowerdir=", "upperdir=", "workdir=")
    return tuple(o for o in options if o == "ro" or o.startswith(keep))


def mount_fuse_overlay(options: tuple[str, ...], target: str) -> None:
    """Mount ``target`` with fuse-overlayfs (which forks its daemon once the mount is made; unmounting it ends
    the daemon). Needs /dev/fuse usable by the user (mode 0666, as udev makes it)."""
    import shutil
    import subprocess

    exe = shutil.which(FUSE_OVERLAYFS)
    if exe is None:
        raise RootlessError("the kernel refuses overlay in the user namespace here and fuse-overlayfs is not "
                            "installed (apt-get install fuse-overlayfs)")
    p = subprocess.run([exe, "-o", ",".join(o for o in options if o != "ro"), target], capture_output=True,
                       text=True, stdin=subprocess.DEVNULL)
    if p.returncode != 0:
        why = (p.stderr.strip().splitlines() or [f"exit status {p.returncode}"])[-1]
        raise RootlessError(f"fuse-overlayfs cannot mount {target}: {why}")


def spec_problems(resources: dict[str, Any] | None) -> str | None:
    """The error for an OCI ``linux.resources`` that a rootless container on this host cannot have."""
    if not resources:
        return None
    rest = {k: v for k, v in resources.items() if k != "devices" and v not in (None, {}, [])}
    return LIMITS_ERROR if rest else None
