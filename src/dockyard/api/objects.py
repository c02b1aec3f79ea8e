"""/images, /volumes, /networks, /system/df routes (filled in below)."""

from __future__ import annotations

from typing import Any


def register(r: Any) -> None:
    pass
