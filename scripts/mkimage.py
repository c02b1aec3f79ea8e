#!/usr/bin/env python3
"""Make deterministic rootfs tars for dockyard's local base images (no registry needed).

    mkimage.py busybox OUT.tar [BINARY]    /bin/busybox from Debian's busybox-static + one symlink per applet
    mkimage.py hello-world OUT.tar BINARY  a single static /hello
    mkimage.py dir OUT.tar DIR             any directory (e.g. a debootstrap tree), numeric owners kept

Entries are sorted, owned by their numeric ids, and dated SOURCE_DATE_EPOCH (default 0 -> 2000-01-01), so the
same inputs always give the same tar, hence the same image ID.
"""

from __future__ import annotations

import io
import os
import sys
import tarfile

EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "946684800"))  # 2000-01-01T00:00:00Z


def _info(name: str, type_: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.size, ti.linkname = type_, mode, size, link
    ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = EPOCH, 0, 0, "", ""
    return ti


def _write(out: str, entries: list[tuple[tarfile.TarInfo, bytes | None]], sort: bool = True) -> None:
    if sort:
        entries.sort(key=lambda e: e[0].name)
    tmp = out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tf:
        for ti, data in entries:
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    os.rename(tmp, out)


def _dirs(*names: str, mode: int = 0o755) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    return [(_info(n, tarfile.DIRTYPE, mode), None) for n in names]


def _file(name: str, data: bytes, mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    return _info(name, tarfile.REGTYPE, mode, len(data)), data


ETC = [
    _file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
          b"bin:x:2:2:bin:/bin:/bin/false\nsys:x:3:3:sys:/dev:/bin/false\n"
          b"www-data:x:33:33:www-data:/var/www:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n"),
    _file("etc/group", b"root:x:0:\ndaemon:x:1:\nbin:x:2:\nsys:x:3:\nadm:x:4:\ntty:x:5:\ndisk:x:6:\n"
          b"wheel:x:10:root\nwww-data:x:33:\nusers:x:100:\nnogroup:x:65534:\n"),
    _file("etc/shadow", b"root:*::0:::::\nnobody:*::0:::::\n", 0o600),
]


def busybox(out: str, binary: str = "/bin/busybox") -> None:
    """``binary`` may be another architecture's busybox-static (the applet list is the host's: same package)."""
    bb = "/bin/busybox"
    with open(binary, "rb") as f:
        data = f.read()
    entries = _dirs("bin", "dev", "etc", "home", "proc", "sbin", "sys", "usr", "usr/bin", "usr/sbin", "var",
                    "var/spool", "var/www")
    entries += _dirs("root", mode=0o700) + _dirs("tmp", mode=0o1777)
    entries.append(_file("bin/busybox", data, 0o755))
    entries += ETC
    seen = {"bin/busybox"}
    for line in os.popen(f"{bb} --list-full").read().split():
        if line not in seen:
            seen.add(line)
            entries.append((_info(line, tarfile.SYMTYPE, 0o777, link="/bin/busybox"), None))
    _write(out, entries)


def hello(out: str, binary: str) -> None:
    with open(binary, "rb") as f:
        data = f.read()
    _write(out, [_file("hello", data, 0o755)])


def directory(out: str, src: str) -> None:
    entries: list[tuple[tarfile.TarInfo, bytes | None]] = []
    tf = tarfile.TarFile(fileobj=io.BytesIO(), mode="w")
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()  # walk order is the tar order: deterministic, and hardlink targets come first
        for n in dirnames + sorted(filenames):
            p = os.path.join(dirpath, n)
            ti = tf.gettarinfo(p, os.path.relpath(p, src))
            ti.mtime = min(int(ti.mtime), EPOCH) if "SOURCE_DATE_EPOCH" in os.environ else int(ti.mtime)
            ti.uname = ti.gname = ""
            data = None
            if ti.isreg():
                with open(p, "rb") as f:
                    data = f.read()
            entries.append((ti, data))
    _write(out, entries, sort=False)


if __name__ == "__main__":
    kind = sys.argv[1] if len(sys.argv) > 1 else ""
    if kind == "busybox" and len(sys.argv) in (3, 4):
        busybox(*sys.argv[2:4])
    elif kind == "hello-world" and len(sys.argv) == 4:
        hello(sys.argv[2], sys.argv[3])
    elif kind == "dir" and len(sys.argv) == 4:
        directory(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
