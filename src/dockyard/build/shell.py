"""Shell-style word processing for Dockerfiles: quotes, escapes and ``$VAR`` expansion.

This is the builder's expansion, not a shell: it runs on the arguments of the instructions BuildKit expands
(``ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR``, ``ARG`` names and defaults, ``RUN --mount``
values, and unquoted-delimiter heredoc bodies of COPY/ADD). ``RUN``, ``CMD``, ``ENTRYPOINT``, ``HEALTHCHECK``,
``SHELL``, ``MAINTAINER`` and ``ONBUILD`` are never expanded by the builder: in shell form the container's shell
does it at run time.

Supported forms: ``$VAR``, ``${VAR}``, ``${VAR:-word}``, ``${VAR-word}``, ``${VAR:+word}``, ``${VAR+word}``,
``${VAR:?msg}``, ``${VAR?msg}``, ``${VAR#pat}``, ``${VAR##pat}``, ``${VAR%pat}``, ``${VAR%%pat}``,
``${VAR/pat/repl}``, ``${VAR//pat/repl}``. Single quotes keep everything literal, double quotes keep spaces but
still expand ``$``; the escape character (``\\`` or the Dockerfile's ``# escape=`` token) makes the next character
literal. An unset variable expands to the empty string.

Public API::

    expand(word, env, escape="\\\\") -> str             # one word: quotes removed, spaces kept
    expand_words(text, env, escape="\\\\") -> list[str] # split into words after expansion (EXPOSE, heredoc names)
    expand_heredoc(text, env) -> str                  # heredoc bodies: only $ and \\ are special
    Lexer(escape, raw_quotes=, raw_escapes=, skip_quotes=, skip_unset=)  # the configurable processor
    ExpansionError                                    # bad ${ syntax, ${VAR:?msg}, unterminated quote
"""

from __future__ import annotations

from collections.abc import Mapping

from dockyard.errors import InvalidArgument

__all__ = ["ExpansionError", "Lexer", "expand", "expand_words", "expand_heredoc"]

_SPECIAL_PARAMS = frozenset("@*#?-$!0")
_HEREDOC_SPACE = frozenset("\t\r ")


class ExpansionError(InvalidArgument):
    """A word cannot be processed: ``failed to process "${A": syntax error: missing '}'``."""


class _Fail(Exception):
    """Internal: the reason a word failed, wrapped into an ExpansionError by the caller."""


class _Words:
    """Accumulates the words of a text while it is processed (spaces from expansions split words)."""

    __slots__ = ("buf", "words", "in_word")

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and any(self.buf):
                self.words.append("".join(self.buf))
                self.buf = []
                self.in_word = False
        else:
            self.buf.append(ch)
            self.in_word = True

    def add_raw(self, s: str) -> None:
        self.buf.append(s)
        self.in_word = True

    def add_string(self, s: str) -> None:
        for ch in s:
            self.add_char(ch)

    def finish(self) -> list[str]:
        if any(self.buf):
            self.words.append("".join(self.buf))
            self.buf = []
            self.in_word = False
        return self.words


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class Lexer:
    """Processes words the way BuildKit's ``shell.Lex`` does.

    ``raw_quotes`` keeps quote characters in the result, ``raw_escapes`` keeps escape characters, ``skip_quotes``
    makes quotes ordinary characters (heredoc bodies), ``skip_unset`` leaves references to unset variables as
    written (used to find heredoc delimiters before any variable is known).
    """

    __slots__ = ("escape", "raw_quotes", "raw_escapes", "skip_quotes", "skip_unset", "_s", "_i", "_env")

    def __init__(self, escape: str = "\\", *, raw_quotes: bool = False, raw_escapes: bool = False,
                 skip_quotes: bool = False, skip_unset: bool = False) -> None:
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_quotes = skip_quotes
        self.skip_unset = skip_unset
        self._s = ""
        self._i = 0
        self._env: Mapping[str, str] = {}

    # -- public -----------------------------------------------------------------------------------------------
    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """Expand ``word`` into a single string (spaces kept, quotes and escapes removed)."""
        return self._run(word, env)[0]

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """Expand ``word`` and split it into words; unquoted spaces from expansions split too."""
        return self._run(word, env)[1]

    # -- machinery --------------------------------------------------------------------------------------------
    def _run(self, word: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
        self._s, self._i, self._env = word, 0, env
        try:
            return self._until(None, self.raw_escapes)
        except _Fail as e:
            raise ExpansionError(f"failed to process {_quote(word)}: {e}") from None
        finally:
            self._env = {}

    def _peek(self) -> str:
        return self._s[self._i] if self._i < len(self._s) else ""

    def _next(self) -> str:
        if self._i < len(self._s):
            ch = self._s[self._i]
            self._i += 1
            return ch
        return ""

    def _closed_by(self, stop: str, raw_escapes: bool, missing: str) -> str:
        """``_until(stop)``'s text; running out of input before ``stop`` is the ``missing`` syntax error."""
        try:
            return self._until(stop, raw_escapes)[0]
        except _Fail:
            if self._i >= len(self._s):
                raise _Fail(missing) from None
            raise

    def _until(self, stop: str | None, raw_escapes: bool) -> tuple[str, list[str]]:
        """Process up to ``stop`` (consumed) or the end of input when ``stop`` is None."""
        result: list[str] = []
        words = _Words()
        esc = self.escape
        quotes = not self.skip_quotes
        while self._i < len(self._s):
            ch = self._s[self._i]
            if stop is not None and ch == stop:
                self._i += 1
                return "".join(result), words.finish()
            if ch == "$":
                tmp = self._dollar()
                result.append(tmp)
                words.add_string(tmp)
                continue
            if ch == "<":
                tmp = self._heredoc_marker()
                result.append(tmp)
                words.add_raw(tmp)
                continue
            if quotes and ch == "'":
                tmp = self._single_quote()
                result.append(tmp)
                words.add_raw(tmp)
                continue
            if quotes and ch == '"':
                tmp = self._double_quote()
                result.append(tmp)
                words.add_raw(tmp)
                continue
            self._i += 1
            if ch == esc:
                if raw_escapes:
                    words.add_raw(ch)
                    result.append(ch)
                if self._i >= len(self._s):
                    break  # an escape at the very end is dropped
                ch = self._s[self._i]
                self._i += 1
                words.add_raw(ch)
            else:
                words.add_char(ch)
            result.append(ch)
        if stop is not None:
            raise _Fail(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.finish()

    def _single_quote(self) -> str:
        self._i += 1
        end = self._s.find("'", self._i)
        if end < 0:
            raise _Fail("unexpected end of statement while looking for matching single-quote")
        text = self._s[self._i:end]
        self._i = end + 1
        return f"'{text}'" if self.raw_quotes else text

    def _double_quote(self) -> str:
        self._i += 1
        out: list[str] = ['"'] if self.raw_quotes else []
        esc = self.escape
        while True:
            ch = self._peek()
            if ch == "":
                raise _Fail("unexpected end of statement while looking for matching double-quote")
            if ch == '"':
                self._i += 1
                if self.raw_quotes:
                    out.append('"')
                return "".join(out)
            if ch == "$":
                out.append(self._dollar())
                continue
            self._i += 1
            if ch == esc:
                nxt = self._peek()
                if nxt == "":
                    continue  # an escape at the end of the word is ignored
                if nxt in ('"', "$", esc):
                    if self.raw_escapes:
                        out.append(ch)
                    ch = self._next()
            out.append(ch)

    def _heredoc_marker(self) -> str:
        self._i += 1
        if self._peek() != "<":
            return "<"
        self._i += 1
        start = self._i
        while self._peek() and self._peek() in _HEREDOC_SPACE:
            self._i += 1
        return "<<" + self._s[start:self._i]

    def _name(self) -> str:
        s, i = self._s, self._i
        if i < len(s) and s[i].isdigit():
            j = i
            while j < len(s) and s[j].isdigit():
                j += 1
            self._i = j
            return s[i:j]
        if i < len(s) and s[i] in _SPECIAL_PARAMS:
            self._i = i + 1
            return s[i]
        j = i
        while j < len(s) and (s[j].isalnum() or s[j] == "_"):
            j += 1
        self._i = j
        return s[i:j]

    def _lookup(self, name: str) -> str | None:
        return self._env.get(name) if name in self._env else None

    def _dollar(self) -> str:
        self._i += 1  # the $
        if self._peek() != "{":
            name = self._name()
            if not name:
                return "$"
            value = self._lookup(name)
            if value is None:
                return "$" + name if self.skip_unset else ""
            return value
        self._i += 1  # the {
        first = self._peek()
        if first == "":
            raise _Fail("syntax error: missing '}'")
        if first in "{}:":
            raise _Fail("syntax error: bad substitution")
        name = self._name()
        ch = self._next()
        if ch == "":
            raise _Fail("syntax error: missing '}'")
        if ch == "}":
            value = self._lookup(name)
            if value is None:
                return "${" + name + "}" if self.skip_unset else ""
            return value
        if ch == "/":
            return self._replace(name)
        mod = ch
        null_is_unset = False
        if ch == ":":
            null_is_unset = True
            ch = self._next()
            if ch == "":
                raise _Fail("syntax error: missing '}'")
            mod += ch
        if ch not in "+-?#%":
            raise _Fail(f"unsupported modifier ({mod}) in substitution")
        pattern_mod = ch in "#%"
        if null_is_unset and pattern_mod:
            raise _Fail(f"unsupported modifier ({mod}) in substitution")
        word = self._closed_by("}", pattern_mod, "syntax error: missing '}'")
        value = self._lookup(name)
        if value is None and self.skip_unset:
            return "${" + name + mod + word + "}"
        empty = value is None or (null_is_unset and value == "")
        if ch == "-":
            return word if empty else value  # type: ignore[return-value]
        if ch == "+":
            return "" if empty else word
        if ch == "?":
            if value is None:
                raise _Fail(f"{name}: {word or 'is not allowed to be unset'}")
            if null_is_unset and value == "":
                raise _Fail(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        # '#' / '%': remove the shortest (or longest when doubled) matching prefix / suffix
        greedy = word[:1] == ch
        if greedy:
            word = word[1:]
        return _trim(value or "", word, greedy, suffix=(ch == "%"))

    def _replace(self, name: str) -> str:
        replace_all = self._peek() == "/"
        if replace_all:
            self._i += 1
        pattern = self._closed_by("/", True, "syntax error: missing '/' in ${}")
        repl = self._closed_by("}", True, "syntax error: missing '}'")
        value = self._lookup(name)
        if value is None and self.skip_unset:
            return "${" + name + "/" + pattern + "/" + repl + "}"
        rx = _pattern_regex(pattern, greedy=True, anchored=False)
        return rx.sub(lambda m: repl, value or "", count=0 if replace_all else 1)


def _pattern_regex(pattern: str, greedy: bool, anchored: bool):  # -> re.Pattern[str]
    """A shell glob (``*`` and ``?``, ``\\`` escapes them) as a regular expression."""
    import re

    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(star)
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            nxt = pattern[i:i + 1]
            if nxt in ("}", "/"):
                continue
            i += 1
            if nxt not in ("*", "?", "\\"):
                raise _Fail(f"invalid pattern ({pattern}) in substitution: invalid escape '\\{nxt}'")
            out.append(re.escape(nxt))
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _trim(value: str, pattern: str, greedy: bool, suffix: bool) -> str:
    if not suffix:
        m = _pattern_regex(pattern, greedy, anchored=True).match(value)
        return value[m.end():] if m else value
    # the shortest/longest match anchored at the end: try every start position
    rx = _pattern_regex(pattern, greedy=True, anchored=False)
    starts = range(len(value) + 1) if greedy else range(len(value), -1, -1)
    for start in starts:
        if rx.fullmatch(value, start):
            return value[:start]
    return value


_LEXERS: dict[str, Lexer] = {}


def _lexer(escape: str) -> Lexer:
    lx = _LEXERS.get(escape)
    if lx is None:
        lx = _LEXERS[escape] = Lexer(escape)
    return lx


def expand(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Expand one word the way the builder does for ENV/LABEL/COPY/WORKDIR/...: ``"a b"`` -> ``a b``."""
    return _lexer(escape).process_word(word, env)


def expand_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Expand ``text`` and split it into words (quoted spaces kept); ``'$A'`` stays literal."""
    return _lexer(escape).process_words(text, env)


def expand_heredoc(text: str, env: Mapping[str, str]) -> str:
    """Expand a heredoc body whose delimiter was not quoted: quotes are ordinary characters."""
    return Lexer("\\", skip_quotes=True).process_word(text, env)
