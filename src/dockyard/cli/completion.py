"""``dockyard --help``'s command list and ``dockyard completion bash|zsh|fish``, both generated from the verb
table (``cli.main.VERBS``/``MANAGEMENT``) and each verb's own flag parser, so that neither can drift from the
commands that exist."""

from __future__ import annotations

import sys
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.cli.main import Context

DESCRIPTIONS: dict[str, str] = {
    "run": "Create and run a new container from an image", "create": "Create a new container",
    "start": "Start one or more stopped containers", "stop": "Stop one or more running containers",
    "kill": "Kill one or more running containers", "restart": "Restart one or more containers",
    "rm": "Remove one or more containers", "ps": "List containers", "logs": "Fetch the logs of a container",
    "exec": "Execute a command in a running container", "inspect": "Return low-level information on objects",
    "wait": "Block until one or more containers stop, then print their exit codes",
    "pause": "Pause all processes within one or more containers",
    "unpause": "Unpause all processes within one or more containers", "rename": "Rename a container",
    "top": "Display the running processes of a container",
    "stats": "Display a live stream of container(s) resource usage statistics",
    "cp": "Copy files/folders between a container and the local filesystem",
    "attach": "Attach local standard input, output, and error streams to a running container",
    "diff": "Inspect changes to files or directories on a container's filesystem",
    "commit": "Create a new image from a container's changes",
    "export": "Export a container's filesystem as a tar archive", "port": "List port mappings for a container",
    "build": "Build an image from a Dockerfile", "images": "List images",
    "tag": "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE", "rmi": "Remove one or more images",
    "history": "Show the history of an image", "import": "Import the contents from a tarball to create an image",
    "save": "Save one or more images to a tar archive", "load": "Load an image from a tar archive or STDIN",
    "version": "Show the dockyard version information", "info": "Display system-wide information",
    "completion": "Print a shell completion script (bash, zsh or fish)",
    "pull": "Download an image from a registry", "push": "Upload an image to a registry",
    "login": "Log in to a registry", "logout": "Log out from a registry",
    "events": "Get real time events from the server",
}
MANAGEMENT_DESCRIPTIONS: dict[str, str] = {
    "image": "Manage images", "container": "Manage containers", "volume": "Manage volumes",
    "network": "Manage networks", "system": "Manage dockyard (service: the Docker Engine API on a socket)",
    "builder": "Manage builds", "manifest": "Manage Docker image manifests and manifest lists",
}

_HEAD = """Usage:  dockyard [OPTIONS] COMMAND

A daemonless, Docker-compatible container engine

Options:
      --root string     State directory (default "/var/lib/dockyard", env DOCKYARD_ROOT)
  -D, --debug           Show tracebacks for errors
  -h, --help            Print usage
  -v, --version         Print version information and quit
"""


def usage() -> str:
    """``dockyard --help``: every verb and management command, each with a line saying what it does."""
    from dockyard.cli.main import MANAGEMENT, VERBS

    width = max(len(v) for v in [*VERBS, *MANAGEMENT]) + 2
    lines = [_HEAD, "Commands:"]
    lines += [f"  {v.ljust(width)}{DESCRIPTIONS.get(v, '')}".rstrip() for v in VERBS]
    lines += ["", "Management Commands:"]
    lines += [f"  {m.ljust(width)}{MANAGEMENT_DESCRIPTIONS.get(m, '')} ({', '.join(sub)})"
              for m, sub in MANAGEMENT.items()]
    lines += ["", "Run 'dockyard COMMAND --help' for more information on a command."]
    return "\n".join(lines) + "\n"


class _Captured(Exception):
    def __init__(self, parser: Any) -> None:
        self.parser = parser


def flags_of(module: str, verb: str) -> list[str]:
    """The flags a verb accepts, read from the parser its module builds: the verb's main is run against an empty
    state root, its output discarded, and stopped the moment it asks its parser (argparse or ``Flags``) to parse."""
    import contextlib
    import importlib
    import io
    import tempfile

    from dockyard.cli.args import Parser
    from dockyard.cli.flags import Flags
    from dockyard.cli.main import Context

    def capture_argparse(self: Any, *a: Any, **kw: Any) -> Any:
        raise _Captured([o for act in self._actions for o in act.option_strings])

    def capture_flags(self: Any, *a: Any, **kw: Any) -> Any:
        raise _Captured([*self.by_name, "--help"])

    saved = Parser.parse_args, Parser.parse_known_args, Flags.parse, sys.stdin
    Parser.parse_args = Parser.parse_known_args = capture_argparse  # type: ignore[method-assign,assignment]
    Flags.parse = capture_flags  # type: ignore[method-assign,assignment]
    sys.stdin = io.StringIO()
    try:
        with tempfile.TemporaryDirectory() as d, contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            importlib.import_module(f"dockyard.cli.{module}").main(Context(d, verb), [])
    except _Captured as c:
        return sorted(set(c.parser))
    except Exception:  # noqa: BLE001 - a verb without a parser has no flags to offer
        return []
    finally:
        Parser.parse_args, Parser.parse_known_args, Flags.parse, sys.stdin = saved  # type: ignore[method-assign]
    return []


def table() -> dict[str, list[str]]:
    """``{"run": ["--detach", ...], "image ls": [...], ...}`` for every command."""
    from dockyard.cli.main import MANAGEMENT, VERBS

    out = {v: flags_of(m, v) for v, m in VERBS.items() if v != "completion"}
    out["completion"] = []
    for mgmt, sub in MANAGEMENT.items():
        for name, (module, verb) in sub.items():
            out[f"{mgmt} {name}"] = flags_of(module, verb)
    return out


def _bash(t: dict[str, list[str]], top: list[str]) -> str:
    cases = "\n".join(f'        "{k}") flags="{" ".join(v)}" ;;' for k, v in t.items())
    subs = "\n".join(f'        "{m}") words="{" ".join(k.split(" ", 1)[1] for k in t if k.startswith(m + " "))}" ;;'
                     for m in sorted({k.split(" ", 1)[0] for k in t if " " in k}))
    return f"""# bash completion for dockyard (generated by `dockyard completion bash`)
_dockyard() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" cmd="" i words="" flags=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            --root) ((i++)) ;;
            -*) ;;
            *) if [[ -z "$cmd" ]]; then cmd="${{COMP_WORDS[i]}}"; elif [[ "$cmd" != *" "* ]]; then
                   case "$cmd" in image|container|volume|network|system) cmd="$cmd ${{COMP_WORDS[i]}}" ;; esac
               fi ;;
        esac
    done
    if [[ -z "$cmd" ]]; then
        COMPREPLY=($(compgen -W "{' '.join(top)} --root --debug --help --version" -- "$cur")); return
    fi
    case "$cmd" in
{subs}
    esac
    if [[ -n "$words" ]]; then COMPREPLY=($(compgen -W "$words" -- "$cur")); return; fi
    case "$cmd" in
{cases}
    esac
    if [[ "$cmd" == completion ]]; then COMPREPLY=($(compgen -W "bash zsh fish" -- "$cur")); return; fi
    if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$flags" -- "$cur")); else COMPREPLY=($(compgen -f -- "$cur")); fi
}}
complete -F _dockyard dockyard
"""


def _zsh(t: dict[str, list[str]], top: list[str]) -> str:
    return "#compdef dockyard\n# zsh completion for dockyard (generated by `dockyard completion zsh`)\n" \
        "autoload -U +X bashcompinit && bashcompinit\n" + _bash(t, top).split("\n", 1)[1]


def _fish(t: dict[str, list[str]], top: list[str]) -> str:
    out = ["# fish completion for dockyard (generated by `dockyard completion fish`)",
           "complete -c dockyard -f",
           f"complete -c dockyard -n __fish_use_subcommand -a '{' '.join(top)}'"]
    mgmt = sorted({k.split(" ", 1)[0] for k in t if " " in k})
    for m in mgmt:
        subs = " ".join(k.split(" ", 1)[1] for k in t if k.startswith(m + " "))
        out.append(f"complete -c dockyard -n '__fish_seen_subcommand_from {m}' -a '{subs}'")
    out.append("complete -c dockyard -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'")
    for k, flags in t.items():
        if " " in k:
            continue
        for f in flags:
            opt = f"-l {f[2:]}" if f.startswith("--") else f"-s {f[1:]}"
            out.append(f"complete -c dockyard -n '__fish_seen_subcommand_from {k}' {opt}")
    return "\n".join(out) + "\n"


def main(ctx: Context, argv: list[str]) -> int:
    from dockyard.cli.args import Parser
    from dockyard.cli.main import MANAGEMENT, VERBS

    p = Parser("completion", "bash|zsh|fish", "Print a shell completion script")
    p.add_argument("shell", choices=["bash", "zsh", "fish"])
    o = p.parse_args(argv)
    top = [*VERBS, *MANAGEMENT]
    t = table()
    sys.stdout.write({"bash": _bash, "zsh": _zsh, "fish": _fish}[o.shell](t, top))
    return 0
