"""Files of a container's filesystem: archives out of and into it (``cp``, GET/PUT/HEAD .../archive), its
changes against the image (``diff``) and its whole root as a tar (``export``).

Paths inside the container are resolved by the kernel inside its root and copied through fds (``rootpath``,
``fdtree``), so that the container's symlinks, even ones swapped in while the copy runs, never lead outside it.
A path inside a bind mount or a volume (and ``/etc/hostname``, ``/etc/hosts``, ``/etc/resolv.conf``, which
dockyard writes beside the root) is resolved inside the mount's source instead. Docker's cp rules: copying a
directory onto an existing directory puts it inside; ``SRC/.`` copies the directory's contents; a file onto a
directory lands inside it. An archive put into a container is extracted with the layer extractor's rules (no
escape, no device nodes).

    with open("out.tar", "wb") as f:
        archive_get(store, "web", "/etc", f)
"""

from __future__ import annotations

import contextlib
import os
import stat
import tarfile
from collections.abc import Iterator

from dockyard.errors import InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

    from dockyard.engine.containers import Container
    from dockyard.engine.records import Change, PathStat
    from dockyard.state.db import Store


@contextlib.contextmanager
def mounted_root(store: Store, ref: str) -> Iterator[tuple[str, Container]]:
    """(the container's merged root, the container), mounted for the block if it is not already (a stopped
    container's root is mounted for a cp or an export and unmounted after)."""
    from dockyard.engine import rootfs
    from dockyard.engine.containers import ContainerStore

    c = ContainerStore(store).get(ref)
    target = os.path.join(c.dir(store), "rootfs")
    mounted_here = False
    if not os.path.ismount(target):
        rootfs.mount(store, c)
        mounted_here = True
    try:
        yield target, c
    finally:
        if mounted_here:
            rootfs.unmount(store, c)


def _resolve(root: str, c: Container, path: str) -> tuple[str, str]:
    """(host directory standing for ``/``, path inside it) behind a container path: inside a bind mount (the
    files Docker writes for every container, -v and --mount binds, volumes) the mount's source, else the
    container's root. The path is only ever resolved by the kernel inside that directory (``rootpath``)."""
    path = "/" + path.lstrip("/")
    cdir = os.path.dirname(root)  # root is <container dir>/rootfs: the files Docker writes sit beside it
    binds = {f"/etc/{n}": os.path.join(cdir, n) for n in ("hostname", "hosts", "resolv.conf")}
    for m in c.spec.mounts:
        if m.type == "bind":
            binds[m.target.rstrip("/") or "/"] = m.source
        elif m.type == "volume" and m.source:
            from dockyard.volumes.attach import host_path

            binds[m.target.rstrip("/") or "/"] = host_path(os.path.dirname(os.path.dirname(cdir)), m.source)
    for target in sorted(binds, key=len, reverse=True):
        if path == target or path.startswith(target + "/"):
            src, rest = binds[target], path[len(target):]
            if not os.path.isdir(src):  # a file bind: its directory stands for the root
                return os.path.dirname(src), "/" + os.path.basename(src) + rest
            return src, rest or "/"
    return root, path


@contextlib.contextmanager
def _fd(fd: int) -> Iterator[int]:
    try:
        yield fd
    finally:
        os.close(fd)


def _open_src(rfd: int, path: str, follow: bool) -> tuple[int, str]:
    """(parent fd, name) of a source inside a root; NotFound if there is nothing."""
    from dockyard.rootpath import follow_last, open_parent

    clean = "/".join(p for p in path.split("/") if p and p != ".")
    if not clean:
        return os.dup(rfd), "."
    if follow:
        clean = follow_last(rfd, "/" + clean)
    pfd, base = open_parent(rfd, "/" + clean.lstrip("/"))
    try:
        os.stat(base, dir_fd=pfd, follow_symlinks=False)
    except OSError:
        os.close(pfd)
        raise
    return pfd, base


def _copy_into(src_parent: int, src_name: str, rfd: int, dpath: str, copy_contents: bool, owners: bool,
               devices: bool) -> None:
    """Docker's cp rules, every destination component resolved inside the root ``rfd``: onto an existing
    directory the source goes inside it (``SRC/.``: its contents do); else it becomes the destination."""
    from dockyard.fdtree import Copier, open_dir
    from dockyard.rootpath import follow_last, open_in_root, open_parent

    st = os.stat(src_name, dir_fd=src_parent, follow_symlinks=False)
    is_dir = stat.S_ISDIR(st.st_mode)
    try:
        dfd: int | None = open_in_root(rfd, dpath, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError):
        dfd = None
    with Copier(owners=owners, devices=devices) as cp:
        if dfd is not None:
            with _fd(dfd):
                if is_dir and (copy_contents or src_name == "."):
                    sfd = open_dir(src_parent, src_name)
                    if sfd is None:
                        raise InvalidArgument(f"{src_name} is not a directory")
                    with _fd(sfd):
                        cp.copy_contents(sfd, dfd)
                else:
                    cp.copy(src_parent, src_name, dfd, src_name)
            return
        if dpath.endswith("/") and not is_dir:
            raise NotFound(f"no such directory: {dpath}")
        pfd, base = open_parent(rfd, follow_last(rfd, dpath))
        with _fd(pfd):
            cp.copy(src_parent, src_name, pfd, base)


def _extract_safely(stream: object, dest_fd: int) -> None:
    """Extract a tar from stdin into directory ``dest_fd`` with the container-safe extractor (no escapes, no
    devices)."""
    from dockyard.snapshots.extract import Extractor

    with tarfile.open(fileobj=stream, mode="r|*") as tf:  # type: ignore[call-overload]
        Extractor(dest_fd, allow_devices=False).extract(tf)


def archive_get(store: Store, ref: str, path: str, out: BinaryIO, follow: bool = False) -> None:
    """Write a tar of ``path`` inside container ``ref`` (a file, or a directory and what it holds, named by its
    base name) to ``out``; ``follow`` resolves a last component that is a symlink (``cp -L``)."""
    from dockyard.fdtree import add_to_tar
    from dockyard.rootpath import open_root

    with mounted_root(store, ref) as (root, c):
        base, inner = _resolve(root, c, path)
        with _fd(open_root(base)) as rfd:
            try:
                spfd, sname = _open_src(rfd, inner, follow)
            except OSError:
                raise NotFound(f"Could not find the file {path} in container {ref}") from None
            with _fd(spfd):
                arc = os.path.basename(inner.rstrip("/")) or "."
                with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
                    add_to_tar(tf, spfd, sname, arc)


def archive_put(store: Store, ref: str, path: str, stream: BinaryIO) -> None:
    """Extract the tar read from ``stream`` into directory ``path`` of container ``ref``."""
    from dockyard.rootpath import open_in_root, open_root

    with mounted_root(store, ref) as (root, c):
        base, inner = _resolve(root, c, path)
        with _fd(open_root(base)) as rfd:
            try:
                dfd = open_in_root(rfd, inner, os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                raise InvalidArgument(f"destination \"{ref}:{path}\" must be a directory") from None
            with _fd(dfd):
                _extract_safely(stream, dfd)


def archive_stat(store: Store, ref: str, path: str) -> PathStat:
    """What ``path`` is inside container ``ref`` (not following a last symlink; its target is reported)."""
    from dockyard.engine.records import PathStat
    from dockyard.rootpath import open_root

    with mounted_root(store, ref) as (root, c):
        base, inner = _resolve(root, c, path)
        with _fd(open_root(base)) as rfd:
            try:
                pfd, name = _open_src(rfd, inner, False)
            except OSError:
                raise NotFound(f"Could not find the file {path} in container {ref}") from None
            with _fd(pfd):
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                link = os.readlink(name, dir_fd=pfd) if stat.S_ISLNK(st.st_mode) else ""
    return PathStat(name=os.path.basename(inner.rstrip("/")) or "/", size=st.st_size,
                    mode=go_file_mode(st.st_mode), mtime=st.st_mtime, link_target=link)


def go_file_mode(mode: int) -> int:
    """A stat mode as Go's os.FileMode bits (what Docker's archive stat header carries)."""
    bits = mode & 0o777
    kind = stat.S_IFMT(mode)
    bits |= {stat.S_IFDIR: 1 << 31, stat.S_IFLNK: 1 << 27, stat.S_IFIFO: 1 << 25, stat.S_IFSOCK: 1 << 24,
             stat.S_IFBLK: 1 << 26, stat.S_IFCHR: (1 << 26) | (1 << 21)}.get(kind, 0)
    if mode & stat.S_ISUID:
        bits |= 1 << 23
    if mode & stat.S_ISGID:
        bits |= 1 << 22
    if mode & stat.S_ISVTX:
        bits |= 1 << 20
    return bits


def copy_out(store: Store, ref: str, path: str, dest: str, archive: bool = False, follow: bool = False) -> None:
    """``cp CONTAINER:path dest``: copy into the caller's filesystem (``archive``: keep owners)."""
    from dockyard.rootpath import open_root

    with mounted_root(store, ref) as (root, c):
        base, inner = _resolve(root, c, path)
        with _fd(open_root(base)) as rfd:
            try:
                spfd, sname = _open_src(rfd, inner, follow)
            except OSError:
                raise NotFound(f"Could not find the file {path} in container {ref}") from None
            with _fd(spfd):
                dst = os.path.abspath(dest)
                parent = os.path.dirname(dst) or "/"
                if not os.path.isdir(parent):
                    raise InvalidArgument(f"destination directory {parent} does not exist")
                with _fd(open_root("/")) as hfd:  # the caller's own filesystem: its paths are the caller's
                    _copy_into(spfd, sname, hfd, dst + ("/" if dest.endswith("/") else ""), path.endswith("/."),
                               archive, False)


def copy_in(store: Store, ref: str, src: str, path: str, archive: bool = False, follow: bool = False) -> None:
    """``cp src CONTAINER:path``: copy from the caller's filesystem into the container."""
    from dockyard.rootpath import open_root

    with mounted_root(store, ref) as (root, c):
        if not os.path.lexists(src):
            raise NotFound(f"stat {src}: no such file or directory")
        base, inner = _resolve(root, c, path)
        with _fd(open_root(base)) as rfd:
            host = os.path.realpath(src) if follow else os.path.abspath(src)
            with _fd(os.open(os.path.dirname(host) or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)) as spfd:
                try:
                    _copy_into(spfd, os.path.basename(host) or ".", rfd, inner, src.endswith("/."), archive, False)
                except FileNotFoundError:
                    raise InvalidArgument(f"Could not find the file {os.path.dirname(path)} in container {ref}"
                                          ) from None


def _changes(upper: str, lowers: list[str]) -> list[Change]:
    """The upper dir is walked through fds and the lower dirs are looked up without following any link
    (``fdtree``, ``rootpath``): a running container swapping a directory for a symlink cannot list host files."""
    from dockyard.engine.records import Change
    from dockyard.fdtree import walk
    from dockyard.rootpath import lstat_beneath, open_root

    out: list[Change] = []
    lfds = [open_root(lo) for lo in lowers if os.path.isdir(lo)]
    ufd = open_root(upper)
    try:
        for e in walk(ufd):
            if stat.S_ISCHR(e.st.st_mode) and e.st.st_rdev == 0:  # an overlay whiteout
                out.append(Change(kind=2, path="/" + e.rel))
            else:
                found = any(lstat_beneath(fd, e.rel) is not None for fd in lfds)
                out.append(Change(kind=0 if found else 1, path="/" + e.rel))
    finally:
        for fd in [ufd, *lfds]:
            os.close(fd)
    out.sort(key=lambda x: x.path)
    return _without_init_paths(out)


# What Docker's init layer holds (moby's initlayer): the mount points the engine itself puts in every container.
# They sit between the image and the container's layer there, so ``docker diff`` never lists them; here they are
# made in the container's upper dir, and are left out of its changes. A volume's or bind's mount point is listed,
# as Docker lists it (the runtime makes it in the container's layer).
_INIT_PATHS = frozenset({"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/etc/mtab", "/.dockerenv",
                         "/dev/console", "/dev/pts", "/dev/shm", "/proc", "/sys"})


def _without_init_paths(out: list[Change]) -> list[Change]:
    """``out`` without the init layer's paths, and without a directory holding them that has no other change
    beneath it (``/etc`` is ``C`` only because ``/etc/hosts`` was made in it)."""
    kept = [ch for ch in out if ch.path not in _INIT_PATHS or ch.kind == 2]
    parents = {p.rsplit("/", 1)[0] or "/" for p in _INIT_PATHS}
    return [ch for ch in kept if ch.path not in parents or ch.kind == 2
            or any(o.path.startswith(ch.path + "/") for o in kept)]


def changes(store: Store, ref: str) -> list[Change]:
    """Docker's ``diff``: what container ``ref`` added (A), changed (C) or deleted (D) against its image,
    sorted by path; the engine's own mount points (/etc/hosts, /etc/hostname, /etc/resolv.conf) are not
    changes."""
    from dockyard.engine import rootfs
    from dockyard.engine.containers import ContainerStore
    from dockyard.snapshots.store import SnapshotStore

    c = ContainerStore(store).get(ref)
    _, top = rootfs.image_config(store, c)
    with SnapshotStore(store).mounted(top) as lowers:  # layer images mounted while they are read
        return _changes(os.path.join(c.dir(store), "diff"), lowers)


def export(store: Store, ref: str, out: BinaryIO) -> None:
    """Container ``ref``'s merged root as a tar written to ``out``, read through fds (``fdtree``: a symlink
    swapped in by a running container is archived as the link it is); the kernel file systems mounted inside
    are not part of it."""
    from dockyard.fdtree import add_to_tar
    from dockyard.rootpath import open_root

    with mounted_root(store, ref) as (root, _c):
        with _fd(open_root(root)) as rfd:
            with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
                add_to_tar(tf, rfd, ".", ".", one_fs=True, root_entry=False)
