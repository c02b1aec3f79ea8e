"""engine.system called directly with a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard import __version__
from dockyard.engine import images, system, volumes
from dockyard.state.db import Store


@pytest.fixture
def store(root: Path) -> Store:
    return Store(str(root))


def test_version_and_info_count_the_root(store: Store, busybox_tar: Path, dy) -> None:
    v = system.version(store)
    assert v.version == __version__ and v.root == str(store.root) and "dockyard" in v.runtimes
    assert system.info(store).images == 0
    images.import_image(store, str(busybox_tar), "busybox:latest")
    i = system.info(store)
    assert (i.images, i.containers, i.server_version) == (1, 0, __version__)
    assert i.cpus >= 1 and i.cgroup_version in ("1", "2")
    assert f"Images: {i.images}\n" in dy("info", check=True).stdout  # the CLI prints the engine's numbers


def test_disk_usage_sizes(store: Store, busybox_tar: Path) -> None:
    iid = images.import_image(store, str(busybox_tar), "busybox:latest")
    v = volumes.create_volume(store, "data")
    Path(v.mountpoint, "blob").write_bytes(b"x" * 5000)
    du = system.disk_usage(store)
    assert [im.id for im in du.images] == [iid] and du.layers_size > 0
    [vu] = du.volumes
    assert (vu.volume.name, vu.ref_count) == ("data", 0) and vu.size >= 5000
