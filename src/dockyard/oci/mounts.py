"""A mount as plain data: what a snapshotter hands the engine and the engine hands the runtime.

It is exactly the OCI runtime spec's ``mounts[]`` entry (``destination``, ``type``, ``source``, ``options``), so the
runtime can mount it without knowing where it came from (an overlay over image layers, a bind of a volume, a tmpfs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Mount:
    type: str                       # "overlay", "bind", "tmpfs", "proc", ...
    source: str                     # device/file system name ("overlay", "tmpfs") or host path for binds
    target: str                     # where it goes (absolute host path for a rootfs, container path otherwise)
    options: tuple[str, ...] = ()   # mount(8)-style options: "ro", "rbind", "lowerdir=...", ...

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
