"""One-layer images: ``import`` of a rootfs tar, and ``add_layer_image`` for commit and build.

``add_layer_image(store, parent, layer_tar_path, config_overrides, history_entry, created)`` is the one way a new
image is made on top of another (or from scratch): the layer tar (plain or compressed; written by
``snapshots.layer.write_layer`` for commit/build) is stored uncompressed as a blob, unpacked as a snapshot on top
of the parent's, and the image recorded in one transaction. With ``layer_tar_path=None`` it records a config-only
step (``empty_layer`` history, as ENV/CMD/LABEL in a Dockerfile).

``import`` is ``add_layer_image(None, tar, changes, {"comment": "Imported from -"})``. Set ``SOURCE_DATE_EPOCH`` to
fix the ``created`` time, making the image ID a pure function of the tar and the changes.
"""

from __future__ import annotations

import copy
import os
import shlex
from typing import IO, TYPE_CHECKING, Any

from dockyard import jsonc as json
from dockyard.errors import InvalidArgument
from dockyard.images.store import Image, ImageStore, LayerRecord, with_retry
from dockyard.oci import image as oci

if TYPE_CHECKING:
    from dockyard.state.db import Store

CHANGE_INSTRUCTIONS = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "USER", "VOLUME", "WORKDIR", "STOPSIGNAL",
                       "ONBUILD", "HEALTHCHECK")


def now_rfc3339() -> str:
    """Now (or ``$SOURCE_DATE_EPOCH``) as RFC 3339 with nanoseconds, UTC."""
    import time

    from dockyard.timeparse import rfc3339_nano

    sde = os.environ.get("SOURCE_DATE_EPOCH")
    if sde:
        try:
            return rfc3339_nano(float(int(sde)))
        except ValueError:
            raise InvalidArgument(f"invalid SOURCE_DATE_EPOCH: {sde!r}") from None
    return rfc3339_nano(time.time())


# -- --change: Dockerfile instructions applied to a config ---------------------------------------------------------

def _json_or_shell(rest: str, shell: bool = True) -> list[str]:
    s = rest.strip()
    if s.startswith("["):
        try:
            v = json.loads(s)
        except ValueError:
            v = None
        if isinstance(v, list) and all(isinstance(x, str) for x in v):
            return v
    return ["/bin/sh", "-c", s] if shell else shlex.split(s)


def _pairs(rest: str, instr: str) -> list[tuple[str, str]]:
    words = shlex.split(rest)
    if not words:
        raise InvalidArgument(f"{instr} requires at least one argument")
    if "=" not in words[0]:  # legacy form: ENV KEY value with spaces
        parts = rest.strip().split(None, 1)
        return [(parts[0], parts[1] if len(parts) > 1 else "")]
    out = []
    for w in words:
        k, sep, v = w.partition("=")
        if not sep or not k:
            raise InvalidArgument(f"{instr} names can not be blank" if not k else
                                  f"Syntax error - can't find = in \"{w}\". Must be of the form: name=value")
        out.append((k, v))
    return out


def apply_changes(cfg: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Apply ``--change`` lines (``CMD ["sh"]``, ``ENV A=b``, ``EXPOSE 80/udp``...) to a container config."""
    cmd_set = False
    for line in changes:
        line = line.strip()
        if not line:
            continue
        instr, _, rest = line.partition(" ") if " " in line else line.partition("\t")
        key = instr.upper()
        if key not in CHANGE_INSTRUCTIONS:
            raise InvalidArgument(f"{instr} is not a valid change command")
        rest = rest.strip()
        if key == "CMD":
            cfg["Cmd"] = _json_or_shell(rest)
            cmd_set = True
        elif key == "ENTRYPOINT":
            cfg["Entrypoint"] = _json_or_shell(rest)
            if not cmd_set:  # as in a Dockerfile: ENTRYPOINT resets an inherited CMD
                cfg.pop("Cmd", None)
        elif key == "ENV":
            env = list(cfg.get("Env") or [])
            for k, v in _pairs(rest, "ENV"):
                env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
            cfg["Env"] = env
        elif key == "LABEL":
            labels = dict(cfg.get("Labels") or {})
            for k, v in _pairs(rest, "LABEL"):
                labels[k] = v
            cfg["Labels"] = labels
        elif key == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in rest.split():
                if "/" not in p:
                    p += "/tcp"
                num, _, proto = p.partition("/")
                if not (num.isascii() and num.replace("-", "").isdigit()) or proto.lower() not in ("tcp", "udp", "sctp"):
                    raise InvalidArgument(f"invalid containerPort: {num}")
                ports[f"{num}/{proto.lower()}"] = {}
            cfg["ExposedPorts"] = ports
        elif key == "VOLUME":
            vols = dict(cfg.get("Volumes") or {})
            for v in _json_or_shell(rest, shell=False):
                if not v:
                    raise InvalidArgument("VOLUME specified can not be an empty string")
                vols[v] = {}
            cfg["Volumes"] = vols
        elif key == "USER":
            cfg["User"] = rest
        elif key == "WORKDIR":
            wd = rest
            if not wd.startswith("/"):
                wd = os.path.join(cfg.get("WorkingDir") or "/", wd)
            cfg["WorkingDir"] = os.path.normpath(wd)
        elif key == "STOPSIGNAL":
            cfg["StopSignal"] = rest
        elif key == "ONBUILD":
            cfg["OnBuild"] = list(cfg.get("OnBuild") or []) + [rest]
        elif key == "HEALTHCHECK":
            raise InvalidArgument("HEALTHCHECK is not supported in --change yet")
        if not rest and key not in ("CMD", "ENTRYPOINT"):
            raise InvalidArgument(f"{key} requires at least one argument")
    return cfg


# -- building one layer on top of a parent ---------------------------------------------------------------------

def _base_config(platform: dict[str, str] | None) -> dict[str, Any]:
    p = platform or oci.host_platform()
    c: dict[str, Any] = {"architecture": p["architecture"]}
    if p.get("variant"):
        c["variant"] = p["variant"]
    c.update({"config": {}, "created": "", "history": [], "os": p.get("os", "linux"),
              "rootfs": {"type": "layers", "diff_ids": []}})
    return c


def _ingest_layer(store: Store, path_or_stream: str | IO[bytes], parent_chain: str | None) -> LayerRecord:
    """Store a layer tar uncompressed (digest == diff_id) and unpack it on ``parent_chain``."""
    from dockyard.content.store import ContentStore
    from dockyard.snapshots.compression import open_layer
    from dockyard.snapshots.store import SnapshotStore

    cs = ContentStore(store)
    if isinstance(path_or_stream, str):
        try:
            f: IO[bytes] = open(path_or_stream, "rb")
        except OSError as e:
            from dockyard.errors import from_oserror

            raise from_oserror(f"open {path_or_stream}", e) from None
    else:
        f = path_or_stream
    try:
        reader = open_layer(f)  # type: ignore[arg-type]
        try:
            digest, size = cs.ingest(reader)  # type: ignore[arg-type]
        finally:
            reader.close()
    finally:
        if isinstance(path_or_stream, str):
            f.close()
    if size == 0:
        raise InvalidArgument("invalid tar: the archive is empty")
    with cs.open(digest) as blob:
        SnapshotStore(store).apply_layer(parent_chain, blob, expected_diff_id=digest)
    return LayerRecord(digest, digest, size, oci.OCI_LAYER)


def add_layer_image(store: Store, parent: Image | None, layer_tar: str | IO[bytes] | None,
                    config_overrides: dict[str, Any] | None = None, history_entry: dict[str, Any] | None = None,
                    created: str | None = None, *, changes: list[str] | None = None,
                    tags: list[str] | None = None, comment: str | None = None, author: str | None = None,
                    platform: dict[str, str] | None = None, set_parent: bool = True) -> str:
    """Make an image: ``parent`` (None = scratch) plus one layer (``layer_tar``: a path or a binary stream of a
    tar, maybe compressed; None = no layer), then ``config_overrides`` merged into ``config["config"]`` and
    ``changes`` (``--change`` lines) applied. ``history_entry`` (e.g. ``{"created_by": "/bin/sh -c make"}``)
    gets ``created`` and ``empty_layer`` filled in. Returns the new image ID (``sha256:...``).

    A stream can be read only once: on a retry after a concurrent removal the blob already stored is reused."""
    created = created or now_rfc3339()
    cfg = copy.deepcopy(parent.config) if parent is not None else _base_config(platform)
    if platform and parent is not None:
        cfg["architecture"], cfg["os"] = platform["architecture"], platform.get("os", "linux")
    inner = dict(cfg.get("config") or {})
    inner.update(config_overrides or {})
    apply_changes(inner, changes or [])
    cfg["config"] = inner
    cfg["created"] = created
    if comment is not None:
        cfg["comment"] = comment
    if author is not None:
        cfg["author"] = author
    parent_layers = list(parent.layers) if parent is not None else []
    parent_chain = parent.top_chain_id if parent is not None else None
    images = ImageStore(store)
    state: dict[str, LayerRecord] = {}

    def attempt() -> str:
        layers = list(parent_layers)
        if layer_tar is not None:
            if "layer" in state:
                from dockyard.content.store import ContentStore
                from dockyard.snapshots.store import SnapshotStore

                rec = state["layer"]
                with ContentStore(store).open(rec.digest) as blob:
                    SnapshotStore(store).apply_layer(parent_chain, blob, expected_diff_id=rec.diff_id)
            else:
                state["layer"] = _ingest_layer(store, layer_tar, parent_chain)
            layers.append(state["layer"])
        c = dict(cfg)
        h = {"created": created}
        h.update({k: v for k, v in (history_entry or {}).items() if v not in (None, "")})
        if layer_tar is None:
            h["empty_layer"] = True
        c["history"] = list(cfg.get("history") or []) + [h]
        c["rootfs"] = {"type": "layers", "diff_ids": [ly.diff_id for ly in layers]}
        image_id, _ = images.add(oci.dumps(_ordered(c)), layers, tags=tags or [],
                                 parent=parent.id if (parent is not None and set_parent) else None)
        return image_id

    from dockyard.images.store import images_lock

    with images_lock(store, exclusive=False):  # no removal may take our blobs/snapshots meanwhile
        return with_retry(attempt)


_KEY_ORDER = ("architecture", "variant", "author", "comment", "config", "created", "history", "os", "os.version",
              "rootfs")


def _ordered(cfg: dict[str, Any]) -> dict[str, Any]:
    out = {k: cfg[k] for k in _KEY_ORDER if k in cfg}
    out.update({k: v for k, v in cfg.items() if k not in out})
    return out


def import_image(store: Store, src: str | IO[bytes], ref: str | None = None, changes: list[str] | None = None,
                 message: str | None = None, platform: dict[str, str] | None = None,
                 source_name: str = "-") -> str:
    """``docker import``: a rootfs tar (``src``: path or stream, maybe gzip) as a one-layer image."""
    from dockyard.images import reference

    tags = [str(reference.parse_tagged(ref))] if ref else []
    msg = message if message else f"Imported from {source_name}"
    return add_layer_image(store, None, src, None, {"comment": msg}, changes=changes, tags=tags,
                           comment=msg, platform=platform)
