"""``volume export`` / ``volume import`` (beyond Docker, moby#32263): a volume's data as a tar archive and back.

The archive holds the data directory's contents with ``.`` first (the volume root's owner and mode), numeric
owners, modes, times, symlinks and hard links (PAX format). ``import`` fills a new or empty volume: the archive is
extracted into a staging directory with the safe extractor (``snapshots.extract``: nothing outside the volume can
be touched, device nodes are refused) and renamed over the empty data directory, so a failed import changes
nothing. A volume that a running container holds is filled in place instead (a rename would not reach it).
"""

from __future__ import annotations

import os
import sys
import tarfile
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

    from dockyard.volumes.store import Volume, VolumeStore

from dockyard.errors import Conflict, InvalidArgument, NotFound, from_oserror


def export(vs: VolumeStore, v: Volume, output: str | IO[bytes] | None) -> None:
    """Write the volume's data as a tar to the file ``output`` (atomically), to a stream, or to stdout (None)."""
    src = vs.host_path(v.name)
    if not isinstance(output, str):
        with tarfile.open(fileobj=output if output is not None else sys.stdout.buffer, mode="w|",
                          format=tarfile.PAX_FORMAT) as tf:
            _add(tf, src)
        return
    tmp = f"{output}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            with tarfile.open(fileobj=f, mode="w|", format=tarfile.PAX_FORMAT) as tf:
                _add(tf, src)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, output)
    except OSError as e:
        _unlink(tmp)
        raise from_oserror(f"export {v.name}", e) from None
    except BaseException:
        _unlink(tmp)
        raise


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _add(tf: tarfile.TarFile, src: str) -> None:
    """The data directory as ``.`` then its contents, read through fds (``fdtree``): a container using the
    volume cannot make the export follow a symlink out of it."""
    from dockyard.fdtree import add_to_tar

    fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        add_to_tar(tf, fd, ".", ".")
    finally:
        os.close(fd)


class _Tap:
    """A TarFile seen through: remembers the archive's root entry (``.``) while the extractor iterates."""

    def __init__(self, tf: tarfile.TarFile) -> None:
        self.tf = tf
        self.root: tarfile.TarInfo | None = None

    def __iter__(self) -> Any:
        from dockyard.snapshots.extract import clean_name

        for m in self.tf:
            if not clean_name(m.name) and m.isdir():
                self.root = m
            yield m

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tf, name)


def _extract(stream: Any, dest: str) -> None:
    from dockyard.snapshots.extract import Extractor

    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            tf = tarfile.open(fileobj=stream, mode="r|*")
        except tarfile.TarError as e:
            raise InvalidArgument(f"import: not a tar archive: {e}") from None
        with tf:
            tap = _Tap(tf)
            Extractor(fd, allow_devices=False).extract(tap)  # type: ignore[arg-type]
        if tap.root is not None:
            r = tap.root
            os.chown(fd, r.uid, r.gid)
            os.chmod(fd, r.mode & 0o7777)
            os.utime(fd, (r.mtime, r.mtime))
    finally:
        os.close(fd)


def import_(vs: VolumeStore, name: str, path: str | IO[bytes] | None) -> None:
    """Fill volume ``name`` (created if missing, else it must be empty) from a tar file, a stream, or stdin
    (None)."""
    from dockyard.fsutil import rmtree
    from dockyard.volumes.copyup import is_empty
    from dockyard.volumes.store import is_mounted, lock

    stream: Any
    if path is None:
        stream = sys.stdin.buffer
    elif not isinstance(path, str):
        stream, path = path, None  # the caller's stream: it closes it
    else:
        try:
            stream = open(path, "rb")
        except OSError as e:
            raise from_oserror(f"open {path}", e) from None
    created = False
    try:
        try:
            v = vs.get(name)
        except NotFound:
            v, created = vs.create(name)
        data = vs.host_path(v.name)
        if v.needs_mount and data == vs.mountpoint(v.name) and not is_mounted(data):
            raise Conflict(f"import {name}: the volume's {v.options.get('type')} is mounted only while a "
                           "container uses it")
        with lock(vs.dir(v.name)):
            if not is_empty(data):
                raise Conflict(f"import {name}: volume is not empty")
            in_use = bool(vs.users(v.name, running_only=True)) or is_mounted(data) or data != vs.mountpoint(v.name)
            if in_use:
                _extract(stream, data)
                return
            staging = os.path.join(vs.dir(v.name), f"_import-{os.urandom(4).hex()}")
            os.mkdir(staging, 0o755)
            try:
                _extract(stream, staging)
                os.rename(staging, data)  # over the empty directory: all of it at once
            except BaseException:
                rmtree(staging)
                raise
    except BaseException:
        if created:
            try:
                vs.remove(name)
            except Exception:  # noqa: BLE001
                pass
        raise
    finally:
        if path is not None:
            stream.close()
