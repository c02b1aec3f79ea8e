"""Paths inside a container's root as host strings: ``secure_join`` lives in ``dockyard.rootpath`` (one
implementation); this name stays for its callers. Only for trees nothing changes while the string is used; everything
else resolves through fds with ``rootpath.open_in_root``."""

from __future__ import annotations

from dockyard.rootpath import secure_join

__all__ = ["secure_join"]
