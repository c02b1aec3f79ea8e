"""save -> load round trips, stable digests, the older Docker layout, OCI archives, and bad archives."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import DOCKYARD, Runner

EPOCH = {"SOURCE_DATE_EPOCH": "946684800"}


def _dy2(root: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKYARD, "--root", str(root), *args], input=stdin, capture_output=True, timeout=120)


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tf:
        return {m.name: tf.extractfile(m).read() for m in tf if m.isfile()}  # type: ignore[union-attr]


def _sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def _write_tar(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> None:
    with tarfile.open(path, "w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        for name, target in (links or {}).items():
            ti = tarfile.TarInfo(name)
            ti.type, ti.linkname = tarfile.SYMTYPE, target
            tf.addfile(ti)


def _images(root: Path) -> list[str]:
    p = _dy2(root, "images", "-a", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}")
    assert p.returncode == 0, p.stderr
    return sorted(p.stdout.decode().splitlines())


def test_save_writes_docker25_layout(dy: Runner, root: Path, tmp_path: Path, busybox: str) -> None:
    out = tmp_path / "bb.tar"
    dy("save", "-o", str(out), "busybox", check=True)
    files = _members(out)
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    [m] = json.loads(files["manifest.json"])
    assert m["Config"] == "blobs/sha256/" + busybox[7:] and m["RepoTags"] == ["busybox:latest"]
    config = json.loads(files[m["Config"]])
    assert [_sha(files[x]) for x in m["Layers"]] == config["rootfs"]["diff_ids"]  # uncompressed layers
    index = json.loads(files["index.json"])
    [desc] = index["manifests"]
    assert desc["annotations"]["io.containerd.image.name"] == "docker.io/library/busybox:latest"
    assert desc["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    manifest = files["blobs/sha256/" + desc["digest"][7:]]
    assert _sha(manifest) == desc["digest"]
    assert json.loads(manifest)["config"]["digest"] == busybox
    assert json.loads(files["repositories"]) == {"busybox": {"latest": m["Layers"][-1].split("/")[-1]}}
    for name, data in files.items():  # every blob is named by its digest
        if name.startswith("blobs/sha256/"):
            assert _sha(data)[7:] == name.split("/")[-1]


def test_round_trip_keeps_ids_and_digests(dy: Runner, tmp_path: Path, busybox: str, hello_world: str) -> None:
    first = tmp_path / "first.tar"
    dy("save", "-o", str(first), "busybox", "hello-world", check=True)
    root2 = tmp_path / "root2"
    p = _dy2(root2, "load", "-i", str(first))
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode() == "Loaded image: busybox:latest\nLoaded image: hello-world:latest\n"
    assert _images(root2) == sorted([f"{busybox[7:19]} busybox:latest", f"{hello_world[7:19]} hello-world:latest"])
    second = tmp_path / "second.tar"
    assert _dy2(root2, "save", "-o", str(second), "busybox", "hello-world").returncode == 0
    a, b = _members(first), _members(second)
    assert json.loads(a["index.json"]) == json.loads(b["index.json"])  # same manifest digests
    assert json.loads(a["manifest.json"]) == json.loads(b["manifest.json"])  # same config digests
    assert first.read_bytes() == second.read_bytes()
    # and loading the same archive again changes nothing
    p = _dy2(root2, "load", "-q", "-i", str(second))
    assert p.returncode == 0 and _images(root2) == _images(tmp_path / "root2")


def test_save_to_stdout_and_load_from_stdin(root: Path, tmp_path: Path, busybox: str) -> None:
    p = _dy2(root, "save", "busybox")
    assert p.returncode == 0 and p.stdout[:512].find(b"blobs/") == 0
    root2 = tmp_path / "root2"
    q = _dy2(root2, "load", stdin=p.stdout)
    assert q.returncode == 0, q.stderr
    assert q.stdout == b"Loaded image: busybox:latest\n"
    gz = _dy2(tmp_path / "root3", "load", stdin=gzip.compress(p.stdout, 1))  # a compressed archive
    assert gz.returncode == 0 and gz.stdout == b"Loaded image: busybox:latest\n"


def test_save_by_id_has_no_tags(dy: Runner, tmp_path: Path, busybox: str) -> None:
    out = tmp_path / "byid.tar"
    dy("save", "-o", str(out), busybox[7:19], check=True)
    files = _members(out)
    assert json.loads(files["manifest.json"])[0]["RepoTags"] is None
    assert "repositories" not in files
    p = _dy2(tmp_path / "root2", "load", "-i", str(out))
    assert p.stdout.decode() == f"Loaded image ID: {busybox}\n"
    p = _dy2(tmp_path / "root2", "save", "-o", str(tmp_path / "x.tar"), "nope")
    assert p.returncode == 1 and p.stderr == b"Error: No such image: nope\n"
    assert not (tmp_path / "x.tar").exists()


def test_load_replaces_a_tag(dy: Runner, tmp_path: Path, busybox: str, hello_tar: Path) -> None:
    out = tmp_path / "bb.tar"
    dy("save", "-o", str(out), "busybox", check=True)
    other = dy("import", str(hello_tar), "busybox:latest", env=EPOCH, check=True).stdout.strip()
    p = dy("load", "-i", str(out), check=True)
    assert p.stdout == (f"The image busybox:latest already exists, renaming the old one with ID {other} to "
                        "empty string\nLoaded image: busybox:latest\n")


def _legacy_archive(saved: dict[str, bytes], path: Path, gzip_layers: bool = False) -> str:
    """The pre-25 `docker save` layout: <v1 id>/layer.tar, <config hex>.json, manifest.json, repositories."""
    [m] = json.loads(saved["manifest.json"])
    cfg_hex = m["Config"].split("/")[-1]
    files: dict[str, bytes] = {f"{cfg_hex}.json": saved[m["Config"]]}
    layers = []
    for i, name in enumerate(m["Layers"]):
        v1 = hashlib.sha256(f"v1-{i}".encode()).hexdigest()
        data = saved[name]
        files[f"{v1}/layer.tar"] = gzip.compress(data, 1) if gzip_layers else data
        files[f"{v1}/VERSION"] = b"1.0"
        files[f"{v1}/json"] = b"{}"
        layers.append(f"{v1}/layer.tar")
    files["manifest.json"] = json.dumps([{"Config": f"{cfg_hex}.json", "RepoTags": ["legacy:1"],
                                          "Layers": layers}]).encode()
    files["repositories"] = json.dumps({"legacy": {"1": layers[-1].split("/")[0]}}).encode()
    _write_tar(path, files)
    return "sha256:" + cfg_hex


@pytest.mark.parametrize("gzip_layers", [False, True])
def test_load_legacy_docker_layout(dy: Runner, tmp_path: Path, busybox: str, gzip_layers: bool) -> None:
    out = tmp_path / "bb.tar"
    dy("save", "-o", str(out), "busybox", check=True)
    legacy = tmp_path / "legacy.tar"
    iid = _legacy_archive(_members(out), legacy, gzip_layers)
    root2 = tmp_path / "root2"
    p = _dy2(root2, "load", "-i", str(legacy))
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"Loaded image: legacy:1\n"
    assert _images(root2) == [f"{iid[7:19]} legacy:1"]
    # a saved copy of the loaded image is a normal Docker 25 archive with the same config
    again = tmp_path / "again.tar"
    assert _dy2(root2, "save", "-o", str(again), "legacy:1").returncode == 0
    files = _members(again)
    assert json.loads(files["manifest.json"])[0]["Config"] == "blobs/sha256/" + iid[7:]
    assert json.loads(files["index.json"]) == json.loads(_members(out)["index.json"]) | {
        "manifests": [{**json.loads(_members(out)["index.json"])["manifests"][0], "annotations": {
            "io.containerd.image.name": "docker.io/library/legacy:1", "org.opencontainers.image.ref.name": "1"}}]}


def _oci_archive(saved: dict[str, bytes], path: Path) -> tuple[str, str]:
    """An OCI archive as `podman save --format oci-archive` or buildkit writes: gzip layers, a nested index
    with two platforms (the arm64 one's blobs are absent: only the host's may be read)."""
    [m] = json.loads(saved["manifest.json"])
    config = saved[m["Config"]]
    files: dict[str, bytes] = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "blobs/sha256/" +
                               _sha(config)[7:]: config}
    layers = []
    for name in m["Layers"]:
        gz = gzip.compress(saved[name], 1)
        files["blobs/sha256/" + _sha(gz)[7:]] = gz
        layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _sha(gz),
                       "size": len(gz)})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": _sha(config), "size": len(config)},
                           "layers": layers}).encode()
    files["blobs/sha256/" + _sha(manifest)[7:]] = manifest
    inner = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "e" * 64, "size": 9,
         "platform": {"architecture": "arm64", "os": "linux"}},
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _sha(manifest),
         "size": len(manifest), "platform": {"architecture": "amd64", "os": "linux"}}]}).encode()
    files["blobs/sha256/" + _sha(inner)[7:]] = inner
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": _sha(inner), "size": len(inner),
         "annotations": {"org.opencontainers.image.ref.name": "localhost/ocitest:2"}}]}).encode()
    _write_tar(path, files)
    return _sha(config), _sha(manifest)


def test_load_oci_archive(dy: Runner, tmp_path: Path, busybox: str) -> None:
    out = tmp_path / "bb.tar"
    dy("save", "-o", str(out), "busybox", check=True)
    oci = tmp_path / "oci.tar"
    iid, _ = _oci_archive(_members(out), oci)
    assert iid == busybox
    root2 = tmp_path / "root2"
    p = _dy2(root2, "load", "-i", str(oci))
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"Loaded image: localhost/ocitest:2\n"
    assert _images(root2) == [f"{iid[7:19]} localhost/ocitest:2"]
    # saving it again writes uncompressed layers under their diff_ids
    again = tmp_path / "again.tar"
    assert _dy2(root2, "save", "-o", str(again), "localhost/ocitest:2").returncode == 0
    files = _members(again)
    [m] = json.loads(files["manifest.json"])
    assert [_sha(files[x]) for x in m["Layers"]] == json.loads(files[m["Config"]])["rootfs"]["diff_ids"]


def test_bad_archives_fail_cleanly_and_add_nothing(dy: Runner, root: Path, tmp_path: Path, busybox: str) -> None:
    out = tmp_path / "bb.tar"
    dy("save", "-o", str(out), "busybox", check=True)
    saved = _members(out)
    [m] = json.loads(saved["manifest.json"])
    cases: dict[str, bytes] = {}
    cases["not-a-tar"] = b"hello world\n" * 1000
    cases["truncated"] = out.read_bytes()[: len(out.read_bytes()) // 2]
    missing = dict(saved)
    del missing[m["Layers"][0]]
    _write_tar(tmp_path / "missing.tar", missing)
    cases["missing-blob"] = (tmp_path / "missing.tar").read_bytes()
    nomanifest = {k: v for k, v in saved.items() if k not in ("manifest.json", "index.json")}
    _write_tar(tmp_path / "nomanifest.tar", nomanifest)
    cases["no-manifest"] = (tmp_path / "nomanifest.tar").read_bytes()
    corrupt = dict(saved)
    corrupt[m["Layers"][0]] = saved[m["Layers"][0]][:-1024] + b"x" * 1024
    _write_tar(tmp_path / "corrupt.tar", corrupt)
    cases["corrupt-blob"] = (tmp_path / "corrupt.tar").read_bytes()
    for name, data in cases.items():
        r = tmp_path / f"root-{name}"
        f = tmp_path / f"{name}.tar"
        f.write_bytes(data)
        p = _dy2(r, "load", "-i", str(f))
        err = p.stderr.decode()
        assert p.returncode == 1, name
        assert err.startswith("Error: ") and len(err.splitlines()) == 1 and "Traceback" not in err, (name, err)
        assert _images(r) == [], name
