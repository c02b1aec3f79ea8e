"""Layers as one EROFS image file each: building the image, mounting it, and letting go of it.

A layer is extracted by the safe extractor (``extract.Extractor``) into a private tmpfs mounted in the store's
root-only tmp dir (memory is fast at creating thousands of inodes; ``gc`` unmounts one a ``kill -9`` left), then
``mkfs.erofs`` turns
that tree into ``layer.erofs``: one file written sequentially instead of thousands of inode creations on a
slow-metadata disk. EROFS keeps what overlayfs needs of a layer: 0/0 character-device whiteouts and
``trusted.overlay.*`` xattrs (opaque directories), ownership, modes, file capabilities.

A layer image is mounted read-only at its snapshot's ``fs`` directory with the file itself as the source (file-backed
EROFS, Linux >= 6.12; no loop device) and serves as an overlay lower directory. One layer mount is shared by every
container whose root stacks it: ``mount_layers`` mounts what is not mounted yet, ``release`` unmounts the layers that
no mounted overlay lists any more. The kernel's mount table is the reference count (``/proc/self/mountinfo``), so a
crash cannot leave a wrong count; both run under ``snapshots/.mounts.lock`` so a layer is never unmounted between
another process mounting it and mounting the overlay on top of it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator

from dockyard.errors import DockyardError, from_oserror


class ImageFailed(DockyardError):
    """mkfs.erofs could not make a layer image of a tree (the caller may keep the layer unpacked instead)."""

IMAGE = "layer.erofs"
TAR = "layer.tar"  # an index image's data: a hard link to the layer's uncompressed blob in the content store
_LOCK = ".mounts.lock"

_unavailable: str | None | bool = False  # False: not probed yet


def unavailable() -> str | None:
    """None when this host can keep layers as EROFS images, else why not (stated by ``info``)."""
    global _unavailable
    if _unavailable is False:
        _unavailable = _probe()
    return _unavailable  # type: ignore[return-value]


def _probe() -> str | None:
    try:
        with open("/proc/filesystems") as f:
            if not any(ln.split()[-1:] == ["erofs"] for ln in f):
                return "the kernel has no erofs file system"
    except OSError:
        return "cannot read /proc/filesystems"
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    except ValueError:
        return "cannot tell the kernel version"
    if (major, minor) < (6, 12):
        return "the kernel cannot mount EROFS from a file (needs Linux 6.12)"
    import shutil

    if shutil.which("mkfs.erofs") is None:
        return "mkfs.erofs not found (install erofs-utils)"
    return None


def root_can_mount(snapshots_dir: str) -> bool:
    """Whether layer images stored under ``snapshots_dir`` can be mounted: the kernel mounts EROFS from a file only
    where that file system supports it (not from tmpfs: "block device required"). Probed once per state root by
    mounting a tiny image made there; the answer is kept in ``snapshots_dir/.erofs`` ("yes"/"no")."""
    import tempfile

    mark = os.path.join(snapshots_dir, ".erofs")
    try:
        with open(mark) as f:
            return f.read().strip() == "yes"
    except FileNotFoundError:
        pass
    from dockyard.runtime import syscalls

    os.makedirs(snapshots_dir, 0o700, exist_ok=True)
    ok = False
    d = tempfile.mkdtemp(prefix=".probe-", dir=snapshots_dir)
    try:
        os.mkdir(os.path.join(d, "src"))
        os.mkdir(os.path.join(d, "mnt"))
        make_image(os.path.join(d, "src"), os.path.join(d, IMAGE))
        try:
            syscalls.mount(os.path.join(d, IMAGE), os.path.join(d, "mnt"), "erofs", syscalls.MS_RDONLY, "")
            ok = True
            syscalls.umount2(os.path.join(d, "mnt"), syscalls.MNT_DETACH)
        except OSError:
            ok = False
    except DockyardError:
        ok = False
    finally:
        import shutil

        shutil.rmtree(d, ignore_errors=True)
    from dockyard.fsutil import atomic_write

    atomic_write(mark, b"yes\n" if ok else b"no\n", durable=False)
    return ok


def layer_image(snapshot_dir: str) -> str | None:
    """The EROFS image of the snapshot stored in ``snapshot_dir``, or None for an unpacked directory."""
    p = os.path.join(snapshot_dir, IMAGE)
    return p if os.path.exists(p) else None


# -- building ---------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def private_tmpfs(staging: str) -> Iterator[int]:
    """A fresh tmpfs at ``staging/tree`` (inside the root-only tmp dir), yielded as an fd on its root and
    unmounted after. (A detached ``fsmount`` would leak nothing even on ``kill -9``, but mkfs.erofs 1.5
    canonicalises its source path and would read the host's root instead; ``gc`` unmounts a leftover.)"""
    from dockyard.runtime import syscalls

    tree = os.path.join(staging, "tree")
    os.mkdir(tree, 0o700)
    syscalls.mount("tmpfs", tree, "tmpfs", syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC, "mode=0755")
    try:
        fd = os.open(tree, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | os.O_NOFOLLOW)
        try:
            yield fd
        finally:
            os.close(fd)
    finally:
        syscalls.umount2(tree, syscalls.MNT_DETACH)
        os.rmdir(tree)


def make_image(src: str, out: str) -> None:
    """Write the tree at ``src`` (a private mount no one else writes to) as the EROFS image ``out``; fsync it."""
    _mkfs(["mkfs.erofs", "--quiet", "--preserve-mtime", "-x1", out, src], out, "mkfs.erofs")


def _mkfs(argv: list[str], out: str, what: str) -> None:
    """Run mkfs.erofs (``argv``), its last error line as the one-line error, then fsync the image ``out``."""
    import subprocess

    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, check=False)
    except OSError as e:
        raise ImageFailed(f"cannot run {argv[0]}: {e.strerror}") from None  # the callers fall back
    if r.returncode != 0:
        msg = r.stderr.decode(errors="replace").strip().splitlines()
        raise ImageFailed(f"{what} failed: {msg[-1] if msg else 'exit status ' + str(r.returncode)}")
    fd = os.open(out, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_index_tool: str | None | bool = False


def index_tool() -> str | None:
    """The mkfs.erofs that can index a tar in place (erofs-utils >= 1.7, built by scripts/build-erofs-utils.sh into
    the libexec directory as ``erofs/mkfs.erofs``), or None (the system's 1.5 cannot)."""
    global _index_tool
    if _index_tool is False:
        from dockyard import libexec

        _index_tool = libexec.find("erofs/mkfs.erofs")
    return _index_tool  # type: ignore[return-value]


def make_index_image(tar: str, out: str) -> None:
    """Write ``out``, an EROFS metadata image whose file data is read from ``tar`` (mounted as its extra device;
    OCI whiteouts become overlayfs ones: ``--aufs``); fsync it. The caller has checked ``tar`` (``tarindex.scan``)."""
    tool = index_tool()
    if tool is None:
        raise ImageFailed("no mkfs.erofs with --tar")
    _mkfs([tool, "--tar=i", "--aufs", "--quiet", out, tar], out, "mkfs.erofs --tar=i")


# -- mounting ---------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def mounts_lock(snapshots_dir: str) -> Iterator[None]:
    fd = os.open(os.path.join(snapshots_dir, _LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _unescape(s: str) -> str:
    if "\\" not in s:
        return s
    import re

    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def _mountinfo() -> list[tuple[str, str, str]]:
    """(mount point, fs type, super options) of every mount in this mount namespace."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for ln in f:
            left, _, right = ln.partition(" - ")
            lf, rf = left.split(" "), right.split(" ")
            if len(lf) < 5 or len(rf) < 3:
                continue
            out.append((_unescape(lf[4]), rf[0], rf[2].rstrip("\n")))
    return out


def _lowers_of(superopts: str) -> list[str]:
    for o in superopts.split(","):
        if o.startswith("lowerdir="):
            return [_unescape(p) for p in o[len("lowerdir="):].split(":") if p]
    return []


def overlay_lowers(target: str) -> list[str]:
    """The lower directories of the overlay mounted at ``target`` (topmost mount there), [] if none."""
    target = os.path.realpath(target)
    lowers: list[str] = []
    for mp, fstype, opts in _mountinfo():
        if mp == target and fstype == "overlay":
            lowers = _lowers_of(opts)
    return lowers


def is_mounted(path: str) -> bool:
    return os.path.ismount(path)


def mount_layer(image: str, target: str) -> None:
    from dockyard.runtime import syscalls

    data = ""
    tar = os.path.join(os.path.dirname(image), TAR)
    if os.path.exists(tar):  # an index image: its file data is in the layer tar, its extra device
        if "," in tar:
            raise DockyardError(f"cannot mount layer image {image}: its path contains ','")
        data = "device=" + tar
    try:
        syscalls.mount(image, target, "erofs", syscalls.MS_RDONLY, data)
    except OSError as e:
        raise from_oserror(f"cannot mount layer image {image}", e) from None


def release(lowers: list[str]) -> None:
    """Unmount those of ``lowers`` that are layer-image mounts no mounted overlay uses any more.

    The caller holds ``mounts_lock``."""
    layer_mounts = [p for p in lowers if layer_image(os.path.dirname(p)) is not None]
    if not layer_mounts:
        return
    from dockyard.runtime import syscalls

    table = _mountinfo()
    used: set[str] = set()
    for _, fstype, opts in table:
        if fstype == "overlay":
            used.update(_lowers_of(opts))
    mounted = {mp for mp, fstype, _ in table if fstype == "erofs"}
    for p in layer_mounts:
        rp = os.path.realpath(p)
        if rp in mounted and rp not in used and p not in used:
            with contextlib.suppress(OSError):
                syscalls.umount2(p, syscalls.MNT_DETACH)


def unmount_all_under(snapshot_dir: str) -> None:
    """Detach the layer mount of a snapshot about to be deleted (whoever still uses it keeps its own reference)."""
    from dockyard.runtime import syscalls

    for sub in ("fs", "tree"):  # a layer mount; a staging tmpfs left by a kill -9
        p = os.path.join(snapshot_dir, sub)
        while os.path.ismount(p):
            try:
                syscalls.umount2(p, syscalls.MNT_DETACH)
            except OSError:
                break
