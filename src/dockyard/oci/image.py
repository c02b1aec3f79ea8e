"""OCI and Docker image types: media types, descriptors, manifests and the host platform.

An image is a *manifest* (JSON) pointing at a *config* blob and an ordered list of *layer* blobs, each by
descriptor (media type, digest, size). The image ID is the config's digest. The config lists the layers'
uncompressed digests (``rootfs.diff_ids``) and the history; see ``dockyard.ids`` for digest/diff_id/chain_id.

JSON written here is compact with a fixed key order, so the same image always gets the same manifest digest.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from dockyard import jsonc as json

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
    def from_json(cls, d: Any) -> Descriptor:
        """A descriptor from its JSON; CorruptContent (one line) when a field has the wrong type, as Go's
        decoder refuses it (``digest`` must be ``algorithm:hex``: it names blobs)."""
        if not isinstance(d, dict):
            raise _invalid("descriptor", "is not an object")
        mt, digest, size = d.get("mediaType") or "", d.get("digest"), d.get("size") or 0
        ann, plat = d.get("annotations") or None, d.get("platform") or None
        if not isinstance(mt, str):
            raise _invalid("descriptor", "mediaType is not a string")
        if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
            raise _invalid("descriptor", f"invalid digest {str(digest)[:80]!r}")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _invalid("descriptor", "size is not a non-negative integer")
        if ann is not None and not _str_map(ann):
            raise _invalid("descriptor", "annotations are not a map of strings")
        if plat is not None and not (isinstance(plat, dict) and all(
                isinstance(plat.get(k) or "", str) for k in ("os", "architecture", "variant", "os.version"))):
            raise _invalid("descriptor", "platform is not valid")
        return cls(mt, digest, size, ann, plat)


_DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_SHA256_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


def _invalid(what: str, why: str) -> Exception:
    from dockyard.errors import CorruptContent

    return CorruptContent(f"invalid {what}: {why}")


def _str_map(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())


def _str_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# Field types of an image config, as the Go structs declare them (Docker's container.Config, the OCI image spec):
# a value of another type fails decoding ("json: cannot unmarshal ..."). null is a Go zero value: accepted.
_CONFIG_FIELDS: dict[str, Any] = {
    "User": str, "WorkingDir": str, "StopSignal": str, "Hostname": str, "Domainname": str, "Image": str,
    "MacAddress": str, "Env": _str_list, "Cmd": _str_list, "Entrypoint": _str_list, "Shell": _str_list,
    "OnBuild": _str_list, "Labels": _str_map,
    "ExposedPorts": lambda v: isinstance(v, dict) and all(isinstance(x, dict) or x is None for x in v.values()),
    "Volumes": lambda v: isinstance(v, dict) and all(isinstance(x, dict) or x is None for x in v.values()),
    "Healthcheck": lambda v: isinstance(v, dict) and (v.get("Test") is None or _str_list(v["Test"])) and all(
        v.get(k) is None or _is_int(v[k]) for k in ("Interval", "Timeout", "StartPeriod", "StartInterval",
                                                     "Retries")),
    "ArgsEscaped": bool, "AttachStdin": bool, "AttachStdout": bool, "AttachStderr": bool, "Tty": bool,
    "OpenStdin": bool, "StdinOnce": bool, "NetworkDisabled": bool, "StopTimeout": _is_int,
}
_TOP_FIELDS: dict[str, Any] = {
    "architecture": str, "os": str, "variant": str, "os.version": str, "author": str, "comment": str,
    "created": str, "docker_version": str, "container": str, "os.features": _str_list,
    "history": lambda v: isinstance(v, list) and all(isinstance(h, dict) and all(
        isinstance(h.get(k) or "", str) for k in ("created", "created_by", "author", "comment"))
        and isinstance(h.get("empty_layer") or False, bool) for h in v),
}


def _check_fields(obj: dict[str, Any], fields: dict[str, Any], where: str) -> None:
    for key, typ in fields.items():
        v = obj.get(key)
        if v is None:
            continue
        ok = isinstance(v, typ) if isinstance(typ, type) else typ(v)
        if not ok or (typ is str and isinstance(v, bool)):
            raise _invalid("image config", f"{where}{key} has the wrong type")


def decode_config(raw: bytes) -> dict[str, Any]:
    """Decode an image config blob and check the type of every field dockyard reads (as Go's typed decoding
    does), so that nothing downstream meets a number where it expects a list. CorruptContent when invalid."""
    try:
        c = json.loads(raw)
    except (ValueError, RecursionError):
        raise _invalid("image config", "not valid JSON") from None
    if not isinstance(c, dict):
        raise _invalid("image config", "not a JSON object")
    _check_fields(c, _TOP_FIELDS, "")
    for key in ("config", "container_config"):
        inner = c.get(key)
        if inner is None:
            continue
        if not isinstance(inner, dict):
            raise _invalid("image config", f"{key} is not an object")
        _check_fields(inner, _CONFIG_FIELDS, f"{key}.")
    rootfs = c.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise _invalid("image config", "rootfs.diff_ids is missing")
    if not all(isinstance(d, str) and _SHA256_RE.match(d) for d in rootfs["diff_ids"]):
        raise _invalid("image config", "rootfs.diff_ids holds an invalid digest")
    return c


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
