"""``inspect`` (containers, then images) and ``container inspect``: Docker-shaped JSON."""

from __future__ import annotations

import sys
from typing import Any

from dockyard.cli.args import Parser
from dockyard.cli.main import Context
from dockyard.errors import NotFound


def main(ctx: Context, argv: list[str]) -> int:
    p = Parser(ctx.verb.replace("-", " "), "[OPTIONS] NAME|ID [NAME|ID...]")
    p.add_argument("-f", "--format", default="")
    p.add_argument("-s", "--size", action="store_true")
    p.add_argument("--type", default="")
    p.add_argument("names", nargs="+")
    o = p.parse_args(argv)
    from dockyard.engine.view import inspect

    kind = "container" if ctx.verb == "container-inspect" else o.type
    out: list[Any] = []
    rc = 0
    for name in o.names:
        obj = None
        if kind in ("", "container"):
            try:
                obj = inspect(ctx.store, name, o.size)
            except NotFound:
                if kind == "container":
                    sys.stderr.write(f"Error: No such container: {name}\n")
                    rc = 1
                    continue
        if obj is None and kind in ("", "image"):
            try:
                from dockyard.engine.images import inspect_image

                obj = inspect_image(ctx.store, name)  # an index as image inspect shows it
            except NotFound:
                sys.stderr.write(f"Error: No such object: {name}\n" if not kind else
                                 f"Error: No such image: {name}\n")
                rc = 1
                continue
        out.append(obj)
    from dockyard.cli.template import print_inspect

    print_inspect(out, o.format)
    return rc
