"""``cp``: copy files between a container and the host, both ways, or as a tar stream with ``-``.

Paths inside the container are resolved with ``engine.fspath.secure_join`` so that the container's symlinks can
never lead the copy outside its root. Docker's rules: copying a directory onto an existing directory puts it
inside; ``SRC/.`` copies the directory's contents; a file onto a directory lands inside it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
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


def _resolve(root: str, c: object, path: str, follow_last: bool = True) -> str:
    # root is <container dir>/rootfs: the files Docker writes for the container sit beside it
    """The host path behind a container path: inside a bind mount (the files Docker writes for every container,
    -v and --mount binds, volumes) the mount's source, else the container's root; always resolved inside it."""
    from dockyard.engine.fspath import secure_join

    path = "/" + path.lstrip("/")
    cdir = os.path.dirname(root)
    binds = {f"/etc/{n}": os.path.join(cdir, n) for n in ("hostname", "hosts", "resolv.conf")}
    for m in c.spec.mounts:  # type: ignore[attr-defined]
        if m.type == "bind":
            binds[m.target.rstrip("/") or "/"] = m.source
        elif m.type == "volume" and m.source:
            from dockyard.volumes.attach import host_path

            binds[m.target.rstrip("/") or "/"] = host_path(os.path.dirname(os.path.dirname(cdir)), m.source)
    for target in sorted(binds, key=len, reverse=True):
        if path == target or path.startswith(target + "/"):
            rest = path[len(target):]
            return secure_join(binds[target], rest, follow_last) if rest else binds[target]
    return secure_join(root, path, follow_last)


def _copy(src: str, dst: str, copy_contents: bool) -> None:
    if os.path.isdir(src) and not os.path.islink(src):
        if os.path.isdir(dst) and not copy_contents:
            dst = os.path.join(dst, os.path.basename(src.rstrip("/")))
        shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True, copy_function=shutil.copy2)
        return
    if os.path.isdir(dst):
        dst = os.path.join(dst, os.path.basename(src))
    if os.path.lexists(dst) and os.path.islink(dst):
        os.unlink(dst)
    shutil.copy2(src, dst, follow_symlinks=False)


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
    if sc is not None:
        with _rootfs(ctx, sc) as (root, c):
            src = _resolve(root, c, spath, follow_last=o.follow_link)
            if not os.path.lexists(src):
                raise NotFound(f"Could not find the file {spath} in container {sc}")
            if dpath == "-":
                with tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.PAX_FORMAT) as tf:
                    tf.add(src, arcname=os.path.basename(src.rstrip("/")) or ".")
                return 0
            parent = os.path.dirname(os.path.abspath(dpath)) or "/"
            if not os.path.isdir(parent):
                raise InvalidArgument(f"destination directory {parent} does not exist")
            _copy(src, dpath, spath.endswith("/."))
        return 0
    with _rootfs(ctx, dc) as (root, c):  # type: ignore[arg-type]
        dst = _resolve(root, c, dpath)
        if o.src == "-":
            if not os.path.isdir(dst):
                raise InvalidArgument(f"destination \"{dc}:{dpath}\" must be a directory")
            _extract_safely(sys.stdin.buffer, dst)
            return 0
        if not os.path.lexists(spath):
            raise NotFound(f"stat {spath}: no such file or directory")
        parent = os.path.dirname(dst.rstrip("/"))
        if not os.path.isdir(parent):
            raise InvalidArgument(f"Could not find the file {os.path.dirname(dpath)} in container {dc}")
        _copy(os.path.abspath(spath), dst, spath.endswith("/."))
    return 0


def _extract_safely(stream: object, dest: str) -> None:
    """Extract a tar from stdin into ``dest`` with the container-safe extractor (no escapes, no devices)."""
    from dockyard.snapshots.extract import Extractor

    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tf:  # type: ignore[call-overload]
            Extractor(fd, allow_devices=False).extract(tf)
    finally:
        os.close(fd)
