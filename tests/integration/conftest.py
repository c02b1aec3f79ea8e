"""Fixtures of the runtime tests: a busybox rootfs made once per session, and a harness per runtime."""

from __future__ import annotations

import pytest

from dockyard.runtime.testing import CrunHybrid, Harness, make_busybox_rootfs, runtime_available


@pytest.fixture(scope="session")
def busybox_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_busybox_rootfs(str(tmp_path_factory.mktemp("busybox") / "rootfs"))


@pytest.fixture(scope="session")
def crun_ready() -> object:
    """crun refuses hybrid cgroup hosts until the cgroup2 mount's controllers get v1 hierarchies of their own."""
    with CrunHybrid():
        yield None


@pytest.fixture(params=["dockyard", "runc", "crun"])
def h(request: pytest.FixtureRequest, tmp_path, busybox_template: str):  # type: ignore[no-untyped-def]
    """A harness running bundles through one runtime; runc and crun come from scripts/deps.sh, so a missing one
    fails the test rather than skipping it."""
    name = request.param
    missing = runtime_available(name)
    if missing:
        pytest.fail(missing)
    if name == "crun":
        request.getfixturevalue("crun_ready")
    harness = Harness(str(tmp_path), busybox_template, name)
    yield harness
    harness.cleanup()
