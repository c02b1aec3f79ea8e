"""Health checks, run by the engine itself: no daemon.

Vocabulary (Docker's): a container's *healthcheck* is ``{"Test": [...], "Interval": ns, "Timeout": ns,
"StartPeriod": ns, "Retries": n}`` (``ContainerSpec.healthcheck``, merged at create with the image's
HEALTHCHECK as Docker merges it). ``Test`` is ``["NONE"]`` (disabled), ``["CMD", arg...]`` or
``["CMD-SHELL", "command"]``. Beyond Docker, a test that is the single word ``http://PORT[/PATH]`` or
``tcp://PORT`` is a *network probe*: the probe process joins the container's network namespace (setns, nothing
else) and connects to 127.0.0.1:PORT itself, so an image without a shell or curl (FROM scratch) can be checked;
no image code runs for it.

Life cycle: the container's monitor (the C slim loop, or the Python loop) forks a short-lived probe process
``python -I -S -c ... probe_main(ROOT, CID)`` on each interval tick (never two at a time; one older than
``Timeout`` + a margin is killed). The probe runs the test once, with its timeout, and records the outcome in
``containers/<id>/health.json`` (atomic rename; the probe is its one writer):

    {"started": <the container's start time>, "Status": "starting|healthy|unhealthy", "FailingStreak": n,
     "Log": [{"Start", "End", "ExitCode", "Output"}, ...last 5], "restart": bool}

A record whose ``started`` is not the container's current start time is stale (a previous run): the state is
``starting`` again. A change of status emits a ``health_status: <status>`` event. On becoming unhealthy,
``health_on_failure`` (Podman's ``--health-on-failure``) applies: ``kill`` (SIGKILL, the restart policy applies),
``stop`` (as ``docker stop``: no restart), ``restart`` (the monitor restarts it whatever its policy: the record's
``restart`` flag, read by the monitor's finish phase).
"""

from __future__ import annotations

import os
import time

from dockyard import jsonc as json
from dockyard.lazyre import Pattern

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.engine.containers import Container
    from dockyard.engine.options import ContainerSpec
    from dockyard.state.db import Store

DEFAULT_INTERVAL = 30_000_000_000
DEFAULT_TIMEOUT = 30_000_000_000
DEFAULT_RETRIES = 3
LOG_KEEP = 5
OUTPUT_MAX = 4096  # Docker keeps the first 4 KiB of a probe's output
ON_FAILURE = ("none", "kill", "restart", "stop")
_NET = Pattern(r"(?:(http)://([0-9]{1,5})(/[!-~]*)?|(tcp)://([0-9]{1,5}))")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
          "h": 3_600_000_000_000}


def parse_duration(text: str, flag: str) -> int:
    """A Go duration (``1m30s``, ``500ms``, ``0``) in nanoseconds; negative refused as Docker does."""
    from dockyard.errors import InvalidArgument

    s = text.strip()
    neg = s.startswith("-")
    s = s.lstrip("+-")
    if s == "0":
        return 0
    import re

    parts = re.findall(r"([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)", s)
    if not s or "".join(a + b for a, b in parts) != s:
        raise InvalidArgument(f'invalid argument "{text}" for "{flag}" flag: time: invalid duration "{text}"')
    ns = int(sum(float(a) * _UNITS[b] for a, b in parts))
    if neg and ns:
        raise InvalidArgument(f"{flag} cannot be negative")
    return ns


def from_flags(cmd: str, interval: str, timeout: str, retries: int | None, start_period: str,
               disabled: bool) -> dict[str, Any] | None:
    """Docker's ``--health-*`` / ``--no-healthcheck`` flags as a healthcheck (None: none given)."""
    from dockyard.errors import InvalidArgument

    given = bool(cmd or interval or timeout or start_period or retries is not None)
    if disabled:
        if given:
            raise InvalidArgument("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not given:
        return None
    if retries is not None and retries < 0:
        raise InvalidArgument("--health-retries cannot be negative")
    hc: dict[str, Any] = {"Test": ["CMD-SHELL", cmd] if cmd else [],
                          "Interval": parse_duration(interval, "--health-interval") if interval else 0,
                          "Timeout": parse_duration(timeout, "--health-timeout") if timeout else 0,
                          "StartPeriod": parse_duration(start_period, "--health-start-period") if start_period else 0,
                          "Retries": retries or 0}
    return hc


def check(hc: dict[str, Any] | None, on_failure: str) -> None:
    """The API's and compose's rules for a healthcheck (Docker's messages)."""
    from dockyard.errors import InvalidArgument

    if on_failure not in ON_FAILURE:
        raise InvalidArgument(f"invalid value for --health-on-failure: {on_failure!r} "
                              "(none, kill, restart or stop)")
    if not hc:
        return
    test = hc.get("Test") or []
    if not isinstance(test, list) or not all(isinstance(t, str) for t in test):
        raise InvalidArgument("healthcheck test must be a list of strings")
    if test and test[0] not in ("NONE", "CMD", "CMD-SHELL"):
        raise InvalidArgument(f"unknown healthcheck test type {test[0]!r} (NONE, CMD or CMD-SHELL)")
    for k, name in (("Interval", "Interval"), ("Timeout", "Timeout"), ("StartPeriod", "StartPeriod")):
        v = int(hc.get(k) or 0)
        if v and v < 1_000_000:
            raise InvalidArgument(f"{name} in Healthcheck cannot be less than 1ms")
    if int(hc.get("Retries") or 0) < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative")
    probe = net_probe(test)
    if probe is None and len(test) == 2 and _looks_net(test[1]):
        raise InvalidArgument(f"invalid health probe {test[1]!r}: http://PORT[/PATH] or tcp://PORT, "
                              "PORT 1-65535")


def _looks_net(s: str) -> bool:
    return s.startswith(("http://", "tcp://"))


def net_probe(test: list[str]) -> tuple[str, int, str] | None:
    """``("http", port, path)`` / ``("tcp", port, "")`` for a network probe test, else None."""
    if len(test) != 2 or test[0] not in ("CMD", "CMD-SHELL"):
        return None
    m = _NET.fullmatch(test[1].strip())
    if not m:
        return None
    kind = m.group(1) or m.group(4)
    port = int(m.group(2) or m.group(5))
    if not 0 < port < 65536:
        return None
    return kind, port, m.group(3) or "/"


def merge(spec: ContainerSpec, image_hc: dict[str, Any] | None) -> None:
    """Docker's create-time merge: the container's test, else the image's; each unset (0) field from the image."""
    hc = spec.healthcheck
    if not image_hc:
        return
    if hc is None:
        spec.healthcheck = dict(image_hc)
        return
    if not hc.get("Test"):
        hc["Test"] = list(image_hc.get("Test") or [])
    for k in ("Interval", "Timeout", "StartPeriod", "Retries"):
        if not hc.get(k) and image_hc.get(k):
            hc[k] = image_hc[k]


def effective(spec: ContainerSpec) -> dict[str, Any] | None:
    """The healthcheck the monitor runs, with Docker's defaults, or None (none, or NONE)."""
    hc = spec.healthcheck
    if not hc or not hc.get("Test") or hc["Test"][0] == "NONE":
        return None
    return {"Test": list(hc["Test"]), "Interval": int(hc.get("Interval") or DEFAULT_INTERVAL),
            "Timeout": int(hc.get("Timeout") or DEFAULT_TIMEOUT), "StartPeriod": int(hc.get("StartPeriod") or 0),
            "Retries": int(hc.get("Retries") or DEFAULT_RETRIES)}


def loop_config(spec: ContainerSpec) -> str | None:
    """What the monitor loop needs: ``"INTERVAL_MS:LIMIT_MS"`` (a probe older than LIMIT is killed)."""
    hc = effective(spec)
    if hc is None:
        return None
    interval = max(hc["Interval"] // 1_000_000, 1)
    stop = (spec.stop_timeout if spec.stop_timeout is not None else 10) * 1000
    limit = hc["Timeout"] // 1_000_000 + 5000 + (stop if spec.health_on_failure == "stop" else 0)
    return f"{interval}:{limit}"


# ---- the record ------------------------------------------------------------------------------------------------
def _path(store: Store, cid: str) -> str:
    return store.path("containers", cid, "health.json")


def _load(store: Store, c: Container) -> dict[str, Any]:
    try:
        with open(_path(store, c.id), encoding="utf-8") as f:
            d = json.load(f)
        if d.get("started") == c.started:
            return d  # type: ignore[no-any-return]
    except (OSError, ValueError):
        pass
    return {"started": c.started, "Status": "starting", "FailingStreak": 0, "Log": [], "restart": False}


def state(store: Store, c: Container) -> dict[str, Any] | None:
    """inspect's ``State.Health`` (None for a container without a healthcheck)."""
    if effective(c.spec) is None:
        return None
    d = _load(store, c)
    return {"Status": d["Status"], "FailingStreak": d["FailingStreak"], "Log": d["Log"]}


def status(store: Store, c: Container) -> str:
    """``starting``/``healthy``/``unhealthy`` of a running container with a healthcheck, else ``""`` (ps's
    ``(healthy)`` suffix, ``--filter health=``; ``none`` is the filter's word for "no healthcheck")."""
    if c.state != "running" or not c.config.get("healthcheck") or effective(c.spec) is None:
        return ""
    return str(_load(store, c)["Status"])


def restart_requested(store: Store, c: Container) -> bool:
    """The monitor's finish phase: did ``--health-on-failure=restart`` end this run?"""
    try:
        with open(_path(store, c.id), encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError):
        return False
    return bool(d.get("restart")) and d.get("started") == c.started


# ---- the probe process ---------------------------------------------------------------------------------------
def _ts(t: float) -> str:
    from dockyard.timeparse import rfc3339_nano

    return rfc3339_nano(t)


def _exec_probe(store: Store, c: Container, test: list[str], timeout: float) -> tuple[int, str]:
    """Run a CMD/CMD-SHELL test in the container (as ``exec``, no record kept); its exit code and output."""
    import select
    import signal

    from dockyard.engine.exec import ExecRecord, process
    from dockyard.engine.monitor import RUNTIME_STATE
    from dockyard.runtime import syscalls
    from dockyard.runtime.base import Stdio, get_runtime

    argv = ["/bin/sh", "-c", test[1]] if test[0] == "CMD-SHELL" else test[1:]
    rec = ExecRecord(id="", container_id=c.id, cmd=argv, env=[], user="", workdir="", tty=False, stdin=False,
                     privileged=False, pid=0, running=False, exit_code=None)
    r, w = os.pipe2(os.O_CLOEXEC)
    syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
    try:
        pid = int(get_runtime(c.spec.runtime, RUNTIME_STATE).exec(c.id, process(store, rec), Stdio(None, w, w)))
    except Exception as e:  # noqa: BLE001 - a command that cannot start is a failed probe
        os.close(r)
        os.close(w)
        return -1, str(e)[:OUTPUT_MAX]
    os.close(w)
    out = b""
    deadline = time.monotonic() + timeout
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([r], [], [], left)
        if not ready:
            continue
        b = os.read(r, 65536)
        if not b:
            break
        if len(out) < OUTPUT_MAX:
            out += b[:OUTPUT_MAX - len(out)]
    os.close(r)
    if timed_out:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, st = os.waitpid(pid, 0)
    if timed_out:
        return -1, f"Health check exceeded timeout ({_human(timeout)})"
    code = os.waitstatus_to_exitcode(st)
    return (code if code >= 0 else 128 - code), out.decode("utf-8", "replace")


def _human(seconds: float) -> str:
    return f"{seconds:g}s" if seconds >= 1 else f"{seconds * 1000:g}ms"


def _net_probe(c: Container, kind: str, port: int, path: str, timeout: float) -> tuple[int, str]:
    """Connect to 127.0.0.1:PORT inside the container's network namespace (this short-lived process joins it;
    nothing of the image runs). http: GET PATH, a 2xx/3xx status is healthy."""
    import socket

    from dockyard.engine.containers import alive
    from dockyard.runtime import syscalls

    if c.spec.network_mode != "host":
        try:
            fd = os.open(f"/proc/{c.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            return -1, f"container network namespace: {e.strerror}"
        try:
            if not alive(c.pid, c.pid_start):  # the pid was the container's init when we opened its netns
                return -1, "container is not running"
            syscalls.setns(fd, syscalls.CLONE_NEWNET)
        finally:
            os.close(fd)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            if kind == "tcp":
                return 0, f"connected to port {port}"
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost:{port}\r\nUser-Agent: dockyard-health\r\n"
                      "Connection: close\r\n\r\n".encode())
            data = b""
            while b"\n" not in data and len(data) < OUTPUT_MAX:
                b = s.recv(4096)
                if not b:
                    break
                data += b
    except socket.timeout:
        return -1, f"Health check exceeded timeout ({_human(timeout)})"
    except OSError as e:
        return 1, f"{kind}://{port}{path if kind == 'http' else ''}: {e.strerror or e}"
    line = data.split(b"\n", 1)[0].decode("latin-1").strip()
    import re

    m = re.match(r"HTTP/\d(?:\.\d)? (\d{3})", line)
    if not m:
        return 1, f"not an HTTP answer: {line[:200]!r}"
    return (0 if 200 <= int(m.group(1)) < 400 else 1), line


def probe(store: Store, cid: str) -> None:
    """Run the container's test once and record the outcome (see the module's docstring)."""
    from dockyard.engine.containers import ContainerStore

    c = ContainerStore(store).get(cid)
    hc = effective(c.spec)
    if hc is None or c.state != "running" or not c.pid:
        return
    rec = _load(store, c)
    timeout = hc["Timeout"] / 1e9
    start = time.time()
    net = net_probe(hc["Test"])
    if net is not None:
        code, output = _net_probe(c, net[0], net[1], net[2], timeout)
    else:
        code, output = _exec_probe(store, c, hc["Test"], timeout)
    end = time.time()
    c = ContainerStore(store).get(cid)
    if c.state != "running":
        return  # ended meanwhile: the result says nothing of a container that is gone
    rec = _load(store, c)
    old = rec["Status"]
    rec["Log"] = (rec["Log"] + [{"Start": _ts(start), "End": _ts(end), "ExitCode": code, "Output": output}])[-LOG_KEEP:]
    if code == 0:
        rec["Status"], rec["FailingStreak"] = "healthy", 0
    elif not (old == "starting" and c.started and start - c.started < hc["StartPeriod"] / 1e9):
        rec["FailingStreak"] += 1
        if rec["FailingStreak"] >= hc["Retries"]:
            rec["Status"] = "unhealthy"
    action = c.spec.health_on_failure if rec["Status"] == "unhealthy" and old != "unhealthy" else "none"
    if action == "restart":
        rec["restart"] = True
    from dockyard.fsutil import atomic_write

    atomic_write(_path(store, cid), json.dumps(rec).encode(), mode=0o600, durable=False)
    from dockyard.engine import events

    if rec["Status"] != old:
        events.container(store, "health_status: " + rec["Status"], c)
    if action == "restart":  # the monitor's finish phase sees the record's flag and restarts it
        from dockyard.engine import local

        events.container(store, "kill", c, {"signal": 9})
        local.signal_container(c, 9)
    elif action == "kill":
        from dockyard.engine import local

        local.kill(store, c, 9)
    elif action == "stop":
        from dockyard.engine import local

        local.stop(store, c)


def probe_main(root: str, cid: str) -> None:
    """Entry point of the probe process the monitor forks on each tick."""
    code = 0
    try:
        from dockyard.state.db import Store

        probe(Store(root), cid)
    except BaseException:  # noqa: BLE001 - leave the reason where the monitor leaves its own
        code = 1
        try:
            import traceback

            fd = os.open(os.path.join(root, "containers", cid, "monitor.err"),
                         os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            with open(fd, "a") as f:
                traceback.print_exc(file=f)
        except Exception:  # noqa: BLE001
            pass
    os._exit(code)


PROBE_BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); from dockyard.engine.health import probe_main; "
              "probe_main(sys.argv[2], sys.argv[3])")
