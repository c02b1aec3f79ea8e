"""``RUN --mount=type=cache|bind|tmpfs|secret|ssh,...`` values, parsed and checked as BuildKit does."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Mount", "MountError", "parse_mount"]


class MountError(Exception):
    """A bad --mount value; the instruction layer turns it into a located DockerfileError."""


class Mount:
    """One ``RUN --mount=...``: type bind|cache|tmpfs|secret|ssh and its options (None when not given)."""

    __slots__ = ("type", "from_", "source", "target", "readonly", "size", "id", "sharing", "required", "mode",
                 "uid", "gid", "env")

    def __init__(self) -> None:
        self.type = "bind"
        self.from_: str | None = None
        self.source: str | None = None
        self.target: str | None = None
        self.readonly = True
        self.size: int | None = None
        self.id: str | None = None
        self.sharing: str | None = None
        self.required = False
        self.mode: int | None = None
        self.uid: int | None = None
        self.gid: int | None = None
        self.env: str | None = None

    def to_json(self) -> dict:
        d: dict = {"type": self.type, "target": self.target, "readonly": self.readonly}
        for k in ("from_", "source", "size", "id", "sharing", "mode", "uid", "gid", "env"):
            v = getattr(self, k)
            if v is not None:
                d[k.rstrip("_")] = v
        if self.required:
            d["required"] = True
        return d

    def __repr__(self) -> str:
        return f"Mount({self.to_json()!r})"


_MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
_SHARING = ("shared", "private", "locked")


def _parse_bool(key: str, value: str) -> bool:
    low = value.lower()
    if low in ("1", "t", "true"):
        return True
    if low in ("0", "f", "false"):
        return False
    raise MountError(f"invalid value for {key}: {value}")


def _ram_bytes(value: str) -> int:
    import re

    m = re.fullmatch(r"(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?", value, re.A)
    if not m:
        raise ValueError(value)
    mult = 1024 ** (" kmgtp".index(m.group(2).lower()) if m.group(2) else 0)
    return int(float(m.group(1)) * mult)


def parse_mount(text: str, expand: Callable[[str], str] | None = None) -> Mount:
    """Parse a ``--mount`` value (CSV of key=value). Without ``expand`` (parse time) a value holding ``$`` defers
    the checks to dispatch time, when the builder re-parses the value with an expander (``RunInstruction.expand``);
    until then such a mount carries its raw values (``from`` never takes variables)."""
    import csv

    try:
        fields = next(csv.reader([text]), [])
    except csv.Error as e:
        raise MountError(f"failed to parse csv mounts: {e}") from None
    if expand is None and any("$" in f.partition("=")[2] for f in fields):
        try:
            return _parse_fields(fields, lambda v: v, check_from=True)
        except MountError:
            m = Mount()
            for f in fields:
                key, _, value = f.partition("=")
                key = key.lower()
                if key == "from":
                    _check_from(value)
                    m.from_ = value
                elif key in ("target", "dst", "destination"):
                    m.target = value
                elif key in ("source", "src"):
                    m.source = value
                elif key == "id":
                    m.id = value
            return m
    return _parse_fields(fields, expand, check_from=expand is None)


def _check_from(value: str) -> None:
    i = value.find("$")
    if i != -1 and i != len(value) - 1:
        raise MountError("'from' doesn't support variable expansion, define alias stage instead")


def _parse_fields(fields: list[str], expand: Callable[[str], str] | None, check_from: bool) -> Mount:
    m = Mount()
    ro_auto = True
    for field in fields:
        key, has_value, value = field.partition("=")
        key = key.lower()
        if not has_value:
            if key in ("readonly", "ro"):
                m.readonly, ro_auto = True, False
            elif key in ("readwrite", "rw"):
                m.readonly, ro_auto = False, False
            elif key == "required" and m.type in ("secret", "ssh"):
                m.required = True
            elif key == "required":
                raise MountError(f"unexpected key '{key}' for mount type '{m.type}'")
            else:
                raise MountError(f"invalid field '{field}' must be a key=value pair")
            continue
        if key == "from" and check_from:
            _check_from(value)
        if expand is not None:
            value = expand(value)
        if key == "type":
            if value.lower() not in _MOUNT_TYPES:
                raise MountError(f'unsupported mount type "{value}"')
            m.type = value.lower()
        elif key == "from":
            m.from_ = value
        elif key in ("source", "src"):
            m.source = value
        elif key in ("target", "dst", "destination"):
            m.target = value
        elif key in ("readonly", "ro"):
            m.readonly, ro_auto = _parse_bool(key, value), False
        elif key in ("readwrite", "rw"):
            m.readonly, ro_auto = not _parse_bool(key, value), False
        elif key == "required":
            if m.type not in ("secret", "ssh"):
                raise MountError(f"unexpected key '{key}' for mount type '{m.type}'")
            m.required = _parse_bool(key, value)
        elif key == "size":
            if m.type != "tmpfs":
                raise MountError(f"unexpected key '{key}' for mount type '{m.type}'")
            try:
                m.size = _ram_bytes(value)
            except ValueError:
                raise MountError(f"invalid value for {key}: {value}") from None
        elif key == "id":
            m.id = value
        elif key == "sharing":
            if value.lower() not in _SHARING:
                raise MountError(f'unsupported sharing value "{value}"')
            m.sharing = value.lower()
        elif key in ("mode", "uid", "gid"):
            try:
                n = int(value, 8 if key == "mode" else 10)
                if n < 0 or n >= 1 << 32:
                    raise ValueError(value)
            except ValueError:
                raise MountError(f"invalid value {value} for {key}") from None
            setattr(m, key, n)
        elif key == "env":
            m.env = value
        else:
            raise MountError(f"unexpected key '{key}' in '{field}'")
    if m.type not in ("secret", "ssh", "cache"):
        for k in ("mode", "uid", "gid"):
            if getattr(m, k) is not None:
                raise MountError(f'{k} not allowed for "{m.type}" type mounts')
    if ro_auto:
        m.readonly = m.type not in ("cache", "tmpfs")
    if m.type == "secret":
        if m.from_ is not None:
            raise MountError("secret mount should not have a from")
        if m.sharing is not None:
            raise MountError("secret mount should not define sharing")
        if not m.source and not m.target and not m.id:
            raise MountError("invalid secret mount. one of source, target required")
        if m.source and m.id:
            raise MountError("both source and id can't be set")
    if m.sharing is not None and m.type != "cache":
        raise MountError(f"invalid cache sharing set for {m.type} mount")
    return m
