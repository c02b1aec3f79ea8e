"""Reliability (issue 11): hostile trees, a full disk, killed commands and corrupt stores leave a working engine
and nothing behind."""

from __future__ import annotations

import tarfile

import pytest

pytestmark = pytest.mark.e2e

DEPTH = 2500


def _deep_count(names: list[str]) -> int:
    return max((n.rstrip("/").count("/") + 1 for n in names if n.rstrip("/").split("/")[-1] == "d"), default=0)


def test_deep_tree_commit_diff_export_and_rm(dy, root, busybox, tmp_path):
    """A container that makes a 2,500-deep directory: commit, diff, export and rm -f all work (RecursionError
    before, and the container stuck in "Removal In Progress")."""
    ok = False
    try:
        _deep_tree(dy, tmp_path)
        ok = True
    finally:
        if not ok:  # pytest's own cleanup of a 2,500-deep tree dies with RecursionError: remove it here
            from dockyard.fsutil import rmtree
            from tests.conftest import cleanup_root

            cleanup_root(root)
            for p in (root, tmp_path / "deep.tar"):
                if p.is_dir():
                    rmtree(str(p))
                    p.mkdir()


def _deep_tree(dy, tmp_path) -> None:
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


def _checkpoint(db) -> None:
    import sqlite3

    c = sqlite3.connect(db)
    try:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        c.close()


def _drop_wal(root) -> None:
    for suffix in ("-wal", "-shm"):
        (root / ("dockyard.db" + suffix)).unlink(missing_ok=True)


@pytest.mark.parametrize("verb", [("ps", "-a"), ("images",), ("inspect", "c1"), ("rm", "-f", "c1")])
def test_truncated_database_is_one_line_with_a_way_out(dy, root, busybox, verb):
    for i in (1, 2, 3):
        dy("create", "--name", f"c{i}", "busybox", check=True)
    db = root / "dockyard.db"
    _checkpoint(db)
    _drop_wal(root)
    with open(db, "r+b") as f:
        f.truncate(db.stat().st_size // 2)
    p = dy(*verb)
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error" not in p.stderr, p.stderr
    assert "damaged" in lines[0] and "restore" in lines[0] and str(db) in lines[0]
    db.unlink()  # let the fixture's cleanup open a (new) store


def test_empty_database_is_never_a_new_store(dy, root, busybox):
    dy("create", "--name", "c1", "busybox", check=True)
    db = root / "dockyard.db"
    _checkpoint(db)
    _drop_wal(root)
    db.write_bytes(b"")
    for verb in (("ps", "-a"), ("images",), ("create", "busybox")):
        p = dy(*verb)
        assert p.returncode != 0, verb
        assert len(p.stderr.strip().splitlines()) == 1 and "empty (0 bytes" in p.stderr and "restore" in p.stderr
    assert db.stat().st_size == 0  # nothing was written into it
    db.unlink()
    assert dy("images", "-q").returncode == 0  # a root without a database is a new store, as before


@pytest.mark.parametrize("which", ["layer", "config"])
def test_save_refuses_a_blob_that_no_longer_matches_its_digest(dy, root, busybox, tmp_path, which):
    import json

    cfg = json.loads(dy("image", "inspect", "busybox", check=True).stdout)[0]
    digest = cfg["RootFS"]["Layers"][0] if which == "layer" else cfg["Id"]
    blob = root / "content" / "blobs" / "sha256" / digest.split(":", 1)[1]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01  # same size, one bit flipped
    blob.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    p = dy("save", "-o", str(out / "bb.tar"), "busybox")
    assert p.returncode != 0
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and digest in lines[0] and "does not match" in lines[0], p.stderr
    assert list(out.iterdir()) == []  # no archive, no temporary file
    assert dy("save", "busybox", input=b"").returncode != 0  # to stdout too (bytes: the stream is binary)


@pytest.fixture
def small_root(root):
    """The test's state root on its own 64 MiB tmpfs (unmounted at teardown, after its containers are gone)."""
    import subprocess

    from tests.conftest import cleanup_root

    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(root)], check=True)
    try:
        yield root
    finally:
        cleanup_root(root)
        subprocess.run(["umount", "-l", str(root)], check=False)


def _free(path) -> int:
    import os

    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@pytest.mark.parametrize("reserve", [True, False])
def test_full_disk_reads_and_removal_work(dy, small_root, busybox, reserve):
    """A container fills the store's filesystem: ps -a, inspect, rm -f and container prune work and free the
    space ("internal error: database or disk is full" before). Without the reserve file too (an older store)."""
    if not reserve:
        (small_root / "reserve").unlink(missing_ok=True)
    fill = "dd if=/dev/zero of=/big bs=1M; dd if=/dev/zero of=/big2 bs=4k; "
    p = dy("run", "--name", "gone", "--network", "none", "busybox", "sh", "-c", fill + "true", timeout=120)
    assert p.returncode == 0, p.stderr
    if not reserve:
        (small_root / "reserve").unlink(missing_ok=True)
        # eat what the exit record left
        dy("run", "-d", "--name", "full", "--network", "none", "busybox", "sh", "-c", fill + "sleep 600",
           timeout=120)
    assert _free(small_root) < 8 << 20
    ps = dy("ps", "-a")
    assert ps.returncode == 0 and "gone" in ps.stdout, ps.stderr
    ins = dy("inspect", "-f", "{{.State.Status}}", "gone")
    assert ins.returncode == 0 and ins.stdout.strip() == "exited", ins.stderr
    if not reserve:
        rm = dy("rm", "-f", "full", timeout=60)
        assert rm.returncode == 0, rm.stderr
    pr = dy("container", "prune", "-f", timeout=60)
    assert pr.returncode == 0, pr.stderr
    assert dy("ps", "-aq").stdout.strip() == ""
    assert _free(small_root) > 40 << 20
    assert list((small_root / "tmp").iterdir()) == []
    assert dy("run", "--rm", "--network", "none", "busybox", "true").returncode == 0


def test_build_run_that_fills_the_disk_fails_in_one_line_and_leaves_nothing(dy, small_root, busybox, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN dd if=/dev/zero of=/big bs=1M count=40\nRUN true\n")
    p = dy("build", "-t", "full:x", str(ctx), timeout=120)
    assert p.returncode != 0
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("Error")]
    assert len(err) == 1 and "no space left on device" in err[0] and "internal error" not in p.stderr, p.stderr
    assert list((small_root / "tmp").iterdir()) == []
    with open("/proc/mounts") as f:
        assert [ln for ln in f if (str(small_root) + "/") in ln.split()[1]] == []
    assert _free(small_root) > 40 << 20
