"""A mount as plain data: what a snapshotter hands the engine and the engine hands the runtime.

It is exactly the OCI runtime spec's ``mounts[]`` entry (``destination``, ``type``, ``source``, ``options``), so the
runtime can mount it without knowing where it came from (an overlay over image layers, a bind of a volume, a tmpfs).
"""

from __future__ import annotations

from collections import namedtuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Mount(namedtuple("Mount", "type source target options", defaults=((),))):
    """``type``: "overlay", "bind", "tmpfs", "proc"...; ``source``: a file system name ("overlay", "tmpfs") or a
    host path for binds; ``target``: where it goes (an absolute host path for a rootfs, a container path
    otherwise); ``options``: mount(8)-style options as a tuple ("ro", "rbind", "lowerdir=..."). Immutable."""

    __slots__ = ()

    def to_oci(self) -> dict[str, Any]:
        return {"destination": self.target, "type": self.type, "source": self.source,
                "options": list(self.options)}

    @classmethod
    def from_oci(cls, d: dict[str, Any]) -> Mount:
        return cls(type=d.get("type", ""), source=d.get("source", ""), target=d["destination"],
                   options=tuple(d.get("options") or ()))

    @property
    def readonly(self) -> bool:
        return "ro" in self.options
