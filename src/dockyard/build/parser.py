"""Dockerfile text -> a list of instruction nodes (the syntax layer, as BuildKit's ``parser`` package).

What this layer does: BOM, parser directives (``# syntax=``, ``# escape=``, ``# check=``; only before any other
line, case-insensitive, each at most once), comments, empty lines, line continuations with the escape character
(comment lines and empty lines inside a continuation are skipped, the latter with a warning), case-insensitive
instruction keywords, builder flags (``--from=x``), per-instruction argument shapes (JSON exec form or shell
form, ``ENV a=b`` or legacy ``ENV a b``, ...), and heredocs (``RUN <<EOF``, ``<<-EOF``, ``<<"EOF"``, several on one
line, ``COPY <<EOF /dst``, inside ``ONBUILD``).

It does not check instruction names or flags: ``instructions.py`` turns nodes into typed instructions and
reports those errors. Every error is a ``DockerfileError`` with the message ``Dockerfile:7: what is wrong``.
"""

from __future__ import annotations

from dockyard.errors import InvalidArgument
from dockyard.ids import ASCII_ALNUM
from dockyard.lazyre import Pattern

__all__ = ["DockerfileError", "Heredoc", "HeredocWordError", "Node", "ParseResult", "parse", "parse_heredoc_word",
           "chomp_heredoc", "DIRECTIVES"]

DIRECTIVES = ("syntax", "escape", "check")

# every line goes through hand-written checks (importing ``re`` and compiling was most of a cached build's
# parse); the heredoc patterns are compiled on first use
_WS = frozenset("\t\v\f\r ")  # BuildKit's whitespace between words: not a newline
_HEREDOC = Pattern(r"(?s)(\d*)<<(-?)\s*([^<]*)")
_LEADING_TABS = Pattern(r"(?m)^\t+")
_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _ws_split(s: str, maxsplit: int = 0) -> list[str]:
    """``re.split(r"[\\t\\v\\f\\r ]+", s, maxsplit)``: a leading or trailing run gives an empty first or last
    word, as the pattern's split does."""
    out: list[str] = []
    start = i = 0
    n = len(s)
    while i < n:
        if s[i] in _WS:
            j = i + 1
            while j < n and s[j] in _WS:
                j += 1
            out.append(s[start:i])
            start = i = j
            if maxsplit and len(out) == maxsplit:
                break
        else:
            i += 1
    out.append(s[start:])
    return out

# line parser kinds, per instruction keyword (lower case)
_KIND = {
    "add": "json_or_list", "copy": "json_or_list", "volume": "json_or_list",
    "cmd": "json_or_string", "entrypoint": "json_or_string", "run": "json_or_string", "shell": "json_or_string",
    "arg": "words", "env": "env", "label": "env",
    "expose": "split", "from": "split",
    "maintainer": "string", "stopsignal": "string", "user": "string", "workdir": "string",
    "healthcheck": "health", "onbuild": "sub",
}
_HEREDOC_KEYWORDS = frozenset(("add", "copy", "run"))


class DockerfileError(InvalidArgument):
    """A Dockerfile cannot be parsed: ``Dockerfile:7: unknown instruction: RUNN``."""

    def __init__(self, filename: str, line: int, reason: str) -> None:
        super().__init__(f"{filename}:{line}: {reason}")
        self.filename = filename
        self.line = line
        self.reason = reason


class Heredoc:
    """One here-document: ``name`` (the delimiter word, quotes removed), its body ``data`` (with the leading tabs
    already removed when ``chomp``), whether the body gets variable expansion (``expand``: the delimiter was not
    quoted) and the file descriptor written before ``<<`` (``3<<EOF``; 0 when absent)."""

    __slots__ = ("name", "data", "expand", "chomp", "fd")

    def __init__(self, name: str, data: str = "", expand: bool = True, chomp: bool = False, fd: int = 0) -> None:
        self.name = name
        self.data = data
        self.expand = expand
        self.chomp = chomp
        self.fd = fd

    def to_json(self) -> dict:
        return {"name": self.name, "data": self.data, "expand": self.expand, "chomp": self.chomp, "fd": self.fd}

    def __repr__(self) -> str:
        return f"Heredoc({self.name!r}, {self.data!r}, expand={self.expand}, chomp={self.chomp})"


class Node:
    """One instruction as written: keyword (original case), builder flags (``--x=y`` words), arguments as the
    instruction's line parser shaped them, ``json`` (exec form), the original text (continuations joined),
    start/end line numbers (1-based; the end includes heredoc bodies), heredocs, and for ONBUILD the ``child``."""

    __slots__ = ("keyword", "flags", "args", "json", "original", "line", "end_line", "heredocs", "child")

    def __init__(self, keyword: str, flags: list[str], args: list[str], is_json: bool, original: str,
                 child: Node | None = None) -> None:
        self.keyword = keyword
        self.flags = flags
        self.args = args
        self.json = is_json
        self.original = original
        self.line = 0
        self.end_line = 0
        self.heredocs: list[Heredoc] = []
        self.child = child

    @property
    def name(self) -> str:
        """The keyword in lower case (``run``)."""
        return self.keyword.lower()

    def __repr__(self) -> str:
        return f"Node({self.keyword!r}, flags={self.flags!r}, args={self.args!r}, line={self.line})"


class ParseResult:
    """``nodes`` in file order, ``directives`` (lower-case name -> value), the ``escape`` character in effect and
    ``warnings`` (one-line strings, e.g. empty continuation lines)."""

    __slots__ = ("nodes", "directives", "escape", "warnings", "filename", "lines")

    def __init__(self, nodes: list[Node], directives: dict[str, str], escape: str, warnings: list[str],
                 filename: str, lines: int) -> None:
        self.nodes = nodes
        self.directives = directives
        self.escape = escape
        self.warnings = warnings
        self.filename = filename
        self.lines = lines


class _Fail(Exception):
    """Internal: a reason without a location; the caller adds the line."""


class HeredocWordError(_Fail):
    """``parse_heredoc_word`` cannot lex the word (``<<"EOF`` without its closing quote); a reason without a
    location: callers (this parser, ``instructions.make_instruction``) report it at the instruction's line."""


# --------------------------------------------------------------------------------------------------------------
# Heredoc words


def parse_heredoc_word(word: str) -> Heredoc | None:
    """``<<EOF``, ``<<-EOF``, ``<<"EOF"``, ``3<<EOF`` -> a Heredoc without body; anything else -> None."""
    if "<<" not in word:  # the pattern needs it: most words never compile it
        return None
    m = _HEREDOC.fullmatch(word)
    if not m:
        return None
    fd, dash, rest = m.groups()
    if not rest:
        return None
    from dockyard.build.shell import ExpansionError, Lexer

    try:
        words = Lexer("\\", skip_unset=True).process_words(rest, {})
        if len(words) != 1:
            return None
        raw = Lexer("\\", skip_unset=True, raw_quotes=True).process_words(rest, {})
    except ExpansionError as e:
        raise HeredocWordError(str(e)) from None
    if len(raw) != 1:
        raise HeredocWordError(f"internal lexing of heredoc produced inconsistent results: {rest}")
    name = words[0]
    quoted = raw[0].count("'") + raw[0].count('"') != name.count("'") + name.count('"')
    return Heredoc(name, "", expand=not quoted, chomp=dash == "-", fd=int(fd or 0))


def chomp_heredoc(data: str) -> str:
    """Remove leading tabs from every line (the ``<<-`` form)."""
    return _LEADING_TABS.sub("", data)


def _heredocs_in_line(line: str) -> list[Heredoc]:
    from dockyard.build.shell import ExpansionError, Lexer

    try:
        words = Lexer("\\", raw_quotes=True, raw_escapes=True, skip_unset=True).process_words(line, {})
    except ExpansionError:
        return []
    docs = []
    for w in words:
        h = parse_heredoc_word(w)
        if h is not None:
            docs.append(h)
    return docs


# --------------------------------------------------------------------------------------------------------------
# Line parsers


def _extract_flags(rest: str, esc: str) -> tuple[str, list[str]]:
    """Leading ``--flag[=value]`` words (quotes and escapes processed) and the remaining argument text."""
    words: list[str] = []
    n = len(rest)
    pos = 0
    while True:
        while pos < n and rest[pos].isspace():
            pos += 1
        if pos >= n:
            return "", words
        if not rest.startswith("--", pos):
            return rest[pos:], words
        buf: list[str] = []
        blank_ok = False
        quote = ""
        while pos < n:
            ch = rest[pos]
            if quote:
                if ch == quote:
                    quote = ""
                    pos += 1
                    continue
            elif ch.isspace():
                break
            elif ch in "'\"":
                quote = ch
                blank_ok = True
                pos += 1
                continue
            if ch == esc:
                if pos + 1 == n:
                    pos += 1
                    quote = ""
                    continue
                pos += 1
                ch = rest[pos]
            buf.append(ch)
            pos += 1
        word = "".join(buf)
        if word == "--":
            return rest[pos:], words
        if blank_ok or word:
            words.append(word)


def _parse_words(rest: str, esc: str) -> list[str]:
    """Split on spaces keeping quotes (and escapes) in the words; they are removed later by expansion."""
    words: list[str] = []
    buf: list[str] = []
    blank_ok = False
    quote = ""
    in_word = False
    i, n = 0, len(rest)
    while i < n:
        ch = rest[i]
        if not in_word:
            if ch.isspace():
                i += 1
                continue
            in_word = True
        if not quote:
            if ch.isspace():
                if blank_ok or buf:
                    words.append("".join(buf))
                buf, blank_ok, in_word = [], False, False
                i += 1
                continue
            if ch in "'\"":
                quote = ch
                blank_ok = True
            elif ch == esc:
                if i + 1 == n:
                    i += 1
                    continue
                buf.append(ch)
                i += 1
                ch = rest[i]
            buf.append(ch)
            i += 1
            continue
        # inside quotes
        if ch == quote:
            quote = ""
        elif ch == esc and quote != "'":
            if i + 1 == n:
                i += 1
                continue
            buf.append(ch)
            i += 1
            ch = rest[i]
        buf.append(ch)
        i += 1
    if in_word and (blank_ok or buf):
        words.append("".join(buf))
    return words


def _parse_json(rest: str) -> list[str] | None:
    """A JSON array of strings, or None when ``rest`` is not a JSON array; other element types are an error."""
    rest = rest.lstrip()
    if not rest.startswith("["):
        return None
    from dockyard import jsonc as json

    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(v, str) for v in value):
        raise _Fail("when using JSON array syntax, arrays must be comprised of strings only")
    return value


def _split(rest: str) -> list[str]:
    return _ws_split(rest) if rest else []


def _env_args(rest: str, keyword: str, esc: str) -> list[str]:
    """ENV/LABEL: flat [key, value, delim, ...]; delim "=" for ``a=b``, "" for the legacy ``ENV a b c``."""
    words = _parse_words(rest, esc)
    if not words:
        return []
    if "=" not in words[0]:
        parts = _ws_split(rest, 1)
        if len(parts) < 2:
            raise _Fail(f"{keyword.upper()} must have two arguments")
        return [parts[0], parts[1], ""]
    out: list[str] = []
    for w in words:
        if "=" not in w:
            raise _Fail(f'Syntax error - can\'t find = in "{w}". Must be of the form: name=value')
        k, v = w.split("=", 1)
        out += [k, v, "="]
    return out


def _node_from_line(line: str, esc: str) -> Node:
    stripped = line.strip()
    parts = _ws_split(stripped, 1)
    keyword = parts[0]
    flags: list[str] = []
    rest = ""
    if len(parts) == 2:
        rest, flags = _extract_flags(parts[1], esc)
        rest = rest.strip()
    kind = _KIND.get(keyword.lower())
    args: list[str] = []
    is_json = False
    child = None
    if kind is None:
        pass  # unknown instruction: reported by the instructions layer
    elif kind == "json_or_string":
        if rest:
            js = _parse_json(rest)
            if js is not None:
                args, is_json = js, True
            else:
                args = [rest]
    elif kind == "json_or_list":
        js = _parse_json(rest)
        if js is not None:
            args, is_json = js, True
        else:
            args = _split(rest)
    elif kind == "split":
        args = _split(rest)
    elif kind == "string":
        args = [rest] if rest else []
    elif kind == "words":
        args = _parse_words(rest, esc)
    elif kind == "env":
        args = _env_args(rest, keyword, esc)
    elif kind == "health":
        if rest:
            end = 0  # rest is stripped: its first word, then the whitespace after it
            while end < len(rest) and not rest[end].isspace():
                end += 1
            typ = rest[:end]
            while end < len(rest) and rest[end].isspace():
                end += 1
            cmd = rest[end:]
            args = [typ]
            if cmd:
                js = _parse_json(cmd)
                if js is not None:
                    args += js
                    is_json = True
                else:
                    args.append(cmd)
    elif kind == "sub":
        if rest:
            child = _node_from_line(rest, esc)
    return Node(keyword, flags, args, is_json, line, child)


def _can_have_heredoc(node: Node) -> bool:
    if node.name == "onbuild" and node.child is not None:
        node = node.child
    return node.name in _HEREDOC_KEYWORDS and not node.json


# --------------------------------------------------------------------------------------------------------------
# The file


def _split_lines(text: str) -> list[str]:
    parts = text.split("\n")
    lines = [p + "\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def parse(text: str | bytes, filename: str = "Dockerfile") -> ParseResult:
    """Parse a whole Dockerfile into nodes. Raises DockerfileError (``filename:LINE: reason``)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    lines = _split_lines(text)
    esc = "\\"
    directives: dict[str, str] = {}
    directives_done = False
    warnings: list[str] = []
    nodes: list[Node] = []
    i, n = 0, len(lines)

    def fail(line_no: int, reason: str) -> DockerfileError:
        return DockerfileError(filename, line_no, reason)

    while i < n:
        raw = lines[i].rstrip("\r\n")
        i += 1
        start = i
        tok = raw.lstrip()
        if not directives_done:
            d = _directive(tok, directives)
            if isinstance(d, str):
                raise fail(start, d)
            if d is None:
                directives_done = True
            elif d[0] == "escape":
                if d[1] not in ("\\", "`"):
                    raise fail(start, f"invalid escape token '{d[1]}' does not match ` or \\")
                esc = d[1]
        if _is_comment(tok):
            tok = ""
        tok, ended = _trim_continuation(tok, esc)
        if ended and not tok:
            continue
        buf = [tok]
        empty_cont = False
        while not ended and i < n:
            raw = lines[i].rstrip("\r\n")
            i += 1
            if _is_comment(raw):
                continue
            if not raw.strip():
                empty_cont = True
                continue
            tok, ended = _trim_continuation(raw, esc)
            buf.append(tok)
        line = "".join(buf)
        if empty_cont:
            warnings.append(f"{filename}:{i}: empty continuation line found in: {line.strip()}")
        try:
            node = _node_from_line(line, esc)
        except _Fail as e:
            raise fail(start, str(e)) from None
        if _can_have_heredoc(node) and "<<" in line:
            try:
                docs = _heredocs_in_line(line)
            except _Fail as e:
                raise fail(start, str(e)) from None
            for doc in docs:
                body: list[str] = []
                terminated = False
                while i < n:
                    raw = lines[i]
                    i += 1
                    candidate = raw.rstrip("\r\n")
                    if doc.chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == doc.name:
                        terminated = True
                        break
                    body.append(raw)
                if not terminated:
                    raise fail(start, "unterminated heredoc")
                doc.data = "".join(body)
                if doc.chomp:
                    doc.data = chomp_heredoc(doc.data)
                node.heredocs.append(doc)
        node.line = start
        node.end_line = i
        if node.child is not None:
            node.child.line, node.child.end_line = start, i
        nodes.append(node)

    if not nodes:
        raise fail(max(n, 1), "file with no instructions")
    return ParseResult(nodes, directives, esc, warnings, filename, n)


def _trim_continuation(line: str, esc: str) -> tuple[str, bool]:
    """A line ending with the escape character (then spaces or tabs) continues on the next: (the line without
    it, False); one ending with two escape characters does not (an escaped escape); else (line, True)."""
    t = (line[:-1] if line.endswith("\n") else line).rstrip(" \t")  # (parse's lines have no newline left)
    if not t.endswith(esc):
        return line, True
    if len(t) == 1:
        return "", False
    if t[-2] == esc:
        return line, True
    return t[:-1], False


def _directive(tok: str, seen: dict[str, str]) -> tuple[str, str] | str | None:
    """A parser directive on this line: (name, value), an error string, or None (directives are over)."""
    if not tok.startswith("#"):
        return None
    # ``NAME = VALUE``: NAME an ASCII letter then letters and digits; VALUE stripped of trailing whitespace
    # (a value of whitespace only is its last character, as the regexp ``(.+?)\\s*`` after ``=\\s*`` gives)
    s = tok[1:].lstrip()
    if not s or s[0] not in _ASCII_LETTERS:
        return None
    i = 1
    while i < len(s) and s[i] in ASCII_ALNUM:
        i += 1
    name, rest = s[:i], s[i:].lstrip()
    if not rest.startswith("="):
        return None
    rest = rest[1:]
    if not rest:
        return None
    value = rest.strip() or rest[-1]
    key = name.lower()
    if key not in DIRECTIVES:
        return None
    if key in seen:
        return f"only one {key} parser directive can be used"
    seen[key] = value
    return key, value
