"""`run --rm` answers once the container is removed, as Docker's does, though its files are deleted after the answer
(engine.containers.set_aside, docs/decisions.md): what a user can see is settled before the exit code arrives."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.helpers import wait_for

pytestmark = pytest.mark.e2e


def _mounts_under(root: Path) -> list[str]:
    with open("/proc/mounts") as f:
        return [ln.split()[1] for ln in f if ln.split()[1].startswith(str(root) + "/")]


@pytest.mark.parametrize("network", ["none", "bridge"])
def test_run_rm_returns_after_the_removal(dy, busybox, root, network):
    name = f"rmx-{os.getpid()}-{network}"
    for code in (3, 0):  # the name is free the moment run returns: the second run reuses it at once
        p = dy("run", "--rm", "--name", name, "--network", network, "busybox", "sh", "-c", f"echo hi; exit {code}")
        assert (p.returncode, p.stdout) == (code, "hi\n"), p.stderr
        assert dy("ps", "-aq").stdout == ""
        ins = dy("container", "inspect", name)
        assert ins.returncode == 1 and f"No such container: {name}" in ins.stderr, ins.stderr
        assert os.listdir(root / "containers") == []
        assert _mounts_under(root) == []
    ev = dy("events", "--since", "0", "--until", str(int(time.time()) + 1), "--filter", f"container={name}",
            "--format", "{{.Action}}").stdout.split()
    assert ev[-2:] == ["die", "destroy"], ev
    # the set-aside files go right after the answer
    wait_for(lambda: not [n for n in os.listdir(root / "tmp") if n.startswith("removed-")], timeout=10,
             what="the removed container's files deleted")


def test_prune_removes_what_a_killed_monitor_set_aside(dy, busybox, root):
    """A monitor killed between setting a --rm container's files aside and deleting them leaves tmp/removed-<id>:
    prune removes it with the other stale staging entries."""
    assert dy("run", "--rm", "--network", "none", "busybox", "true").returncode == 0  # the root exists
    aside = root / "tmp" / ("removed-" + "ab" * 32)
    (aside / "diff" / "etc").mkdir(parents=True)
    (aside / "diff" / "etc" / "f").write_text("x" * 1000)
    (aside / "hosts").write_text("127.0.0.1 localhost\n")
    old = time.time() - 3600
    for p in (aside / "diff" / "etc" / "f", aside / "diff" / "etc", aside / "diff", aside / "hosts", aside):
        os.utime(p, (old, old))
    p = dy("container", "prune", "-f")
    assert p.returncode == 0, p.stderr
    assert not aside.exists()
