"""Docker's ``--format`` tables without the template engine: ``prepare`` (Docker's preprocessing), ``tabwrite`` (Go's
tabwriter as the Docker CLI sets it) and ``format_rows``, which fills in a template of text and ``{{.Field}}`` actions
only (the default tables of ``ps`` and ``images``) directly and leaves anything else to ``cli.template``'s engine.
Importing the engine (its parser, functions and patterns) costs more than a ``ps`` does with 50 rows."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any


def tabwrite(lines: list[str], minwidth: int = 10, padding: int = 3) -> list[str]:
    """Align tab-separated cells as Go's ``tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)`` does."""
    rows = [ln.split("\t") for ln in lines]
    widths: list[int] = []
    for r in rows:
        for i, cell in enumerate(r[:-1]):
            w = len(cell) + padding
            if i >= len(widths):
                widths.append(max(minwidth, w))
            elif w > widths[i]:
                widths[i] = w
    out = []
    for r in rows:
        out.append("".join(c.ljust(widths[i]) for i, c in enumerate(r[:-1])) + r[-1])
    return out


def prepare(fmt: str) -> tuple[bool, str]:
    """(is_table, template text) after Docker's preprocessing of a ``--format`` value."""
    table = False
    if fmt.startswith("table"):
        table = True
        fmt = fmt[len("table"):]
    fmt = fmt.strip(" ")
    fmt = fmt.replace("\\t", "\t").replace("\\n", "\n")
    return table, fmt


def _plain(text: str) -> list[str] | None:
    """A template that is only text and ``{{.Field}}`` actions (the default tables of ``ps`` and ``images``), as
    ``[text, field, text, field, ..., text]``; None for anything else."""
    out: list[str] = []
    i = 0
    while True:
        j = text.find("{{", i)
        if j < 0:
            out.append(text[i:])
            return out
        k = text.find("}}", j)
        name = text[j + 2:k].strip(" ") if k >= 0 else ""
        if not (name[:1] == "." and name[1:].isidentifier() and name[1:].isascii()):
            return None
        out += [text[i:j], name[1:]]
        i = k + 2


def _plain_lines(pieces: list[str], rows: list[Any]) -> list[str] | None:
    """The rows through a ``_plain`` template when each field is a string of a plain dict row (what the template
    engine would print for it); None when one is not (the engine then renders them all)."""
    fields = pieces[1::2]
    lines = []
    for r in rows:
        if not isinstance(r, dict) or getattr(type(r), "TEMPLATE_METHODS", None):
            return None
        parts = [pieces[0]]
        for n, f in enumerate(fields):
            v = r.get(f)
            if type(v) is not str:
                return None
            parts += [v, pieces[2 * n + 2]]
        lines.append("".join(parts))
    return lines


def plain_rows(fmt: str, rows: list[Any], headers: Mapping[str, str]) -> str | None:
    """The output of ``format_rows`` when ``fmt`` is a plain template and every field a string of a plain dict row;
    None otherwise."""
    if fmt == "json":
        return None
    table, text = prepare(fmt)
    pieces = _plain(text)
    lines = _plain_lines(pieces, rows) if pieces is not None else None
    if pieces is None or lines is None:
        return None
    if table:
        lines = tabwrite(["".join(p if n % 2 == 0 else headers.get(p, "") for n, p in enumerate(pieces))] + lines)
    return "".join(ln + "\n" for ln in lines)


def format_rows(fmt: str, rows: list[Any], headers: Mapping[str, str]) -> str:
    """``cli.template.format_rows``, importing the template engine only when the format needs it."""
    out = plain_rows(fmt, rows, headers)
    if out is not None:
        return out
    from dockyard.cli.template import format_rows as by_engine

    return by_engine(fmt, rows, headers)
