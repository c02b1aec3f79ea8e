"""Docker's unit syntaxes: memory sizes (``512m``), CPU counts (``1.5``), ulimits, restart policies."""

from __future__ import annotations

from dockyard.errors import InvalidArgument
from dockyard.lazyre import Pattern

_SIZE = Pattern(r"(?ia)^(\d+(?:\.\d+)?)\s*([kmgtpb]?)b?\Z")
_MULT = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4, "p": 1024**5}


def ram_bytes(s: str) -> int:
    """``"512m"`` -> 536870912 (binary units, as Docker's RAMInBytes); ``"-1"`` -> -1."""
    if s.strip() == "-1":
        return -1
    m = _SIZE.match(s.strip())
    if not m:
        raise InvalidArgument(f"invalid size: '{s}'")
    return int(float(m.group(1)) * _MULT[m.group(2).lower()])


def nano_cpus(s: str) -> int:
    try:
        v = float(s)
    except ValueError:
        raise InvalidArgument(f'invalid argument "{s}" for "--cpus" flag: failed to parse {s} as a rational number')\
            from None
    if v < 0:
        raise InvalidArgument("Range of CPUs is from 0.01 to the number of CPUs available")
    return int(round(v * 1e9))


def ulimit(s: str) -> dict[str, object]:
    name, sep, vals = s.partition("=")
    if not sep:
        raise InvalidArgument(f"invalid ulimit argument: {s}")
    soft, _, hard = vals.partition(":")
    try:
        sv = int(soft)
        hv = int(hard) if hard else sv
    except ValueError:
        raise InvalidArgument(f"invalid ulimit argument: {s}") from None
    if sv > hv:
        raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard limit: {sv} > {hv}")
    return {"Name": name, "Soft": sv, "Hard": hv}


def restart_policy(s: str) -> tuple[str, int]:
    name, _, n = s.partition(":")
    if name not in ("no", "always", "on-failure", "unless-stopped"):
        raise InvalidArgument(f"invalid restart policy '{name}'")
    if n and name != "on-failure":
        raise InvalidArgument(f"maximum retry count cannot be used with restart policy '{name}'")
    try:
        return name, int(n) if n else 0
    except ValueError:
        raise InvalidArgument(f"maximum retry count must be an integer: {n}") from None
