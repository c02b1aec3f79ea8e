"""Issue 15's acceptance: the Go calculator (tests/cli/test_build_classic.py's) from one Dockerfile for linux/amd64
and linux/arm64. Each variant holds the program twice: cross-compiled (GOARCH=$TARGETARCH in a
``FROM --platform=$BUILDPLATFORM`` stage, the amd64 toolchain) and emulated (the arm64 toolchain itself running
under qemu-user). Both print the same answers and are the same bytes. The toolchains are Debian's golang-go for
each architecture over the busybox images (scripts/mkimage-go.sh, cached in cache/): nothing is pulled.

Measured on the 2-core CI machine (toolchain images cached): the whole two-platform build 41 s, of which the
arm64 cross-compile 31 s (the amd64 toolchain compiles arm64's standard library from source) and the emulated arm64
build 6 s (Debian ships arm64's standard library compiled: qemu runs only the go command, compile and link of the
program). With ``-trimpath`` every standard package is rebuilt, under qemu too: 5 min 20 s (emulated step 217 s),
so the Dockerfile leaves it out."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_build_classic import GO_MAIN
from tests.cli.test_multiplatform import TWO, bases, busybox_arm64_tar  # noqa: F401 - fixtures
from tests.conftest import REPO, Runner, cleanup_root

pytestmark = pytest.mark.e2e

DOCKERFILE = """\
ARG BUILDARCH
ARG TARGETARCH
FROM --platform=$BUILDPLATFORM golang:$BUILDARCH AS cross
ARG TARGETARCH
WORKDIR /src
COPY main.go .
RUN GOARCH=$TARGETARCH go build -o /calc main.go

FROM golang:$TARGETARCH AS emulated
WORKDIR /src
COPY main.go .
RUN go build -o /calc main.go

FROM busybox:$TARGETARCH
COPY --from=cross /calc /calc-cross
COPY --from=emulated /calc /calc-emulated
ENTRYPOINT ["/calc-cross"]
"""


@pytest.fixture(scope="session")
def golang_tars() -> dict[str, Path]:
    """Made once and cached under cache/ (Debian's packages downloaded, never installed on the host)."""
    return {a: Path(subprocess.run([str(REPO / "scripts" / "mkimage-go.sh"), "--arch", a, "--tar-only"], check=True,
                                   capture_output=True, text=True, timeout=900).stdout.strip())
            for a in ("amd64", "arm64")}


@pytest.fixture
def golang(root: Path, bases: None, golang_tars: dict[str, Path]) -> Iterator[None]:  # noqa: F811
    for a in golang_tars:
        subprocess.run([str(REPO / "scripts" / "mkimage-go.sh"), "--arch", a, "--root", str(root)], check=True,
                       capture_output=True, timeout=300)
    yield
    cleanup_root(root)  # ~0.8 GB of toolchains and build cache: not left in the pytest temp folder
    from dockyard.fsutil import rmtree

    rmtree(str(root))
    root.mkdir()


def _elf_machine(b: bytes) -> int:
    assert b[:4] == b"\x7fELF"
    return int.from_bytes(b[18:20], "little")


def test_go_calculator_cross_compiled_and_emulated_agree(dy: Runner, golang: None, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "main.go").write_text(GO_MAIN)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    out = tmp_path / "out"
    t0 = time.monotonic()
    p = dy("buildx", "build", "--platform", TWO, "-t", "calc", "-o", f"type=local,dest={out}", str(ctx),
           timeout=600)
    took = time.monotonic() - t0
    assert p.returncode == 0, p.stderr
    steps = {m.group(2): m.group(1) for m in re.finditer(r"^(#\d+) \[linux/arm64 (emulated|cross) \d/\d\] RUN",
                                                         p.stderr, re.M)}
    secs = {k: re.search(rf"^{n} DONE ([\d.]+)s", p.stderr, re.M) for k, n in steps.items()}
    print(f"two-platform Go build {took:.1f} s; arm64 RUN steps: "
          + ", ".join(f"{k} {m.group(1) if m else '?'} s" for k, m in secs.items()))

    # the arm64 variant runs under qemu and prints its answers, both builds of it alike
    for entry in ("/calc-cross", "/calc-emulated"):
        for plat, (args, want) in (("linux/arm64", (["6", "x", "7"], "42\n")),
                                   ("linux/amd64", (["2", "+", "3"], "5\n"))):
            r = dy("run", "--rm", "--platform", plat, "--entrypoint", entry, "calc", *args)
            assert (r.returncode, r.stdout) == (0, want), (entry, plat, r.stderr)
    # the exported files: per platform, cross-compiled == emulated, byte for byte, and of that architecture
    for sub, machine in (("linux_amd64", 62), ("linux_arm64", 183)):
        cross = (out / sub / "calc-cross").read_bytes()
        assert cross == (out / sub / "calc-emulated").read_bytes(), sub
        assert _elf_machine(cross) == machine
