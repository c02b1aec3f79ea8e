"""Fuzzing the decoding of image archives' JSON: config, OCI manifest, index.json and Docker's manifest.json.

A valid image is built, then fields anywhere in one of its documents are replaced by arbitrary JSON values (or
removed); digests that name the changed documents are recomputed so the change reaches the decoder. Loading
plans the image or fails with a DockyardError; never a KeyError/TypeError/AttributeError. A config that decodes
is one every reader of image configs can use (``--change`` lines applied, labels read).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from conftest import hard_limit
from dockyard.errors import DockyardError
from dockyard.images import archive
from dockyard.images.importer import apply_changes
from dockyard.oci import image as oci
from dockyard.state.db import Store

pytestmark = pytest.mark.fuzz

LAYER = b"layer bytes"


def _digest(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


CONFIG = {
    "architecture": oci.host_platform()["architecture"], "os": "linux", "created": "2024-01-01T00:00:00Z",
    "config": {"Env": ["A=b"], "Cmd": ["sh"], "Entrypoint": None, "WorkingDir": "/w", "User": "1:1",
               "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/v": {}}, "Labels": {"a": "b"}, "StopSignal": "TERM",
               "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1}, "OnBuild": ["RUN x"],
               "Shell": ["/bin/sh", "-c"], "ArgsEscaped": True},
    "rootfs": {"type": "layers", "diff_ids": [_digest(LAYER)]},
    "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "x", "empty_layer": False}],
}
DOCS = ("config", "manifest", "index", "manifest.json")

_json_value = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8)
    | st.sampled_from(["sha256:" + "a" * 64, "sha256:x", "../x", "linux", oci.OCI_MANIFEST, oci.OCI_INDEX]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6)


def _paths(v: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(v, dict):
        for k, x in v.items():
            out += _paths(x, prefix + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out += _paths(x, prefix + (i,))
    return out


def _set(doc: Any, path: tuple, value: Any, delete: bool) -> Any:
    if not path:
        return value
    cur = doc
    for k in path[:-1]:
        cur = cur[k]
    if delete and isinstance(cur, dict):
        del cur[path[-1]]
    else:
        cur[path[-1]] = value
    return doc


@st.composite
def _mutations(draw: st.DrawFn) -> list[tuple[str, tuple, Any, bool]]:
    out = []
    for _ in range(draw(st.integers(1, 3))):
        doc = draw(st.sampled_from(DOCS))
        out.append((doc, draw(st.integers(0, 60))), )
        out[-1] = (doc, out[-1][1], draw(_json_value), draw(st.booleans()))
    return out


def _apply(docs: dict[str, Any], muts: list, name: str) -> Any:
    d = docs[name]
    for doc, pick, value, delete in muts:
        if doc == name:
            paths = _paths(d)
            d = _set(d, paths[pick % len(paths)], value, delete)
    return d


def _archive(muts: list) -> tuple[dict[str, bytes], str]:
    """Member name -> bytes of a Docker 25 style archive with the mutations applied, and its layout kind."""
    files: dict[str, bytes] = {}
    layer_d = _digest(LAYER)
    files["blobs/sha256/" + layer_d[7:]] = LAYER
    docs: dict[str, Any] = {"config": copy.deepcopy(CONFIG)}
    cfg = json.dumps(_apply(docs, muts, "config")).encode()
    cfg_d = _digest(cfg)
    files["blobs/sha256/" + cfg_d[7:]] = cfg
    docs["manifest"] = {"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                        "config": {"mediaType": oci.OCI_CONFIG, "digest": cfg_d, "size": len(cfg)},
                        "layers": [{"mediaType": oci.OCI_LAYER, "digest": layer_d, "size": len(LAYER)}]}
    man = json.dumps(_apply(docs, muts, "manifest")).encode()
    man_d = _digest(man)
    files["blobs/sha256/" + man_d[7:]] = man
    docs["index"] = {"schemaVersion": 2, "manifests": [
        {"mediaType": oci.OCI_MANIFEST, "digest": man_d, "size": len(man),
         "annotations": {oci.ANNOT_CONTAINERD_NAME: "docker.io/library/x:1", oci.ANNOT_REF_NAME: "1"},
         "platform": oci.host_platform()}]}
    files["index.json"] = json.dumps(_apply(docs, muts, "index")).encode()
    docs["manifest.json"] = [{"Config": "blobs/sha256/" + cfg_d[7:], "RepoTags": ["x:1"],
                              "Layers": ["blobs/sha256/" + layer_d[7:]]}]
    if any(m[0] == "manifest.json" for m in muts) or len(muts) % 2:
        files["manifest.json"] = json.dumps(_apply(docs, muts, "manifest.json")).encode()
    return files, "docker" if "manifest.json" in files else "oci"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return Store(str(tmp_path_factory.mktemp("fuzzroot")))


def check(store: Store, muts: list) -> None:
    files, kind = _archive(muts)
    mem = archive._Members(store)
    mem.small.update(files)
    with hard_limit():
        try:
            plans = archive._plans_docker(mem) if kind == "docker" else archive._plans_oci(mem, None)
            for p in plans:
                p.tags = [str(archive.refs.parse_tagged(t)) for t in p.tags]
                c = oci.decode_config(p.config)
                inner = dict(c.get("config") or {})
                apply_changes(inner, ["ENV C=d", "LABEL l=v", "EXPOSE 81", "VOLUME /x", "WORKDIR sub",
                                      "ONBUILD RUN y", "CMD true", "ENTRYPOINT [\"e\"]", "USER u"])
        except DockyardError as e:
            assert "\n" not in str(e)


@given(muts=_mutations())
@example(muts=[("config", 0, [], False)])                                   # config is a list
@example(muts=[("config", 3, 5, False)])                                    # config.config.Env = 5
@example(muts=[("manifest.json", 1, {"Config": "a", "Layers": 5}, False)])  # Layers is a number
@example(muts=[("index", 2, [1], False)])                                   # a manifest descriptor is a number
@example(muts=[("index", 5, "x", False), ("index", 0, {"manifests": 7}, False)])
@example(muts=[("manifest", 5, None, False)])                               # config descriptor without digest
def test_mutated_archive_documents(muts: list, store: Store) -> None:
    check(store, muts)


def test_unmutated_archive_plans(store: Store) -> None:
    files, kind = _archive([("config", 0, CONFIG, False)])
    mem = archive._Members(store)
    mem.small.update(files)
    assert len(archive._plans_docker(mem)) == 1


@given(value=_json_value)
def test_descriptor_from_json(value: Any) -> None:
    try:
        d = oci.Descriptor.from_json(value)
    except DockyardError:
        return
    d.to_json()
    oci.platform_matches(oci.host_platform(), d.platform)


