"""Verbs ``pull``, ``push``, ``login`` and ``logout`` (``engine.images``), and the progress
display shared with ``run``/``create`` (which pull a missing image).

On a terminal each layer has a line that is rewritten in place (state, bar, bytes and speed), as Docker's; to a
pipe or file only the state changes are printed, one line each (``<id>: Pull complete``)."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from dockyard.cli.args import Parser
from dockyard.cli.main import Context, UsageError

if TYPE_CHECKING:
    from collections.abc import Iterable

_MOVING = {"Downloading", "Extracting", "Pushing"}


def main(ctx: Context, argv: list[str]) -> int:
    return {"pull": _pull, "push": _push, "login": _login, "logout": _logout}[ctx.verb](ctx, argv)


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.3g}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1000
    return f"{n}"


class Display:
    """Renders progress events: ``render(events)`` returns the ``done`` text (the full reference) or ''."""

    def __init__(self, out: TextIO, tty: bool | None = None, quiet: bool = False) -> None:
        self.out = out
        self.tty = out.isatty() if tty is None else tty
        self.quiet = quiet
        self.order: list[str] = []
        self.lines: dict[str, str] = {}
        self.started: dict[str, tuple[float, int]] = {}

    def render(self, events: Iterable[Any]) -> str:
        done = ""
        for ev in events:
            if ev.kind == "done":
                done = ev.text
            elif ev.kind == "notice":
                sys.stderr.write(ev.status + "\n")
                sys.stderr.flush()
            elif self.quiet:
                continue
            elif ev.kind == "status":
                self._status(ev.status)
            elif ev.kind == "layer":
                self._layer(ev)
        self.out.flush()
        return done

    def _status(self, text: str) -> None:
        self.order = []  # the next layer lines start below this one
        self.lines = {}
        self.out.write(text + "\n")
        self.out.flush()

    def _layer(self, ev: Any) -> None:
        if not self.tty:
            if ev.status not in _MOVING:
                self.out.write(f"{ev.id}: {ev.status}\n")
            return
        text = f"{ev.id}: {ev.status}"
        if ev.status in _MOVING and ev.total:
            text += " " + self._bar(ev)
        if ev.id not in self.lines:
            self.order.append(ev.id)
            self.lines[ev.id] = text
            self.out.write(text + "\n")
        else:
            self.lines[ev.id] = text
            up = len(self.order) - self.order.index(ev.id)
            self.out.write(f"\x1b[{up}A\r\x1b[2K{text}\x1b[{up}B\r")
        self.out.flush()

    def _bar(self, ev: Any) -> str:
        width = 50
        cur = min(ev.current, ev.total)
        filled = int(width * cur / ev.total) if ev.total else 0
        bar = "=" * filled + (">" if filled < width else "") + " " * max(0, width - filled - 1)
        key = f"{ev.id}{ev.status}"
        now = time.monotonic()
        t0, c0 = self.started.setdefault(key, (now, cur))
        speed = (cur - c0) / (now - t0) if now > t0 else 0.0
        s = f"[{bar}]  {_human(cur)}/{_human(ev.total)}"
        if speed > 0:
            s += f"  {_human(speed)}/s"
        return s


def _pull(ctx: Context, argv: list[str]) -> int:
    p = Parser("pull", "[OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry")
    p.add_argument("-a", "--all-tags", action="store_true", help="Download all tagged images in the repository")
    p.add_argument("--platform", default="", help="Set platform if server is multi-platform capable")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("--disable-content-trust", action="store_true", default=True,
                   help="Skip image verification (default true)")
    p.add_argument("name", nargs="?")
    a = p.parse_args(argv)
    if not a.name:
        raise UsageError('"dockyard pull" requires exactly 1 argument.')
    from dockyard.engine.images import pull

    done = Display(sys.stdout, quiet=a.quiet).render(pull(ctx.store, a.name, platform=a.platform,
                                                          all_tags=a.all_tags))
    if done:
        print(done)
    return 0


def _push(ctx: Context, argv: list[str]) -> int:
    p = Parser("push", "[OPTIONS] NAME[:TAG]", "Upload an image to a registry")
    p.add_argument("-q", "--quiet", action="store_true", help="Suppress verbose output")
    p.add_argument("--disable-content-trust", action="store_true", default=True,
                   help="Skip image signing (default true)")
    p.add_argument("name", nargs="?")
    a = p.parse_args(argv)
    if not a.name:
        raise UsageError('"dockyard push" requires exactly 1 argument.')
    from dockyard.engine.images import push

    done = Display(sys.stdout, quiet=a.quiet).render(push(ctx.store, a.name))
    if a.quiet and done:
        print(done)
    return 0


def _login(ctx: Context, argv: list[str]) -> int:
    p = Parser("login", "[OPTIONS] [SERVER]", "Log in to a registry.\nIf no server is specified, the default "
               "is defined by the daemon.")
    p.add_argument("-u", "--username", default="", help="Username")
    p.add_argument("-p", "--password", default="", help="Password")
    p.add_argument("--password-stdin", action="store_true", help="Take the password from stdin")
    p.add_argument("server", nargs="?", default="")
    a = p.parse_args(argv)
    from dockyard.engine.images import login, registry_host, stored_username

    password = a.password
    if a.password:
        sys.stderr.write("WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n")
        if a.password_stdin:
            raise UsageError("--password and --password-stdin are mutually exclusive")
    if a.password_stdin:
        if not a.username:
            raise UsageError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\r\n")
    username = a.username
    host = registry_host(a.server)
    if not username or not password:
        if not sys.stdin.isatty():
            from dockyard.errors import InvalidArgument

            raise InvalidArgument("Cannot perform an interactive login from a non TTY device")
        if not username:
            default = stored_username(host)
            username = input(f"Username{' (' + default + ')' if default else ''}: ").strip() or default
        if not password:
            import getpass

            password = getpass.getpass("Password: ")
    if not username:
        from dockyard.errors import InvalidArgument

        raise InvalidArgument("Error: Non-null Username Required")
    where = login(ctx.store, host, username, password)
    if where.endswith("config.json"):
        sys.stderr.write(f"WARNING! Your password will be stored unencrypted in {where}.\n"
                         "Configure a credential helper to remove this warning.\n\n")
    print("Login Succeeded")
    return 0


def _logout(ctx: Context, argv: list[str]) -> int:
    p = Parser("logout", "[SERVER]", "Log out from a registry.\nIf no server is specified, the default is "
               "defined by the daemon.")
    p.add_argument("server", nargs="?", default="")
    a = p.parse_args(argv)
    from dockyard.engine.images import logout

    host, had = logout(a.server)
    shown = "https://index.docker.io/v1/" if host == "docker.io" else host
    if not had:
        print(f"Not logged in to {shown}")
        return 0
    print(f"Removing login credentials for {shown}")
    return 0


def pull_for_run(ctx: Context, image: str, policy: str, platform: str) -> bool:
    """``run``/``create``: pull as ``--pull`` says, the output on stderr as Docker's; True when it pulled."""
    from dockyard.engine.images import ensure_image

    done = Display(sys.stderr).render(ensure_image(ctx.store, image, policy, platform))
    return bool(done)
