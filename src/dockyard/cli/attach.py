"""``attach``: connect this terminal to a running container's stdio through its monitor."""

from __future__ import annotations

from dockyard.cli.args import Parser
from dockyard.cli.main import Context
from dockyard.errors import Conflict, InvalidArgument


def main(ctx: Context, argv: list[str]) -> int:
    p = Parser("attach", "[OPTIONS] CONTAINER")
    p.add_argument("--no-stdin", action="store_true")
    p.add_argument("--sig-proxy", default="true")
    p.add_argument("--detach-keys", default="")
    p.add_argument("container")
    # a boolean flag, as Docker's: bare ``--sig-proxy`` is true and never takes the next word as its value
    o = p.parse_args(["--sig-proxy=true" if a == "--sig-proxy" else a for a in argv])
    from dockyard.cli import stream
    from dockyard.engine.containers import ContainerStore

    cs = ContainerStore(ctx.store)
    c = cs.get(o.container)
    if not c.running:
        raise Conflict("You cannot attach to a stopped container, start it first")
    if c.state == "paused":
        raise Conflict("You cannot attach to a paused container, unpause it first")
    if o.sig_proxy.lower() not in ("true", "false", "1", "0", "t", "f"):
        raise InvalidArgument(f'invalid argument "{o.sig_proxy}" for "--sig-proxy" flag: strconv.ParseBool: '
                              f'parsing "{o.sig_proxy}": invalid syntax')
    from dockyard.cli.sigproxy import forwarding

    with forwarding(ctx.store, c.id, enabled=o.sig_proxy.lower() in ("true", "1", "t") and not c.spec.tty):
        status = stream.attach(c.id, stdin=c.spec.open_stdin and not o.no_stdin, tty=c.spec.tty,
                               detach_keys=stream.parse_detach_keys(o.detach_keys))
    if status is None:
        c = cs.get(c.id)
        return 0 if c.running else (c.exit_code or 0)
    return status
