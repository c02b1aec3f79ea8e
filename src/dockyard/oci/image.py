"""OCI and Docker image types: media types, descriptors, manifests and the host platform.

An image is a *manifest* (JSON) pointing at a *config* blob and an ordered list of *layer* blobs, each by
descriptor (media type, digest, size). The image ID is the config's digest. The config lists the layers'
uncompressed digests (``rootfs.diff_ids``) and the history; see ``dockyard.ids`` for digest/diff_id/chain_id.

JSON written here is compact with a fixed key order, so the same image always gets the same manifest digest.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

# OCI media types
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
# Docker schema 2 media types
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"

INDEX_TYPES = {OCI_INDEX, DOCKER_MANIFEST_LIST}
MANIFEST_TYPES = {OCI_MANIFEST, DOCKER_MANIFEST}
LAYER_TYPES = {OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_LAYER_NONDIST, OCI_LAYER_NONDIST_GZIP,
               DOCKER_LAYER, DOCKER_LAYER_GZIP, DOCKER_FOREIGN_LAYER}

# annotations
ANNOT_REF_NAME = "org.opencontainers.image.ref.name"
ANNOT_CONTAINERD_NAME = "io.containerd.image.name"

LAYOUT_VERSION = {"imageLayoutVersion": "1.0.0"}


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] | None = None
    platform: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            d["annotations"] = dict(sorted(self.annotations.items()))
        if self.platform:
            d["platform"] = self.platform
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Descriptor:
        return cls(str(d.get("mediaType", "")), str(d["digest"]), int(d.get("size", 0)),
                   d.get("annotations") or None, d.get("platform") or None)


def is_gzip_type(media_type: str) -> bool:
    return media_type.endswith("gzip")


def dumps(obj: Any) -> bytes:
    """Compact JSON, keys in insertion order, as Go's json.Marshal writes structs."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def manifest_bytes(config: Descriptor, layers: list[Descriptor]) -> bytes:
    """An OCI image manifest for ``config`` and ``layers`` (deterministic bytes)."""
    return dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.to_json(),
        "layers": [ly.to_json() for ly in layers],
    })


def index_bytes(manifests: list[Descriptor]) -> bytes:
    return dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [m.to_json() for m in manifests]})


_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "armv6l": "arm", "i686": "386",
         "i386": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_platform() -> dict[str, str]:
    """``{"os": "linux", "architecture": "amd64"}`` (plus ``variant`` on arm) for this machine."""
    m = os.uname().machine
    p = {"os": "linux", "architecture": _ARCH.get(m, m)}
    if m == "armv7l":
        p["variant"] = "v7"
    elif m == "armv6l":
        p["variant"] = "v6"
    elif m == "aarch64":
        p["variant"] = "v8"
    return p


def parse_platform(s: str) -> dict[str, str]:
    """``linux/arm64/v8`` -> ``{"os": "linux", "architecture": "arm64", "variant": "v8"}``."""
    from dockyard.errors import InvalidArgument

    parts = [p for p in s.strip().lower().split("/")]
    if not parts or not parts[0] or len(parts) > 3 or any(not p for p in parts):
        raise InvalidArgument(f'"{s}": unknown operating system or architecture: invalid argument')
    if len(parts) == 1:
        hp = host_platform()
        return {"os": parts[0], "architecture": hp["architecture"]}
    arch = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm"}.get(
        parts[1], parts[1])
    p = {"os": parts[0], "architecture": arch}
    if len(parts) == 3:
        p["variant"] = parts[2]
    elif arch == "arm64" and parts[1] == "aarch64":
        pass
    return p


def platform_matches(want: dict[str, str], have: dict[str, Any] | None) -> bool:
    if not have:
        return False
    if have.get("os") != want.get("os") or have.get("architecture") != want.get("architecture"):
        return False
    wv, hv = want.get("variant"), have.get("variant")
    if wv and hv and wv != hv:
        return not (want["architecture"] == "arm64" and {wv, hv} <= {"v8", ""})
    return True
