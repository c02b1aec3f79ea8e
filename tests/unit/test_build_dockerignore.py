""".dockerignore rules: pattern table, file reading, Dockerfile.dockerignore precedence, walk()."""

from __future__ import annotations

import os

import pytest

from dockyard.build.dockerignore import Matcher, clean, ignore_file_for, load_patterns, read_patterns, walk
from dockyard.errors import InvalidArgument

# (patterns, path, excluded?)
TABLE = [
    (["*.go"], "main.go", True),
    (["*.go"], "cmd/main.go", False),  # * does not cross directories
    (["**/*.go"], "cmd/main.go", True),
    (["**/*.go"], "main.go", True),
    (["**/*.go"], "a/b/c/x.go", True),
    (["**/*.go"], "a/b/c/x.gox", False),
    (["node_modules"], "node_modules", True),
    (["node_modules"], "node_modules/left-pad/index.js", True),  # a matched directory excludes its contents
    (["node_modules"], "src/node_modules", False),
    (["**/node_modules"], "src/node_modules/x.js", True),
    (["/build"], "build/out.o", True),  # leading / dropped
    (["build/"], "build/out.o", True),  # trailing / cleaned away
    (["build/"], "build", True),
    (["a/**"], "a/b/c", True),
    (["a/**"], "a", False),
    (["a/**/z"], "a/z", True),
    (["a/**/z"], "a/b/c/z", True),
    (["a/**/z"], "a/b/c/zz", False),
    (["**"], "anything/at/all", True),
    (["docs/*.md"], "docs/a.md", True),
    (["docs/*.md"], "docs/sub/a.md", False),
    (["?.txt"], "a.txt", True),
    (["?.txt"], "ab.txt", False),
    (["[a-c].txt"], "b.txt", True),
    (["[a-c].txt"], "d.txt", False),
    (["[^a-c].txt"], "d.txt", True),
    (["[^a-c].txt"], "a.txt", False),
    (["*.md", "!README.md"], "README.md", False),
    (["*.md", "!README.md"], "CHANGES.md", True),
    (["!README.md", "*.md"], "README.md", True),  # later lines win
    (["docs", "!docs/keep"], "docs/keep", False),
    (["docs", "!docs/keep"], "docs/keep/inner.txt", False),  # exception covers the directory's contents
    (["docs", "!docs/keep"], "docs/drop.txt", True),
    (["docs", "!docs/keep", "docs/keep/secret"], "docs/keep/secret", True),
    (["**/*.log", "!important/**/*.log"], "important/a/b.log", False),
    (["**/*.log", "!important/**/*.log"], "other/b.log", True),
    (["a/../b"], "b/x", True),
    (["./c"], "c", True),
    (["foo.bar"], "fooxbar", False),  # . is literal
    (["a+b"], "a+b", True),
    (["\\*x"], "*x", True),
    (["\\*x"], "ax", False),
    (["*"], "anything", True),
    ([], "x", False),
]


@pytest.mark.parametrize("patterns,path,excluded", TABLE)
def test_pattern_table(patterns: list[str], path: str, excluded: bool) -> None:
    assert Matcher(patterns).matches(path) is excluded


def test_root_never_excluded() -> None:
    assert Matcher(["*", "**"]).matches(".") is False


def test_clean() -> None:
    assert clean("a//b/../c/.") == "a/c"
    assert clean("") == "."
    assert clean("/../a") == "/a"
    assert clean("../a") == "../a"


def test_read_patterns() -> None:
    text = "\ufeff# comment\n\n  *.pyc  \n/abs/path\n!  /keep/me \n  # not a comment after spaces\ndir/\n"
    assert read_patterns(text) == ["*.pyc", "abs/path", "!keep/me", "# not a comment after spaces", "dir"]


@pytest.mark.parametrize("bad", ["!", "[abc", "a\\"])
def test_bad_patterns(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        Matcher([bad])


def test_dockerfile_specific_ignore_file_wins(tmp_path) -> None:
    (tmp_path / ".dockerignore").write_text("*.txt\n")
    df = tmp_path / "app.Dockerfile"
    df.write_text("FROM scratch\n")
    assert load_patterns(str(tmp_path), str(df)) == ["*.txt"]
    (tmp_path / "app.Dockerfile.dockerignore").write_text("*.md\n")
    assert ignore_file_for(str(tmp_path), str(df)) == str(df) + ".dockerignore"
    assert load_patterns(str(tmp_path), str(df)) == ["*.md"]
    assert load_patterns(str(tmp_path)) == ["*.txt"]
    assert load_patterns(str(tmp_path / "nowhere")) == []


def _tree(root, files: list[str]) -> None:
    for rel in files:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel)


def test_walk_applies_patterns_in_sorted_order(tmp_path) -> None:
    _tree(tmp_path, ["b.go", "a.txt", "a-b/x", "a/z", "node_modules/m/i.js", "docs/keep/k.md", "docs/drop.md",
                     "src/main.go", "src/main_test.go"])
    got = list(walk(str(tmp_path), ["node_modules", "docs", "!docs/keep", "**/*_test.go"]))
    assert got == ["a/z", "a-b/x", "a.txt", "b.go", "docs/keep/k.md", "src/main.go"]
    with_dirs = list(walk(str(tmp_path), ["node_modules", "docs", "!docs/keep"], dirs=True))
    assert "docs" in with_dirs and "docs/keep" in with_dirs and "node_modules" not in with_dirs
    assert with_dirs.index("docs") < with_dirs.index("docs/keep") < with_dirs.index("docs/keep/k.md")


def test_walk_does_not_follow_symlinks(tmp_path) -> None:
    outside = tmp_path / "outside"
    _tree(outside, ["secret/s.txt"])
    ctx = tmp_path / "ctx"
    _tree(ctx, ["f"])
    os.symlink(str(outside / "secret"), str(ctx / "link"))
    os.symlink("/etc/passwd", str(ctx / "passwd"))
    got = list(walk(str(ctx)))
    assert got == ["f", "link", "passwd"]  # the links themselves, never their targets' contents


def test_excluded_directory_is_entered_only_when_an_exception_may_apply() -> None:
    m = Matcher(["big", "docs", "!docs/keep/*.md"])
    assert not m.may_include_under("big")
    assert m.may_include_under("docs")
    assert Matcher(["big", "!**/*.md"]).may_include_under("big")


def test_walk_skips_excluded_directory(tmp_path) -> None:
    _tree(tmp_path, ["big/a", "big/b/c", "keep"])
    assert list(walk(str(tmp_path), ["big"], dirs=True)) == ["keep"]
    assert list(walk(str(tmp_path), ["big", "!big/b"], dirs=True)) == ["big", "big/b", "big/b/c", "keep"]


def test_many_double_star_segments_match_in_linear_time() -> None:
    """8 ``**/`` against a 40-deep path took 102 s with a backtracking regex (issue 11); now well under a second."""
    import time

    m = Matcher(["**/" * 8 + "x"])
    deep = "/".join(["d"] * 40) + "/y"
    t0 = time.monotonic()
    assert not m.matches(deep)
    assert m.matches("/".join(["d"] * 40) + "/x")
    assert Matcher(["**/a/**/b/**/c/**/d/**/e/**/f/**/g/**/h"]).matches("/".join(["a", "b", "c", "d", "e", "f", "g"] * 6) + "/h")
    assert time.monotonic() - t0 < 5.0


def test_walk_of_a_very_deep_context(tmp_path) -> None:
    """A 2,500-deep context directory is walked without a RecursionError."""
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(2500):
            os.mkdir("d", dir_fd=fd)
            nfd = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nfd
        os.close(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    try:
        got = list(walk(str(tmp_path), ["**/nothing"]))
        assert got == ["/".join(["d"] * 2500) + "/f"]
    finally:
        from dockyard.fsutil import rmtree

        rmtree(str(tmp_path / "d"))  # pytest's own cleanup recurses
