"""Paths inside a container's root, resolved the way the container itself would see them.

``secure_join(root, path)`` follows symlinks as if ``root`` were ``/``: absolute link targets restart at ``root``
and ``..`` never climbs above it, so a hostile link such as ``/etc -> /../../host`` cannot make a host-side
operation (cp, volume copy-up) touch anything outside the container.
"""

from __future__ import annotations

import os

MAX_LINKS = 255


def secure_join(root: str, path: str, follow_last: bool = True) -> str:
    root = os.path.abspath(root)
    todo = [p for p in path.split("/") if p]
    done: list[str] = []
    links = 0
    while todo:
        part = todo.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        cand = os.path.join(root, *done, part)
        if (todo or follow_last) and os.path.islink(cand):
            links += 1
            if links > MAX_LINKS:
                raise OSError(40, "too many levels of symbolic links", path)
            target = os.readlink(cand)
            if target.startswith("/"):
                done = []
            todo = [p for p in target.split("/") if p] + todo
            continue
        done.append(part)
    return os.path.join(root, *done)
