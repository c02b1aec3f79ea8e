"""Engine verbs that fork, run for a long-running threaded caller (the API service) in a fresh process.

Some verbs fork in their caller: ``network connect`` may start the network's DNS server (a double fork), a
build's RUN steps are children of the builder (the runtime forks them, the caller reaps them). A fork of a
threaded process may inherit a lock another thread held, and the service must be no container's parent, so the
service runs these through ``python -m dockyard.engine.helper`` (``subprocess``: fork+exec in C). The helper
writes JSON lines to its stdout: ``{"event": ...}`` for each build event, then ``{"result": ...}`` or
``{"error": message, "kind": class name}`` (the error keeps its class across the boundary).

    call(root, "connect_network", ref="front", container="web")      # returns what the verb returns
    for ev in build(root, context_dir, tags=["x"]): ...                # engine.build's typed events
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from dockyard import jsonc as json


TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

_VERBS = {"connect_network": "dockyard.engine.networks", "disconnect_network": "dockyard.engine.networks"}


def _start(root: str, what: str, kw: dict[str, Any]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "dockyard.engine.helper", root, what, json.dumps(kw)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def _raise(msg: dict[str, Any]) -> None:
    from dockyard import errors

    kind = getattr(errors, str(msg.get("kind", "")), None)
    if not (isinstance(kind, type) and issubclass(kind, errors.DockyardError)):
        kind = errors.DockyardError
    raise kind(msg["error"])


def _lines(p: subprocess.Popen[bytes]) -> Iterator[dict[str, Any]]:
    assert p.stdout is not None
    for ln in p.stdout:
        try:
            yield json.loads(ln)
        except ValueError:
            continue


def call(root: str, verb: str, **kw: Any) -> Any:
    """Run engine verb ``verb`` (one of ``_VERBS``) with ``kw`` in a helper; its result, or its error raised."""
    if verb not in _VERBS:
        raise ValueError(verb)
    p = _start(root, verb, kw)
    try:
        for msg in _lines(p):
            if "error" in msg:
                _raise(msg)
            if "result" in msg:
                return msg["result"]
    finally:
        if p.stdout is not None:
            p.stdout.close()
        p.wait()
    from dockyard.errors import SystemFailure

    raise SystemFailure(f"{verb}: the engine helper ended without an answer (exit {p.returncode})")


def build(root: str, context_dir: str, **kw: Any) -> Iterator[Any]:
    """``engine.build.build`` in a helper: its typed events, then its error (typed) if it failed. Closing the
    iterator early (the client went away) interrupts the build, which cleans up as on Ctrl-C."""
    from dockyard.engine import build as eb

    p = _start(root, "build", {"context_dir": context_dir, **kw})
    done = False
    try:
        for msg in _lines(p):
            if "error" in msg:
                done = True
                _raise(msg)
            if "result" in msg:
                done = True
                return
            ev = msg.get("event") or {}
            cls = getattr(eb, str(ev.pop("type", "")), None)
            if cls is not None:
                yield cls(**ev)
    finally:
        if not done and p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)
        if p.stdout is not None:
            p.stdout.close()
        p.wait()
    if not done:
        from dockyard.errors import SystemFailure

        raise SystemFailure(f"build: the engine helper ended without an answer (exit {p.returncode})")


def main(argv: list[str]) -> int:
    import importlib

    from dockyard.state.db import Store

    root, what, kw = argv[0], argv[1], json.loads(argv[2])
    store = Store(root)

    def out(d: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(d) + "\n")
        sys.stdout.flush()

    try:
        if what == "build":
            from dockyard.engine import build as eb

            ctx = kw.pop("context_dir")
            for ev in eb.build(store, ctx, **kw):
                out({"event": {"type": type(ev).__name__, **ev.to_json()}})
            out({"result": None})
        else:
            fn = getattr(importlib.import_module(_VERBS[what]), what)
            out({"result": fn(store, **kw)})
    except KeyboardInterrupt:
        out({"error": "cancelled", "kind": "DockyardError"})
        return 130
    except Exception as e:  # noqa: BLE001 - reported with its class
        out({"error": str(e), "kind": type(e).__name__})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
