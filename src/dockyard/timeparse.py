"""Points in time as Docker writes and reads them: RFC 3339 (with nanoseconds), and ``--since``/``--until``/``until=``
values. Below every layer that needs them (images/, engine/, the edges)."""

from __future__ import annotations

import time


def parse_rfc3339(s: str) -> float:
    """RFC 3339 (with nanoseconds, ``Z`` or an offset) -> unix time; 0.0 when unparsable."""
    import datetime

    if not s:
        return 0.0
    try:
        main, frac, tz = s, "", ""
        if s.endswith("Z") or s.endswith("z"):
            main, tz = s[:-1], "+00:00"
        else:
            for i in range(len(s) - 1, 9, -1):
                if s[i] in "+-":
                    main, tz = s[:i], s[i:]
                    break
        if "." in main:
            main, frac = main.split(".", 1)
        d = datetime.datetime.fromisoformat(main.replace("t", "T") + (tz or "+00:00"))
        return d.timestamp() + (float("0." + frac) if frac.isdigit() else 0.0)
    except ValueError:
        return 0.0


def rfc3339_nano(ts: float) -> str:
    """Unix time -> ``2024-01-02T03:04:05.123456789Z`` (Go's RFC3339Nano in UTC, trailing zeros trimmed)."""
    import datetime

    sec = int(ts // 1)
    ns = int(round((ts - sec) * 1e9))
    if ns >= 1_000_000_000:
        sec, ns = sec + 1, ns - 1_000_000_000
    d = datetime.datetime.fromtimestamp(sec, datetime.timezone.utc)
    s = d.strftime("%Y-%m-%dT%H:%M:%S")
    if ns:
        s += "." + f"{ns:09d}".rstrip("0")
    return s + "Z"


def parse_time(value: str, now: float | None = None) -> float | None:
    """A point in time as ``--since``/``--until`` take it: a duration back from now (``30s``, ``10m``, ``24h``), a
    unix time, or RFC 3339. None when it is none of these."""
    import re

    n = time.time() if now is None else now
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h)", value, re.A)
    if m:
        return n - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600}[m.group(2)]
    try:
        return float(value)
    except ValueError:
        return parse_rfc3339(value) or None
