"""Sizes and times printed the way the Docker CLI prints them (go-units HumanSize / HumanDuration)."""

from __future__ import annotations

import time

_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _go_g(value: float, precision: int) -> str:
    s = f"{value:.{precision}g}"
    if "e" in s:  # Go prints 1e+03 as Python does, but values here are < 1000 unless huge
        mant, _, exp = s.partition("e")
        s = f"{mant}e{exp[0]}{int(exp[1:]):02d}"
    return s


def human_size(size: float, precision: int = 3) -> str:
    """``4261325`` -> ``4.26MB`` (decimal units, 3 significant digits, as ``docker images``)."""
    i = 0
    size = float(size)
    while size >= 1000.0 and i < len(_DECIMAL) - 1:
        size /= 1000.0
        i += 1
    return _go_g(size, precision) + _DECIMAL[i]


def bytes_size(size: float) -> str:
    """Binary units: ``1048576`` -> ``1MiB`` (as ``docker stats``)."""
    i = 0
    size = float(size)
    while size >= 1024.0 and i < len(_BINARY) - 1:
        size /= 1024.0
        i += 1
    return _go_g(size, 4) + _BINARY[i]


def since(ts: float, now: float | None = None) -> str:
    """``2 hours ago`` for a unix time."""
    n = time.time() if now is None else now
    return human_duration(max(0.0, n - ts)) + " ago"


def go_time_string(ts: float) -> str:
    """Go's ``time.Time.String()`` in local time: ``2024-01-02 03:04:05 +0000 UTC`` (``time``'s local time, the
    one ``datetime``'s ``astimezone()`` reads, without importing ``datetime`` for every row of ``ps``/``images``)."""
    t = time.localtime(ts)
    return time.strftime("%Y-%m-%d %H:%M:%S %z ", t) + (t.tm_zone or "")


# RFC 3339 and --since/--until times are parsed below the CLI (images/ and the API use them too)
from dockyard.timeparse import human_duration, parse_rfc3339, parse_time, rfc3339_nano  # noqa: E402,F401
