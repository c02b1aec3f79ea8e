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
