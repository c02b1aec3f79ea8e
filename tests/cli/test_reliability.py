"""Reliability (issue 11): hostile trees, a full disk, killed commands and corrupt stores leave a working engine
and nothing behind."""

from __future__ import annotations

import tarfile

import pytest

pytestmark = pytest.mark.e2e

DEPTH = 2500


def _deep_count(names: list[str]) -> int:
    return max((n.rstrip("/").count("/") + 1 for n in names if n.rstrip("/").split("/")[-1] == "d"), default=0)


def test_deep_tree_commit_diff_export_and_rm(dy, busybox, tmp_path):
    """A container that makes a 2,500-deep directory: commit, diff, export and rm -f all work (RecursionError
    before, and the container stuck in "Removal In Progress")."""
    # nested by renames (a shell's cd stops at PATH_MAX, about 2,000 levels of "d/")
    script = (f"mkdir /t && cd /t && mkdir d && echo bottom > d/f && i=1; while [ $i -lt {DEPTH} ]; do "
              "mkdir n && mv d n/d && mv n d || exit 1; i=$((i+1)); done; mv /t/d /d")
    p = dy("run", "--name", "deep", "--network", "none", "busybox", "sh", "-c", script, timeout=240)
    assert p.returncode == 0, p.stderr
    diff = dy("diff", "deep", timeout=240)
    assert diff.returncode == 0, diff.stderr
    deepest = [ln for ln in diff.stdout.splitlines() if ln.startswith("A /d") and ln.endswith("/f")]
    assert len(deepest) == 1 and deepest[0].count("/d") == DEPTH, [ln[-40:] for ln in deepest]
    out = tmp_path / "deep.tar"
    ex = dy("export", "-o", str(out), "deep", timeout=240)
    assert ex.returncode == 0, ex.stderr
    with tarfile.open(out) as tf:
        names = tf.getnames()
    assert _deep_count(names) == DEPTH
    out.unlink()
    c = dy("commit", "deep", "deep:img", timeout=240)
    assert c.returncode == 0, c.stderr
    r = dy("run", "--rm", "--network", "none", "deep:img", "sh", "-c",
           "cd " + "/".join(["d"] * 100) + " && ls | head -1", timeout=240)
    assert r.returncode == 0 and r.stdout.strip() == "d", r.stderr
    rm = dy("rm", "-f", "deep", timeout=240)
    assert rm.returncode == 0, rm.stderr
    assert dy("ps", "-aq").stdout.strip() == ""
    rmi = dy("rmi", "deep:img", timeout=240)
    assert rmi.returncode == 0, rmi.stderr
    assert dy("image", "prune", "-f").returncode == 0
