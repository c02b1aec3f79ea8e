"""``diff`` (changes in a container's upper dir), ``export`` (its merged root as a tar), ``commit``."""

from __future__ import annotations

import os
import stat
import sys
import tarfile

from dockyard.cli.args import Parser
from dockyard.cli.main import Context
from dockyard.errors import InvalidArgument


def changes(upper: str, lowers: list[str]) -> list[tuple[str, str]]:
    """Docker's ``diff`` lines as (kind, path): A added, C changed, D deleted (an overlay whiteout).

    The upper dir is walked through fds and the lower dirs are looked up without following any link
    (``fdtree``, ``rootpath``): a running container swapping a directory for a symlink cannot list host files."""
    from dockyard.fdtree import walk
    from dockyard.rootpath import lstat_beneath, open_root

    out: list[tuple[str, str]] = []
    lfds = [open_root(lo) for lo in lowers if os.path.isdir(lo)]
    ufd = open_root(upper)
    try:
        for e in walk(ufd):
            if stat.S_ISCHR(e.st.st_mode) and e.st.st_rdev == 0:
                out.append(("D", "/" + e.rel))
            else:
                found = any(lstat_beneath(fd, e.rel) is not None for fd in lfds)
                out.append(("C" if found else "A", "/" + e.rel))
    finally:
        for fd in [ufd, *lfds]:
            os.close(fd)
    out.sort(key=lambda x: x[1])
    return out


def main(ctx: Context, argv: list[str]) -> int:
    from dockyard.engine import rootfs
    from dockyard.engine.containers import ContainerStore

    cs = ContainerStore(ctx.store)
    if ctx.verb == "diff":
        p = Parser("diff", "CONTAINER")
        p.add_argument("container")
        o = p.parse_args(argv)
        c = cs.get(o.container)
        from dockyard.snapshots.store import SnapshotStore

        _, top = rootfs.image_config(ctx.store, c)
        lowers = SnapshotStore(ctx.store).lowerdirs(top)
        for kind, path in changes(os.path.join(c.dir(ctx.store), "diff"), lowers):
            print(f"{kind} {path}")
        return 0
    if ctx.verb == "export":
        p = Parser("export", "[OPTIONS] CONTAINER")
        p.add_argument("-o", "--output", default="")
        p.add_argument("container")
        o = p.parse_args(argv)
        if not o.output and sys.stdout.isatty():
            raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        from dockyard.cli.cp import _rootfs

        with _rootfs(ctx, o.container) as (root, c):
            out = open(o.output, "wb") if o.output else sys.stdout.buffer
            try:
                _export(root, out)
            finally:
                if o.output:
                    out.close()
        return 0
    p = Parser("commit", "[OPTIONS] CONTAINER [REPOSITORY[:TAG]]")
    p.add_argument("-a", "--author", default="")
    p.add_argument("-c", "--change", action="append", default=[])
    p.add_argument("-m", "--message", default="")
    p.add_argument("-p", "--pause", default="true")
    p.add_argument("container")
    p.add_argument("repository", nargs="?")
    # a boolean flag, as Docker's: bare -p/--pause is true and never takes the next word as its value
    o = p.parse_args(["--pause=true" if a in ("-p", "--pause") else a for a in argv])
    pause = o.pause.lower()
    if pause not in ("true", "false", "1", "0", "t", "f"):
        raise InvalidArgument(f'invalid argument "{o.pause}" for "-p, --pause" flag: strconv.ParseBool: parsing '
                              f'"{o.pause}": invalid syntax')
    from dockyard.engine.commit import commit_container

    c = cs.get(o.container)
    iid = commit_container(ctx.store, c, o.repository, changes=o.change, message=o.message, author=o.author,
                           pause=pause in ("true", "1", "t"))
    print(iid)
    return 0


def _export(root: str, out: object) -> None:
    """The container's merged root as a tar, read through fds (``fdtree``: a symlink swapped in by a running
    container is archived as the link it is); the kernel file systems mounted inside are not part of it."""
    from dockyard.fdtree import add_to_tar
    from dockyard.rootpath import open_root

    rfd = open_root(root)
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
            add_to_tar(tf, rfd, ".", ".", one_fs=True, root_entry=False)
    finally:
        os.close(rfd)
