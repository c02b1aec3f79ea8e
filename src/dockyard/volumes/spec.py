"""Mount syntax, both spellings, with Docker's rules and error messages; results are plain dicts in the JSON form
of ``engine.options.MountSpec`` (so the CLI and, later, the API's ``Binds``/``Mounts`` share one parser).

- ``-v`` / ``Binds``: ``SRC:DST[:MODE]`` or ``DST``. An absolute SRC is a bind mount, anything else a volume name
  (validated as one: ``relative/path`` is refused with Docker's "includes invalid characters" message), a lone DST
  is an anonymous volume. MODE is a comma list of at most one each of ``ro|rw``, ``z|Z``, a propagation, ``nocopy``
  and a consistency (``consistent|cached|delegated``).
- ``--mount``: ``type=volume|bind|tmpfs,source=|src=,target=|dst=|destination=,readonly|ro[=BOOL],
  volume-nocopy[=BOOL],volume-opt=K=V,volume-label=K=V,volume-driver=,bind-propagation=,tmpfs-size=,tmpfs-mode=``.
- ``--volumes-from CONTAINER[:ro|rw]``: kept as ``{"type": "volumes-from"}`` until the engine resolves it.

``validate`` then applies the engine's checks (Docker's daemon-side ``invalid mount config for type ...``).
"""

from __future__ import annotations

import posixpath
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

from dockyard.errors import InvalidArgument

PROPAGATIONS = ("private", "rprivate", "slave", "rslave", "shared", "rshared")
_RW = ("ro", "rw")
_LABEL = ("z", "Z")
_COPY = ("nocopy",)
_CONSISTENCY = ("consistent", "cached", "delegated", "default")


def _mount(**kw: Any) -> dict[str, Any]:
    m: dict[str, Any] = {"type": "volume", "source": "", "target": "", "readonly": False, "options": [],
                         "mode": "", "nocopy": False, "volume_driver": "", "volume_options": {},
                         "volume_labels": {}}
    m.update(kw)
    return m


def valid_mode(mode: str) -> bool:
    if not mode:
        return True
    counts = [0, 0, 0, 0, 0]
    for o in mode.split(","):
        for i, group in enumerate((_RW, _LABEL, PROPAGATIONS, _COPY, _CONSISTENCY)):
            if o in group:
                counts[i] += 1
                break
        else:
            return False
    return max(counts) <= 1


class _Bad(Exception):
    pass


def parse_volume(raw: str) -> dict[str, Any]:
    """One ``-v`` value."""
    arr = raw.split(":")
    if not arr[0] or len(arr) > 3:
        raise InvalidArgument(f"invalid volume specification: '{raw}'")
    mode = ""
    if len(arr) == 1:
        src, dst = "", arr[0]
    elif len(arr) == 2:
        if valid_mode(arr[1]):  # "/foo:rw": a destination with a mode is not a volume
            raise InvalidArgument(f"invalid volume specification: '{raw}'")
        src, dst = arr
    else:
        src, dst, mode = arr
    if not valid_mode(mode):
        raise InvalidArgument(f"invalid mode: {mode}")
    opts = mode.split(",") if mode else []
    typ = "bind" if src.startswith("/") else "volume"
    m = _mount(type=typ, source=src, target=dst, readonly="ro" in opts, mode=mode)
    props = [o for o in opts if o in PROPAGATIONS]
    try:
        if typ == "volume":
            if props:
                raise _Bad("field BindOptions must not be specified")
            m["nocopy"] = "nocopy" in opts
        else:
            if "nocopy" in opts:
                raise _Bad("field VolumeOptions must not be specified")
            m["options"] = props
            m["source"] = posixpath.normpath(src)
        _check(m)
    except _Bad as e:
        raise InvalidArgument(f"invalid volume specification: '{raw}': invalid mount config for type "
                              f'"{typ}": {e}') from None
    if typ == "volume" and src:
        from dockyard.volumes.store import validate_name

        validate_name(src)
    return m


def _bool(key: str, val: str) -> bool:
    v = val.lower()
    if v in ("1", "t", "true"):
        return True
    if v in ("0", "f", "false"):
        return False
    raise ValueError(f"invalid value for {key}: {val}")


def _fields(value: str) -> list[str]:
    if '"' not in value:
        return value.split(",")
    import csv

    return next(csv.reader([value]))


def parse_mount(value: str) -> dict[str, Any]:
    """One ``--mount`` value (Docker CLI's rules; errors worded as its flag parser words them)."""
    try:
        return _parse_mount(value)
    except ValueError as e:
        raise InvalidArgument(f'invalid argument "{value}" for "--mount" flag: {e}') from None


def _parse_mount(value: str) -> dict[str, Any]:
    m = _mount()
    seen: set[str] = set()  # option groups used: volume, bind, tmpfs
    tmpfs: list[str] = []
    for field in _fields(value):
        key, eq, val = field.partition("=")
        key = key.lower()
        if not eq:
            if key in ("readonly", "ro"):
                m["readonly"] = True
            elif key == "volume-nocopy":
                m["nocopy"] = True
                seen.add("volume")
            elif key in ("bind-nonrecursive", "bind-recursive"):
                seen.add("bind")
            else:
                raise ValueError(f"invalid field '{field}' must be a key=value pair")
            continue
        if key == "type":
            m["type"] = val.lower()
        elif key in ("source", "src"):
            m["source"] = val
        elif key in ("target", "dst", "destination"):
            m["target"] = val
        elif key in ("readonly", "ro"):
            m["readonly"] = _bool(key, val)
        elif key == "consistency":
            pass
        elif key == "bind-propagation":
            seen.add("bind")
            m["options"] = [val.lower()]
        elif key in ("bind-nonrecursive", "bind-recursive"):
            seen.add("bind")
        elif key == "volume-nocopy":
            seen.add("volume")
            m["nocopy"] = _bool(key, val)
        elif key == "volume-label":
            seen.add("volume")
            k, _, v = val.partition("=")
            m["volume_labels"][k] = v
        elif key == "volume-driver":
            seen.add("volume")
            m["volume_driver"] = val
        elif key == "volume-opt":
            seen.add("volume")
            k, _, v = val.partition("=")
            m["volume_options"][k] = v
        elif key == "volume-subpath":
            seen.add("volume")
            raise ValueError("volume-subpath is not supported")
        elif key == "tmpfs-size":
            seen.add("tmpfs")
            size = _ram_bytes(key, val)
            tmpfs.append("size=" + _size_suffix(size))
        elif key == "tmpfs-mode":
            seen.add("tmpfs")
            try:
                tmpfs.append(f"mode={int(val, 8):o}")
            except ValueError:
                raise ValueError(f"invalid value for {key}: {val}") from None
        else:
            raise ValueError(f"unexpected key '{key}' in '{field}'")
    if not m["type"]:
        raise ValueError("type is required")
    if not m["target"]:
        raise ValueError("target is required")
    for group in ("volume", "bind", "tmpfs"):
        if group in seen and m["type"] != group:
            raise ValueError(f"cannot mix '{group}-*' options with mount type '{m['type']}'")
    if m["type"] == "tmpfs":
        m["options"] = tmpfs
    validate(m)
    return m


def _ram_bytes(key: str, val: str) -> int:
    """Docker's RAMInBytes: ``64m`` -> 67108864 (binary units; b, k, m, g, t, p with an optional ``b``/``ib``)."""
    import re

    m = re.match(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\Z", val.strip().lower(), re.A)
    if not m:
        raise ValueError(f"invalid value for {key}: {val}")
    return int(float(m.group(1)) * 1024 ** " kmgtp".index(m.group(2) or " "))


def _size_suffix(size: int) -> str:
    for suffix, div in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if size and size % div == 0:
            return f"{size // div}{suffix}"
    return str(size)


def _check(m: dict[str, Any]) -> None:
    t = m["target"]
    if not t:
        raise _Bad("field Target must not be empty")
    if posixpath.normpath(t) == "/":
        raise _Bad("invalid specification: destination can't be '/'")
    if not t.startswith("/"):
        raise _Bad(f"invalid mount path: '{t}' mount path must be absolute")
    typ = m["type"]
    if typ == "bind":
        if not m["source"]:
            raise _Bad("field Source must not be empty")
        for p in m["options"]:
            if p not in PROPAGATIONS:
                raise _Bad(f"invalid propagation mode: {p}")
        if not m["source"].startswith("/"):
            raise _Bad(f"invalid mount path: '{m['source']}' mount path must be absolute")
    elif typ == "volume":
        if m["readonly"] and not m["source"]:
            raise _Bad("must not set ReadOnly mode when using anonymous volumes")
    elif typ == "tmpfs":
        if m["source"]:
            raise _Bad("field Source must not be specified")
    else:
        raise _Bad("mount type unknown")


def validate(m: dict[str, Any]) -> None:
    """The engine's checks of one ``--mount`` (a bind's source must exist; volume names are valid)."""
    try:
        _check(m)
        if m["type"] == "bind":
            import os

            if not os.path.exists(m["source"]):
                raise _Bad(f"bind source path does not exist: {m['source']}")
            m["source"] = posixpath.normpath(m["source"])
    except _Bad as e:
        raise InvalidArgument(f'invalid mount config for type "{m["type"]}": {e}') from None
    if m["type"] == "volume" and m["source"]:
        from dockyard.volumes.store import validate_driver, validate_name, validate_options

        validate_name(m["source"])
        if m["volume_driver"]:
            validate_driver(m["source"], m["volume_driver"])
        validate_options(m["source"], m["volume_options"])
    m["target"] = posixpath.normpath(m["target"])


def parse_volumes_from(value: str) -> dict[str, Any]:
    if not value:
        raise InvalidArgument("volumes-from specification cannot be an empty string")
    ref, _, mode = value.partition(":")
    if mode and (not valid_mode(mode) or any(o in PROPAGATIONS or o in _COPY for o in mode.split(","))):
        raise InvalidArgument(f"invalid mode: {mode}")
    rw = [o for o in mode.split(",") if o in _RW]
    return _mount(type="volumes-from", source=ref, target="", mode=rw[0] if rw else "")


def parse_all(volumes: list[str], mounts: list[str], volumes_from: list[str] | None = None,
              tmpfs: list[str] | None = None) -> list[dict[str, Any]]:
    """``-v``, ``--mount``, ``--volumes-from`` (and ``--tmpfs`` targets, for duplicates) of one container.

    Nothing on the host changes unless every value is valid; then missing ``-v`` host directories are created
    (Docker's legacy behaviour; ``--mount type=bind`` refuses them instead)."""
    out = [parse_volumes_from(v) for v in volumes_from or []]
    binds = [parse_volume(v) for v in volumes]
    explicit = binds + [parse_mount(v) for v in mounts]
    seen = {posixpath.normpath(t.partition(":")[0]) for t in tmpfs or []}
    for m in explicit:
        t = posixpath.normpath(m["target"])
        if t in seen:
            raise InvalidArgument(f"Duplicate mount point: {t}")
        seen.add(t)
    import os

    for m in binds:
        if m["type"] == "bind" and not os.path.exists(m["source"]):
            try:
                os.makedirs(m["source"], 0o755, exist_ok=True)
            except OSError as e:
                from dockyard.errors import from_oserror

                raise from_oserror(f"error while creating mount source path '{m['source']}'", e) from None
    return out + explicit
