"""start, stop, kill, restart, rm, wait, pause, unpause, rename, container prune."""

from __future__ import annotations

import sys

from dockyard.cli.args import Parser
from dockyard.cli.main import Context

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from dockyard.engine.records import Outcome


def _report(outcomes: Iterator[Outcome], missing_ok: bool = False) -> int:
    """Docker's multi-container verbs: print each name as given (or the verb's value), each error on its own
    line, and go on; exit 1 if any failed (``rm -f`` passes over containers that do not exist)."""
    from dockyard.errors import NotFound

    rc = 0
    for o in outcomes:
        if o.error is None:
            print(o.ref if o.value is None else o.value, flush=True)
        elif not (missing_ok and isinstance(o.error, NotFound)):
            sys.stderr.write(f"Error: {o.error}\n")
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

            c = local.resolve(st, o.containers[0])
            c.can_start()
            if c.running:
                status = stream.attach(c.id, stdin=o.interactive, tty=c.spec.tty)
            else:
                local.start(st, c, wait_attach=True)
                status = stream.attach(c.id, stdin=o.interactive, tty=c.spec.tty, start=True,
                                       detach_keys=stream.parse_detach_keys(o.detach_keys))
            if status is None:
                c = local.resolve(st, c.id)
                return 0 if c.running else (c.exit_code or 0)
            return status
        return _report(local.for_each(st, o.containers, lambda c: local.start(st, c) and None))
    if v in ("stop", "restart"):
        p = Parser(v, "[OPTIONS] CONTAINER [CONTAINER...]")
        p.add_argument("-t", "--time", "--timeout", type=int, dest="time")
        p.add_argument("-s", "--signal", default="")
        p.add_argument("containers", nargs="+")
        o = p.parse_args(argv)
        sig = local.parse_signal(o.signal) if o.signal else None
        fn = local.restart if v == "restart" else local.stop
        return _report(local.for_each(st, o.containers, lambda c: fn(st, c, o.time, sig),
                                      parallel=v == "stop"))  # restart starts a monitor: a fork, kept serial
    if v == "kill":
        p = Parser(v, "[OPTIONS] CONTAINER [CONTAINER...]")
        p.add_argument("-s", "--signal", default="KILL")
        p.add_argument("containers", nargs="+")
        o = p.parse_args(argv)
        sig = local.parse_signal(o.signal)
        return _report(local.for_each(st, o.containers, lambda c: local.kill(st, c, sig), parallel=True))
    if v == "rm":
        p = Parser(v, "[OPTIONS] CONTAINER [CONTAINER...]")
        p.add_argument("-f", "--force", action="store_true")
        p.add_argument("-v", "--volumes", action="store_true")
        p.add_argument("-l", "--link", action="store_true")
        p.add_argument("containers", nargs="+")
        o = p.parse_args(argv)
        # rm -f of a missing container is not an error in Docker
        return _report(local.remove_many(st, o.containers, o.force, o.volumes), missing_ok=o.force)
    if v == "wait":
        p = Parser(v, "CONTAINER [CONTAINER...]")
        p.add_argument("containers", nargs="+")
        o = p.parse_args(argv)
        return _report(local.for_each(st, o.containers, lambda c: local.wait(st, c)))
    if v in ("pause", "unpause"):
        p = Parser(v, "CONTAINER [CONTAINER...]")
        p.add_argument("containers", nargs="+")
        o = p.parse_args(argv)
        fn = local.pause if v == "pause" else local.unpause
        return _report(local.for_each(st, o.containers, lambda c: fn(st, c)))
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
        from dockyard.cli.humanize import human_size
        from dockyard.engine.filters import parse

        report = local.prune(st, parse(o.filter))
        if report.deleted:
            print("Deleted Containers:")
            print("".join(cid + "\n" for cid in report.deleted))
        print(f"Total reclaimed space: {human_size(report.space_reclaimed)}")
        return 0
    raise AssertionError(v)
