"""argparse, shaped like the Docker CLI: ``unknown flag`` errors exit 125, help goes to stdout."""

from __future__ import annotations

import argparse
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn

from dockyard.cli.main import ArgumentCountError, UsageError


class _Formatter(argparse.HelpFormatter):
    """argparse builds a formatter per add_argument; asking the terminal's width each time imports shutil."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=100)


class Parser(argparse.ArgumentParser):
    def __init__(self, verb: str, usage: str, description: str = "") -> None:
        super().__init__(prog=f"dockyard {verb}", usage=f"dockyard {verb} {usage}", description=description,
                         allow_abbrev=False, add_help=False, formatter_class=_Formatter)
        self.add_argument("--help", action="help", help="Print usage")

    def format_help(self) -> str:
        """Docker's layout: usage, description, then every flag with its type, description and default."""
        from dockyard.cli import flaghelp

        key = self.prog.removeprefix("dockyard ").replace(" ", "-")
        rows = []
        for a in self._actions:
            if not a.option_strings:
                continue
            if a.nargs == 0:
                word = ""
            elif isinstance(a, argparse._AppendAction):
                word = "list"
            else:
                word = "int" if a.type is int else "string"
            text = a.help if a.help and a.help != argparse.SUPPRESS else flaghelp.describe(key, a.option_strings)
            if a.nargs != 0 and "(default" not in text:
                text += flaghelp.default_text(word, a.default)
            names = [n for n in a.option_strings if not n.startswith("--")]
            names += [max((n for n in a.option_strings if n.startswith("--")), key=len, default="")]
            rows.append(([n for n in names if n], word, text))  # aliases (--time) accepted, not listed
        out = f"\nUsage:  {self.usage}\n\n" + (f"{self.description}\n\n" if self.description else "")
        return out + "Options:\n" + flaghelp.table(rows)

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):
            rest = message.split(":", 1)[1].split()
            if rest and not rest[0].startswith("-"):  # a surplus argument, not a flag
                raise ArgumentCountError(f'"{self.prog}" accepts no argument {rest[0]!r} here')
            message = "unknown flag: " + " ".join(rest)
        elif message.startswith("the following arguments are required"):
            raise ArgumentCountError(f'"{self.prog}" requires more arguments ({message.split(":", 1)[1].strip()})')
        raise UsageError(f'"{self.prog}" {message}')


def kv_list(values: list[str] | None) -> dict[str, str]:
    """``["a=b", "c"]`` -> ``{"a": "b", "c": ""}`` (labels, build args, filters)."""
    out: dict[str, str] = {}
    for v in values or []:
        k, _, val = v.partition("=")
        out[k] = val
    return out
