"""ImageStore: lookup by ID/prefix/reference, tags, and Docker's rmi/prune semantics (config-only images)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.images.store import ImageStore
from dockyard.state.db import Store


def _config(n: int, labels: dict[str, str] | None = None) -> bytes:
    return json.dumps({"architecture": "amd64", "os": "linux", "created": f"2001-01-01T00:00:{n:02d}Z",
                       "config": {"Cmd": [f"cmd{n}"], "Labels": labels}, "history": [],
                       "rootfs": {"type": "layers", "diff_ids": []}}).encode()


@pytest.fixture
def ist(tmp_path: Path) -> ImageStore:
    return ImageStore(Store(str(tmp_path / "root")))


def _add(ist: ImageStore, n: int, *tags: str, parent: str | None = None) -> str:
    iid, _ = ist.add(_config(n), [], tags=list(tags), parent=parent)
    return iid


def _container(ist: ImageStore, iid: str, state: str = "exited", cid: str = "c" * 64) -> None:
    with ist.store.write() as cur:
        cur.execute("INSERT INTO containers (id, name, image_id, image_ref, state, config, created) "
                    "VALUES (?, ?, ?, ?, ?, '{}', 0)", (cid, "n" + cid[:8], iid, "x", state))


def test_resolve_forms(ist: ImageStore) -> None:
    iid = _add(ist, 1, "busybox:latest", "user/app:1")
    hexid = iid[7:]
    for name in (iid, hexid, hexid[:12], hexid[:3], "sha256:" + hexid[:12], "busybox", "busybox:latest",
                 "docker.io/library/busybox:latest", "user/app:1", "docker.io/user/app:1"):
        assert ist.resolve(name).id == iid, name
    im = ist.resolve("busybox")
    assert im.repo_tags == ["busybox:latest", "user/app:1"]
    assert im.config["config"]["Cmd"] == ["cmd1"]
    assert im.top_chain_id is None and im.layers == [] and im.size == 0
    with pytest.raises(NotFound) as e:
        ist.resolve("nope")
    assert str(e.value) == "No such image: nope"
    with pytest.raises(NotFound):
        ist.resolve("user/app")  # :latest is not tagged


def test_ambiguous_prefix(ist: ImageStore) -> None:
    ids = [_add(ist, n) for n in range(40)]
    firsts = [i[7] for i in ids]
    dup = next(c for c in firsts if firsts.count(c) > 1)
    with pytest.raises(InvalidArgument) as e:
        ist.resolve(dup)
    assert "multiple IDs found with provided prefix" in str(e.value)


def test_a_tag_moves(ist: ImageStore) -> None:
    a = _add(ist, 1, "x:1")
    b, replaced = ist.add(_config(2), [], tags=["x:1"])
    assert replaced == [("x:1", a)]
    assert ist.resolve("x:1").id == b
    assert ist.resolve(a).repo_tags == []


def test_tag_rules(ist: ImageStore) -> None:
    iid = _add(ist, 1)
    assert ist.tag(iid, "foo") == "docker.io/library/foo:latest"
    with pytest.raises(InvalidArgument) as e:
        ist.tag(iid, "foo@sha256:" + "a" * 64)
    assert "digest" in str(e.value)
    with pytest.raises(NotFound):
        ist.tag("sha256:" + "0" * 64, "bar")


def test_rmi_untags_while_other_tags_remain(ist: ImageStore) -> None:
    iid = _add(ist, 1, "a:1", "b:1")
    assert ist.remove("a:1") == [("Untagged", "a:1")]
    assert ist.get(iid) is not None
    assert ist.remove("b:1") == [("Untagged", "b:1"), ("Deleted", iid)]
    assert ist.get(iid) is None


def test_rmi_by_id_with_several_repositories_needs_force(ist: ImageStore) -> None:
    iid = _add(ist, 1, "a:1", "b:1")
    with pytest.raises(Conflict) as e:
        ist.remove(iid[7:19])
    assert str(e.value) == (f"conflict: unable to delete {iid[7:19]} (must be forced) - "
                            "image is referenced in multiple repositories")
    recs = ist.remove(iid[7:19], force=True)
    assert recs == [("Untagged", "a:1"), ("Untagged", "b:1"), ("Deleted", iid)]


def test_rmi_by_id_with_one_tag(ist: ImageStore) -> None:
    iid = _add(ist, 1, "a:1")
    assert ist.remove(iid) == [("Untagged", "a:1"), ("Deleted", iid)]


def test_rmi_refuses_while_a_container_uses_it(ist: ImageStore) -> None:
    iid = _add(ist, 1, "a:1")
    _container(ist, iid, "exited")
    with pytest.raises(Conflict) as e:
        ist.remove("a:1")
    assert str(e.value) == (f'conflict: unable to remove repository reference "a:1" (must force) - container '
                            f'cccccccccccc is using its referenced image {iid[7:19]}')
    with pytest.raises(Conflict) as e:
        ist.remove(iid)
    assert "(must be forced) - image is being used by stopped container cccccccccccc" in str(e.value)
    assert ist.remove("a:1", force=True) == [("Untagged", "a:1"), ("Deleted", iid)]
    row = ist.store.query("SELECT image_id FROM containers")[0]
    assert row[0] is None


def test_rmi_running_container_cannot_be_forced(ist: ImageStore) -> None:
    iid = _add(ist, 1)
    _container(ist, iid, "running")
    with pytest.raises(Conflict) as e:
        ist.remove(iid, force=True)
    assert "(cannot be forced) - image is being used by running container" in str(e.value)


def test_parents_children_and_prune(ist: ImageStore) -> None:
    base = _add(ist, 1)
    child = _add(ist, 2, "app:1", parent=base)
    with pytest.raises(Conflict) as e:
        ist.remove(base, force=True)
    assert "image has dependent child images" in str(e.value)
    # removing the child also removes its untagged parent, unless --no-prune
    assert ist.remove("app:1", prune=False) == [("Untagged", "app:1"), ("Deleted", child)]
    assert ist.get(base) is not None
    child = _add(ist, 2, "app:1", parent=base)
    assert ist.remove("app:1") == [("Untagged", "app:1"), ("Deleted", child), ("Deleted", base)]


def test_prune_dangling_and_all(ist: ImageStore) -> None:
    dangling = _add(ist, 1)
    tagged = _add(ist, 2, "keep:1")
    used = _add(ist, 3)
    _container(ist, used)
    records, _ = ist.prune()
    assert records == [("Deleted", dangling)]
    records, _ = ist.prune(all=True)
    assert records == [("Untagged", "keep:1"), ("Deleted", tagged)]
    assert [im.id for im in ist.list()] == [used]


def test_list_is_newest_first(ist: ImageStore) -> None:
    a = _add(ist, 1, "a:1")
    b = _add(ist, 5, "b:1")
    c = _add(ist, 3)
    assert [im.id for im in ist.list()] == [b, c, a]


def test_add_rejects_layers_that_do_not_match_the_config(ist: ImageStore) -> None:
    from dockyard.images.store import LayerRecord

    with pytest.raises(InvalidArgument):
        ist.add(_config(1), [LayerRecord("sha256:" + "1" * 64, "sha256:" + "1" * 64, 1, "x")])
