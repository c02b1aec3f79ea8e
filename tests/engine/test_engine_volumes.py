"""engine.volumes called directly with a real store."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from dockyard.engine import volumes as eng
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.state.db import Store


@pytest.fixture
def store(root: Path) -> Store:
    return Store(str(root))


def _tar(files: dict[str, bytes]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    return buf


def test_create_list_filters_inspect_remove(store: Store) -> None:
    v = eng.create_volume(store, "data", labels={"team": "db"})
    assert (v.name, v.driver, v.labels, v.anonymous) == ("data", "local", {"team": "db"}, False)
    assert v.mountpoint.endswith("/volumes/data/_data")
    eng.create_volume(store, "cache")
    assert [x.name for x in eng.list_volumes(store, {"label": ["team=db"]})] == ["data"]
    assert [x.name for x in eng.list_volumes(store, {"label!": ["team"]})] == ["cache"]
    assert sorted(x.name for x in eng.list_volumes(store, {"dangling": ["true"]})) == ["cache", "data"]
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        eng.list_volumes(store, {"colour": ["red"]})
    assert eng.inspect_volume(store, "data")["Labels"] == {"team": "db"}
    with pytest.raises(InvalidArgument):
        eng.create_volume(store, "bad/name")
    eng.remove_volume(store, "data")
    with pytest.raises(NotFound):
        eng.inspect_volume(store, "data")
    with pytest.raises(NotFound):
        eng.remove_volume(store, "data")
    eng.remove_volume(store, "data", force=True)


def test_prune_report(store: Store) -> None:
    eng.create_volume(store, "keep", labels={"keep": "1"})
    eng.create_volume(store, "gone")
    assert eng.prune_volumes(store).deleted == []  # named volumes need all
    with pytest.raises(InvalidArgument):
        eng.prune_volumes(store, filters={"colour": ["x"]})
    r = eng.prune_volumes(store, filters={"all": ["true"], "label!": ["keep"]})
    assert r.deleted == ["gone"] and r.reclaimed >= 0
    assert [v.name for v in eng.list_volumes(store)] == ["keep"]


def test_export_import_streams(store: Store) -> None:
    eng.import_volume(store, "filled", _tar({"hello.txt": b"hi\n"}))
    out = io.BytesIO()
    eng.export_volume(store, "filled", out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tf:
        assert tf.extractfile("hello.txt").read() == b"hi\n"  # type: ignore[union-attr]
    with pytest.raises(Conflict, match="not empty"):
        eng.import_volume(store, "filled", _tar({"x": b""}))
    with pytest.raises(NotFound):
        eng.export_volume(store, "nothing", io.BytesIO())
