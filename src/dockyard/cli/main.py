"""The ``dockyard`` command: global options, verb dispatch, and the one place errors become exit codes.

Each verb lives in its own module under ``dockyard.cli`` and is imported only when used, so that
``dockyard ps`` never pays for importing the build or network code. A verb module defines
``main(ctx: Context, argv: list[str]) -> int``.

Exit codes (as the Docker CLI): a verb's own status on success/failure (0/1); 125 for usage errors and for
errors of dockyard itself in run/create/start/exec; 126/127 from the runtime when a command cannot be executed or
is not found; a container's own exit status for ``run`` and ``start -a``.
"""

from __future__ import annotations

import os
import sys
TYPE_CHECKING = False
if TYPE_CHECKING:
    from dockyard.state.db import Store

# verb -> module under dockyard.cli
VERBS: dict[str, str] = {
    "images": "images", "tag": "images", "rmi": "images", "history": "images",
    "import": "imageio", "save": "imageio", "load": "imageio",
    "run": "run", "create": "run",
    "start": "lifecycle", "stop": "lifecycle", "kill": "lifecycle", "restart": "lifecycle",
    "rm": "lifecycle", "wait": "lifecycle", "pause": "lifecycle", "unpause": "lifecycle",
    "rename": "lifecycle",
    "ps": "ps", "logs": "logs", "exec": "exec", "inspect": "inspect",
    "top": "top", "stats": "top",
    "cp": "cp", "attach": "attach", "diff": "commit", "commit": "commit", "export": "commit",
    "version": "version", "info": "version",
    "build": "build",
    "port": "network",
    "completion": "completion",
    "compose": "compose",
    "pull": "registry", "push": "registry", "login": "registry", "logout": "registry",
    "events": "events",
}

# management commands: ``dockyard image ls`` == ``dockyard images`` and so on.
MANAGEMENT: dict[str, dict[str, tuple[str, str]]] = {
    "image": {
        "ls": ("images", "images"), "list": ("images", "images"), "rm": ("images", "rmi"),
        "remove": ("images", "rmi"), "tag": ("images", "tag"), "history": ("images", "history"),
        "inspect": ("images", "image-inspect"), "prune": ("images", "image-prune"),
        "import": ("imageio", "import"), "save": ("imageio", "save"), "load": ("imageio", "load"),
        "build": ("build", "build"), "pull": ("registry", "pull"), "push": ("registry", "push"),
    },
    "manifest": {v: ("manifest", "manifest-" + v) for v in ("create", "annotate", "inspect", "push", "rm")},
    "container": {
        "ls": ("ps", "ps"), "list": ("ps", "ps"), "ps": ("ps", "ps"), "run": ("run", "run"),
        "create": ("run", "create"), "start": ("lifecycle", "start"), "stop": ("lifecycle", "stop"),
        "kill": ("lifecycle", "kill"), "restart": ("lifecycle", "restart"), "rm": ("lifecycle", "rm"),
        "remove": ("lifecycle", "rm"), "wait": ("lifecycle", "wait"), "pause": ("lifecycle", "pause"),
        "unpause": ("lifecycle", "unpause"), "rename": ("lifecycle", "rename"), "logs": ("logs", "logs"),
        "exec": ("exec", "exec"), "inspect": ("inspect", "container-inspect"), "top": ("top", "top"),
        "stats": ("top", "stats"), "cp": ("cp", "cp"), "attach": ("attach", "attach"),
        "prune": ("lifecycle", "container-prune"), "diff": ("commit", "diff"),
        "commit": ("commit", "commit"), "export": ("commit", "export"),
    },
    "volume": {
        "create": ("volume", "volume-create"), "ls": ("volume", "volume-ls"), "list": ("volume", "volume-ls"),
        "inspect": ("volume", "volume-inspect"), "rm": ("volume", "volume-rm"), "remove": ("volume", "volume-rm"),
        "prune": ("volume", "volume-prune"), "export": ("volume", "volume-export"),
        "import": ("volume", "volume-import"),
    },
    "system": {"service": ("service", "service"), "info": ("version", "info"), "prune": ("system", "system-prune")},
    "builder": {"prune": ("builder", "builder-prune")},
    "buildx": {v: ("buildx", "buildx-" + v) for v in ("build", "create", "use", "ls", "inspect", "rm", "version")},
    "network": {
        "create": ("network", "network-create"), "ls": ("network", "network-ls"),
        "list": ("network", "network-ls"), "inspect": ("network", "network-inspect"),
        "rm": ("network", "network-rm"), "remove": ("network", "network-rm"),
        "connect": ("network", "network-connect"), "disconnect": ("network", "network-disconnect"),
        "prune": ("network", "network-prune"),
    },
}

class Context:
    """What every verb gets: the state root and the verb name it was called as."""

    def __init__(self, root: str, verb: str, debug: bool = False) -> None:
        self.root = root
        self.verb = verb
        self.debug = debug
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            from dockyard.state.db import Store

            self._store = Store(self.root)
        return self._store


class UsageError(Exception):
    """Bad flags or flag values: printed with a pointer to --help, exit 125 (the Docker CLI's flag errors)."""

    exit_code = 125


class ArgumentCountError(UsageError):
    """Too few or too many arguments (``run`` without an image): exit 1, as the Docker CLI's ``requires at least
    1 argument``."""

    exit_code = 1


def _parse_globals(argv: list[str]) -> tuple[dict[str, object], list[str]]:
    opts: dict[str, object] = {"root": None, "debug": False}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        a = argv[i]
        if a == "--root":
            if i + 1 >= len(argv):
                raise UsageError("flag needs an argument: --root")
            opts["root"] = argv[i + 1]
            i += 2
            continue
        if a in ("--cluster-store", "--cluster-advertise"):  # Docker's legacy daemon options: exported, so that
            if i + 1 >= len(argv):                           # monitors and helpers see them (state.config)
                raise UsageError(f"flag needs an argument: {a}")
            os.environ["DOCKYARD_" + a[2:].replace("-", "_").upper()] = argv[i + 1]
            i += 2
            continue
        if a.startswith("--root="):
            opts["root"] = a.split("=", 1)[1]
        elif a.startswith(("--cluster-store=", "--cluster-advertise=")):
            os.environ["DOCKYARD_" + a[2:].partition("=")[0].replace("-", "_").upper()] = a.partition("=")[2]
        elif a in ("-D", "--debug"):
            opts["debug"] = True
        elif a in ("-v", "--version"):
            opts["version"] = True
        elif a in ("-h", "--help"):
            opts["help"] = True
        else:
            raise UsageError(f"unknown flag: {a}")
        i += 1
    return opts, argv[i:]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    from dockyard.trace import mark

    mark("main")
    debug = False
    verb = ""
    try:
        g, rest = _parse_globals(args)
        debug = bool(g["debug"])
        if g.get("version"):
            from dockyard import __version__

            print(f"dockyard version {__version__}")
            return 0
        if g.get("help") or not rest:
            from dockyard.cli.completion import usage

            sys.stdout.write(usage())
            return 0
        verb, rest = rest[0], rest[1:]
        if verb in MANAGEMENT:
            sub = MANAGEMENT[verb]
            if not rest or rest[0] in ("-h", "--help"):
                print(f"Usage:  dockyard {verb} COMMAND\n\nCommands:\n  " + ", ".join(sub))
                return 0
            if rest[0] not in sub:
                raise UsageError(f"unknown command: dockyard {verb} {rest[0]}")
            module, verb = sub[rest[0]]
            rest = rest[1:]
        elif verb in VERBS:
            module = VERBS[verb]
        else:
            sys.stderr.write(f"dockyard: '{verb}' is not a dockyard command.\nSee 'dockyard --help'\n")
            return 1
        default_root = "/var/lib/dockyard"
        if os.geteuid() != 0 or "_DOCKYARD_ROOTLESS" in os.environ:  # the user's own namespace and store
            from dockyard import rootless

            default_root = rootless.start(verb) or default_root
        root = str(g["root"] or os.environ.get("DOCKYARD_ROOT") or default_root)
        ctx = Context(root=os.path.abspath(root), verb=verb, debug=debug)
        import importlib

        mod = importlib.import_module(f"dockyard.cli.{module}")
        return int(mod.main(ctx, rest) or 0)
    except UsageError as e:
        sys.stderr.write(f"{e}\nSee 'dockyard {verb + ' ' if verb else ''}--help'.\n")
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # the one place errors become exit codes
        from dockyard.errors import ContainerExit, DockyardError

        if isinstance(e, ContainerExit):
            return e.status
        if debug:
            import traceback

            traceback.print_exc()
        if isinstance(e, DockyardError):
            sys.stderr.write(f"Error: {e}\n")
            return exit_code(verb, e)
        if isinstance(e, OSError):
            from dockyard.errors import from_oserror

            sys.stderr.write(f"Error: {from_oserror(e.filename or verb, e)}\n")
            return exit_code(verb, e)
        sys.stderr.write(f"Error: internal error: {type(e).__name__}: {e} (rerun with --debug)\n")
        return exit_code(verb, e)


def exit_code(verb: str, e: BaseException) -> int:
    """The Docker 28 CLI's status for a failed verb. ``run``: 125 (so that 1..124 can only be the container's),
    126/127 when its command cannot be executed or is not found. ``exec``: 126/127 likewise, else 1. ``create``:
    125 for options it refuses (the CLI's own checks), 1 for what the engine refuses (an unknown image, a name in
    use). Every other verb: 1."""
    from dockyard.errors import InvalidArgument

    code = getattr(e, "exit_code", None)  # 126/127: the container's command could not be started
    if verb == "run":
        return int(code or 125)
    if verb == "exec" and code:
        return int(code)
    if verb == "create" and isinstance(e, InvalidArgument):
        return 125
    return 1
