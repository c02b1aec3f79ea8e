"""Points in time as Docker writes and reads them: RFC 3339 (with nanoseconds), and ``--since``/``--until``/``until=``
values. Below every layer that needs them (images/, engine/, the edges)."""

from __future__ import annotations

import time


def parse_rfc3339(s: str) -> float:
    """RFC 3339 (with nanoseconds, ``Z`` or an offset) -> unix time; 0.0 when unparsable."""
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
        whole = _rfc3339_seconds(main, tz or "+00:00")
        if whole is None:  # another ISO 8601 form: datetime's parser (imported only then)
            import datetime

            whole = datetime.datetime.fromisoformat(main.replace("t", "T") + (tz or "+00:00")).timestamp()
        return whole + (float("0." + frac) if frac.isdigit() else 0.0)
    except ValueError:
        return 0.0


_DIGITS = frozenset("0123456789")
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _rfc3339_seconds(main: str, tz: str) -> float | None:
    """``YYYY-MM-DDTHH:MM:SS`` and ``+HH:MM``/``-HH:MM`` -> unix time, by hand (``datetime`` costs an import on
    every image's ``created``); None for any other form, or a value out of range (the caller asks datetime)."""
    if (len(main) != 19 or len(tz) != 6 or main[4] != "-" or main[7] != "-" or main[10] not in "Tt"
            or main[13] != ":" or main[16] != ":" or tz[0] not in "+-" or tz[3] != ":"):
        return None
    fields = (main[0:4], main[5:7], main[8:10], main[11:13], main[14:16], main[17:19], tz[1:3], tz[4:6])
    if not all(_DIGITS.issuperset(f) for f in fields):
        return None
    y, mo, d, h, mi, sec, oh, om = (int(f) for f in fields)
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    if (y < 1 or not 1 <= mo <= 12 or not 1 <= d <= _DAYS[mo - 1] + (mo == 2 and leap) or h > 23 or mi > 59
            or sec > 59 or oh > 23 or om > 59):
        return None
    # days from 1970-01-01 to y-mo-d (the proleptic Gregorian calendar, as datetime)
    yy = y - (mo <= 2)
    era = yy // 400
    yoe = yy - era * 400
    doy = (153 * (mo + (-3 if mo > 2 else 9)) + 2) // 5 + d - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    offset = (oh * 3600 + om * 60) * (-1 if tz[0] == "-" else 1)
    return float(days * 86400 + h * 3600 + mi * 60 + sec - offset)


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


def human_duration(seconds: float) -> str:
    """go-units HumanDuration: ``Less than a second``, ``About a minute``, ``3 hours``, ``2 weeks``..."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def status_text(state: str, exit_code: int | None, started: float | None, finished: float | None,
                now: float | None = None) -> str:
    """A container's STATUS as Docker writes it in ``ps`` and GET /containers/json: ``Up 3 seconds``,
    ``Exited (0) 2 seconds ago``, ``Up 1 minute (Paused)``, ``Created``... (one formatter for both edges)."""
    n = time.time() if now is None else now
    if state == "running":
        return "Up " + human_duration(n - (started or n))
    if state == "paused":
        return "Up " + human_duration(n - (started or n)) + " (Paused)"
    if state == "restarting":
        return f"Restarting ({exit_code or 0}) " + human_duration(n - (finished or n)) + " ago"
    if state == "exited":
        return f"Exited ({exit_code if exit_code is not None else 0}) " + human_duration(n - (finished or n)) + " ago"
    if state == "removing":
        return "Removal In Progress"
    if state == "dead":
        return "Dead"
    return "Created"
