"""start, stop, kill, restart, rm, wait, pause, unpause, rename, container prune."""

from __future__ import annotations

import sys

from dockyard.cli.args import Parser
from dockyard.cli.main import Context
from dockyard.errors import DockyardError


def _each(ctx: Context, refs: list[str], fn, echo: bool = True) -> int:  # type: ignore[no-untyped-def]
    """Docker's multi-container verbs: act on each, print its name as given, report errors and go on."""
    from dockyard.engine.containers import ContainerStore

    cs = ContainerStore(ctx.store)
    rc = 0
    for ref in refs:
        try:
            out = fn(cs.get(ref))
            if echo:
                print(ref if out is None else out, flush=True)
        except DockyardError as e:
            sys.stderr.write(f"Error: {e}\n")
            rc = 1
    return rc


def main(ctx: Context, argv: list[str]) -> int:
    from dockyard.engine import local

    v = ctx.verb
    st = ctx.store
    if v == "start":
        p = Parser(v, "[OPTIONS] CONTAINER [CONTAINER...]")
        p.add_argument("-a", "--attach", action="store_true")
        p.add_argument("-i", "--interactive", action="store_true")
        p.add_argument("--detach-keys", default="")
        p.add_argument("containers", nargs="+")
        o = p.parse_args(argv)
        if o.attach or o.interactive:
            from dockyard.cli import stream
            from dockyard.engine.containers import ContainerStore

            c = ContainerStore(st).get(o.containers[0])
            c.can_start()
            if c.running:
                status = stream.attach(c.id, stdin=o.interactive, tty=c.spec.tty)
            else:
                local.start(st, c, wait_attach=True)
                status = stream.attach(c.id, stdin=o.interactive, tty=c.spec.tty, start=True,
                                       detach_keys=stream.parse_detach_keys(o.detach_keys))
            if status is None:
                c = ContainerStore(st).get(c.id)
                return 0 if c.running else (c.exit_code or 0)
            return status
        return _each(ctx, o.containers, lambda c: local.start(st, c) and None)
    if v in ("stop", "restart"):
        p = Parser(v, "[OPTIONS] CONTAINER [CONTAINER...]")
        p.add_argument("-t", "--time", "--timeout", type=int, dest="time")
        p.add_argument("-s", "--signal", default="")
        p.add_argument("containers", nargs="+")
        o = p.parse_args(argv)
        from dockyard.engine.specgen import parse_signal

        sig = parse_signal(o.signal) if o.signal else None

        def act(c):  # type: ignore[no-untyped-def]
            local.stop(st, c, o.time, sig)
            if v == "restart":
                from dockyard.engine.containers import ContainerStore

                local.start(st, ContainerStore(st).get(c.id))

        return _each(ctx, o.containers, act)
    if v == "kill":
        p = Parser(v, "[OPTIONS] CONTAINER [CONTAINER...]")
        p.add_argument("-s", "--signal", default="KILL")
        p.add_argument("containers", nargs="+")
        o = p.parse_args(argv)
        from dockyard.engine.specgen import parse_signal

        sig = parse_signal(o.signal)
        return _each(ctx, o.containers, lambda c: local.kill(st, c, sig))
    if v == "rm":
        p = Parser(v, "[OPTIONS] CONTAINER [CONTAINER...]")
        p.add_argument("-f", "--force", action="store_true")
        p.add_argument("-v", "--volumes", action="store_true")
        p.add_argument("-l", "--link", action="store_true")
        p.add_argument("containers", nargs="+")
        o = p.parse_args(argv)
        if o.force:
            from dockyard.engine.containers import ContainerStore
            from dockyard.errors import NotFound

            rc = 0
            for ref in o.containers:
                try:
                    local.remove(st, ContainerStore(st).get(ref), True, o.volumes)
                    print(ref, flush=True)
                except NotFound:
                    pass  # rm -f of a missing container is not an error in Docker
                except DockyardError as e:
                    sys.stderr.write(f"Error: {e}\n")
                    rc = 1
            return rc
        return _each(ctx, o.containers, lambda c: local.remove(st, c, False, o.volumes))
    if v == "wait":
        p = Parser(v, "CONTAINER [CONTAINER...]")
        p.add_argument("containers", nargs="+")
        o = p.parse_args(argv)
        return _each(ctx, o.containers, lambda c: local.wait(st, c))
    if v in ("pause", "unpause"):
        p = Parser(v, "CONTAINER [CONTAINER...]")
        p.add_argument("containers", nargs="+")
        o = p.parse_args(argv)
        fn = local.pause if v == "pause" else local.unpause
        return _each(ctx, o.containers, lambda c: fn(st, c))
    if v == "rename":
        p = Parser(v, "CONTAINER NEW_NAME")
        p.add_argument("container")
        p.add_argument("new_name")
        o = p.parse_args(argv)
        local.rename(st, local.resolve(st, o.container), o.new_name)
        return 0
    if v == "container-prune":
        p = Parser("container prune", "[OPTIONS]")
        p.add_argument("-f", "--force", action="store_true")
        p.add_argument("--filter", action="append", default=[])
        o = p.parse_args(argv)
        if not o.force:
            sys.stdout.write("WARNING! This will remove all stopped containers.\nAre you sure you want to "
                             "continue? [y/N] ")
            sys.stdout.flush()
            if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                return 0
        from dockyard.engine.containers import ContainerStore

        print("Deleted Containers:")
        for c in ContainerStore(st).list():
            if c.state in ("exited", "created", "dead"):
                local.remove(st, c)
                print(c.id)
        print("\nTotal reclaimed space: 0B")
        return 0
    raise AssertionError(v)
