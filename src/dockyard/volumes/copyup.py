"""Docker's volume copy-up: an empty volume mounted over an image directory gets that directory's contents.

``copy_up(src, dst)`` runs on the host, in the container's monitor, once the container's root is mounted: ``src``
is the image's directory as the container sees it (resolved inside the root), ``dst`` the volume's mountpoint.
Like Docker it copies only into an *empty* volume and then gives the volume's root the owner and mode of the image
directory. Everything is kept: owners, modes (setuid, sticky), times, symlinks (never followed), hard links
(within the copy), device nodes, fifos and extended attributes where the volume's filesystem takes them.

The copy goes through directory fds (``fdtree.Copier``): the volume may be shared with a running container that
swaps what it holds for symlinks while the copy runs, and nothing is ever written through one.
"""

from __future__ import annotations

import os


def is_empty(path: str) -> bool:
    with os.scandir(path) as it:
        return next(it, None) is None


def copy_up(src: str, dst: str) -> bool:
    """Copy the contents of directory ``src`` into ``dst`` if ``dst`` is empty; True if it copied."""
    from dockyard.fdtree import Copier

    try:
        sfd = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False  # missing, or not a directory
    try:
        dfd = os.open(dst, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            if os.listdir(dfd):
                return False
            with Copier(owners=True, devices=True, merge=False) as c:
                c.copy_contents(sfd, dfd)
            return True
        finally:
            os.close(dfd)
    finally:
        os.close(sfd)
