"""Go's text/template, as the Docker CLI's ``--format`` flags use it: lexer, parser and executor.

Text and actions ``{{ ... }}`` with trim markers (``{{- `` and `` -}}``) and comments (``{{/* ... */}}``). An action
is a pipeline: commands joined by ``|``, the value of each passed as the last argument of the next. A command is
a function call (``index .Labels "a"``), a field chain (``.A.B``, ``$x.A``, ``(pipeline).A``), a method call on a
row (``.Label "k"``), a variable (``$``, ``$x``) or a constant (``"s"``, `` `raw` ``, ``1``, ``1.5``, ``true``,
``nil``). ``{{$x := pipeline}}`` declares a variable (printing nothing), ``{{$x = pipeline}}`` assigns one; a
variable lives until the ``{{end}}`` of the control structure that declares it, and ``$`` is the data the
template started with. Control structures: ``if``/``with``/``range`` with ``{{else}}``, ``{{else if ...}}`` and
``{{else with ...}}``, ``{{range $i, $v := ...}}`` (maps in key order, integers as Go 1.22), ``{{break}}`` and
``{{continue}}``.

Data reaches a template as mappings, lists, strings, numbers, booleans and None. A field of a mapping is its key;
on any other object only a method a class names in ``TEMPLATE_METHODS`` is reachable (Go: exported methods), never
an attribute, a dunder or another callable: a --format value cannot walk into Python internals. Errors are one
line starting with ``template:``. The functions (Go's builtins and Docker's) are in ``dockyard.cli.template``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard.errors import InvalidArgument
from dockyard.lazyre import Pattern

MISSING: Any = type("_NoValue", (), {"__repr__": lambda self: "<no value>"})()
"""A map key that is not there (Go prints ``<no value>``)."""

_MAX_DEPTH = 100
_MAX_STEPS = 2_000_000
_KEYWORDS = {"if", "else", "end", "range", "with", "break", "continue", "define", "template", "block", "nil",
             "true", "false"}
_NUM = Pattern(r"[+-]?(0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO]?[0-7_]+|(\d[\d_]*)?\.?\d[\d_]*([eE][+-]?\d+)?)")
_IDENT = Pattern(r"[A-Za-z_][A-Za-z0-9_]*")
_CHAR = Pattern(r"'(\\.[^']*|[^'\\])'")


def error(msg: str) -> InvalidArgument:
    return InvalidArgument("template: " + " ".join(msg.split("\n")))


# -- lexing -----------------------------------------------------------------------------------------------------
class Tok:
    __slots__ = ("kind", "val", "space")

    def __init__(self, kind: str, val: Any, space: bool) -> None:
        self.kind, self.val, self.space = kind, val, space  # space: whitespace before it

    def __repr__(self) -> str:
        return f"{self.kind}:{self.val!r}"


def _split(text: str) -> list[str | list[Tok]]:
    """Text pieces (str) and actions (token lists), trim markers applied."""
    out: list[str | list[Tok]] = []
    pos = 0
    trim_next = False
    while True:
        i = text.find("{{", pos)
        lit = text[pos:] if i < 0 else text[pos:i]
        if trim_next:
            lit = lit.lstrip(" \t\r\n")
        j = i + 2
        trim_left = i >= 0 and text[j:j + 1] == "-" and text[j + 1:j + 2] in (" ", "\t", "\r", "\n")
        if trim_left:
            lit = lit.rstrip(" \t\r\n")
            j += 2
        if lit:
            out.append(lit)
        if i < 0:
            return out
        if text.startswith("/*", j):  # a comment: {{/* ... */}} or {{- /* ... */ -}}
            k = text.find("*/", j + 2)
            if k < 0:
                raise error("unclosed comment")
            k += 2
            if text.startswith("}}", k):
                pos, trim_next = k + 2, False
            elif text.startswith(" -}}", k):
                pos, trim_next = k + 4, True
            else:
                raise error("comment ends before closing delimiter")
            continue
        toks, pos, trim_next = _lex_action(text, j)
        out.append(toks)


def _lex_action(s: str, i: int) -> tuple[list[Tok], int, bool]:
    toks: list[Tok] = []
    space = True
    n = len(s)
    while True:
        if i >= n:
            raise error("unclosed action")
        c = s[i]
        if c in " \t\r\n":
            if s.startswith("-}}", i + 1):
                return toks, i + 4, True
            i += 1
            space = True
            continue
        if s.startswith("}}", i):
            return toks, i + 2, False
        start = i
        if c == '"':
            i += 1
            while i < n and s[i] != '"':
                if s[i] == "\n":
                    raise error("unterminated quoted string")
                i += 2 if s[i] == "\\" else 1
            if i >= n:
                raise error("unterminated quoted string")
            toks.append(Tok("str", _unquote(s[start:i + 1]), space))
            i += 1
        elif c == "`":
            k = s.find("`", i + 1)
            if k < 0:
                raise error("unterminated raw quoted string")
            toks.append(Tok("str", s[i + 1:k], space))
            i = k + 1
        elif c == "'":
            m = _CHAR.match(s, i)
            if not m:
                raise error("unterminated character constant")
            v = _unquote('"' + m.group(1) + '"') if m.group(1) != '"' else '"'
            if len(v) != 1:
                raise error(f"malformed character constant: {m.group(0)}")
            toks.append(Tok("num", ord(v), space))
            i = m.end()
        elif c == "|":
            toks.append(Tok("|", "|", space))
            i += 1
        elif c in "()":
            toks.append(Tok(c, c, space))
            i += 1
        elif c == ",":
            toks.append(Tok(",", ",", space))
            i += 1
        elif s.startswith(":=", i):
            toks.append(Tok(":=", ":=", space))
            i += 2
        elif c == "=":
            toks.append(Tok("=", "=", space))
            i += 1
        elif c == "$":
            m = _IDENT.match(s, i + 1)
            name = "$" + (m.group(0) if m else "")
            toks.append(Tok("var", name, space))
            i += len(name)
        elif c == ".":
            m = _IDENT.match(s, i + 1)
            if m:
                toks.append(Tok("field", m.group(0), space))
                i = m.end()
            elif i + 1 < n and s[i + 1].isdigit():
                i = _lex_number(s, i, toks, space)
            else:
                toks.append(Tok("dot", ".", space))
                i += 1
        elif c.isdigit() or (c in "+-" and i + 1 < n and (s[i + 1].isdigit() or s[i + 1] == ".")):
            i = _lex_number(s, i, toks, space)
        elif c.isalpha() or c == "_":
            m = _IDENT.match(s, i)
            assert m is not None
            w = m.group(0)
            toks.append(Tok("kw" if w in _KEYWORDS else "ident", w, space))
            i = m.end()
        else:
            raise error(f"unexpected {c!r} in command")
        space = False


def _lex_number(s: str, i: int, toks: list[Tok], space: bool) -> int:
    m = _NUM.match(s, i)
    if not m or not m.group(0).strip("+-"):
        raise error(f"bad number syntax: {s[i:i + 10]!r}")
    text = m.group(0)
    if m.end() < len(s) and (s[m.end()].isalnum() or s[m.end()] in "._"):
        raise error(f"bad number syntax: {text + s[m.end()]!r}")
    try:
        v: Any = int(text.replace("_", ""), 0)
    except ValueError:
        try:
            v = float(text.replace("_", ""))
        except ValueError:
            raise error(f"bad number syntax: {text!r}") from None
    toks.append(Tok("num", v, space))
    return m.end()


_ESC = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "a": "\a", "b": "\b", "f": "\f",
        "v": "\v", "0": "\0"}


def _unquote(q: str) -> str:
    body = q[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1:i + 2]
        size = {"x": 2, "u": 4, "U": 8}.get(e)
        if size:
            h = body[i + 2:i + 2 + size]
            if len(h) != size or not all(ch in "0123456789abcdefABCDEF" for ch in h) or int(h, 16) > 0x10FFFF:
                raise error(f"malformed string literal {q}")
            out.append(chr(int(h, 16)))
            i += 2 + size
        elif e in _ESC and e != "0":
            out.append(_ESC[e])
            i += 2
        elif e and e in "01234567" and len(body) >= i + 4 and all(ch in "01234567" for ch in body[i + 1:i + 4]):
            out.append(chr(int(body[i + 1:i + 4], 8) & 0xFF))
            i += 4
        else:
            raise error(f"malformed string literal {q}")
    return "".join(out)


# -- parsing ----------------------------------------------------------------------------------------------------
# Nodes are tuples: ("text", s), ("action", pipe), ("if"|"with"|"range", pipe, body, orelse), ("break",),
# ("continue",). A pipe is (decl: list[str], assign: bool, cmds: list[list[arg]]). An arg is ("field", [names]),
# ("var", name, [names]), ("dot",), ("const", value), ("ident", name), ("pipe", pipe, [names]).


class _Parser:
    def __init__(self, pieces: list[str | list[Tok]]) -> None:
        self.pieces = pieces
        self.i = 0
        self.vars: list[str] = ["$"]
        self.ranges = 0
        self.depth = 0

    def parse(self) -> list[tuple[Any, ...]]:
        nodes, stop = self.list_()
        if stop is not None:
            raise error(f"unexpected {{{{{stop[0].val}}}}}")
        return nodes

    def list_(self) -> tuple[list[tuple[Any, ...]], list[Tok] | None]:
        """Nodes up to an ``{{else}}``/``{{end}}`` (returned as the stop) or the end of the text (stop None)."""
        nodes: list[tuple[Any, ...]] = []
        while self.i < len(self.pieces):
            p = self.pieces[self.i]
            self.i += 1
            if isinstance(p, str):
                nodes.append(("text", p))
                continue
            if not p:
                raise error("missing value for command")
            head = p[0]
            if head.kind == "kw" and head.val in ("else", "end"):
                return nodes, p
            if head.kind == "kw" and head.val in ("if", "with", "range"):
                nodes.append(self.control(head.val, p[1:]))
            elif head.kind == "kw" and head.val in ("break", "continue"):
                if len(p) > 1:
                    raise error(f"unexpected {p[1].val!r} in {{{{{head.val}}}}}")
                if not self.ranges:
                    raise error(f"{{{{{head.val}}}}} outside {{{{range}}}}")
                nodes.append((head.val,))
            elif head.kind == "kw" and head.val in ("define", "template", "block"):
                raise error(f"{{{{{head.val}}}}} is not supported in a --format template")
            else:
                nodes.append(("action", self.pipeline(p, "command")))
        return nodes, None

    def control(self, kind: str, toks: list[Tok]) -> tuple[Any, ...]:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise error("control structures nested too deeply")
        mark = len(self.vars)
        pipe = self.pipeline(toks, kind)
        if kind == "range":
            self.ranges += 1
        body, stop = self.list_()
        if kind == "range":
            self.ranges -= 1
        if stop is None:
            raise error(f"unexpected EOF (missing {{{{end}}}} for {{{{{kind}}}}})")
        orelse: list[tuple[Any, ...]] = []
        if stop[0].val == "else":
            rest = stop[1:]
            if rest and rest[0].kind == "kw" and rest[0].val in ("if", "with"):
                if rest[0].val != kind and kind != "if" and not (kind == "with" and rest[0].val == "with"):
                    raise error(f"unexpected {{{{else {rest[0].val}}}}} in {{{{{kind}}}}}")
                orelse = [self.control(rest[0].val, rest[1:])]  # shares this structure's {{end}}
            elif rest:
                raise error(f"unexpected {rest[0].val!r} in {{{{else}}}}")
            else:
                orelse, stop = self.list_()
                if stop is None or stop[0].val != "end":
                    raise error(f"expected {{{{end}}}} after {{{{else}}}} in {{{{{kind}}}}}")
                if len(stop) > 1:
                    raise error(f"unexpected {stop[1].val!r} in {{{{end}}}}")
        elif len(stop) > 1:
            raise error(f"unexpected {stop[1].val!r} in {{{{end}}}}")
        del self.vars[mark:]
        self.depth -= 1
        return (kind, pipe, body, orelse)

    def pipeline(self, toks: list[Tok], ctx: str) -> tuple[list[str], bool, list[list[tuple[Any, ...]]]]:
        decl: list[str] = []
        assign = False
        k = 0
        if len(toks) >= 2 and toks[0].kind == "var":
            if toks[1].kind in (":=", "="):
                decl, assign, k = [toks[0].val], toks[1].kind == "=", 2
            elif (ctx == "range" and toks[1].kind == "," and len(toks) >= 4 and toks[2].kind == "var"
                  and toks[3].kind in (":=", "=")):
                decl, assign, k = [toks[0].val, toks[2].val], toks[3].kind == "=", 4
        if assign:
            for v in decl:
                if v not in self.vars:
                    raise error(f"undefined variable \"{v}\"")
        cmds, end = self.commands(toks, k, 0)
        if end != len(toks):
            raise error(f"unexpected {toks[end].val!r} in {ctx}")
        if not cmds:
            raise error(f"missing value for {ctx}")
        if not assign:
            self.vars.extend(decl)
        return decl, assign, cmds

    def commands(self, toks: list[Tok], k: int, depth: int) -> tuple[list[list[tuple[Any, ...]]], int]:
        if depth > _MAX_DEPTH:
            raise error("parentheses nested too deeply")
        cmds: list[list[tuple[Any, ...]]] = []
        cmd: list[tuple[Any, ...]] = []
        while k < len(toks) and toks[k].kind != ")":
            t = toks[k]
            if t.kind == "|":
                if not cmd:
                    raise error("missing value for command")
                cmds.append(cmd)
                cmd = []
                k += 1
                continue
            if cmd and not t.space and t.kind not in ("(",):
                raise error(f"missing space before {t.val!r}")
            arg, k = self.operand(toks, k, depth)
            cmd.append(arg)
        if cmd:
            cmds.append(cmd)
        elif cmds:
            raise error("missing value for command")
        return cmds, k

    def operand(self, toks: list[Tok], k: int, depth: int) -> tuple[tuple[Any, ...], int]:
        t = toks[k]
        k += 1
        node: tuple[Any, ...]
        if t.kind == "field":
            names = [t.val]
            while k < len(toks) and toks[k].kind == "field" and not toks[k].space:
                names.append(toks[k].val)
                k += 1
            return ("field", names), k
        if t.kind == "(":
            cmds, k = self.commands(toks, k, depth + 1)
            if k >= len(toks):
                raise error("unclosed left paren")
            if not cmds:
                raise error("missing value for parenthesized pipeline")
            k += 1
            node = ("pipe", ([], False, cmds), [])
        elif t.kind == "var":
            if t.val not in self.vars:
                raise error(f"undefined variable \"{t.val}\"")
            node = ("var", t.val, [])
        elif t.kind == "dot":
            node = ("dot",)
        elif t.kind in ("str", "num"):
            node = ("const", t.val)
        elif t.kind == "kw" and t.val in ("true", "false", "nil"):
            node = ("const", {"true": True, "false": False, "nil": None}[t.val])
        elif t.kind == "ident":
            from dockyard.cli.template import FUNCS

            if t.val not in FUNCS:
                raise error(f'function "{t.val}" not defined')
            return ("ident", t.val), k
        else:
            raise error(f"unexpected {t.val!r} in command")
        names: list[str] = []
        while k < len(toks) and toks[k].kind == "field" and not toks[k].space:
            names.append(toks[k].val)
            k += 1
        if names:
            if node[0] == "const":
                raise error(f"unexpected . after term {toks[k - len(names) - 1].val!r}")
            if node[0] == "dot":
                return ("field", names), k
            node = (*node[:-1], names)
        return node, k


def parse(text: str) -> list[tuple[Any, ...]]:
    return _Parser(_split(text)).parse()


# -- execution --------------------------------------------------------------------------------------------------
class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Exec:
    """One execution: the variables in scope, the output, a step budget (a template cannot loop forever)."""

    def __init__(self, funcs: Mapping[str, Callable[..., Any]], data: Any) -> None:
        self.funcs = funcs
        self.vars: list[tuple[str, Any]] = [("$", data)]
        self.out: list[str] = []
        self.steps = 0

    def run(self, nodes: list[tuple[Any, ...]], dot: Any) -> None:
        from dockyard.cli.template import to_text

        for n in nodes:
            self.steps += 1
            if self.steps > _MAX_STEPS:
                raise error("execution takes too many steps")
            kind = n[0]
            if kind == "text":
                self.out.append(n[1])
            elif kind == "action":
                v = self.pipe(n[1], dot)
                if not n[1][0]:
                    self.out.append(to_text(v))
            elif kind == "break":
                raise _Break
            elif kind == "continue":
                raise _Continue
            else:
                mark = len(self.vars)
                try:
                    self.control(n, dot)
                finally:
                    del self.vars[mark:]

    def control(self, n: tuple[Any, ...], dot: Any) -> None:
        from dockyard.cli.template import truth

        kind, pipe, body, orelse = n
        v = self.pipe(pipe, dot)
        if kind == "if":
            self.run(body if truth(v) else orelse, dot)
        elif kind == "with":
            self.run(body, v) if truth(v) else self.run(orelse, dot)
        else:
            items = self.range_items(v)
            if not items:
                self.run(orelse, dot)
                return
            decl = pipe[0]
            for key, elem in items:
                inner = len(self.vars)
                if decl:
                    self.set_var(decl[-1], elem, pipe[1])
                    if len(decl) == 2:
                        self.set_var(decl[0], key, pipe[1])
                try:
                    self.run(body, elem)
                except _Continue:
                    pass
                except _Break:
                    break
                finally:
                    del self.vars[inner:]

    def range_items(self, v: Any) -> list[tuple[Any, Any]]:
        from dockyard.cli.template import sorted_keys, to_text

        if v is None or v is MISSING:
            return []
        if isinstance(v, Mapping):
            return [(k, v[k]) for k in sorted_keys(v)]
        if isinstance(v, (list, tuple)):
            return list(enumerate(v))
        if isinstance(v, int) and not isinstance(v, bool):
            if v > _MAX_STEPS:
                raise error(f"range over {v}: too many iterations")
            return [(i, i) for i in range(max(v, 0))]
        raise error(f"range can't iterate over {to_text(v)}")

    def set_var(self, name: str, value: Any, assign: bool) -> None:
        if assign:
            for i in range(len(self.vars) - 1, -1, -1):
                if self.vars[i][0] == name:
                    self.vars[i] = (name, value)
                    return
            raise error(f"undefined variable \"{name}\"")
        self.vars.append((name, value))

    def var(self, name: str) -> Any:
        for n, v in reversed(self.vars):
            if n == name:
                return v
        raise error(f"undefined variable \"{name}\"")

    def pipe(self, pipe: tuple[list[str], bool, list[list[tuple[Any, ...]]]], dot: Any) -> Any:
        decl, assign, cmds = pipe
        val: Any = MISSING
        final = False
        for cmd in cmds:
            val = self.command(cmd, dot, val, final)
            final = True
        if decl:
            self.set_var(decl[0], val, assign)
        return val

    def command(self, cmd: list[tuple[Any, ...]], dot: Any, final: Any, has_final: bool) -> Any:
        first = cmd[0]
        kind = first[0]
        if kind == "ident":
            return self.call(first[1], cmd[1:], dot, final, has_final)
        if kind == "field":
            return self.chain(dot, first[1], cmd[1:], dot, final, has_final)
        if kind in ("var", "pipe"):
            base = self.var(first[1]) if kind == "var" else self.pipe(first[1], dot)
            if first[2]:
                return self.chain(base, first[2], cmd[1:], dot, final, has_final)
            value = base
        else:
            value = dot if kind == "dot" else first[1]
        if len(cmd) > 1 or has_final:
            from dockyard.cli.template import to_text

            raise error(f"can't give argument to non-function {to_text(value)}")
        return value

    def arg(self, a: tuple[Any, ...], dot: Any) -> Any:
        kind = a[0]
        if kind == "const":
            return a[1]
        if kind == "dot":
            return dot
        if kind == "ident":
            return self.call(a[1], [], dot, MISSING, False)
        if kind == "field":
            return self.chain(dot, a[1], [], dot, MISSING, False)
        base = self.var(a[1]) if kind == "var" else self.pipe(a[1], dot)
        return self.chain(base, a[2], [], dot, MISSING, False) if a[2] else base

    def chain(self, recv: Any, names: list[str], args: list[tuple[Any, ...]], dot: Any, final: Any,
              has_final: bool) -> Any:
        for name in names[:-1]:
            recv = self.field(recv, name, [], dot, MISSING, False)
        return self.field(recv, names[-1], args, dot, final, has_final)

    def field(self, recv: Any, name: str, args: list[tuple[Any, ...]], dot: Any, final: Any,
              has_final: bool) -> Any:
        from dockyard.cli.template import GoMap, MAP_FIELDS, method_of

        method = method_of(recv, name)
        if method is not None:
            values = [self.arg(a, dot) for a in args] + ([final] if has_final else [])
            try:
                return method(*values)
            except TypeError:
                raise error(f"wrong number of args for {name}: got {len(values)}") from None
        if args or has_final:
            raise error(f"{name} is not a method but has arguments")
        if recv is None or recv is MISSING:
            return MISSING
        if isinstance(recv, Mapping):
            v = recv.get(name, MISSING)
            if name in MAP_FIELDS and isinstance(v, Mapping) and not isinstance(v, GoMap):
                v = GoMap(v)  # a Go map in Docker's types: printed and encoded with its keys sorted
            return v
        if not isinstance(recv, (str, int, float, list, tuple)) and not name.startswith("_"):
            # an object's public data attribute (Go: an exported field); never a callable or a dunder
            v = getattr(recv, name, MISSING)
            if v is not MISSING and not callable(v):
                return v
        raise error(f"can't evaluate field {name} in type {go_type(recv)}")

    def call(self, name: str, args: list[tuple[Any, ...]], dot: Any, final: Any, has_final: bool) -> Any:
        from dockyard.cli.template import truth

        fn = self.funcs.get(name)
        if fn is None:
            raise error(f'function "{name}" not defined')
        if name in ("and", "or"):  # Go evaluates these lazily, left to right
            if not args and not has_final:
                raise error(f"wrong number of args for {name}: want at least 1 got 0")
            v: Any = MISSING
            thunks: list[Callable[[], Any]] = [lambda a=a: self.arg(a, dot) for a in args]
            if has_final:
                thunks.append(lambda: final)
            for th in thunks:
                v = th()
                if truth(v) == (name == "or"):
                    return v
            return v
        values = [self.arg(a, dot) for a in args] + ([final] if has_final else [])
        try:
            return fn(*values)
        except InvalidArgument:
            raise
        except TypeError:
            raise error(f"wrong number of args for {name}: got {len(values)}") from None
        except (ValueError, IndexError, KeyError, AttributeError, OverflowError, RecursionError) as e:
            raise error(f"error calling {name}: {e}") from None


def go_type(v: Any) -> str:
    """The Go type name Docker's messages would show for a value."""
    if v is None or v is MISSING:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Mapping):
        return "map[string]interface {}"
    if isinstance(v, (list, tuple)):
        return "[]interface {}"
    return "interface {}"
