"""The monitor's network path on `run` imports no `subprocess` (issue 16, docs/decisions.md "Network setup on
run's path"): joining a network whose bridge and firewall table exist runs no `nft`, and importing `subprocess`
there cost ~4 ms of every `run` on a bridge."""

from __future__ import annotations

import subprocess
import sys


def test_network_join_path_does_not_import_subprocess():
    code = (
        "import sys\n"
        "from dockyard.engine import monitor, rootfs, specgen\n"
        "from dockyard.runtime.base import get_runtime\n"
        "from dockyard.runtime import nsexec\n"
        "from dockyard.network import attach, bridge, checks, firewall, netlink, store\n"
        "print('subprocess' in sys.modules)\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False", "the monitor's network path imports subprocess again: import it lazily"
