"""``diff`` (changes in a container's upper dir), ``export`` (its merged root as a tar), ``commit``: the
work is ``engine.archive``'s and ``engine.commit``'s."""

from __future__ import annotations

import sys

from dockyard.cli.args import Parser
from dockyard.cli.main import Context
from dockyard.errors import InvalidArgument


def main(ctx: Context, argv: list[str]) -> int:
    from dockyard.engine import archive

    if ctx.verb == "diff":
        p = Parser("diff", "CONTAINER")
        p.add_argument("container")
        o = p.parse_args(argv)
        sys.stdout.write("".join(f"{ch.letter} {ch.path}\n" for ch in archive.changes(ctx.store, o.container)))
        return 0
    if ctx.verb == "export":
        p = Parser("export", "[OPTIONS] CONTAINER")
        p.add_argument("-o", "--output", default="")
        p.add_argument("container")
        o = p.parse_args(argv)
        if not o.output and sys.stdout.isatty():
            raise InvalidArgument("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        if o.output:
            from dockyard.engine.local import resolve

            resolve(ctx.store, o.container)  # a missing container leaves no empty file behind
            with open(o.output, "wb") as out:
                archive.export(ctx.store, o.container, out)
        else:
            archive.export(ctx.store, o.container, sys.stdout.buffer)
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
    from dockyard.engine.local import resolve

    c = resolve(ctx.store, o.container)
    iid = commit_container(ctx.store, c, o.repository, changes=o.change, message=o.message, author=o.author,
                           pause=pause in ("true", "1", "t"))
    print(iid)
    return 0

