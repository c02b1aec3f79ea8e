"""A container's root filesystem and the files Docker writes for it (/etc/hostname, /etc/hosts, resolv.conf).

The root is an overlay mount at ``containers/<id>/rootfs``: the image's snapshots as lower dirs (topmost first),
``containers/<id>/diff`` as the upper dir (the container's changes, what ``diff``/``commit`` read) and
``containers/<id>/work`` as overlay's work dir.
"""

from __future__ import annotations

import os
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.oci.mounts import Mount

from dockyard import jsonc as json
from dockyard.engine.containers import Container
from dockyard.errors import NotFound, from_oserror
from dockyard.state.db import Store


def image_config(store: Store, c: Container) -> tuple[dict[str, Any], str | None]:
    """(the image's ``config`` section, its top chain ID) for a container."""
    rows = store.query("SELECT config, layers FROM images WHERE id=?", (c.image_id,))
    if not rows:
        raise NotFound(f"No such image: {c.image_ref}")
    from dockyard.snapshots.store import SnapshotStore

    cfg = json.loads(rows[0]["config"])
    top = SnapshotStore(store).top_of((cfg.get("rootfs") or {}).get("diff_ids") or [])
    return cfg.get("config") or {}, top


def mount(store: Store, c: Container) -> dict[str, Any]:
    """Mount the container's overlay root (if not mounted yet); returns the image's config section."""
    cfg, top = image_config(store, c)
    mount_root(store, top, c.dir(store))
    return cfg


def mount_root(store: Store, chain_id: str | None, cdir: str) -> str:
    """An overlay of snapshot ``chain_id`` (None: empty) with ``cdir/diff`` as upper, at ``cdir/rootfs``."""
    from dockyard.snapshots.store import SnapshotStore

    target = os.path.join(cdir, "rootfs")
    for sub in ("rootfs", "diff", "work"):
        os.makedirs(os.path.join(cdir, sub), exist_ok=True)
    if os.path.ismount(target):
        return target
    ss = SnapshotStore(store)
    mounts = ss.rootfs_mounts(chain_id, os.path.join(cdir, "diff"), os.path.join(cdir, "work"), target)
    if mounts[0].type == "erofs":  # layer images: shared mounts, mounted with the overlay under one lock
        with ss.mounts_lock():
            _apply_mounts(mounts)
    else:
        _apply_mounts(mounts)
    return target


def _apply_mounts(mounts: list[Mount]) -> None:
    from dockyard.runtime import syscalls

    for m in mounts:
        if m.type == "erofs":
            if not os.path.ismount(m.target):
                from dockyard.snapshots.erofs import mount_layer

                mount_layer(m.source, m.target)
            continue
        if m.type == "fuse-overlayfs":  # rootless, where the kernel refuses overlay (dockyard.rootless)
            from dockyard import rootless

            rootless.mount_fuse_overlay(m.options, m.target)
            continue
        flags = 0
        opts = []
        for o in m.options:
            if o == "ro":
                flags |= syscalls.MS_RDONLY
            elif o in ("bind", "rbind"):
                flags |= syscalls.MS_BIND | (syscalls.MS_REC if o == "rbind" else 0)
            else:
                opts.append(o)
        try:
            syscalls.mount(m.source, m.target, m.type, flags, ",".join(opts))
        except OSError as e:
            raise from_oserror(f"cannot mount {m.type} on {m.target}", e) from None


def unmount(store: Store, c: Container) -> None:
    unmount_root(c.dir(store))
    if any(m.type == "volume" for m in c.spec.mounts):  # volumes mounted on the host for it (tmpfs, binds...)
        from dockyard.volumes.attach import release

        release(store, c.id, c.spec.mounts)


def unmount_root(cdir: str) -> None:
    """Unmount the container's overlay, then the layer images no other mounted overlay uses."""
    from dockyard.runtime import syscalls

    target = os.path.join(cdir, "rootfs")
    if not os.path.ismount(target):
        return
    from dockyard.snapshots import erofs

    layers = [d for d in erofs.overlay_lowers(target) if erofs.layer_image(os.path.dirname(d))]
    while os.path.ismount(target):
        try:
            syscalls.umount2(target, syscalls.MNT_DETACH)
        except OSError:
            break
    if layers:
        with erofs.mounts_lock(os.path.dirname(os.path.dirname(layers[0]))):
            erofs.release(layers)


def _host_resolv(dns: list[str], nameserver: str | None = None) -> str:
    try:
        with open("/etc/resolv.conf") as f:
            lines = f.read().splitlines()
    except OSError:
        lines = []
    keep = []
    servers = []
    for ln in lines:
        parts = ln.split()
        if parts[:1] == ["nameserver"]:
            if len(parts) > 1 and not parts[1].startswith("127.") and parts[1] != "::1":
                servers.append(parts[1])
        elif ln.strip() and not ln.startswith("#"):
            keep.append(ln)
    if nameserver:  # a user-defined network's embedded DNS server (network.dns), as Docker's 127.0.0.11
        return f"nameserver {nameserver}\n" + "".join(ln + "\n" for ln in keep) + "options ndots:0\n"
    if dns:
        servers = dns
    if not servers:
        servers = ["8.8.8.8", "8.8.4.4"]  # Docker's fallback when the host only has a local resolver
    return "".join(f"nameserver {s}\n" for s in servers) + "".join(ln + "\n" for ln in keep)


def write_etc_files(store: Store, c: Container, hostname: str, ip: str | None = None,
                    nameserver: str | None = None) -> None:
    write_etc(c.dir(store), hostname, c.spec.extra_hosts, c.spec.dns, ip, nameserver)


def write_etc(cdir: str, hostname: str, extra_hosts: list[str], dns: list[str], ip: str | None = None,
              nameserver: str | None = None) -> None:
    """The /etc/hosts, /etc/hostname and /etc/resolv.conf Docker bind-mounts into every container."""
    from dockyard.fsutil import atomic_write

    hosts = ("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n"
             "ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
    for h in extra_hosts:
        name, _, addr = h.partition(":")
        hosts += f"{addr}\t{name}\n"
    if ip:
        hosts += f"{ip}\t{hostname}\n"
    atomic_write(os.path.join(cdir, "hosts"), hosts.encode(), durable=False)
    atomic_write(os.path.join(cdir, "hostname"), (hostname + "\n").encode(), durable=False)
    atomic_write(os.path.join(cdir, "resolv.conf"), _host_resolv(dns, nameserver).encode(), durable=False)
