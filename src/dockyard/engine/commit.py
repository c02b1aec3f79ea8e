"""``commit``: a container's changes (its overlay upper dir) as a new image on top of its own.

The upper dir becomes a deterministic layer tar (``snapshots.layer.write_layer``: overlay whiteouts become OCI
whiteouts), then ``images.importer.add_layer_image`` stores, unpacks and records it. ``build`` uses the same path.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from dockyard.state.db import Store


def layer_image(store: Store, parent: Any | None, upperdir: str | None, *, overrides: dict[str, Any],
                history: dict[str, Any], changes: list[str] | None = None, tags: list[str] | None = None,
                comment: str | None = None, author: str | None = None, epoch: int | None = None) -> str:
    from dockyard.images.importer import add_layer_image
    from dockyard.snapshots.layer import MOUNT_TARGETS, write_layer

    if upperdir is None:
        return add_layer_image(store, parent, None, overrides, history, changes=changes, tags=tags,
                               comment=comment, author=author)
    fd, tmp = tempfile.mkstemp(dir=store.tmp, prefix="layer-")
    try:
        with os.fdopen(fd, "w+b") as f:
            write_layer(upperdir, f, epoch=epoch, skip_empty=MOUNT_TARGETS)
        return add_layer_image(store, parent, tmp, overrides, history, changes=changes, tags=tags,
                               comment=comment, author=author)
    finally:
        os.unlink(tmp)


def commit_container(store: Store, c: Any, repository: str | None, *, changes: list[str], message: str = "",
                     author: str = "", pause: bool = True) -> str:
    """Commit ``c``; a running container is paused (cgroup freezer) while its upper dir is read, as Docker does
    by default, so the layer is one consistent state. With ``pause=False`` the walk still never follows a link
    the container swaps in (``snapshots.layer`` reads through fds)."""
    if pause and c.state == "running":
        from dockyard.engine import local

        local.pause(store, c)
        try:
            return _commit(store, c, repository, changes=changes, message=message, author=author)
        finally:
            from dockyard.engine.containers import ContainerStore

            local.unpause(store, ContainerStore(store).get(c.id))
    return _commit(store, c, repository, changes=changes, message=message, author=author)


def _commit(store: Store, c: Any, repository: str | None, *, changes: list[str], message: str,
            author: str) -> str:
    from dockyard.images.store import ImageStore

    parent = ImageStore(store).get(c.image_id) if c.image_id else None
    base = dict((parent.config.get("config") or {}) if parent else {})
    # Docker records the container's own command and environment in the committed image
    overrides: dict[str, Any] = {"Cmd": c.spec.cmd or None}
    if c.spec.entrypoint is not None:
        overrides["Entrypoint"] = c.spec.entrypoint or None
    if c.spec.env:
        keys = {e.split("=", 1)[0] for e in c.spec.env}
        overrides["Env"] = [e for e in (base.get("Env") or []) if e.split("=", 1)[0] not in keys] + c.spec.env
    created_by = " ".join(list(c.spec.entrypoint or []) + list(c.spec.cmd or []))
    return layer_image(store, parent, os.path.join(c.dir(store), "diff"), overrides=overrides,
                       history={"created_by": created_by, "comment": message}, changes=changes,
                       tags=[repository] if repository else [], comment=message or None,
                       author=author or None)
