"""engine.images called directly with a real store: the functions both edges (CLI, API) share."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from dockyard.engine import images as eng
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.state.db import Store


@pytest.fixture
def store(root: Path) -> Store:
    return Store(str(root))


@pytest.fixture
def bb(store: Store, busybox_tar: Path) -> str:
    return eng.import_image(store, str(busybox_tar), "busybox:latest", ['CMD ["sh"]'])


def test_list_filters_and_typed_summary(store: Store, bb: str) -> None:
    eng.tag_image(store, "busybox", "example.com/team/tool:1")
    [s] = eng.list_images(store)
    assert s.id == bb and s.size > 0 and s.created > 0
    assert sorted(s.repo_tags) == ["busybox:latest", "example.com/team/tool:1"]
    [s] = eng.list_images(store, {"reference": ["example.com/*/*"]})
    assert s.repo_tags == ["example.com/team/tool:1"]  # the pattern narrows the tags shown
    assert eng.list_images(store, {"dangling": ["true"]}) == []
    assert eng.list_images(store, {"label": ["nope"]}) == []
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        eng.list_images(store, {"colour": ["red"]})
    with pytest.raises(NotFound):
        eng.list_images(store, {"before": ["nothing:here"]})


def test_inspect_history_and_errors_keep_their_type(store: Store, bb: str, dy) -> None:
    data = eng.inspect_image(store, "busybox")
    assert data["Id"] == bb and data["RepoTags"] == ["busybox:latest"] and data["Config"]["Cmd"] == ["sh"]
    # one place builds the inspect JSON: the CLI prints the very same document
    assert json.loads(dy("image", "inspect", "busybox", check=True).stdout) == [data]
    [h] = eng.history(store, bb[7:19])
    assert h.id == bb and h.tags == ["busybox:latest"] and h.size > 0
    with pytest.raises(NotFound):
        eng.inspect_image(store, "missing")
    with pytest.raises(InvalidArgument, match="not a valid repository/tag"):
        eng.tag_image(store, "busybox", "UPPER:case")


def test_remove_reports_and_conflicts(store: Store, bb: str) -> None:
    eng.tag_image(store, bb, "other:1")
    with pytest.raises(Conflict):
        eng.remove_image(store, bb)  # an ID with tags in two repositories needs force
    assert eng.remove_image(store, "other:1") == [("Untagged", "other:1")]
    assert eng.remove_image(store, "busybox") == [("Untagged", "busybox:latest"), ("Deleted", bb)]
    assert eng.list_images(store) == []
    with pytest.raises(NotFound):
        eng.remove_image(store, "busybox")


def test_prune_report(store: Store, bb: str) -> None:
    with pytest.raises(InvalidArgument):
        eng.prune_images(store, filters={"colour": ["red"]})
    assert eng.prune_images(store).deleted == []  # tagged: not dangling
    r = eng.prune_images(store, all=True)
    assert ("Deleted", bb) in r.deleted and r.reclaimed > 0


def test_save_stream_then_load_events(store: Store, bb: str, tmp_path: Path) -> None:
    buf = io.BytesIO()
    with pytest.raises(NotFound):
        eng.save_images(store, ["busybox", "missing"], buf)
    assert buf.getvalue() == b""  # names are checked before the first byte
    eng.save_images(store, ["busybox"], buf)
    other_root = tmp_path / "other"
    other_root.mkdir()
    other = Store(str(other_root))
    buf.seek(0)
    events = list(eng.load_images(other, buf))
    assert [(e.kind, e.image_id, e.tag) for e in events] == [("loaded", bb, "busybox:latest")]
    eng.tag_image(other, "busybox", "busybox:old")
    eng.remove_image(other, "busybox:latest")
    out = tmp_path / "bb.tar"
    eng.save_images_to_file(store, ["busybox"], str(out))
    with eng.open_archive(str(out)) as f:
        assert [e.kind for e in eng.load_images(other, f)] == ["loaded"]
