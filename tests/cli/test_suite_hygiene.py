"""The test suite cleans up after itself (issue 12): a passed test's temporary tree is removed, and a bridge,
firewall table or mount a test leaves behind is found at the end of the session, removed, and reported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e

LEAKY = '''
import subprocess

from dockyard.network.store import default_bridge_name


def test_big_tree(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * (8 << 20))


def test_leaks_a_mount_and_a_bridge(tmp_path, root):
    (tmp_path / "m").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "none", str(tmp_path / "m")], check=True)
    name = default_bridge_name(str(root))
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    subprocess.run(["nft", "add", "table", "ip", f"dockyard-{name}"], check=True)
    (tmp_path.parent / "leaked").write_text(f"{tmp_path / 'm'} {name}")
'''


def test_the_session_removes_big_trees_and_reports_what_tests_leak(tmp_path: Path) -> None:
    d = tmp_path / "suite"
    d.mkdir()
    (d / "conftest.py").write_text(f"import sys\nsys.path.insert(0, {str(REPO)!r})\nfrom tests.conftest import *\n")
    (d / "test_leaky.py").write_text(LEAKY)
    base = tmp_path / "basetemp"
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c",
                        str(REPO / "pyproject.toml"), "--rootdir", str(d), "--basetemp", str(base), str(d)],
                       capture_output=True, text=True, timeout=300, cwd=d,
                       env={**os.environ, "DOCKYARD_TEST_SETTLE": "1"})
    out = p.stdout + p.stderr
    assert p.returncode != 0 and "the test session left these on the host" in out, out
    mount, bridge = (base / "leaked").read_text().split()
    assert f"mount {mount}" in out and f"bridge {bridge}" in out and f"nft table ip dockyard-{bridge}" in out
    with open("/proc/mounts") as f:
        assert not [ln for ln in f if str(base) in ln]
    assert not os.path.exists(f"/sys/class/net/{bridge}")
    assert f"dockyard-{bridge}" not in subprocess.run(["nft", "list", "tables"], capture_output=True,
                                                      text=True).stdout
    assert not list(base.glob("test_big_tree*/big"))  # a passed test's tree is gone at its end
