"""The engine's system verbs: ``version``, ``info``, and the disk usage the API's ``/system/df`` reports.

dockyard has no daemon: "the engine" is this library working on one state root, so ``version`` describes the
library and ``info`` counts what the root holds.

    print(info(store).containers_running)
"""

from __future__ import annotations

import os
import platform

from dockyard.engine.options import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.engine.images import ImageSummary
    from dockyard.engine.volumes import VolumeSummary
    from dockyard.state.db import Store

RUNTIMES = ["dockyard", "runc", "crun"]


class VersionInfo(Record):
    FIELDS = {"version": "", "os": "linux", "arch": "", "kernel_version": "", "root": "", "runtimes": []}
    if TYPE_CHECKING:
        version: str
        os: str
        arch: str           # Go's name: amd64, arm64
        kernel_version: str
        root: str
        runtimes: list[str]


class SystemInfo(Record):
    FIELDS = {"containers": 0, "containers_running": 0, "containers_paused": 0, "containers_stopped": 0,
              "images": 0, "server_version": "", "storage_driver": "overlay", "logging_driver": "json-file",
              "cgroup_version": "2", "runtimes": [], "default_runtime": "dockyard", "kernel_version": "",
              "operating_system": "", "os_type": "linux", "architecture": "", "cpus": 0, "mem_total": 0,
              "root": "", "driver_status": [], "warnings": [], "security_options": []}
    if TYPE_CHECKING:
        warnings: list[str]  # Docker's Warnings: here the host's missing optional dependencies
        security_options: list[str]  # Docker's SecurityOptions: "name=rootless" for a rootless user
        driver_status: list[list[str]]  # Docker's DriverStatus pairs: how layers are kept here
        containers: int
        containers_running: int
        containers_paused: int
        containers_stopped: int
        images: int
        server_version: str
        storage_driver: str
        logging_driver: str
        cgroup_version: str
        runtimes: list[str]
        default_runtime: str
        kernel_version: str
        operating_system: str
        os_type: str
        architecture: str   # the kernel's name: x86_64, aarch64
        cpus: int
        mem_total: int
        root: str


class VolumeUsage(Record):
    FIELDS = {"volume": None, "size": 0, "ref_count": 0}
    if TYPE_CHECKING:
        volume: VolumeSummary
        size: int           # bytes under the volume's data directory
        ref_count: int      # containers using it


class DiskUsage(Record):
    """``system df``: ``images`` (with ``containers`` per image ID), ``volumes`` with sizes, the build cache."""

    FIELDS = {"images": [], "image_containers": {}, "layers_size": 0, "volumes": [], "build_cache_size": 0}
    if TYPE_CHECKING:
        images: list[ImageSummary]
        image_containers: dict[str, int]
        layers_size: int    # bytes of unpacked layers, each shared layer counted once
        volumes: list[VolumeUsage]
        build_cache_size: int


def go_arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def version(store: Store) -> VersionInfo:
    from dockyard import __version__

    return VersionInfo(version=__version__, arch=go_arch(), kernel_version=platform.release(), root=store.root,
                       runtimes=list(RUNTIMES))


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for ln in f:
                if ln.startswith("PRETTY_NAME="):
                    return ln.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _mem_total() -> int:
    try:
        with open("/proc/meminfo") as f:
            for ln in f:
                if ln.startswith("MemTotal:"):
                    return int(ln.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def info(store: Store) -> SystemInfo:
    """``info``: counts of containers by state and of images, and the host's facts."""
    from dockyard import __version__, libexec
    from dockyard.runtime import cgroups

    by = {r["state"]: r["n"] for r in store.query("SELECT state, COUNT(*) AS n FROM containers GROUP BY state")}
    n_img = store.query("SELECT COUNT(*) AS n FROM images")[0]["n"]
    return SystemInfo(containers=sum(by.values()), containers_running=by.get("running", 0),
                      containers_paused=by.get("paused", 0),
                      containers_stopped=by.get("exited", 0) + by.get("created", 0), images=n_img,
                      server_version=__version__, cgroup_version="2" if cgroups.is_v2() else "1",
                      runtimes=list(RUNTIMES), kernel_version=platform.release(), operating_system=_os_name(),
                      architecture=platform.machine(), cpus=os.cpu_count() or 0, mem_total=_mem_total(),
                      root=store.root, driver_status=_layer_status(),
                      **{"warnings": libexec.missing_system_deps(), **_rootless_info()})


def _rootless_info() -> dict[str, Any]:
    """For a non-root user: Docker's ``name=rootless`` security option, and what rootless mode lacks here."""
    from dockyard import rootless

    if not (rootless.active() or os.environ.get(rootless.FAILED)):
        return {}
    problems = rootless.missing()
    failed = os.environ.get(rootless.FAILED)
    if failed and not problems:  # a cause missing() does not name
        problems.append(failed)
    from dockyard import libexec

    out: dict[str, Any] = {"security_options": ["name=rootless"],
                           "warnings": libexec.missing_system_deps() + problems}
    if rootless.active() and os.environ.get(rootless.DATA_ENV):  # Docker's rootless names fuse-overlayfs here too
        out["storage_driver"] = rootless.overlay_driver(os.path.join(os.environ[rootless.DATA_ENV], "snapshots"))
    return out


def _layer_status() -> list[list[str]]:
    from dockyard.snapshots.store import default_backend

    if default_backend() == "erofs":
        from dockyard.snapshots.erofs import index_tool

        how = ("; an uncompressed layer tar is the layer's data, indexed in place" if index_tool() else
               "; layer tars are unpacked into each image (no mkfs.erofs with --tar=i)")
        return [["Layers", f"erofs (one image file per layer, mounted from the file{how})"]]
    from dockyard.snapshots.erofs import unavailable

    why = unavailable()
    return [["Layers", "unpacked directories" + (f" (no EROFS: {why})" if why else "")]]


def _tree_size(path: str) -> int:
    from dockyard.volumes.store import disk_usage

    return disk_usage(path) if os.path.isdir(path) else 0


def disk_usage(store: Store) -> DiskUsage:
    """What the root's images, volumes and build cache take on disk."""
    from dockyard.engine.images import list_images
    from dockyard.engine.volumes import list_volumes

    images = list_images(store, all=True)
    per_image: dict[str, int] = {}
    for r in store.query("SELECT image_id, COUNT(*) AS n FROM containers GROUP BY image_id"):
        if r["image_id"]:
            per_image[r["image_id"]] = r["n"]
    layers = store.query("SELECT COALESCE(SUM(size), 0) AS n FROM snapshots")[0]["n"]
    from dockyard.volumes.store import VolumeStore

    users = VolumeStore(store).users()
    vols = [VolumeUsage(volume=v, size=_tree_size(v.mountpoint), ref_count=len(users.get(v.name, [])))
            for v in list_volumes(store)]
    cache = _tree_size(store.path("build-cache-mounts"))
    return DiskUsage(images=images, image_containers=per_image, layers_size=int(layers), volumes=vols,
                     build_cache_size=cache)
