"""The store answers lookups of one object, and ``ps``, through indexes (issue 16: nothing worse than linear up to
1,000 containers and 500 images; looking one container up must not grow with the store at all).

Each test runs the engine's own lookup on a real SQLite store, records the statements it runs (SQLite's trace) and
asks SQLite for their plan: a ``SCAN`` of the containers, images or tags table is a read of every row."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockyard.engine.containers import ContainerStore
from dockyard.errors import InvalidArgument, NotFound
from dockyard.images.store import ImageStore
from dockyard.state.db import Store, prefix_range

TABLES = ("containers", "images", "tags")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(str(tmp_path / "root"))
    iid, _ = ImageStore(s).add(json.dumps({"architecture": "amd64", "os": "linux", "created": "2001-01-01T00:00:00Z",
                                           "config": {}, "rootfs": {"type": "layers", "diff_ids": []}}).encode(),
                               [], tags=["docker.io/library/busybox:latest", "docker.io/my_app/web:1"])
    with s.write() as cur:
        for i in range(200):
            cid = f"{i:04x}" + "ab" * 30
            cur.execute("INSERT INTO containers (id, name, image_id, image_ref, state, config, created) "
                        "VALUES (?, ?, ?, 'busybox', ?, '{}', ?)",
                        (cid, f"n{i}", iid, "running" if i % 50 == 0 else "exited", float(i)))
    yield s
    s.close()


def scans(store: Store, action: Callable[[], object]) -> list[str]:
    """Run ``action``; the plan lines of its SELECTs that read a whole table of TABLES."""
    seen: list[str] = []
    c = store.conn()
    c.set_trace_callback(seen.append)
    try:
        action()
    finally:
        c.set_trace_callback(None)
    bad = []
    probe = sqlite3.connect(store.path("dockyard.db"))
    try:
        for sql in seen:
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            for row in probe.execute("EXPLAIN QUERY PLAN " + sql):
                detail = row[-1]
                if detail.startswith("SCAN") and detail.split()[1] in TABLES:
                    bad.append(f"{sql}  ->  {detail}")
    finally:
        probe.close()
    return bad


def test_container_by_id_prefix_uses_the_primary_key(store: Store) -> None:
    cs = ContainerStore(store)
    assert scans(store, lambda: cs.get("0007ab")) == []
    assert cs.get("0007ab").name == "n7"
    with pytest.raises(InvalidArgument, match="multiple IDs"):
        cs.get("00")
    with pytest.raises(NotFound):
        cs.get("ffff")


def test_ps_reads_only_running_containers(store: Store) -> None:
    cs = ContainerStore(store)
    assert scans(store, lambda: cs.list(all=False)) == []
    # the rows claim running with no process: refresh corrects them, and ps shows none of them
    assert [c.name for c in cs.list(all=False)] == []
    assert len(cs.list(all=True)) == 200


def test_image_by_id_prefix_and_repository_tags_use_indexes(store: Store) -> None:
    ist = ImageStore(store)
    iid = ist.resolve("busybox").id
    assert scans(store, lambda: ist.lookup_id(iid[7:19])) == []
    assert ist.lookup_id(iid[7:19]) == iid
    from dockyard.engine.images import _is_repo_with_tags

    assert scans(store, lambda: _is_repo_with_tags(store, "my_app/web")) == []
    assert _is_repo_with_tags(store, "my_app/web")
    assert not _is_repo_with_tags(store, "myXapp/web")  # '_' was a LIKE wildcard


def test_volumes_from_prefix_uses_the_primary_key(store: Store) -> None:
    from dockyard.volumes.attach import _container_mounts

    assert scans(store, lambda: _container_mounts(store, "0031ab")) == []
    assert _container_mounts(store, "0031ab")[0].startswith("0031ab")


def test_prefix_range() -> None:
    lo, hi = prefix_range("ab")
    assert all(lo <= s < hi for s in ("ab", "ab0", "abz", "ab\U0001f600"))
    assert not any(lo <= s < hi for s in ("aa", "ac", "a", "b", "Ab"))
