"""Variable expansion and word splitting as the builder does it (dockyard.build.shell)."""

from __future__ import annotations

import pytest

from dockyard.build.shell import ExpansionError, Lexer, expand, expand_heredoc, expand_words

ENV = {"A": "x y", "E": "", "H": "/home", "STR": "foobarbaz", "P": "/a/b/c.tar.gz"}

WORD_CASES = [
    ("$A", "x y"),
    ("${A}", "x y"),
    ("pre${H}post", "pre/homepost"),
    ("$H/bin", "/home/bin"),
    ("$UNSET", ""),
    ("${UNSET}", ""),
    ("${E:-def}", "def"),
    ("${E-def}", ""),
    ("${UNSET-def}", "def"),
    ("${UNSET:-def}", "def"),
    ("${H:-def}", "/home"),
    ("${H:+alt}", "alt"),
    ("${E:+alt}", ""),
    ("${E+alt}", "alt"),
    ("${UNSET+alt}", ""),
    ("${UNSET:-${H}/x}", "/home/x"),
    ("${STR#f*b}", "arbaz"),
    ("${STR##f*b}", "az"),
    ("${STR%b*}", "foobar"),
    ("${STR%%b*}", "foo"),
    ("${STR/ba/fo}", "fooforbaz"),
    ("${STR//ba/fo}", "fooforfoz"),
    ("${P##*/}", "c.tar.gz"),
    ("${P%.tar.gz}", "/a/b/c"),
    ("'$A'", "$A"),
    ('"$A"', "x y"),
    ('"it\'s"', "it's"),
    ("'say \"hi\"'", 'say "hi"'),
    ("\\$A", "$A"),
    ("\\${A}", "${A}"),
    ('"\\$A"', "$A"),
    ('"a\\b"', "a\\b"),  # inside double quotes only \\ \" \$ are escapes
    ("a\\ b", "a b"),
    ("$", "$"),
    ("a$", "a$"),
    ("$1x", "x"),
    ("$$", ""),
    ("trailing\\", "trailing"),
    ("", ""),
]


@pytest.mark.parametrize("word,want", WORD_CASES)
def test_expand(word: str, want: str) -> None:
    assert expand(word, ENV) == want


def test_expand_words_splits_unquoted_expansions() -> None:
    assert expand_words("$A z", ENV) == ["x", "y", "z"]
    assert expand_words('"$A" z', ENV) == ["x y", "z"]
    assert expand_words("'$A' z", ENV) == ["$A", "z"]
    assert expand_words("  a   b  ", ENV) == ["a", "b"]
    assert expand_words("a\\ b c", ENV) == ["a b", "c"]
    assert expand_words("", ENV) == []
    assert expand_words('""', ENV) == []  # as BuildKit: an empty word is dropped


def test_backtick_escape() -> None:
    assert expand("`$A", ENV, escape="`") == "$A"
    assert expand("C:\\dir\\$H", ENV, escape="`") == "C:\\dir\\/home"
    assert expand('"a`"b"', ENV, escape="`") == 'a"b'


@pytest.mark.parametrize("word,message", [
    ("${A", "failed to process \"${A\": syntax error: missing '}'"),
    ("${", "failed to process \"${\": syntax error: missing '}'"),
    ("${}", "failed to process \"${}\": syntax error: bad substitution"),
    ("${:-x}", "failed to process \"${:-x}\": syntax error: bad substitution"),
    ("${A:x}", "failed to process \"${A:x}\": unsupported modifier (:x) in substitution"),
    ("${A:#x}", "failed to process \"${A:#x}\": unsupported modifier (:#) in substitution"),
    ("${A:-x", "failed to process \"${A:-x\": syntax error: missing '}'"),
    ("${UNSET:?}", "failed to process \"${UNSET:?}\": UNSET: is not allowed to be unset"),
    ("${E:?}", "failed to process \"${E:?}\": E: is not allowed to be empty"),
    ("${E:?set it}", "failed to process \"${E:?set it}\": E: set it"),
    ("'open", "failed to process \"'open\": unexpected end of statement while looking for matching single-quote"),
    ('"open', "failed to process \"\\\"open\": unexpected end of statement while looking for matching "
              "double-quote"),
])
def test_expansion_errors(word: str, message: str) -> None:
    with pytest.raises(ExpansionError) as exc:
        expand(word, ENV)
    assert str(exc.value) == message


def test_required_variable_set_is_fine() -> None:
    assert expand("${E?}", ENV) == ""
    assert expand("${H:?}", ENV) == "/home"


def test_heredoc_body_quotes_are_plain() -> None:
    assert expand_heredoc("say \"$H\" and '$H' \\$H\n", ENV) == "say \"/home\" and '/home' $H\n"


def test_lexer_modes_used_for_heredoc_detection() -> None:
    raw = Lexer("\\", raw_quotes=True, raw_escapes=True, skip_unset=True)
    assert raw.process_words("RUN <<'EOF' cat $X ${Y:-z}", {}) == ["RUN", "<<'EOF'", "cat", "$X", "${Y:-z}"]
    assert Lexer("\\", skip_quotes=True).process_word("'$H'", ENV) == "'/home'"
