"""A small subset of Go's text/template, enough for the Docker CLI's ``--format`` flags.

Supported: text with ``{{.Field}}``, ``{{.A.B}}``, ``{{.}}``, trim markers ``{{- -}}``, pipelines ``{{.X | upper}}``,
``{{if ...}}..{{else}}..{{end}}``, ``{{range ...}}..{{end}}`` (over lists and maps; ``.`` is the element),
``{{with ...}}..{{end}}`` and the functions ``json``, ``index``, ``upper``, ``lower``, ``title``, ``join``, ``split``,
``len``, ``printf``, ``print``, ``println``, ``truncate``, ``pad``, ``eq``, ``ne``, ``not``, ``and``, ``or``.
Values print as Go prints them (``[a b]``, ``map[k:v]``, ``true``, ``<no value>``).

``format_rows(fmt, rows, headers)`` handles Docker's conventions: ``table`` prefix (header row and aligned columns,
as Go's tabwriter with minwidth 10, padding 3), ``json`` (one JSON object per row) and the literal ``\\t``/``\\n``.
"""

from __future__ import annotations

import json as _json
import re
from collections.abc import Callable, Mapping
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard.errors import InvalidArgument

_TOKEN = re.compile(r"\{\{(-\s)?(.*?)(\s-)?\}\}", re.S)
_MISSING = object()
_PAD_MAX = 4096
"""Widest ``pad`` a template may ask for (a --format value must not be able to allocate gigabytes)."""


class _Node:
    pass


class _Text(_Node):
    def __init__(self, text: str) -> None:
        self.text = text


class _Action(_Node):
    def __init__(self, pipe: list[list[str]]) -> None:
        self.pipe = pipe


class _Block(_Node):
    def __init__(self, kind: str, pipe: list[list[str]]) -> None:
        self.kind = kind
        self.pipe = pipe
        self.body: list[_Node] = []
        self.orelse: list[_Node] = []


def _lex_args(s: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c.isspace():
            i += 1
        elif c in "\"`":
            j = i + 1
            while j < len(s) and s[j] != c:
                j += 2 if (s[j] == "\\" and c == '"') else 1
            if j >= len(s):
                raise InvalidArgument(f"template: unterminated quoted string in {s!r}")
            out.append(s[i:j + 1])
            i = j + 1
        elif c == "|":
            out.append("|")
            i += 1
        else:
            j = i
            while j < len(s) and not s[j].isspace() and s[j] != "|":
                j += 1
            out.append(s[i:j])
            i = j
    return out


def _parse_pipe(s: str) -> list[list[str]]:
    cmds: list[list[str]] = [[]]
    for t in _lex_args(s):
        if t == "|":
            cmds.append([])
        else:
            cmds[-1].append(t)
    if any(not c for c in cmds):
        raise InvalidArgument(f"template: missing value for command in {{{{{s}}}}}")
    return cmds


class Template:
    """A parsed template; ``render(data)`` returns the text."""

    def __init__(self, text: str) -> None:
        self.source = text
        self.nodes = self._parse(text)

    @staticmethod
    def _parse(text: str) -> list[_Node]:
        root: list[_Node] = []
        stack: list[_Block] = []
        cur = root
        pos = 0
        pending_trim = False
        for m in _TOKEN.finditer(text):
            lit = text[pos:m.start()]
            if pending_trim:
                lit = lit.lstrip()
            if m.group(1):
                lit = lit.rstrip()
            if lit:
                cur.append(_Text(lit))
            pending_trim = bool(m.group(3))
            pos = m.end()
            body = m.group(2).strip()
            if body.startswith("/*"):
                continue
            word = body.split(None, 1)[0] if body else ""
            rest = body[len(word):].strip()
            if word in ("if", "range", "with"):
                b = _Block(word, _parse_pipe(rest))
                cur.append(b)
                stack.append(b)
                cur = b.body
            elif word == "else":
                if not stack:
                    raise InvalidArgument("template: unexpected {{else}}")
                cur = stack[-1].orelse
            elif word == "end":
                if not stack:
                    raise InvalidArgument("template: unexpected {{end}}")
                stack.pop()
                cur = stack[-1].body if stack else root
                if stack and cur is not stack[-1].body:
                    cur = stack[-1].body
            elif not body:
                raise InvalidArgument("template: missing value for command")
            else:
                cur.append(_Action(_parse_pipe(body)))
        lit = text[pos:]
        if "{{" in lit:
            raise InvalidArgument("template: unclosed action")
        if pending_trim:
            lit = lit.lstrip()
        if lit:
            cur.append(_Text(lit))
        if stack:
            raise InvalidArgument(f"template: unexpected EOF (missing {{{{end}}}} for {{{{{stack[-1].kind}}}}})")
        return root

    def render(self, data: Any) -> str:
        out: list[str] = []
        self._exec(self.nodes, data, out)
        return "".join(out)

    # -- execution --------------------------------------------------------------------------------------------
    def _exec(self, nodes: list[_Node], dot: Any, out: list[str]) -> None:
        for n in nodes:
            if isinstance(n, _Text):
                out.append(n.text)
            elif isinstance(n, _Action):
                out.append(to_text(self._pipe(n.pipe, dot)))
            elif isinstance(n, _Block):
                v = self._pipe(n.pipe, dot)
                if n.kind == "if":
                    self._exec(n.body if truth(v) else n.orelse, dot, out)
                elif n.kind == "with":
                    if truth(v):
                        self._exec(n.body, v, out)
                    else:
                        self._exec(n.orelse, dot, out)
                else:
                    items: list[Any]
                    if isinstance(v, Mapping):
                        items = [v[k] for k in _sorted_keys(v)]
                    elif v is None or v is _MISSING:
                        items = []
                    elif isinstance(v, (list, tuple, str)):
                        items = list(v)
                    else:
                        raise InvalidArgument(f"template: range can't iterate over {to_text(v)}")
                    if not items:
                        self._exec(n.orelse, dot, out)
                    for it in items:
                        self._exec(n.body, it, out)

    def _pipe(self, pipe: list[list[str]], dot: Any) -> Any:
        val: Any = _MISSING
        for i, cmd in enumerate(pipe):
            extra = [val] if i > 0 else []
            val = self._cmd(cmd, dot, extra)
        return val

    def _cmd(self, cmd: list[str], dot: Any, extra: list[Any]) -> Any:
        head = cmd[0]
        if head in FUNCS:
            args = [self._arg(a, dot) for a in cmd[1:]] + extra
            try:
                return FUNCS[head](*args)
            except InvalidArgument:
                raise
            except TypeError as e:
                raise InvalidArgument(f"template: wrong number of args for {head}: {e}") from None
            except (ValueError, IndexError, KeyError, AttributeError, OverflowError) as e:
                # a bad argument value (an empty split separator, a width that is not a number...)
                raise InvalidArgument(f"template: error calling {head}: {e}") from None
        if len(cmd) > 1 or extra:
            raise InvalidArgument(f"template: can't give argument to non-function {head}")
        return self._arg(head, dot)

    def _arg(self, a: str, dot: Any) -> Any:
        if a.startswith('"'):
            try:
                return _json.loads(a)
            except ValueError:
                raise InvalidArgument(f"template: malformed string literal {a}") from None
        if a.startswith("`"):
            return a[1:-1]
        if a == ".":
            return dot
        if a.startswith("."):
            v = dot
            for part in a[1:].split("."):
                v = field(v, part)
            return v
        if a in ("true", "false"):
            return a == "true"
        if a == "nil":
            return None
        try:
            return int(a)
        except ValueError:
            pass
        raise InvalidArgument(f'template: function "{a}" not defined')


def field(v: Any, name: str) -> Any:
    if v is None or v is _MISSING:
        return _MISSING
    if isinstance(v, Mapping):
        return v.get(name, _MISSING)
    # objects: data attributes only, as Go reaches exported fields only (no dunders, no methods: a --format
    # value must not walk into Python internals such as __init__.__globals__)
    found = getattr(v, name, _MISSING) if name and not name.startswith("_") else _MISSING
    if found is _MISSING or callable(found):
        raise InvalidArgument(f"template: can't evaluate field {name} in type {type(v).__name__}")
    return found


def truth(v: Any) -> bool:
    return not (v is None or v is _MISSING or v is False or v == 0 or v == "" or
                (hasattr(v, "__len__") and len(v) == 0))


def to_text(v: Any) -> str:
    """Print a value as Go's fmt %v does."""
    if v is _MISSING:
        return "<no value>"
    if v is None:
        return "<nil>"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return v
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, Mapping):
        return "map[" + " ".join(f"{to_text(k)}:{to_text(v[k])}" for k in _sorted_keys(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(to_text(x) for x in v) + "]"
    return str(v)


def _sorted_keys(m: Mapping[Any, Any]) -> list[Any]:
    """Keys in Go's order for printing a map (sorted; keys of mixed types by their text)."""
    try:
        return sorted(m)
    except TypeError:
        return sorted(m, key=to_text)


def go_json(v: Any) -> str:
    """``json.Marshal``: compact, with <, >, & escaped as Go does."""
    if v is _MISSING:
        v = None
    try:
        s = _json.dumps(v, separators=(",", ":"), ensure_ascii=False, default=_default, allow_nan=False)
    except ValueError as e:  # NaN/Infinity (Go: "json: unsupported value: NaN"), circular data
        raise InvalidArgument(f"template: error calling json: {e}") from None
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _default(o: Any) -> Any:
    if hasattr(o, "to_json"):
        return o.to_json()
    if hasattr(o, "__dict__"):
        return {k: x for k, x in vars(o).items() if not k.startswith("_")}
    return str(o)


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        if isinstance(v, Mapping):
            v = v.get(k, _MISSING)
        else:
            try:
                v = v[int(k)]
            except (IndexError, TypeError, ValueError):
                raise InvalidArgument(f"template: index out of range: {k}") from None
    return v


_VERB = re.compile(r"%[%vsdq]")


def _printf(fmt: str, *args: Any) -> str:
    """Go's Sprintf for the verbs %v %s %d %q and %%; a missing argument prints ``%!v(MISSING)`` as in Go.
    (The text around the verbs is copied as is: braces are not format fields.)"""
    if not isinstance(fmt, str):
        raise InvalidArgument(f"template: error calling printf: format is not a string: {to_text(fmt)}")
    it = iter(args)

    def verb(m: re.Match[str]) -> str:
        v = m.group(0)
        if v == "%%":
            return "%"
        a = next(it, _MISSING)
        if a is _MISSING:
            return f"%!{v[1]}(MISSING)"
        return _json.dumps(to_text(a), ensure_ascii=False) if v == "%q" else to_text(a)

    return _VERB.sub(verb, fmt)


def _truncate(s: Any, n: Any) -> str:
    t = to_text(s)
    n = int(n)
    if n < 0:
        raise InvalidArgument(f"template: error calling truncate: negative length {n}")
    return t[:n]


def _pad(s: Any, left: Any, right: Any) -> str:
    left, right = int(left), int(right)
    if not (0 <= left <= _PAD_MAX and 0 <= right <= _PAD_MAX):
        raise InvalidArgument(f"template: error calling pad: width out of range 0..{_PAD_MAX}")
    return " " * left + to_text(s) + " " * right


def _and(first: Any, *rest: Any) -> Any:
    a = (first, *rest)
    return next((x for x in a if not truth(x)), a[-1])


def _or(first: Any, *rest: Any) -> Any:
    a = (first, *rest)
    return next((x for x in a if truth(x)), a[-1])


FUNCS: dict[str, Callable[..., Any]] = {
    "json": go_json,
    "index": _index,
    "upper": lambda s: to_text(s).upper(),
    "lower": lambda s: to_text(s).lower(),
    "title": lambda s: to_text(s).title(),
    "join": lambda v, sep: sep.join(to_text(x) for x in (v or [])),
    "split": lambda s, sep: to_text(s).split(sep),
    "len": lambda v: 0 if v in (None, _MISSING) else len(v),
    "printf": _printf,
    "print": lambda *a: "".join(to_text(x) for x in a),
    "println": lambda *a: " ".join(to_text(x) for x in a) + "\n",
    "truncate": _truncate,
    "pad": _pad,
    "eq": lambda a, *b: any(a == x for x in b),
    "ne": lambda a, b: a != b,
    "not": lambda a: not truth(a),
    "and": _and,
    "or": _or,
}


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


class _Headers(dict):  # type: ignore[type-arg]
    """Header names by field; unknown fields print empty (Go's map[string]string zero value)."""

    def get(self, key: Any, default: Any = None) -> Any:
        return super().get(key, "")


def format_rows(fmt: str, rows: list[Any], headers: Mapping[str, str]) -> str:
    """Render ``rows`` with a Docker ``--format`` value (``table ...``, ``json`` or a template)."""
    if fmt == "json":
        return "".join(go_json(r) + "\n" for r in rows)
    table, text = prepare(fmt)
    tmpl = Template(text)
    lines: list[str] = []
    if table:
        lines.append(tmpl.render(_Headers(headers)))
    for r in rows:
        lines.append(tmpl.render(r))
    if table:
        lines = tabwrite(lines)
        return "".join(ln + "\n" for ln in lines)
    return "".join(ln + "\n" for ln in lines)


def print_inspect(objects: list[Any], fmt: str = "") -> None:
    """What every ``inspect`` verb prints: each object through ``--format`` (``json`` = ``{{json .}}``), or all
    of them as one indented JSON array with Go's HTML escaping, as the Docker CLI does."""
    import sys

    if fmt:
        _, text = prepare(fmt)
        t = Template("{{json .}}" if text == "json" else text)
        sys.stdout.write("".join(t.render(d) + "\n" for d in objects))
        return
    s = _json.dumps(objects, indent=4, ensure_ascii=False)
    sys.stdout.write(s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n")
