"""The Snapshotter interface: what the image and engine layers may ask of a snapshot store.

Vocabulary:

- A *layer* is a tar of file changes (OCI image-spec): added/changed files, ``.wh.NAME`` whiteouts for deletions,
  ``.wh..wh..opq`` for a directory whose lower contents are hidden. Its *diff_id* is the sha256 of the uncompressed
  tar (the blob stored in the content store may be compressed; its *digest* is then a different hash).
- A *snapshot* is one applied layer, kept in overlayfs format (whiteouts as 0/0 character devices, opaque
  directories with ``trusted.overlay.opaque=y``). It is named by its *chain ID*, which names the whole stack below
  it: ``chain(L1) = diff_id(L1)``, ``chain(L1..Ln) = sha256(chain(L1..Ln-1) + " " + diff_id(Ln))``. Two images that
  share their first layers share those snapshots.
- A snapshot's *lowerdir* is the directory overlayfs stacks (``Snapshot.path``). A snapshot is kept either as an
  unpacked directory (``dir``) or as one EROFS image file (``erofs``), mounted read-only at that same path while a
  container root or a reader needs it. Layer mounts are shared, and released when no mounted overlay uses them.

Lifecycle, for an image with layers L1 (base) and L2::

    ss: Snapshotter = SnapshotStore(store)                 # backend chosen for the host
    s1 = ss.apply_layer(None, blob1, expected_diff_id=d1)  # atomic: complete when visible
    s2 = ss.apply_layer(s1.chain_id, blob2, expected_diff_id=d2)
    with ss.mounts_lock():                                  # a container root (engine.rootfs does this)
        for m in ss.rootfs_mounts(s2.chain_id, upper, work, target): ...  # layer mounts first, then the overlay
    with ss.mounted(s2.chain_id) as lowers: ...            # read the layers themselves (diff)
    ss.gc(keep={chain IDs of the images still present})

Implementations: ``store.SnapshotStore`` with ``backend="dir"`` or ``backend="erofs"``; both pass
``tests/integration/test_snapshotter_conformance.py``.
"""

from __future__ import annotations

import contextlib
from typing import BinaryIO, Protocol

from dockyard.oci.mounts import Mount
from dockyard.snapshots.store import Snapshot


class Snapshotter(Protocol):
    backend: str

    def apply_layer(self, parent: str | None, stream: BinaryIO, *, expected_diff_id: str | None = None,
                    allow_devices: bool = True) -> Snapshot:
        """Apply a layer tar (any compression) on top of ``parent``; idempotent per chain ID."""
        ...

    def get(self, chain_id: str) -> Snapshot | None: ...

    def list(self) -> list[Snapshot]: ...

    def top_of(self, diff_ids: list[str]) -> str | None:
        """The chain ID of a stack of layers, by lookup (NotFound if one is not applied)."""
        ...

    def lowerdirs(self, chain_id: str | None) -> list[str]:
        """Lowerdir paths of the stack, topmost first (for an ``erofs`` layer: readable only while mounted)."""
        ...

    def rootfs_mounts(self, chain_id: str | None, upperdir: str | None, workdir: str | None,
                      target: str) -> list[Mount]:
        """Mounts, in order, that make ``target`` a (writable with ``upperdir``) root on ``chain_id``."""
        ...

    def mounts_lock(self) -> contextlib.AbstractContextManager[None]: ...

    def mounted(self, chain_id: str | None) -> contextlib.AbstractContextManager[list[str]]:
        """The stack's lowerdirs, readable for the duration of the ``with``."""
        ...

    def remove(self, chain_id: str) -> None: ...

    def gc(self, keep: set[str]) -> list[str]: ...

