"""Fuzzing the --format template engine: any template and any data render to text or fail with the CLI's error
type (InvalidArgument, one line); never another exception, never a hang, and no way to reach Python internals."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conftest import hard_limit
from dockyard.cli.template import FUNCS, Template, format_rows, prepare
from dockyard.errors import InvalidArgument

pytestmark = pytest.mark.fuzz

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["A", "B", "Name", "ID", "x", ""]),
                                                                inner, max_size=3),
    max_leaves=5)

_WORDS = ["{{", "}}", "{{-", "-}}", "{{- ", " -}}", " ", ".", ".A", ".B", ".Name", ".A.B", ".x", "|", "(", ")",
          '"', '"a"', '"%v %d %q %s {} {0}"', "`", "`x`", "\\", "\\t", "\\n", "1", "-1", "0", "99999999999",
          "true", "false", "nil", "if", "else", "end", "range", "with", "/*", "*/", "$", "$x", ":=", "table",
          "json", "__class__", ".__class__", "._x"] + sorted(FUNCS)


def check(fmt: str, data: object) -> None:
    with hard_limit():
        try:
            _, text = prepare(fmt)
            out = Template(text).render(data)
            assert isinstance(out, str)
            format_rows(fmt, [data, data], {"A": "A", "Name": "NAME"})
        except InvalidArgument as e:
            assert "\n" not in str(e), f"multi-line error: {e!r}"


@given(st.text(max_size=200), _json)
def test_arbitrary_text(fmt: str, data: object) -> None:
    check(fmt, data)


@given(st.lists(st.sampled_from(_WORDS), max_size=30).map("".join), _json)
@example('{{printf "{0}" .}}', 1)           # str.format placeholders in a printf format: IndexError
@example('{{printf "%v %v"}}', None)         # more verbs than arguments: IndexError
@example("{{and}}", None)                    # and/or without arguments: IndexError
@example('{{split . ""}}', "ab")             # empty separator: ValueError
@example("{{range 5}}{{end}}", None)         # range over an int: TypeError outside the function guard
@example("{{len 5}}", None)
@example("{{index . 99999999999999999999}}", [1])
@example("{{truncate . .}}", "abc")          # non-int length: TypeError in slicing
@example('{{pad . 99999999999 0}}', "x")     # would allocate 100 GB
@example('{{pad . -5 "a"}}', "x")
@example('{{json .}}', float("nan"))
@example('{{"\\x"}}', None)                  # not a valid Go/JSON string literal
def test_template_words(fmt: str, data: object) -> None:
    check(fmt, data)


class _Obj:
    """A row given as an object (attributes), as some callers render them."""

    def __init__(self) -> None:
        self.Name = "n"
        self._secret = "hidden"


@pytest.mark.parametrize("fmt", ["{{.__class__}}", "{{.__init__.__globals__}}", "{{._secret}}",
                                 "{{.__dict__}}", "{{.Name.upper}}", "{{.Name.__class__.__mro__}}"])
def test_no_python_internals(fmt: str) -> None:
    """A template reaches data fields only (Go: exported fields and map keys), never Python attributes."""
    with pytest.raises(InvalidArgument, match="can't evaluate field"):
        Template(fmt).render(_Obj())
    assert Template("{{.Name}}").render(_Obj()) == "n"
