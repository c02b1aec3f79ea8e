"""The classic Dockerfile examples end to end on debian:bookworm (made with debootstrap, cached): a Python app, a
Go calculator built single-stage and multi-stage. RUN steps reach the Debian mirror through the build network."""

from __future__ import annotations


import pytest

from tests.conftest import debian_module_root

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def deb(tmp_path_factory, debian_tar):
    yield from debian_module_root(tmp_path_factory, debian_tar, "classic", timeout=900)


def _size_bytes(text: str) -> float:
    units = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}
    for u in ("kB", "MB", "GB", "B"):
        if text.endswith(u):
            return float(text[: -len(u)]) * units[u]
    raise AssertionError(text)


def test_python_app(deb, tmp_path):
    (tmp_path / "app.py").write_text("import os\nprint('Hello from', os.environ['NAME'])\n")
    (tmp_path / "Dockerfile").write_text(
        "FROM debian:bookworm\nWORKDIR /app\nCOPY . /app\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends python3 && rm -rf /var/lib/apt/lists/*\n"
        "ENV NAME work\nCMD [\"python3\", \"app.py\"]\n")
    deb("build", "-t", "you/app:latest", str(tmp_path))
    assert deb("run", "--rm", "you/app:latest").stdout == "Hello from work\n"


GO_MAIN = """package main

import (
\t"fmt"
\t"os"
\t"strconv"
)

func main() {
\tif len(os.Args) != 4 {
\t\tfmt.Println("usage: calc A OP B")
\t\tos.Exit(2)
\t}
\ta, _ := strconv.Atoi(os.Args[1])
\tb, _ := strconv.Atoi(os.Args[3])
\tswitch os.Args[2] {
\tcase "+":
\t\tfmt.Println(a + b)
\tcase "x":
\t\tfmt.Println(a * b)
\tdefault:
\t\tfmt.Println("unknown operator")
\t\tos.Exit(2)
\t}
}
"""

BUILD_STAGE = ("FROM debian:bookworm AS build\n"
               "RUN apt-get update && apt-get install -y --no-install-recommends golang-go\n"
               "WORKDIR /src\nCOPY . .\nRUN CGO_ENABLED=0 GOCACHE=/tmp/gocache go build -o /app main.go\n")


def test_go_calculator_single_and_multi_stage(deb, tmp_path):
    (tmp_path / "main.go").write_text(GO_MAIN)
    (tmp_path / "Dockerfile").write_text(BUILD_STAGE + 'ENTRYPOINT ["/app"]\n')
    (tmp_path / "multi.Dockerfile").write_text(BUILD_STAGE + 'FROM scratch\nCOPY --from=build /app /app\n'
                                               'ENTRYPOINT ["/app"]\n')
    deb("build", "-t", "calc:single", str(tmp_path))
    deb("build", "-t", "calc:multi", "-f", str(tmp_path / "multi.Dockerfile"), str(tmp_path))
    assert deb("run", "--rm", "calc:single", "6", "x", "7").stdout == "42\n"
    assert deb("run", "--rm", "calc:multi", "2", "+", "3").stdout == "5\n"
    rows = dict(ln.split() for ln in deb("images", "--format", "{{.Tag}} {{.Size}}", "calc").stdout.splitlines())
    print(f"image sizes: single-stage {rows['single']}, multi-stage {rows['multi']}")
    assert _size_bytes(rows["multi"]) < 3e6
    assert _size_bytes(rows["single"]) > 100e6
