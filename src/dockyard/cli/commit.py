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
    """Docker's ``diff`` lines as (kind, path): A added, C changed, D deleted (an overlay whiteout)."""
    out: list[tuple[str, str]] = []

    def in_lower(rel: str) -> bool:
        return any(os.path.lexists(os.path.join(lo, rel)) for lo in lowers)

    for dirpath, dirnames, filenames in os.walk(upper):
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, upper)
            st = os.lstat(p)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                out.append(("D", "/" + rel))
            else:
                out.append(("C" if in_lower(rel) else "A", "/" + rel))
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
    o = p.parse_args(argv)
    from dockyard.engine.commit import commit_container

    c = cs.get(o.container)
    iid = commit_container(ctx.store, c, o.repository, changes=o.change, message=o.message, author=o.author)
    print(iid)
    return 0


def _export(root: str, out: object) -> None:
    """The container's merged root as a tar; the kernel file systems mounted inside are not part of it."""
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in list(dirnames) + sorted(filenames):
                p = os.path.join(dirpath, name)
                rel = os.path.relpath(p, root)
                if name in dirnames and os.path.ismount(p):
                    dirnames.remove(name)
                ti = tf.gettarinfo(p, rel)
                if ti.isreg():
                    with open(p, "rb") as f:
                        tf.addfile(ti, f)
                else:
                    tf.addfile(ti)
