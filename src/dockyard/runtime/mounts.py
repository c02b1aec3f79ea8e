"""Root filesystem setup of a container, from the OCI spec's ``mounts``, ``linux.devices``, ``maskedPaths``,
``readonlyPaths`` and ``root.readonly``.

Runs in the container's init, inside its new mount namespace. Every kernel call goes through ``sc`` (the
``syscalls`` module, or a recording fake in unit tests). Order, as runc does it:

1. make ``/`` rslave (so nothing propagates back to the host) and bind the rootfs on itself;
2. spec mounts in order (destinations resolved inside the rootfs, symlinks included);
3. default devices + ``linux.devices``, /dev symlinks, /dev/console (bind of the pty slave);
4. ``pivot_root`` and detach the old root;
5. after pivot: readonly/masked paths, read-only root.
"""

from __future__ import annotations

import os
import stat
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard.runtime import syscalls as S

_FLAGS: dict[str, tuple[bool, int]] = {
    "ro": (False, S.MS_RDONLY), "rw": (True, S.MS_RDONLY),
    "nosuid": (False, S.MS_NOSUID), "suid": (True, S.MS_NOSUID),
    "nodev": (False, S.MS_NODEV), "dev": (True, S.MS_NODEV),
    "noexec": (False, S.MS_NOEXEC), "exec": (True, S.MS_NOEXEC),
    "sync": (False, S.MS_SYNCHRONOUS), "async": (True, S.MS_SYNCHRONOUS),
    "dirsync": (False, S.MS_DIRSYNC), "remount": (False, S.MS_REMOUNT),
    "mand": (False, S.MS_MANDLOCK), "nomand": (True, S.MS_MANDLOCK),
    "noatime": (False, S.MS_NOATIME), "atime": (True, S.MS_NOATIME),
    "nodiratime": (False, S.MS_NODIRATIME), "diratime": (True, S.MS_NODIRATIME),
    "relatime": (False, S.MS_RELATIME), "norelatime": (True, S.MS_RELATIME),
    "strictatime": (False, S.MS_STRICTATIME), "nostrictatime": (True, S.MS_STRICTATIME),
    "bind": (False, S.MS_BIND), "rbind": (False, S.MS_BIND | S.MS_REC),
    "nosymfollow": (False, S.MS_NOSYMFOLLOW),
}
PROPAGATION = {
    "private": S.MS_PRIVATE, "rprivate": S.MS_PRIVATE | S.MS_REC,
    "shared": S.MS_SHARED, "rshared": S.MS_SHARED | S.MS_REC,
    "slave": S.MS_SLAVE, "rslave": S.MS_SLAVE | S.MS_REC,
    "unbindable": S.MS_UNBINDABLE, "runbindable": S.MS_UNBINDABLE | S.MS_REC,
}
_IGNORED = {"tmpcopyup", "defaults"}

#: devices every container gets (runc's defaults): path, type, major, minor, mode
DEFAULT_DEVICES = [
    ("/dev/null", "c", 1, 3, 0o666), ("/dev/zero", "c", 1, 5, 0o666), ("/dev/full", "c", 1, 7, 0o666),
    ("/dev/tty", "c", 5, 0, 0o666), ("/dev/urandom", "c", 1, 9, 0o666), ("/dev/random", "c", 1, 8, 0o666),
]
DEV_SYMLINKS = [("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"), ("/proc/self/fd/1", "/dev/stdout"),
                ("/proc/self/fd/2", "/dev/stderr")]


class MountError(Exception):
    """A setup step failed; ``str()`` is the user-facing one-line message."""


def _fail(action: str, e: OSError) -> MountError:
    reason = os.strerror(e.errno) if e.errno else str(e)
    return MountError(f"{action}: {reason[:1].lower() + reason[1:]}")


def parse_options(options: list[str] | None) -> tuple[int, int, str]:
    """(mount flags, propagation flags, data string) from an OCI mount's ``options``."""
    flags = prop = 0
    data: list[str] = []
    for o in options or []:
        if o in _FLAGS:
            clear, f = _FLAGS[o]
            flags = flags & ~f if clear else flags | f
        elif o in PROPAGATION:
            prop |= PROPAGATION[o]
        elif o in _IGNORED:
            continue
        else:
            data.append(o)
    return flags, prop, ",".join(data)


def secure_join(root: str, unsafe: str) -> str:
    """``root`` + ``unsafe`` resolved as if ``root`` were ``/`` (a string: only after pivot_root, where nothing
    but the container's own root is reachable). Before pivot_root every target is an fd (``_target``)."""
    from dockyard.rootpath import secure_join as join

    return join(root, unsafe)


def _is_bind(m: dict[str, Any], flags: int) -> bool:
    return bool(flags & S.MS_BIND) or m.get("type") == "bind"


def _target(root_fd: int, dest: str, source: str | None, is_bind: bool) -> int:
    """An O_PATH fd of mount point ``dest``, resolved by the kernel inside the root (``rootpath``), made if
    missing (a file for a bind mount of a non-directory, else a directory) with *at calls relative to the fds of
    its parents. The mount is then made on ``/proc/self/fd/<fd>``: exactly what was resolved, even if a
    container sharing a volume swaps a component for a symlink meanwhile (runc's CVE-2021-30465)."""
    from dockyard.rootpath import follow_last, mkdir_all, open_in_root, open_parent

    try:
        return open_in_root(root_fd, dest, os.O_PATH)
    except FileNotFoundError:
        pass
    dest = follow_last(root_fd, dest)  # a dangling link: its target is made, inside the root
    if is_bind and source and not os.path.isdir(source):
        pfd, base = open_parent(root_fd, dest, create=True)
        try:
            os.close(os.open(base, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=pfd))
        except FileExistsError:
            pass
        finally:
            os.close(pfd)
    else:
        os.close(mkdir_all(root_fd, dest))
    return open_in_root(root_fd, dest, os.O_PATH)


def _remount_target(root_fd: int, dest: str) -> int:
    """The mount point again, after something was mounted on it: resolving it anew reaches the new mount."""
    from dockyard.rootpath import open_in_root

    return open_in_root(root_fd, dest, os.O_PATH)


def mount_one(rootfs: str, m: dict[str, Any], sc: Any = S, cgroup_dirs: dict[str, str] | None = None,
              new_cgroupns: bool = True, root_fd: int | None = None) -> None:
    from dockyard.rootpath import fd_path, open_root

    flags, prop, data = parse_options(m.get("options"))
    typ = m.get("type") or ("bind" if flags & S.MS_BIND else "")
    src = m.get("source") or typ
    dst_rel = m["destination"]
    own_root = root_fd is None
    fds: list[int] = []
    try:
        if root_fd is None:
            root_fd = open_root(rootfs)
        bind = _is_bind(m, flags)
        if bind and not os.path.exists(src):
            raise FileNotFoundError(2, os.strerror(2), src)
        fds.append(_target(root_fd, dst_rel, src, bind))
        dest = fd_path(fds[-1])
        if typ == "cgroup" and not bind:
            _mount_cgroup(dest, lambda: _reopen(root_fd, dst_rel, fds), flags, sc, cgroup_dirs or {},
                          new_cgroupns)
        elif bind:
            sc.mount(src, dest, None, S.MS_BIND | (flags & S.MS_REC))
            extra = flags & ~(S.MS_BIND | S.MS_REC | S.MS_REMOUNT)
            if extra:
                dest = _reopen(root_fd, dst_rel, fds)
                sc.mount(None, dest, None, S.MS_BIND | S.MS_REMOUNT | extra | _locked_flags(dest))
        else:
            sc.mount(src, dest, typ, flags, data or None)
        if prop:
            sc.mount(None, _reopen(root_fd, dst_rel, fds), None, prop)
    except OSError as e:
        raise _fail(f"cannot mount {typ or src} on {dst_rel}", e) from None
    finally:
        for fd in fds:
            os.close(fd)
        if own_root and root_fd is not None:
            os.close(root_fd)


def _reopen(root_fd: int, dst_rel: str, fds: list[int]) -> str:
    from dockyard.rootpath import fd_path

    fds.append(_remount_target(root_fd, dst_rel))
    return fd_path(fds[-1])


def _locked_flags(path: str) -> int:
    try:
        f = os.statvfs(path).f_flag
    except OSError:
        return 0
    return f & (S.MS_NOSUID | S.MS_NODEV | S.MS_NOEXEC | S.MS_NOATIME | S.MS_NODIRATIME | S.MS_RELATIME)


def _mount_cgroup(dest: str, reopen: Any, flags: int, sc: Any, dirs: dict[str, str], new_ns: bool) -> None:
    """/sys/fs/cgroup: on v2 one cgroup2 mount; on v1 a tmpfs holding one mount per hierarchy (a fresh mount
    when the container has its own cgroup namespace, else a bind of its own cgroup directory). ``reopen()``
    gives the mount point anew once something is mounted on it."""
    base = flags & (S.MS_NOSUID | S.MS_NODEV | S.MS_NOEXEC)
    if "" in dirs:  # pure v2
        if new_ns:
            sc.mount("cgroup2", dest, "cgroup2", flags)
        else:
            sc.mount(dirs[""], dest, None, S.MS_BIND)
            sc.mount(None, reopen(), None, S.MS_BIND | S.MS_REMOUNT | flags)
        return
    sc.mount("tmpfs", dest, "tmpfs", base, "mode=755")
    dest = reopen()  # the fresh tmpfs: nothing from the container is in it
    for name, d in dirs.items():
        sub = os.path.join(dest, name)
        os.makedirs(sub, 0o755, exist_ok=True)
        if new_ns:
            if name == "unified":
                sc.mount("cgroup2", sub, "cgroup2", flags)
            else:
                opts = ",".join(("name=" + c) if c == "systemd" else c for c in name.split(","))
                if name == "systemd":
                    opts = "none,name=systemd"
                sc.mount("cgroup", sub, "cgroup", flags, opts)
        else:
            sc.mount(d, sub, None, S.MS_BIND)
            sc.mount(None, sub, None, S.MS_BIND | S.MS_REMOUNT | flags)
        if "," in name:
            for alias in name.split(","):
                try:
                    os.symlink(name, os.path.join(dest, alias))
                except FileExistsError:
                    pass
    if flags & S.MS_RDONLY:
        sc.mount(None, dest, None, S.MS_REMOUNT | base | S.MS_RDONLY, "mode=755")


def create_devices(rootfs: str, devices: list[dict[str, Any]] | None, sc: Any = S) -> None:
    from dockyard.rootpath import fd_path, open_parent, open_root

    wanted = [{"path": p, "type": t, "major": ma, "minor": mi, "fileMode": mode, "uid": 0, "gid": 0}
              for p, t, ma, mi, mode in DEFAULT_DEVICES]
    seen = {d["path"] for d in devices or []}
    wanted = [d for d in wanted if d["path"] not in seen] + list(devices or [])
    old = os.umask(0)
    root_fd = open_root(rootfs)
    try:
        for d in wanted:
            kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}[d.get("type", "c")]
            mode = d.get("fileMode", 0o666) & 0o7777
            pfd, base = open_parent(root_fd, d["path"], create=True)
            try:
                try:
                    os.unlink(base, dir_fd=pfd)
                except FileNotFoundError:
                    pass
                path = f"{fd_path(pfd)}/{base}"  # the parent by fd; the node itself is made, never followed
                try:
                    sc.mknod(path, kind | mode, os.makedev(d.get("major", 0), d.get("minor", 0)))
                    if d.get("uid") or d.get("gid"):
                        os.chown(base, d.get("uid") or 0, d.get("gid") or 0, dir_fd=pfd, follow_symlinks=False)
                except PermissionError:
                    # no CAP_MKNOD (e.g. in a user namespace): bind-mount the host's node instead
                    os.close(os.open(base, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                     0o666, dir_fd=pfd))
                    tfd = os.open(base, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pfd)
                    try:
                        sc.mount(d["path"], fd_path(tfd), None, S.MS_BIND)
                    finally:
                        os.close(tfd)
            finally:
                os.close(pfd)
    except OSError as e:
        raise _fail(f"cannot create device {d['path']}", e) from None
    finally:
        os.close(root_fd)
        os.umask(old)


def dev_symlinks(rootfs: str, console_src: str | None, sc: Any = S) -> None:
    from dockyard.rootpath import fd_path, open_in_root, open_root

    root_fd = open_root(rootfs)
    try:
        dev = open_in_root(root_fd, "/dev", os.O_RDONLY | os.O_DIRECTORY)
    finally:
        os.close(root_fd)
    try:
        links = list(DEV_SYMLINKS)
        if os.path.exists(f"{fd_path(dev)}/pts/ptmx"):
            links.append(("pts/ptmx", "/dev/ptmx"))
        for target, link in links:
            name = os.path.basename(link)
            try:
                try:
                    st = os.stat(name, dir_fd=dev, follow_symlinks=False)
                    if stat.S_ISLNK(st.st_mode) and os.readlink(name, dir_fd=dev) == target:
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        continue
                    os.unlink(name, dir_fd=dev)
                except FileNotFoundError:
                    pass
                os.symlink(target, name, dir_fd=dev)
            except OSError as e:
                raise _fail(f"cannot create symlink {link}", e) from None
        if console_src:
            try:
                try:
                    os.close(os.open("console", os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                     0o600, dir_fd=dev))
                except FileExistsError:
                    pass
                cfd = os.open("console", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dev)
                try:
                    sc.mount(console_src, fd_path(cfd), None, S.MS_BIND)
                finally:
                    os.close(cfd)
            except OSError as e:
                raise _fail("cannot set up /dev/console", e) from None
    finally:
        os.close(dev)


def prepare(spec: dict[str, Any], rootfs: str, console_src: str | None, sc: Any = S,
            cgroup_dirs: dict[str, str] | None = None, new_cgroupns: bool = True) -> None:
    """Steps 1-3: everything before pivot_root."""
    linux = spec.get("linux") or {}
    prop = PROPAGATION.get(linux.get("rootfsPropagation") or "", S.MS_SLAVE | S.MS_REC)
    try:
        sc.mount(None, "/", None, prop)
        sc.mount(rootfs, rootfs, None, S.MS_BIND | S.MS_REC)
    except OSError as e:
        raise _fail(f"cannot bind-mount the root filesystem {rootfs}", e) from None
    from dockyard.rootpath import open_root

    root_fd = open_root(rootfs)
    try:
        for m in spec.get("mounts") or []:
            mount_one(rootfs, m, sc, cgroup_dirs, new_cgroupns, root_fd=root_fd)
    finally:
        os.close(root_fd)
    create_devices(rootfs, linux.get("devices"), sc)
    dev_symlinks(rootfs, console_src, sc)


def pivot(rootfs: str, sc: Any = S) -> None:
    """Step 4: make ``rootfs`` the root and detach the old one (runc's pivot_root(".", ".") trick)."""
    try:
        old = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.chdir(rootfs)
            sc.pivot_root(".", ".")
            os.fchdir(old)
            sc.mount(None, ".", None, S.MS_SLAVE | S.MS_REC)
            sc.umount2(".", S.MNT_DETACH)
        finally:
            os.close(old)
        os.chdir("/")
    except OSError as e:
        raise _fail("cannot pivot_root into the root filesystem", e) from None


def finalize(spec: dict[str, Any], sc: Any = S, root: str = "/") -> None:
    """Step 5 (after pivot; ``root`` is ``/`` except in tests): readonly and masked paths, read-only root."""
    linux = spec.get("linux") or {}
    for p in linux.get("readonlyPaths") or []:
        path = secure_join(root, p)
        try:
            sc.mount(path, path, None, S.MS_BIND | S.MS_REC)
            sc.mount(None, path, None, S.MS_BIND | S.MS_REMOUNT | S.MS_RDONLY | S.MS_REC | _locked_flags(path))
        except FileNotFoundError:
            continue
        except OSError as e:
            raise _fail(f"cannot make {p} read-only", e) from None
    for p in linux.get("maskedPaths") or []:
        path = secure_join(root, p)
        try:
            if os.path.isdir(path):
                sc.mount("tmpfs", path, "tmpfs", S.MS_RDONLY, None)
            else:
                sc.mount(os.path.join(root, "dev/null"), path, None, S.MS_BIND)
        except FileNotFoundError:
            continue
        except OSError as e:
            raise _fail(f"cannot mask {p}", e) from None
    if (spec.get("root") or {}).get("readonly"):
        try:
            sc.mount(None, root, None, S.MS_BIND | S.MS_REMOUNT | S.MS_RDONLY | _locked_flags(root))
        except OSError as e:
            raise _fail("cannot make the root filesystem read-only", e) from None
