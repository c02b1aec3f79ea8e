"""A small table-driven flag parser with Docker's (pflag's) rules, for the verbs on the hot path.

argparse costs several milliseconds per start (it builds a help formatter for every option); ``run`` has sixty
options. Rules: ``--name value`` / ``--name=value``; ``-e VALUE`` / ``-eVALUE``; short booleans combine (``-itd``);
booleans accept ``--rm=false``; ``--`` ends the options; with ``interspersed=False`` the first positional
argument ends them too (``run IMAGE CMD --flag`` passes ``--flag`` to the container).
"""

from __future__ import annotations

from dockyard.cli.main import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

BOOL, STR, LIST, INT = "bool", "str", "list", "int"


class Flags:
    def __init__(self, verb: str, usage: str, table: list[tuple[str, str, Any]]) -> None:
        """``table``: ``("-i, --interactive", BOOL, default)``; the dest is the long name with ``_``."""
        self.verb = verb
        self.usage = usage
        self.by_name: dict[str, tuple[str, str]] = {}
        self.defaults: dict[str, Any] = {}
        for names, kind, default in table:
            parts = [n.strip() for n in names.split(",")]
            dest = parts[-1].lstrip("-").replace("-", "_")
            for n in parts:
                self.by_name[n] = (dest, kind)
            self.defaults[dest] = list(default) if kind == LIST else default

    def parse(self, argv: list[str], interspersed: bool = True) -> tuple[dict[str, Any], list[str]]:
        vals = {k: (list(v) if isinstance(v, list) else v) for k, v in self.defaults.items()}
        pos: list[str] = []
        i = 0
        while i < len(argv):
            a = argv[i]
            i += 1
            if a == "--":
                pos += argv[i:]
                break
            if not a.startswith("-") or a == "-":
                pos.append(a)
                if not interspersed:
                    pos += argv[i:]
                    break
                continue
            if a == "--help" or a == "-h" and "-h" not in self.by_name:
                raise SystemExit(self._help())
            if a.startswith("--"):
                name, eq, value = a.partition("=")
                spec = self.by_name.get(name)
                if spec is None:
                    raise UsageError(f"unknown flag: {name}")
                if spec[1] == BOOL:
                    vals[spec[0]] = self._bool(name, value) if eq else True
                    continue
                if not eq:
                    if i >= len(argv):
                        raise UsageError(f"flag needs an argument: {name}")
                    value = argv[i]
                    i += 1
                self._set(vals, spec, name, value)
                continue
            # short flags: -itd, -e VALUE, -eVALUE, -p=80
            j = 1
            while j < len(a):
                name = "-" + a[j]
                spec = self.by_name.get(name)
                if spec is None:
                    raise UsageError(f"unknown shorthand flag: '{a[j]}' in {a}")
                if spec[1] == BOOL:
                    vals[spec[0]] = True
                    j += 1
                    continue
                value = a[j + 1:]
                if value.startswith("="):
                    value = value[1:]
                if not value:
                    if i >= len(argv):
                        raise UsageError(f"flag needs an argument: '{a[j]}' in {name}")
                    value = argv[i]
                    i += 1
                self._set(vals, spec, name, value)
                break
        return vals, pos

    @staticmethod
    def _bool(name: str, value: str) -> bool:
        v = value.lower()
        if v in ("1", "t", "true"):
            return True
        if v in ("0", "f", "false"):
            return False
        raise UsageError(f'invalid argument "{value}" for "{name}" flag: strconv.ParseBool: parsing "{value}": '
                         "invalid syntax")

    @staticmethod
    def _set(vals: dict[str, Any], spec: tuple[str, str], name: str, value: str) -> None:
        dest, kind = spec
        if kind == LIST:
            vals[dest].append(value)
        elif kind == INT:
            try:
                vals[dest] = int(value)
            except ValueError:
                raise UsageError(f'invalid argument "{value}" for "{name}" flag: strconv.ParseInt: parsing '
                                 f'"{value}": invalid syntax') from None
        else:
            vals[dest] = value

    def _help(self) -> str:
        """Docker's ``--help``: every flag with its type, its description (``cli.flaghelp``) and its default."""
        from dockyard.cli import flaghelp

        seen: dict[str, list[str]] = {}
        kinds: dict[str, str] = {}
        for n, (dest, kind) in self.by_name.items():
            seen.setdefault(dest, []).append(n)
            kinds[dest] = kind
        words = {BOOL: "", STR: "string", LIST: "list", INT: "int"}
        # aliases (--net for --network) are accepted and not listed, as Docker hides them
        rows = [([n for n in names if not n.startswith("--")] + [max((n for n in names if n.startswith("--")),
                                                                 key=len, default="")], words[kinds[dest]],
                 flaghelp.describe(self.verb, names) + flaghelp.default_text(kinds[dest], self.defaults[dest]))
                for dest, names in seen.items()]
        rows.append((["--help"], "", flaghelp.describe(self.verb, ["--help"])))
        print(f"\nUsage:  dockyard {self.verb} {self.usage}\n\nOptions:\n" + flaghelp.table(rows), end="")
        return 0  # type: ignore[return-value]
