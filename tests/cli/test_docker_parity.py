"""Docker parity (issue 12): what a Docker user trips on in the first hour, checked as a user sees it."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def _ctx(tmp_path: Path, files: dict[str, str]) -> Path:
    d = tmp_path / "ctx"
    for name, text in files.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return d


def test_copy_to_dot_and_relative_destinations_go_into_workdir(dy, busybox, tmp_path):
    # the Go calculator's Dockerfile: WORKDIR then COPY to "." must put the file inside the directory
    ctx = _ctx(tmp_path, {"Dockerfile": "FROM busybox\nWORKDIR /src\nCOPY calc.go .\nCOPY calc.go ./b.go\n"
                                        "COPY calc.go sub/\nCOPY calc.go sub2/.\nCOPY <<EOF ./\nhi\nEOF\n"
                                        "RUN cat calc.go b.go sub/calc.go sub2/calc.go\n",
                          "calc.go": "package main\n"})
    p = dy("build", "-q", "-t", "calc", str(ctx))
    assert p.returncode == 0, p.stderr
    out = dy("run", "--rm", "calc", "sh", "-c", "cd /src && find . -type f | sort").stdout.split()
    assert out == ["./EOF", "./b.go", "./calc.go", "./sub/calc.go", "./sub2/calc.go"]
