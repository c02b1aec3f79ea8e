"""Installing like Python software: a wheel built from the project, installed into a fresh virtual environment
with nothing else, gives a working engine (its helpers come inside the package)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A wheel built from a copy of the project (nothing written into the checkout), installed offline."""
    t = tmp_path_factory.mktemp("install")
    proj = t / "proj"
    proj.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy(REPO / name, proj / name)
    shutil.copytree(REPO / "src", proj / "src", ignore=shutil.ignore_patterns("__pycache__", "_libexec"))
    shutil.copytree(REPO / "images", proj / "images")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "--disable-pip-version-check", "-w", str(t / "dist"), str(proj)], check=True, timeout=300)
    wheels = list((t / "dist").glob("dockyard-*.whl"))
    assert len(wheels) == 1 and "linux" in wheels[0].name  # a platform wheel: it carries the helpers
    venv = t / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", "--no-index",
                    "--disable-pip-version-check", str(wheels[0])], check=True, timeout=300)
    return venv


def test_a_plain_pip_install_runs_containers_with_its_own_helpers(installed, tmp_path, busybox_tar):
    dy = [str(installed / "bin" / "dockyard"), "--root", str(tmp_path / "root")]
    try:
        subprocess.run([*dy, "import", "--change", 'CMD ["sh"]', str(busybox_tar), "busybox"], check=True,
                       capture_output=True, timeout=60)
        p = subprocess.run([*dy, "run", "--rm", "--init", "busybox", "sh", "-c", "echo hi; cat /proc/1/cmdline"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert p.stdout.startswith("hi\n/sbin/docker-init")  # run --init found its helper
        cid = subprocess.run([*dy, "run", "-d", "busybox", "sleep", "30"], capture_output=True, text=True,
                             check=True, timeout=60).stdout.strip()
        def monitor_exes() -> set[Path]:  # the monitor re-execs into its slim loop after a short grace period
            pids = subprocess.run(["pgrep", "-f", f"cid={cid}"], capture_output=True, text=True).stdout.split()
            return {Path(f"/proc/{pid}/exe").resolve() for pid in pids}

        # the monitor's slim loop is the package's own C helper, not the 4 MiB Python fallback
        exes = wait_for(monitor_exes, what="the slim monitor")
        assert any(str(e).startswith(str(installed)) and e.name == "dockyard-monitor" for e in exes), exes
        p = subprocess.run([str(installed / "bin" / "python"), "-m", "dockyard", "--root", str(tmp_path / "root"),
                            "ps", "-q"], capture_output=True, text=True, timeout=60)
        assert p.stdout.strip() == cid[:12]
    finally:
        subprocess.run([*dy, "rm", "-f", *subprocess.run([*dy, "ps", "-aq"], capture_output=True,
                                                         text=True).stdout.split()], capture_output=True)
