"""Docker's ``--format`` templates: Go's text/template (``dockyard.cli.gotemplate``) with Go's builtin functions
and the Docker CLI's (``json``, ``join``, ``split``, ``lower``, ``upper``, ``title``, ``pad``, ``truncate``), and
values printed as Go prints them (``[a b]``, ``map[k:v]``, ``true``, ``<no value>``).

``format_rows(fmt, rows, headers)`` handles Docker's conventions: ``table`` prefix (header row and aligned columns,
as Go's tabwriter with minwidth 10, padding 3), ``json`` (one JSON object per row) and the literal ``\\t``/``\\n``.
``print_inspect`` is what every ``inspect`` verb prints. Maps come out with their keys sorted where Docker's value
is a Go map (``MAP_FIELDS``), as Go's encoder and printer sort map keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from typing import Any

from dockyard.cli.gotemplate import MISSING as _MISSING
from dockyard.cli.gotemplate import Exec, error, parse
from dockyard.cli.gotemplate import go_type as _type
from dockyard import jsonc as _json
from dockyard.cli.table import plain_rows, prepare, tabwrite  # noqa: F401  (re-exported)
from dockyard.errors import InvalidArgument
from dockyard.lazyre import Pattern

_PAD_MAX = 4096
"""Widest ``pad`` or printf width a template may ask for (a --format value must not be able to allocate gigabytes)."""

MAP_FIELDS = frozenset({
    "Labels", "ExposedPorts", "Volumes", "PortBindings", "Sysctls", "StorageOpt", "Tmpfs", "Annotations", "Ports",
    "Networks", "DriverOpts", "Data", "Options", "Containers", "Status", "Peers", "Services"})
"""Fields of Docker's API types that are Go maps (their keys print sorted); ``LogConfig.Config`` is one too."""


class GoMap(dict):  # type: ignore[type-arg]
    """A mapping that is a Go map in Docker's types: its keys are encoded sorted."""


class Template:
    """A parsed template; ``render(data)`` returns the text (errors: InvalidArgument, one line)."""

    def __init__(self, text: str, funcs: Mapping[str, Callable[..., Any]] | None = None) -> None:
        self.source = text
        self.funcs = FUNCS if funcs is None else funcs
        try:
            self.nodes = parse(text)
        except RecursionError:
            raise error("template nested too deeply") from None

    def render(self, data: Any, partial: bool = False) -> str:
        """The text; with ``partial`` an error stops the output where it happened instead (as Go's Execute
        leaves what it wrote, which Docker's table headers rely on)."""
        ex = Exec(self.funcs, data)
        try:
            ex.run(self.nodes, data)
        except InvalidArgument:
            if not partial:
                raise
        except RecursionError:
            if not partial:
                raise error("value nested too deeply") from None
        except Exception as e:  # noqa: BLE001 - {{break}}/{{continue}} outside a range cannot parse; any other is a bug
            raise error(f"internal error: {type(e).__name__}") from None
        return "".join(ex.out)


def method_of(recv: Any, name: str) -> Callable[..., Any] | None:
    """A method a template may call on ``recv``: one its class lists in ``TEMPLATE_METHODS`` (never a name
    starting with ``_``), or Docker's ``Label`` on a row that has ``Labels``."""
    if name.startswith("_") or recv is None or recv is _MISSING:
        return None
    allowed = getattr(type(recv), "TEMPLATE_METHODS", ())
    if isinstance(allowed, frozenset) and name in allowed:
        m = getattr(recv, name, None)
        return m if callable(m) else None
    if name == "Label" and isinstance(recv, Mapping) and "Label" not in recv and "Labels" in recv:
        labels = recv["Labels"]
        return lambda key: _label(labels, key)
    return None


def _label(labels: Any, key: Any) -> str:
    if isinstance(labels, Mapping):
        v = labels.get(key)
        return "" if v is None else to_text(v)
    for item in str(labels or "").split(","):  # ps rows give Labels as "k=v,k2=v2"
        k, _, v = item.partition("=")
        if k == key:
            return v
    return ""


def field(v: Any, name: str) -> Any:
    """``.name`` of a value as a template sees it (kept for callers): a mapping's key, else an error."""
    if v is None or v is _MISSING:
        return _MISSING
    if isinstance(v, Mapping):
        return v.get(name, _MISSING)
    raise InvalidArgument(f"template: can't evaluate field {name} in type {type(v).__name__}")


def truth(v: Any) -> bool:
    """Go's truth: false, 0, "", nil and empty lists/maps are false."""
    if v is None or v is _MISSING or v is False:
        return False
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, (str, list, tuple, Mapping)):
        return len(v) > 0
    return True


def _go_float(v: float) -> str:
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "+Inf" if v > 0 else "-Inf"
    if v.is_integer() and abs(v) < 1e21:
        return str(int(v))
    r = repr(v)
    if "e" in r:
        m, _, e = r.partition("e")
        return f"{m}e{'-' if e.startswith('-') else '+'}{e.lstrip('+-').rjust(2, '0')}"
    return r


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
    if isinstance(v, float):
        return _go_float(v)
    if isinstance(v, Mapping):
        return "map[" + " ".join(f"{to_text(k)}:{to_text(v[k])}" for k in sorted_keys(v)) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(to_text(x) for x in v) + "]"
    return str(v)


def sorted_keys(m: Mapping[Any, Any]) -> list[Any]:
    """Keys in Go's order for a map (sorted; keys of mixed types by their text)."""
    try:
        return sorted(m)
    except TypeError:
        return sorted(m, key=to_text)


def go_order(v: Any, key: str = "", parent: str = "") -> Any:
    """``v`` with the keys of every Go map sorted (a mapping that is a ``GoMap``, or the value of a field named
    in ``MAP_FIELDS``, or ``LogConfig.Config``); other mappings keep their order (Go structs)."""
    if isinstance(v, Mapping):
        is_map = isinstance(v, GoMap) or key in MAP_FIELDS or (key == "Config" and parent == "LogConfig")
        keys = sorted_keys(v) if is_map else list(v)
        return {k: go_order(v[k], "" if is_map else str(k), key) for k in keys}
    if isinstance(v, (list, tuple)):
        return [go_order(x, "", parent) for x in v]
    return v


def go_json(v: Any) -> str:
    """The Docker CLI's ``json`` function: compact, HTML characters left as they are, Go maps' keys sorted."""
    if v is _MISSING:
        v = None
    try:
        return _json.dumps(go_order(v), separators=(",", ":"), ensure_ascii=False, default=_default,
                           allow_nan=False)
    except ValueError as e:  # NaN/Infinity (Go: "json: unsupported value: NaN"), circular data
        raise InvalidArgument(f"template: error calling json: {e}") from None


def _default(o: Any) -> Any:
    if hasattr(o, "to_json"):
        return o.to_json()
    return str(o)


def _index(v: Any, *keys: Any) -> Any:
    for k in keys:
        if v is None or v is _MISSING:
            raise InvalidArgument("template: error calling index: index of untyped nil")
        if isinstance(v, Mapping):
            v = v.get(k, _MISSING)
        elif isinstance(v, (list, tuple, str)):
            if isinstance(k, bool) or not isinstance(k, int):
                raise InvalidArgument(f"template: error calling index: cannot index slice/array with type "
                                      f"{_type(k)}")
            if not 0 <= k < len(v):
                raise InvalidArgument(f"template: error calling index: index out of range: {k}")
            v = v[k] if not isinstance(v, str) else v.encode()[k] if k < len(v.encode()) else 0
        else:
            raise InvalidArgument(f"template: error calling index: can't index item of type {_type(v)}")
    return v


def _slice(v: Any, *idx: Any) -> Any:
    if not isinstance(v, (list, tuple, str)) or len(idx) > 2 or any(not isinstance(i, int) for i in idx):
        raise InvalidArgument(f"template: error calling slice: can't slice item of type {_type(v)}")
    lo = idx[0] if idx else 0
    hi = idx[1] if len(idx) > 1 else len(v)
    if not 0 <= lo <= hi <= len(v):
        raise InvalidArgument(f"template: error calling slice: index out of range: {hi}")
    return v[lo:hi]


_VERB = Pattern(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+|\*)?)?([a-zA-Z%])")


def _printf(fmt: Any, *args: Any) -> str:
    """Go's Sprintf for %v %s %d %q %t %f %g %e %x %X %o %b %c and %%, with flags, width and precision; a missing
    argument prints ``%!v(MISSING)``, a wrong type ``%!d(string=x)``, an extra one ``%!(EXTRA type=value)``."""
    if not isinstance(fmt, str):
        raise InvalidArgument(f"template: error calling printf: format is not a string: {to_text(fmt)}")
    it = iter(args)
    used = 0

    def num(x: str | None) -> int | None:
        nonlocal used
        if x == "*":
            a = next(it, _MISSING)
            used += 1
            return a if isinstance(a, int) and not isinstance(a, bool) else None
        return int(x) if x else None

    def verb(m: re.Match[str]) -> str:
        nonlocal used
        flags, verb_ = m.group(1), m.group(4)
        if verb_ == "%":
            return "%"
        width, prec = num(m.group(2)), num(m.group(3)) if m.group(3) is not None else (0 if "." in m.group(0)
                                                                                         else None)
        if (width or 0) > _PAD_MAX or (prec or 0) > _PAD_MAX:
            raise InvalidArgument(f"template: error calling printf: width out of range 0..{_PAD_MAX}")
        a = next(it, _MISSING)
        if a is _MISSING and used >= len(args):
            return f"%!{verb_}(MISSING)"
        used += 1
        text = _format_one(verb_, flags, prec, a)
        if width and len(text) < width:
            if "-" in flags:
                text = text.ljust(width)
            elif "0" in flags and verb_ in "dfgexXob" and not isinstance(a, str):
                sign = text[0] if text[:1] in "+-" else ""
                text = sign + text[len(sign):].rjust(width - len(sign), "0")
            else:
                text = text.rjust(width)
        return text

    out = _VERB.sub(verb, fmt)
    extra = list(it)
    if extra:
        out += "%!(EXTRA " + ", ".join(f"{_type(a)}={to_text(a)}" for a in extra) + ")"
    return out


def _format_one(verb: str, flags: str, prec: int | None, a: Any) -> str:
    is_int = isinstance(a, int) and not isinstance(a, bool)
    if verb in "vs":
        t = to_text(a)
        return t[:prec] if prec is not None and verb == "s" else t
    if verb == "q" and isinstance(a, str):
        return _json.dumps(a, ensure_ascii=False)
    if verb == "t" and isinstance(a, bool):
        return to_text(a)
    if is_int and verb in "dxXobc":
        if verb == "c":
            return chr(a) if 0 <= a <= 0x10FFFF else "\ufffd"
        sign = "+" if "+" in flags and a >= 0 else ""
        return sign + format(a, {"d": "d", "x": "x", "X": "X", "o": "o", "b": "b"}[verb])
    if isinstance(a, str) and verb in "xX":
        return a.encode().hex() if verb == "x" else a.encode().hex().upper()
    if (is_int or isinstance(a, float)) and verb in "fFgeE":
        p = 6 if prec is None else prec
        if verb in "fF":
            return f"{float(a):{'+' if '+' in flags else ''}.{p}f}"
        if verb in "eE":
            return f"{float(a):.{p}{verb}}"
        return _go_float(float(a)) if prec is None else f"{float(a):.{p}g}"
    return f"%!{verb}({_type(a)}={to_text(a)})"


def _print(*a: Any) -> str:
    """Go's Sprint: a space between operands when neither is a string."""
    out = ""
    for i, x in enumerate(a):
        if i and not isinstance(x, str) and not isinstance(a[i - 1], str):
            out += " "
        out += to_text(x)
    return out


def _str(v: Any, fn: str) -> str:
    if not isinstance(v, str):
        raise InvalidArgument(f"template: error calling {fn}: wrong type for value; expected string; got {_type(v)}")
    return v


def _int(v: Any, fn: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise InvalidArgument(f"template: error calling {fn}: wrong type for value; expected int; got {_type(v)}")
    return v


def _truncate(s: Any, n: Any) -> str:
    t, n = _str(s, "truncate"), _int(n, "truncate")
    if len(t) < n:
        return t
    if n < 0:
        raise InvalidArgument(f"template: error calling truncate: slice bounds out of range [:{n}]")
    return t[:n]


def _pad(s: Any, left: Any, right: Any) -> str:
    t, left, right = _str(s, "pad"), _int(left, "pad"), _int(right, "pad")
    if not (0 <= left <= _PAD_MAX and 0 <= right <= _PAD_MAX):
        raise InvalidArgument(f"template: error calling pad: width out of range 0..{_PAD_MAX}")
    return t and " " * left + t + " " * right


def _title(s: Any) -> str:
    """strings.Title: the first letter of each word upper-cased, the rest kept."""
    out, prev = [], " "
    for ch in _str(s, "title"):
        out.append(ch.upper() if not (prev.isalnum() or prev == "_") else ch)
        prev = ch
    return "".join(out)


def _split(s: Any, sep: Any) -> list[str]:
    t, sep = _str(s, "split"), _str(sep, "split")
    return list(t) if sep == "" else t.split(sep)


def _join(v: Any, sep: Any) -> str:
    sep = _str(sep, "join")
    if v is None or v is _MISSING:
        return ""
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
        raise InvalidArgument(f"template: error calling join: wrong type for value; expected []string; got "
                              f"{_type(v)}")
    return sep.join(v)


def _len(v: Any) -> int:
    if isinstance(v, str):
        return len(v.encode())
    if isinstance(v, (list, tuple, Mapping)):
        return len(v)
    raise InvalidArgument(f"template: error calling len: len of {'nil pointer' if v in (None, _MISSING) else 'type ' + _type(v)}")


def _kind(v: Any) -> str:
    if v is None or v is _MISSING:
        return "nil"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "other"


def _eq(a: Any, *bs: Any) -> bool:
    if not bs:
        raise InvalidArgument("template: error calling eq: missing argument for comparison")
    ka = _kind(a)
    for b in bs:
        kb = _kind(b)
        if ka != kb:
            if ka != "nil" and kb != "nil":
                raise InvalidArgument("template: error calling eq: incompatible types for comparison")
            continue
        if ka == "other":
            raise InvalidArgument(f"template: error calling eq: non-comparable type {to_text(a)}: {_type(a)}")
        if ka == "nil" or a == b:
            return True
    return False


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _cmp(name: str) -> Callable[[Any, Any], bool]:
    def cmp(a: Any, b: Any) -> bool:
        ka, kb = _kind(a), _kind(b)
        if ka not in ("number", "string") or kb not in ("number", "string"):
            raise InvalidArgument(f"template: error calling {name}: invalid type for comparison")
        if ka != kb:
            raise InvalidArgument(f"template: error calling {name}: incompatible types for comparison")
        return {"lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[name]
    return cmp


FUNCS: dict[str, Callable[..., Any]] = {
    # Go's builtins
    "and": lambda *a: a[-1], "or": lambda *a: a[-1],  # evaluated lazily by the executor
    "not": lambda a: not truth(a),
    "len": _len, "index": _index, "slice": _slice,
    "print": _print, "printf": _printf, "println": lambda *a: " ".join(to_text(x) for x in a) + "\n",
    "eq": _eq, "ne": _ne, "lt": _cmp("lt"), "le": _cmp("le"), "gt": _cmp("gt"), "ge": _cmp("ge"),
    # the Docker CLI's
    "json": go_json, "split": _split, "join": _join, "title": _title,
    "lower": lambda s: _str(s, "lower").lower(), "upper": lambda s: _str(s, "upper").upper(),
    "pad": _pad, "truncate": _truncate,
}

HEADER_FUNCS: dict[str, Callable[..., Any]] = {
    **FUNCS,
    # as the Docker CLI's table headers: these keep the column's name as it is
    "json": lambda v: v, "split": lambda v, _: v, "join": lambda v, _: v, "title": lambda v: v,
    "lower": lambda v: v, "upper": lambda v: v, "truncate": lambda v, _: v,
}


class _Headers(dict):  # type: ignore[type-arg]
    """Header names by field; unknown fields print empty (Go's map[string]string zero value)."""

    def get(self, key: Any, default: Any = None) -> Any:
        return super().get(key, "")


def format_rows(fmt: str, rows: list[Any], headers: Mapping[str, str]) -> str:
    """Render ``rows`` with a Docker ``--format`` value (``table ...``, ``json`` or a template)."""
    if fmt == "json":
        return "".join(go_json(r) + "\n" for r in rows)
    fast = plain_rows(fmt, rows, headers)
    if fast is not None:
        return fast
    table, text = prepare(fmt)
    tmpl = Template(text)
    lines: list[str] = []
    if table:  # as Docker: the header map through the header functions; an error ends the header there
        lines.append(Template(text, HEADER_FUNCS).render(_Headers(headers), partial=True))
    for r in rows:
        lines.append(tmpl.render(r))
    if table:
        lines = tabwrite(lines)
    return "".join(ln + "\n" for ln in lines)


def print_inspect(objects: list[Any], fmt: str = "") -> None:
    """What every ``inspect`` verb prints: each object through ``--format`` (``json`` = ``{{json .}}``), or all
    of them as one indented JSON array with Go's HTML escaping, as the Docker CLI does; the keys of Go maps
    (labels, networks, ports...) sorted, as the daemon's encoder writes them."""
    import sys

    if fmt:
        _, text = prepare(fmt)
        t = Template("{{json .}}" if text == "json" else text)
        sys.stdout.write("".join(t.render(d) + "\n" for d in objects))
        return
    s = _json.dumps(go_order(objects), indent=4, ensure_ascii=False)
    sys.stdout.write(s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") + "\n")
