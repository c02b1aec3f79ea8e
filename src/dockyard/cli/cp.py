"""``cp``: copy files between a container and the host, both ways, or as a tar stream with ``-``.

Paths inside the container are resolved by the kernel inside its root and copied through fds (``rootpath``,
``fdtree``), so that the container's symlinks, even ones swapped in while the copy runs, never lead outside it. Docker's rules: copying a directory onto an existing directory puts it
inside; ``SRC/.`` copies the directory's contents; a file onto a directory lands inside it.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tarfile
from collections.abc import Iterator

from dockyard.cli.args import Parser
from dockyard.cli.main import Context
from dockyard.errors import InvalidArgument, NotFound


def _split(arg: str) -> tuple[str | None, str]:
    if arg.startswith("/") or arg.startswith(".") or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    return name, path


@contextlib.contextmanager
def _rootfs(ctx: Context, ref: str) -> Iterator[tuple[str, object]]:
    from dockyard.engine import rootfs
    from dockyard.engine.containers import ContainerStore

    c = ContainerStore(ctx.store).get(ref)
    target = os.path.join(c.dir(ctx.store), "rootfs")
    mounted_here = False
    if not os.path.ismount(target):
        rootfs.mount(ctx.store, c)
        mounted_here = True
    try:
        yield target, c
    finally:
        if mounted_here:
            rootfs.unmount(ctx.store, c)


def _resolve(root: str, c: object, path: str) -> tuple[str, str]:
    """(host directory standing for ``/``, path inside it) behind a container path: inside a bind mount (the
    files Docker writes for every container, -v and --mount binds, volumes) the mount's source, else the
    container's root. The path is only ever resolved by the kernel inside that directory (``rootpath``)."""
    path = "/" + path.lstrip("/")
    cdir = os.path.dirname(root)  # root is <container dir>/rootfs: the files Docker writes sit beside it
    binds = {f"/etc/{n}": os.path.join(cdir, n) for n in ("hostname", "hosts", "resolv.conf")}
    for m in c.spec.mounts:  # type: ignore[attr-defined]
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


def main(ctx: Context, argv: list[str]) -> int:
    p = Parser("cp", "[OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n       dockyard cp [OPTIONS] SRC_PATH|- "
                     "CONTAINER:DEST_PATH")
    p.add_argument("-a", "--archive", action="store_true")
    p.add_argument("-L", "--follow-link", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("src")
    p.add_argument("dst")
    o = p.parse_args(argv)
    sc, spath = _split(o.src)
    dc, dpath = _split(o.dst)
    if (sc is None) == (dc is None):
        raise InvalidArgument("copying between containers is not supported" if sc else
                              "must specify at least one container source")
    from dockyard.rootpath import open_root

    if sc is not None:
        with _rootfs(ctx, sc) as (root, c):
            base, inner = _resolve(root, c, spath)
            with _fd(open_root(base)) as rfd:
                try:
                    spfd, sname = _open_src(rfd, inner, o.follow_link)
                except OSError:
                    raise NotFound(f"Could not find the file {spath} in container {sc}") from None
                with _fd(spfd):
                    if dpath == "-":
                        from dockyard.fdtree import add_to_tar

                        arc = os.path.basename(inner.rstrip("/")) or "."
                        with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT) as tf:
                            add_to_tar(tf, spfd, sname, arc)
                        return 0
                    dst = os.path.abspath(dpath)
                    parent = os.path.dirname(dst) or "/"
                    if not os.path.isdir(parent):
                        raise InvalidArgument(f"destination directory {parent} does not exist")
                    with _fd(open_root("/")) as hfd:  # the caller's own filesystem: its paths are the caller's
                        _copy_into(spfd, sname, hfd, dst + ("/" if dpath.endswith("/") else ""),
                                   spath.endswith("/."), o.archive, False)
        return 0
    with _rootfs(ctx, dc) as (root, c):  # type: ignore[arg-type]
        base, inner = _resolve(root, c, dpath)
        with _fd(open_root(base)) as rfd:
            if o.src == "-":
                from dockyard.rootpath import open_in_root

                try:
                    dfd = open_in_root(rfd, inner, os.O_RDONLY | os.O_DIRECTORY)
                except OSError:
                    raise InvalidArgument(f"destination \"{dc}:{dpath}\" must be a directory") from None
                with _fd(dfd):
                    _extract_safely(sys.stdin.buffer, dfd)
                return 0
            if not os.path.lexists(spath):
                raise NotFound(f"stat {spath}: no such file or directory")
            src = os.path.realpath(spath) if o.follow_link else os.path.abspath(spath)
            with _fd(os.open(os.path.dirname(src) or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)) as spfd:
                try:
                    _copy_into(spfd, os.path.basename(src) or ".", rfd, inner, spath.endswith("/."), o.archive,
                               False)
                except FileNotFoundError:
                    raise InvalidArgument(f"Could not find the file {os.path.dirname(dpath)} in container {dc}"
                                          ) from None
    return 0


def _extract_safely(stream: object, dest_fd: int) -> None:
    """Extract a tar from stdin into directory ``dest_fd`` with the container-safe extractor (no escapes, no
    devices)."""
    from dockyard.snapshots.extract import Extractor

    with tarfile.open(fileobj=stream, mode="r|*") as tf:  # type: ignore[call-overload]
        Extractor(dest_fd, allow_devices=False).extract(tf)
