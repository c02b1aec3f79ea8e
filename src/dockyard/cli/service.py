"""``system service [--time SECONDS] [URI]``: serve the Docker Engine API (dockyard.api) on a socket."""

from __future__ import annotations

from dockyard.cli.main import Context


def main(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.args import Parser

    p = Parser("system service", "[OPTIONS] [URI]")
    p.add_argument("-t", "--time", type=int, default=0,
                   help="Seconds without a connection before the service exits (0 = never)")
    p.add_argument("uri", nargs="?", default="")
    o = p.parse_args(argv)
    if o.time < 0:
        from dockyard.errors import InvalidArgument

        raise InvalidArgument("--time must be 0 (never) or a number of seconds")
    from dockyard.api import serve

    serve(ctx.root, o.uri, float(o.time), ctx.debug)
    return 0
