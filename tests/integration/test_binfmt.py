"""qemu-user through binfmt_misc (runtime.binfmt): a foreign architecture becomes runnable, existing registrations
are left alone. The qemu-aarch64 registration is left in place afterwards: it is host configuration, like a loaded
kernel module (the next run of the suite finds it and changes nothing)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dockyard.runtime import binfmt

pytestmark = pytest.mark.e2e


def test_arm64_binary_runs_after_ensure(tmp_path: Path) -> None:
    binfmt.ensure_platform("linux/arm64")
    assert "linux/arm64" in binfmt.runnable_platforms()
    assert "linux/amd64" in binfmt.runnable_platforms()
    name = binfmt.registered_machines()["arm64"]
    with open(os.path.join(binfmt.BINFMT_DIR, name)) as f:
        before = f.read()
    binfmt.ensure_platform("linux/arm64")  # registered: nothing changes
    with open(os.path.join(binfmt.BINFMT_DIR, name)) as f:
        assert f.read() == before
    bb = Path(subprocess.run([str(Path(__file__).parents[2] / "scripts" / "mkimage-busybox.sh"), "--arch",
                              "arm64", "--tar-only"], check=True, capture_output=True, text=True).stdout.strip())
    binary = bb.parent / "busybox-static-arm64" / "bin" / "busybox"
    out = subprocess.run([str(binary), "uname", "-m"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "aarch64"


def test_unknown_architecture_is_refused_by_name() -> None:
    with pytest.raises(binfmt.EmulationUnavailable, match="linux/sparc64"):
        binfmt.ensure_platform("linux/sparc64")


def test_missing_package_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(binfmt, "CONF_DIRS", ("/nonexistent",))
    monkeypatch.setattr(binfmt, "registered_machines", lambda: {})
    with pytest.raises(binfmt.EmulationUnavailable, match="qemu-user-static"):
        binfmt.ensure_platform("linux/riscv64")


def test_registration_line_gets_the_fix_binary_flag(tmp_path: Path) -> None:
    conf = tmp_path / "qemu-x.conf"
    conf.write_text(":qemu-x:M::\\x7fELF:\\xff\\xff\\xff\\xff:/bin/true:OP\n")
    assert binfmt._registration(str(conf)).endswith(b":/bin/true:OPF")
