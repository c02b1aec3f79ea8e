"""Golden tests for the Dockerfile front end.

Each ``tests/golden/NAME.Dockerfile`` has either ``NAME.json`` (the expected parse tree: directives, global ARGs,
stages with their instructions, which stages each stage needs, warnings; inputs named ``expand-*`` also get the
instructions as the builder sees them after variable expansion) or ``NAME.error`` (the one-line error expected,
from parsing, expansion or stage resolution). Lines ``# golden-build-arg: K=V`` give --build-arg values.
Regenerate after a deliberate change with ``DOCKYARD_UPDATE_GOLDEN=1 pytest tests/unit/test_build_golden.py``
and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dockyard.build.instructions import ArgInstruction, EnvInstruction
from dockyard.build.parser import DockerfileError
from dockyard.build.stages import Dockerfile, parse_dockerfile, platform_args

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
CASES = sorted(p.name[: -len(".Dockerfile")] for p in GOLDEN.glob("*.Dockerfile"))
UPDATE = os.environ.get("DOCKYARD_UPDATE_GOLDEN") == "1"


def _build_args(text: str) -> dict[str, str]:
    args = {}
    for line in text.splitlines():
        if line.startswith("# golden-build-arg:"):
            k, _, v = line.split(":", 1)[1].strip().partition("=")
            args[k] = v
    return args


def _expanded(df: Dockerfile, build_args: dict[str, str]) -> list[dict]:
    """Expand every stage as a builder does: ENV and ARG values accumulate in the stage's environment."""
    genv = df.global_args(build_args, platform_args("linux/amd64", "linux/amd64"))
    out = []
    for st in df.stages:
        base = df.base_of(st, genv)
        env: dict[str, str] = {}
        instrs = []
        for instr in st.instructions:
            e = instr.expand(env)
            if isinstance(e, EnvInstruction):
                env.update(e.pairs)
            elif isinstance(e, ArgInstruction):
                for k, v in e.args:
                    if k in build_args:
                        env[k] = build_args[k]
                    elif v is not None:
                        env[k] = v
                    elif k in genv:
                        env[k] = genv[k]
            instrs.append(e.to_json())
        out.append({"base": [base.kind, base.ref, base.platform], "instructions": instrs})
    return out


def _render(name: str, text: str) -> dict:
    df = parse_dockerfile(text, "Dockerfile")
    tree = df.to_json()
    tree["needs"] = {st.display_name: [s.index for s in df.stages_needed(st)] for st in df.stages}
    if df.warnings:
        tree["warnings"] = df.warnings
    if name.startswith("expand-"):
        tree["expanded"] = _expanded(df, _build_args(text))
    return tree


def _error(name: str, text: str) -> str | None:
    try:
        _render(name, text)
        df = parse_dockerfile(text, "Dockerfile")
        _expanded(df, _build_args(text))
    except DockerfileError as e:
        return str(e)
    return None


def test_enough_cases() -> None:
    assert len([c for c in CASES if (GOLDEN / f"{c}.json").exists()]) >= 30
    assert len([c for c in CASES if (GOLDEN / f"{c}.error").exists()]) >= 15


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str) -> None:
    text = (GOLDEN / f"{name}.Dockerfile").read_bytes().decode()
    err_file = GOLDEN / f"{name}.error"
    json_file = GOLDEN / f"{name}.json"
    if err_file.exists():
        assert _error(name, text) == err_file.read_text().strip()
        return
    got = _render(name, text)
    if UPDATE:
        json_file.write_text(json.dumps(got, indent=2, ensure_ascii=False) + "\n")
    assert json_file.exists(), f"missing {json_file.name} (or {err_file.name})"
    assert got == json.loads(json_file.read_text())
