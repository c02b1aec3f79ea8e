"""``cp``: copy files between a container and the host, both ways, or as a tar stream with ``-``.

The copying (inside the container's root, through fds) is ``engine.archive``'s; this module reads the command
line: ``CONTAINER:PATH`` on one side, a host path or ``-`` (a tar on stdin/stdout) on the other.
"""

from __future__ import annotations

import sys

from dockyard.cli.args import Parser
from dockyard.cli.main import Context
from dockyard.errors import InvalidArgument


def _split(arg: str) -> tuple[str | None, str]:
    if arg.startswith("/") or arg.startswith(".") or ":" not in arg:
        return None, arg
    name, _, path = arg.partition(":")
    return name, path


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
    from dockyard.engine import archive

    if sc is not None:
        if dpath == "-":
            archive.archive_get(ctx.store, sc, spath, sys.stdout.buffer, o.follow_link)
        else:
            archive.copy_out(ctx.store, sc, spath, dpath, o.archive, o.follow_link)
        return 0
    assert dc is not None
    if o.src == "-":
        archive.archive_put(ctx.store, dc, dpath, sys.stdin.buffer)
    else:
        archive.copy_in(ctx.store, dc, spath, dpath, o.archive, o.follow_link)
    return 0
