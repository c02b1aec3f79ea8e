"""Interop with the real tools: podman's archives load into dockyard; dockyard's load into podman and skopeo.

podman runs with a private store (``--root``/``--runroot`` under the test's tmp dir) and a private
containers.conf (``CONTAINERS_CONF``), so the host's podman state is never touched.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import DOCKYARD

pytestmark = [pytest.mark.e2e, pytest.mark.interop]
EPOCH = {**os.environ, "SOURCE_DATE_EPOCH": "946684800"}

Podman = Callable[..., subprocess.CompletedProcess]


@pytest.fixture
def podman(tmp_path: Path) -> Iterator[Podman]:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (scripts/deps.sh installs it)")
    conf = tmp_path / "containers.conf"
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    lim = [f"nofile={nofile}:{nofile}"] + ([f"nproc={nproc}:{nproc}"] if nproc > 0 else [])
    conf.write_text("[containers]\ndefault_ulimits = [" + ", ".join(f'"{x}"' for x in lim) + "]\n")
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    runroot = tempfile.mkdtemp(prefix="dyp-", dir="/tmp")  # podman wants a runroot under 50 characters
    base = ["podman", "--root", str(tmp_path / "pstore"), "--runroot", runroot]
    probe = subprocess.run([*base, "images"], capture_output=True, text=True, env=env)
    if probe.returncode != 0:
        base += ["--storage-driver", "vfs"]

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
        p = subprocess.run([*base, *args], capture_output=True, text=True, env=env, timeout=300)
        if check and p.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)}: {p.stderr}")
        return p

    try:
        yield run
    finally:
        run("rmi", "-af", check=False)
        shutil.rmtree(runroot, ignore_errors=True)


def _dy(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKYARD, "--root", str(root), *args], capture_output=True, text=True, env=EPOCH,
                          timeout=300)


def _config(root: Path, name: str) -> dict:
    p = _dy(root, "image", "inspect", name)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)[0]


@pytest.fixture
def saved_by_dockyard(tmp_path: Path, busybox_tar: Path) -> tuple[Path, str]:
    root = tmp_path / "dy-src"
    p = _dy(root, "import", "--change", 'CMD ["sh"]', "--change", "ENV A=b", str(busybox_tar), "busybox:latest")
    assert p.returncode == 0, p.stderr
    out = tmp_path / "from-dockyard.tar"
    assert _dy(root, "save", "-o", str(out), "busybox").returncode == 0
    return out, p.stdout.strip()


def test_dockyard_archive_loads_into_podman_and_skopeo(podman: Podman,
                                                       saved_by_dockyard: tuple[Path, str]) -> None:
    archive, image_id = saved_by_dockyard
    p = podman("load", "-i", str(archive))
    assert "docker.io/library/busybox:latest" in p.stdout + p.stderr
    got = podman("image", "inspect", "busybox", "--format", "{{.ID}} {{json .Config.Cmd}} {{json .Config.Env}}")
    assert got.stdout.strip() == f'{image_id[7:]} ["sh"] ["A=b"]'
    if shutil.which("skopeo"):
        s = subprocess.run(["skopeo", "inspect", f"docker-archive:{archive}"], capture_output=True, text=True)
        assert s.returncode == 0, s.stderr
        info = json.loads(s.stdout)
        assert info["Os"] == "linux" and info["Architecture"] == "amd64" and info["Env"] == ["A=b"]
        s = subprocess.run(["skopeo", "inspect", "--config", f"docker-archive:{archive}"], capture_output=True,
                           text=True)
        assert s.returncode == 0, s.stderr
        assert json.loads(s.stdout)["config"]["Cmd"] == ["sh"]


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_podman_archives_load_into_dockyard(podman: Podman, tmp_path: Path, saved_by_dockyard: tuple[Path, str],
                                            fmt: str) -> None:
    archive, image_id = saved_by_dockyard
    podman("load", "-i", str(archive))
    podman("tag", "busybox:latest", "localhost/fromp:1")
    out = tmp_path / f"podman-{fmt}.tar"
    podman("save", "--format", fmt, "-o", str(out), "localhost/fromp:1")
    root = tmp_path / f"dy-{fmt}"
    p = _dy(root, "load", "-i", str(out))
    assert p.returncode == 0, p.stderr
    assert p.stdout == "Loaded image: localhost/fromp:1\n"
    d = _config(root, "localhost/fromp:1")
    assert d["Id"] == image_id  # the same config, byte for byte
    assert d["Config"]["Cmd"] == ["sh"] and d["Config"]["Env"] == ["A=b"]
    assert d["Created"] == "2000-01-01T00:00:00Z"
    # and the loaded image saves again into an archive podman accepts
    again = tmp_path / f"again-{fmt}.tar"
    assert _dy(root, "save", "-o", str(again), "localhost/fromp:1").returncode == 0
    podman("rmi", "-af")
    p = podman("load", "-i", str(again))
    assert "localhost/fromp:1" in p.stdout + p.stderr
