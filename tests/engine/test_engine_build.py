"""engine.build called directly: typed progress events, in the caller's thread and as an iterator."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.build.builder import BuildError
from dockyard.build.events import BuildFinished, StepCached, StepDone, StepOutput, StepStarted
from dockyard.engine import build as eng
from dockyard.engine.images import import_image, inspect_image
from dockyard.state.db import Store

pytestmark = pytest.mark.e2e


@pytest.fixture
def store(root: Path, busybox_tar: Path) -> Store:
    s = Store(str(root))
    import_image(s, str(busybox_tar), "busybox:latest", ['CMD ["sh"]'])
    return s


def _context(tmp_path: Path, dockerfile: str) -> str:
    d = tmp_path / "ctx"
    d.mkdir()
    (d / "Dockerfile").write_text(dockerfile)
    (d / "f.txt").write_text("from the context\n")
    return str(d)


def test_run_build_events_then_cached(store: Store, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nCOPY f.txt /f.txt\nRUN cat /f.txt && echo built\n")
    events: list[object] = []
    iid = eng.run_build(store, ctx, events.append, tags=["demo:1"])
    starts = [e.text for e in events if isinstance(e, StepStarted)]
    assert starts[0] == "[stage-0 1/3] FROM busybox" and starts[-1] == f"writing image {iid} done"
    assert any(isinstance(e, StepOutput) and e.text == "from the context" for e in events)
    assert sum(isinstance(e, StepDone) for e in events) == 2
    assert events[-2] == StepOutput(len(starts), "naming to docker.io/library/demo:1 done")
    assert events[-1] == BuildFinished(iid, ["docker.io/library/demo:1"])
    assert inspect_image(store, "demo:1")["Id"] == iid
    again = list(eng.build(store, ctx))  # the iterator form, same events; now from the cache
    assert sum(isinstance(e, StepCached) for e in again) == 2
    assert isinstance(again[-1], BuildFinished) and again[-1].image_id == iid


def test_iterator_raises_the_build_error_with_its_type(store: Store, tmp_path: Path) -> None:
    ctx = _context(tmp_path, "FROM busybox\nRUN echo about to fail; exit 3\n")
    seen: list[object] = []
    with pytest.raises(BuildError, match="Dockerfile:2: .*exit code: 3"):
        for ev in eng.build(store, ctx):
            seen.append(ev)
    assert StepOutput(2, "about to fail") in seen
    assert not any(Path(store.path("tmp")).glob("build-*"))  # the step's workspace was removed


def test_tar_context_and_missing_dockerfile(store: Store, tmp_path: Path) -> None:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        data = b"FROM busybox\nLABEL a=b\n"
        ti = tarfile.TarInfo("Dockerfile")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    d = eng.extract_context(buf)
    try:
        iid = eng.run_build(store, d, lambda ev: None)
        assert inspect_image(store, iid)["Config"]["Labels"] == {"a": "b"}
    finally:
        eng.remove_context(d)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(eng.InvalidArgument, match="failed to read dockerfile"):
        eng.run_build(store, str(empty), lambda ev: None)
