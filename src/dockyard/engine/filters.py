"""Listing containers with Docker's ``ps`` filters (GET /containers/json), and the filter helpers prune uses.

Filters arrive as ``(key, value)`` pairs, as ``--filter key=value`` gives them (the API's JSON ``filters`` map is
the same pairs). Values of one key are alternatives (OR); different keys must all match (AND), as in Docker:

    list_containers(store, all=True, filters=[("status", "exited"), ("label", "tier=web")])

Keys: ``id`` and ``name`` (regular expressions, searched), ``label`` (``k`` or ``k=v``), ``status``
(created|restarting|running|removing|paused|exited|dead), ``exited`` (exit code), ``ancestor`` (image reference or
ID), ``before`` and ``since`` (a container: created before/after it), ``volume`` (volume name or mount target),
``network`` (name or ID), ``publish`` and ``expose`` (``port[-port][/proto]``, container side), ``health``
(``starting``/``healthy``/``unhealthy`` of a running container's healthcheck, ``none`` for the others), ``isolation`` (``default``), ``is-task`` (never a
swarm task). Any other key is refused, as Docker refuses it.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.engine.containers import Container
    from dockyard.engine.records import ContainerRow, PortRow
    from dockyard.state.db import Store

from dockyard.errors import InvalidArgument

PS_FILTERS = ("id", "name", "label", "status", "exited", "ancestor", "before", "since", "volume", "network",
              "publish", "expose", "health", "isolation", "is-task")
STATES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def parse(values: list[str]) -> list[tuple[str, str]]:
    """``--filter`` arguments -> pairs (``key=value``; a bare ``key`` has the value "")."""
    out = []
    for f in values:
        k, _, v = f.partition("=")
        out.append((k.strip().lower(), v))
    return out


def group(filters: list[tuple[str, str]], allowed: tuple[str, ...], what: str = "") -> dict[str, list[str]]:
    by: dict[str, list[str]] = {}
    for k, v in filters:
        if k not in allowed:
            raise InvalidArgument(f"invalid filter '{k}'")
        by.setdefault(k, []).append(v)
    return by


def time_value(value: str) -> float:
    from dockyard.timeparse import parse_time

    t = parse_time(value)
    if t is None:
        raise InvalidArgument(f'failed to parse value as time or duration: "{value}"')
    return t


def labels_match(labels: dict[str, str], want: list[str], refuse: list[str] = []) -> bool:  # noqa: B006
    """``label=k`` / ``label=k=v`` all present; ``label!=...`` none present."""
    def has(item: str) -> bool:
        k, sep, v = item.partition("=")
        return k in labels and (not sep or labels[k] == v)

    return all(has(x) for x in want) and not any(has(x) for x in refuse)


def dir_size(path: str) -> int:
    """Bytes of the regular files and symlinks under ``path`` (hard links counted once), as Docker's SizeRw."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for dirpath, _dirnames, filenames in os.walk(path):
        for n in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, n))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def sizes(store: Store, c: Container) -> tuple[int, int]:
    """(the container's writable layer, that plus its image): Docker's SizeRw and SizeRootFs."""
    rw = dir_size(os.path.join(c.dir(store), "diff"))
    rows = store.query("SELECT size FROM images WHERE id=?", (c.image_id,)) if c.image_id else []
    return rw, rw + (int(rows[0]["size"]) if rows else 0)


def _regex(v: str) -> Any:
    import re

    try:
        return re.compile(v)
    except re.error as e:
        raise InvalidArgument(f"invalid filter value {v!r}: {e}") from None


def _port_set(values: list[str]) -> set[str]:
    out: set[str] = set()
    for v in values:
        rng, _, proto = v.partition("/")
        proto = (proto or "tcp").lower()
        lo, _, hi = rng.partition("-")
        if not lo.isascii() or not lo.isdigit() or (hi and (not hi.isascii() or not hi.isdigit())):
            raise InvalidArgument(f"invalid port range: {v!r}")
        a, b = int(lo), int(hi or lo)
        if not (0 < a <= b <= 65535) or proto not in ("tcp", "udp", "sctp"):
            raise InvalidArgument(f"invalid port range: {v!r}")
        out.update(f"{p}/{proto}" for p in range(a, b + 1))
    return out


def _exposed(store: Store, c: Container) -> set[str]:
    from dockyard.engine.rootfs import image_config
    from dockyard.errors import NotFound

    out = {f"{p['container_port']}/{p['proto']}" for p in c.spec.ports}
    try:
        for k in image_config(store, c)[0].get("ExposedPorts") or {}:
            out.add(k if "/" in k else k + "/tcp")
    except NotFound:
        pass
    return out


def _network_ids(store: Store, values: list[str]) -> set[str]:
    from dockyard.errors import DockyardError
    from dockyard.network.store import NetworkStore

    ns = NetworkStore(store)
    out = set(v for v in values if v in ("host", "none"))
    for v in values:
        try:
            out.add(ns.get(v).id)
        except DockyardError:
            pass
    return out


def _container_networks(store: Store, c: Container) -> set[str]:
    from dockyard.errors import DockyardError
    from dockyard.network.store import NetworkStore

    mode = c.spec.network_mode
    if mode in ("host", "none"):
        return {mode}
    if mode.startswith("container:"):
        return set()
    out = {r["network_id"] for r in store.query(
        "SELECT network_id FROM endpoints WHERE container_id=? AND connected", (c.id,))}
    try:
        out.add(NetworkStore(store).get(mode).id)
    except DockyardError:
        pass
    return out


class _Matcher:
    def __init__(self, store: Store, by: dict[str, list[str]]) -> None:
        self.store, self.by = store, by
        for v in by.get("status", []):
            if v not in STATES:
                raise InvalidArgument(f"invalid filter 'status={v}'")
        for v in by.get("exited", []):
            if not v.lstrip("-").isascii() or not v.lstrip("-").isdigit():
                raise InvalidArgument(f"invalid filter 'exited={v}'")
        for v in by.get("health", []):
            if v not in ("starting", "healthy", "unhealthy", "none"):
                raise InvalidArgument(f"Unrecognised filter value for health: {v}")
        for v in by.get("isolation", []):
            if v not in ("default", "process", "hyperv"):
                raise InvalidArgument(f"Invalid isolation: '{v}'")
        for v in by.get("is-task", []):
            if v not in ("true", "false"):
                raise InvalidArgument(f"Invalid filter 'is-task={v}'")
        self.names = [_regex(v) for v in by.get("name", [])]
        self.ids = [_regex(v) for v in by.get("id", [])]
        by_ref: dict[str, float] = {}
        for key in ("before", "since"):
            for v in by.get(key, []):
                from dockyard.engine.containers import ContainerStore

                by_ref[key] = ContainerStore(store).get(v).created  # NotFound "No such container: v", as Docker
        self.before, self.since = by_ref.get("before"), by_ref.get("since")
        self.publish = _port_set(by["publish"]) if "publish" in by else None
        self.expose = _port_set(by["expose"]) if "expose" in by else None
        self.networks = _network_ids(store, by["network"]) if "network" in by else None

    def __call__(self, c: Container) -> bool:
        by = self.by
        if "status" in by and c.state not in by["status"]:
            return False
        if self.names and not any(r.search("/" + c.name) for r in self.names):
            return False
        if self.ids and not any(r.search(c.id) for r in self.ids):
            return False
        if "exited" in by and not (c.state == "exited" and str(c.exit_code) in by["exited"]):
            return False
        if "ancestor" in by and not any(v in (c.image_ref, c.image_id) or (c.image_id or "").startswith(
                "sha256:" + v) for v in by["ancestor"]):
            return False
        if "label" in by and not labels_match(c.labels, by["label"]):
            return False
        if self.before is not None and c.created >= self.before:
            return False
        if self.since is not None and c.created <= self.since:
            return False
        if "volume" in by and not any(m.type == "volume" and v in (m.source, m.target) or
                                      m.type == "bind" and v in (m.source, m.target)
                                      for m in c.spec.mounts for v in by["volume"]):
            return False
        if self.networks is not None and not (self.networks & _container_networks(self.store, c)):
            return False
        if self.publish is not None and not self.publish & {
                f"{p['container_port']}/{p['proto']}" for p in c.spec.ports} | (
                _exposed(self.store, c) if c.spec.publish_all else set()):
            return False
        if self.expose is not None and not (self.expose & _exposed(self.store, c)):
            return False
        if "health" in by:
            from dockyard.engine import health

            if (health.status(self.store, c) or "none") not in by["health"]:
                return False
        if "is-task" in by and "false" not in by["is-task"]:
            return False
        return True


def _ports(store: Store, c: Container) -> list[PortRow]:
    if not c.running or not c.config.get("ports") and not c.config.get("publish_all"):
        return []  # nothing published: no query
    from dockyard.engine.records import PortRow

    return [PortRow(r["host_ip"] or "0.0.0.0", int(r["host_port"]), int(r["container_port"]), r["proto"])
            for r in store.query("SELECT * FROM ports WHERE container_id=? ORDER BY container_port", (c.id,))]


def _health(store: Store, c: Container) -> str:
    if not c.config.get("healthcheck"):
        return ""
    from dockyard.engine import health

    return health.status(store, c)


def health_suffix(h: str) -> str:
    """``(healthy)``, ``(unhealthy)``, ``(health: starting)`` after a running container's status, as Docker."""
    return {"starting": " (health: starting)", "healthy": " (healthy)", "unhealthy": " (unhealthy)"}.get(h, "")


def row(store: Store, c: Container, size: bool = False) -> ContainerRow:
    from dockyard.engine.records import ContainerRow
    from dockyard.timeparse import status_text

    ports = _ports(store, c)
    h = _health(store, c)
    rw = root = None
    if size:
        rw, root = sizes(store, c)
    return ContainerRow(
        id=c.id, name=c.name, image=c.image_ref, image_id=c.image_id or "",
        command=list(c.config.get("entrypoint") or []) + list(c.config.get("cmd") or []), created=c.created,
        state=c.state, status=status_text(c.state, c.exit_code, c.started, c.finished) + health_suffix(h),
        exit_code=c.exit_code, health=h,
        started=c.started, finished=c.finished, labels=dict(c.labels),
        network_mode=c.config.get("network_mode", ""), ports=ports,
        ports_text=", ".join(f"{p.host_ip}:{p.host_port}->{p.container_port}/{p.proto}" for p in ports),
        mounts=[m.source or m.target for m in c.spec.mounts] if c.config.get("mounts") else [],
        size_rw=rw, size_root_fs=root)


def list_containers(store: Store, all: bool = False, filters: list[tuple[str, str]] | None = None,
                    latest: bool = False, last: int = -1, size: bool = False) -> list[ContainerRow]:
    """Docker's ``ps``: running containers (every one with ``all``, ``latest``, ``last`` >= 0 or a ``status``/
    ``exited`` filter), newest first, that match every filter; ``size`` adds the writable layer's bytes."""
    from dockyard.engine.containers import ContainerStore

    filters = filters or []
    by = group(filters, PS_FILTERS)
    show_all = all or latest or last >= 0 or "status" in by or "exited" in by
    cs = ContainerStore(store).list(all=show_all)
    match = _Matcher(store, by)
    cs = [c for c in cs if (show_all or c.running) and match(c)]
    if latest:
        cs = cs[:1]
    elif last >= 0:
        cs = cs[:last]
    return [row(store, c, size) for c in cs]
