"""The Dockerfile front end's API as the builder uses it: locations, original text, RUN scripts, targets, stage
dependencies, platform ARGs, mounts expanded at dispatch time."""

from __future__ import annotations

import pytest

from dockyard.build.instructions import (EXPANDING, CopyInstruction, EnvInstruction, RunInstruction,
                                         WorkdirInstruction)
from dockyard.build.parser import DockerfileError, parse
from dockyard.build.stages import normalize_platform, parse_dockerfile, platform_args
from dockyard.errors import InvalidArgument

MULTI = """\
ARG GO=1.22
FROM golang:${GO} AS Build
WORKDIR /src
RUN --mount=type=cache,target=/root/.cache \\
    go build -o /app .
FROM alpine AS tools
RUN apk add curl
FROM build AS test
RUN go test ./...
FROM scratch
COPY --from=build /app /app
RUN --mount=from=tools,target=/t true
"""


def test_locations_and_original_text() -> None:
    df = parse_dockerfile(MULTI, "ctx/Dockerfile.prod")
    run = df.stages[0].instructions[1]
    assert isinstance(run, RunInstruction)
    assert (run.line, run.end_line) == (4, 5)
    assert run.original == "RUN --mount=type=cache,target=/root/.cache     go build -o /app ."
    assert run.filename == "ctx/Dockerfile.prod"
    assert str(run.error("boom")) == "ctx/Dockerfile.prod:4: boom"
    assert isinstance(run.error("x"), InvalidArgument)


def test_error_names_the_file_given() -> None:
    with pytest.raises(DockerfileError) as exc:
        parse_dockerfile("FROM busybox\nRUNN x\n", "sub/app.Dockerfile")
    assert str(exc.value) == "sub/app.Dockerfile:2: unknown instruction: RUNN"
    assert (exc.value.filename, exc.value.line, exc.value.reason) == ("sub/app.Dockerfile", 2,
                                                                      "unknown instruction: RUNN")


def test_target_lookup() -> None:
    df = parse_dockerfile(MULTI)
    assert df.target().index == 3
    assert df.target(None) is df.target("")
    assert df.target("BUILD").name == "build"
    assert df.target("1").name == "tools"
    assert df.target(2).name == "test"
    for bad in ("nope", "9", 9):
        with pytest.raises(InvalidArgument, match="could not be found"):
            df.target(bad)


def test_stages_needed_skips_unused_stages() -> None:
    df = parse_dockerfile(MULTI)
    assert [s.index for s in df.stages_needed(df.target())] == [0, 1, 3]
    assert [s.index for s in df.stages_needed(df.target("test"))] == [0, 2]
    assert [s.name for s in df.dependencies(df.stages[2])] == ["build"]
    base = df.base_of(df.stages[0])
    assert (base.kind, base.ref) == ("image", "golang:1.22")
    assert df.base_of(df.stages[0], df.global_args({"GO": "1.21"})).ref == "golang:1.21"
    assert df.base_of(df.stages[2]).stage is df.stages[0]
    assert df.base_of(df.stages[3]).kind == "scratch"
    assert df.copy_source("0").stage is df.stages[0]
    assert df.copy_source("Build").stage is df.stages[0]
    assert df.copy_source("nginx:latest").kind == "image"
    assert df.mount_source("tools").stage is df.stages[1]


def test_global_args() -> None:
    df = parse_dockerfile("ARG A=1\nARG B=${A}-x\nARG TARGETARCH\nFROM busybox\n")
    env = df.global_args({"A": "2"}, platform_args("linux/arm64"))
    assert env["A"] == "2" and env["B"] == "2-x" and env["TARGETARCH"] == "arm64"
    assert df.global_args()["B"] == "1-x"


def test_platform_args() -> None:
    a = platform_args("linux/arm64/v8", "linux/amd64")
    assert a == {"BUILDPLATFORM": "linux/amd64", "BUILDOS": "linux", "BUILDARCH": "amd64", "BUILDVARIANT": "",
                 "TARGETPLATFORM": "linux/arm64", "TARGETOS": "linux", "TARGETARCH": "arm64",
                 "TARGETVARIANT": ""}
    assert platform_args("linux/arm/v7", "linux/amd64")["TARGETPLATFORM"] == "linux/arm/v7"
    assert platform_args(None, "linux/amd64")["TARGETPLATFORM"] == "linux/amd64"
    assert normalize_platform("x86_64") == ("linux", "amd64", "")
    assert normalize_platform("linux/arm") == ("linux", "arm", "v7")
    with pytest.raises(InvalidArgument):
        normalize_platform("linux//amd64")


def test_run_script_and_inline_file() -> None:
    df = parse_dockerfile("FROM busybox\nRUN echo hi\nRUN [\"echo\", \"x\"]\nRUN <<EOF\necho a\nEOF\n"
                          "RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\n"
                          "RUN <<A cat && <<B cat\none\nA\ntwo\nB\n")
    r = df.stages[0].instructions
    assert r[0].script() == "echo hi" and r[0].inline_file() is None
    assert r[1].script() is None and r[1].cmd == ["echo", "x"]
    assert r[2].script() == "echo a\n"
    assert r[3].inline_file() is not None and r[3].inline_file().data.startswith("#!")
    assert r[4].script() == "<<A cat && <<B cat\none\nA\ntwo\nB"


def test_run_mounts_expanded_at_dispatch() -> None:
    df = parse_dockerfile("FROM busybox\nARG T=tmpfs\nRUN --mount=type=$T,target=${DIR:-/cache},size=1g x\n")
    run = df.stages[0].instructions[1]
    assert run.mount_specs == ["type=$T,target=${DIR:-/cache},size=1g"]
    m = run.expand({"T": "tmpfs"}).mounts[0]
    assert (m.type, m.target, m.size, m.readonly) == ("tmpfs", "/cache", 1 << 30, False)
    with pytest.raises(DockerfileError, match="^Dockerfile:3: unexpected key 'size' for mount type 'cache'$"):
        run.expand({"T": "cache"})


def test_expand_returns_copies() -> None:
    df = parse_dockerfile('FROM busybox\nENV A="$X y"\nWORKDIR $X\nCOPY $X /d\nRUN echo $X\n')
    env, wd, cp, run = df.stages[0].instructions
    assert isinstance(env, EnvInstruction) and isinstance(wd, WorkdirInstruction)
    assert env.expand({"X": "1"}).pairs == [("A", "1 y")] and env.pairs == [("A", '"$X y"')]
    assert wd.expand({"X": "/w"}).path == "/w" and wd.path == "$X"
    assert isinstance(cp, CopyInstruction) and cp.expand({"X": "s"}).sources == ["s"]
    assert run.expand({"X": "1"}) is run
    assert EXPANDING == {"ADD", "ARG", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER",
                         "VOLUME", "WORKDIR"}


def test_parse_result_nodes() -> None:
    res = parse(b"# syntax=x\nFROM a\nrun --network=host echo \\\n  hi\n", "F")
    assert res.directives == {"syntax": "x"} and res.escape == "\\"
    node = res.nodes[1]
    assert (node.keyword, node.name, node.flags, node.args, node.line, node.end_line) == (
        "run", "run", ["--network=host"], ["echo   hi"], 3, 4)
