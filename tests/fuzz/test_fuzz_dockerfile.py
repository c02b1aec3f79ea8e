"""Fuzzing the Dockerfile front end: parser, instructions, stage resolution and variable expansion.

Whatever the text, the result is a parse tree the builder can walk (stages, dependencies, every instruction
expanded as the builder expands it) or one DockerfileError-like message ``Dockerfile:N: reason`` with a line
number inside the file; never another exception and never a hang.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conftest import hard_limit
from dockyard.build.instructions import ArgInstruction, EnvInstruction, RunInstruction
from dockyard.build.stages import parse_dockerfile, platform_args
from dockyard.errors import DockyardError

pytestmark = pytest.mark.fuzz

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
GOLDEN_TEXTS = [p.read_bytes().decode("utf-8", "replace") for p in sorted(GOLDEN.glob("*.Dockerfile"))]
_LOCATED = re.compile(r"^Dockerfile:(\d+): \S")

KEYWORDS = ["FROM", "RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "ENV", "ARG", "LABEL", "EXPOSE",
            "VOLUME", "WORKDIR", "USER", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD", "MAINTAINER", "from", "Run"]
PIECES = ["\n", "\r\n", " ", "\t", "\\", "`", "\\\n", "`\n", "$", "${", "}", "${A:-", "${A:+x}", "${A#", "${A/x/",
          "$A", "'", '"', "[", "]", '["sh", "-c"]', "[1]", "=", "A=b", "--from=", "--mount=type=cache,target=/x",
          "--mount=from=", "--chown=", "--link", "--exclude=", "--platform=$X", "--network=none", "--",
          "<<EOF", "<<-EOF", "<<'EOF'", '<<"EOF"', "3<<EOF", "EOF", "\tEOF", "#", "# escape=`", "# syntax=x",
          "# check=x", "AS", "as", "build", "scratch", "0", "1", "99", "busybox", "80/tcp", "/dst", ".", "..",
          "CMD", "--interval=1s", "NONE", "\ufeff", "\x00", "é", "*", "?", "**"] + KEYWORDS


def _expand_all(df, build_args: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    """What the golden test and the builder do with a parsed file: every stage, its needs and expansion."""
    genv = df.global_args(build_args, platform_args("linux/amd64", "linux/amd64"))
    df.to_json()
    for stage in df.stages:
        df.target(stage.name or str(stage.index))
        df.stages_needed(stage, genv)
        df.base_of(stage, genv)
        env: dict[str, str] = dict(genv)
        for instr in stage.instructions:
            e = instr.expand(env)
            e.to_json()
            if isinstance(e, EnvInstruction):
                env.update(e.pairs)
            elif isinstance(e, ArgInstruction):
                for k, v in e.args:
                    env[k] = build_args.get(k, v if v is not None else env.get(k, ""))
            elif isinstance(e, RunInstruction):
                e.script()
                e.inline_file()
    df.target(None)


def check(text: str, build_args: dict[str, str] | None = None) -> None:
    with hard_limit():
        try:
            df = parse_dockerfile(text, "Dockerfile")
            _expand_all(df, build_args or {})
        except DockyardError as e:
            m = _LOCATED.match(str(e))
            assert m, f"error without a Dockerfile:N: location: {e!r}"
            lines = max(1, text.count("\n") + 1)
            assert 1 <= int(m.group(1)) <= lines, f"line number outside the file: {e}"


@given(st.text(max_size=400))
@example("RUN <<EOF\n")
@example("FROM a\nCOPY --from=9 x y\n")
@example('FROM busybox\nCOPY a <<"EOF\nx\nEOF\n')  # parser's internal _Fail escaped make_instruction
def test_arbitrary_text(text: str) -> None:
    check(text)


@given(st.lists(st.sampled_from(PIECES), max_size=60).map("".join))
def test_token_soup(text: str) -> None:
    check(text)


@st.composite
def _mutated_golden(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(GOLDEN_TEXTS))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["insert", "delete", "replace", "dup_line", "swap_lines", "truncate"]))
        n = len(text)
        i = draw(st.integers(0, n))
        if op == "insert":
            text = text[:i] + draw(st.sampled_from(PIECES) | st.text(max_size=8)) + text[i:]
        elif op == "delete":
            j = draw(st.integers(i, min(n, i + 20)))
            text = text[:i] + text[j:]
        elif op == "replace" and i < n:
            text = text[:i] + draw(st.sampled_from(PIECES)) + text[i + 1:]
        elif op in ("dup_line", "swap_lines"):
            lines = text.split("\n")
            a = draw(st.integers(0, len(lines) - 1))
            b = draw(st.integers(0, len(lines) - 1))
            if op == "dup_line":
                lines.insert(b, lines[a])
            else:
                lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
        elif op == "truncate":
            text = text[:i]
    return text


@given(_mutated_golden(), st.dictionaries(st.sampled_from(["A", "B", "X", "TAG", "BASE", "VERSION"]),
                                          st.sampled_from(["", "1", "a b", "$A", "${", "x/y:1", "\\"]),
                                          max_size=3))
def test_mutated_golden(text: str, build_args: dict[str, str]) -> None:
    check(text, build_args)


def test_golden_inputs_pass_the_check() -> None:
    for text in GOLDEN_TEXTS:
        check(text)


@pytest.mark.parametrize("text", [
    'FROM busybox\nCOPY a <<"EOF\nx\nEOF\n',
    "FROM busybox\nCOPY a <<'EOF\nx\nEOF\n",
    "FROM busybox\nCOPY a <<${EOF\nx\nEOF\n",
])
def test_unlexable_heredoc_source_is_a_located_error(text: str) -> None:
    """Found by fuzzing: COPY with a heredoc-looking source that cannot be lexed raised the parser's internal
    exception (a traceback) instead of ``Dockerfile:2: failed to process ...``."""
    with pytest.raises(DockyardError, match=r"^Dockerfile:2: failed to process"):
        parse_dockerfile(text, "Dockerfile")
