"""Where dockyard's small compiled helpers are: ``dockyard-exec`` (the runtime's sealed exec stub,
images/exec/exec.c), ``dockyard-init`` (``run --init``, images/init/init.c) and ``dockyard-monitor`` (the slim
monitor loop, engine/monitor_loop.c).

They are looked for, in order:
1. ``$DOCKYARD_LIBEXEC/<name>`` (a configured directory);
2. ``<package>/_libexec/<name>``: built into the package by setup.py (``pip install``, a wheel);
3. ``<venv>/libexec/<name>``: built by scripts/build-helpers.sh into the project's virtual environment
   (``pip install -e`` in development); the venv is the interpreter's directory's parent (``sys.prefix`` is not
   the venv when dockyard runs with ``python -S``, as its launcher does).
Never on ``$PATH``: the runtime executes these as root, and inside containers.
"""

from __future__ import annotations

import os
import sys


def dirs() -> list[str]:
    out = []
    env = os.environ.get("DOCKYARD_LIBEXEC")
    if env:
        out.append(env)
    out.append(os.path.join(os.path.dirname(os.path.abspath(__file__)), "_libexec"))
    out.append(os.path.join(os.path.dirname(os.path.dirname(sys.executable)), "libexec"))
    return out


def find(name: str) -> str | None:
    """The first executable ``name`` in ``dirs()``, or None."""
    for d in dirs():
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


def describe(name: str) -> str:
    """For an error message: where ``name`` was looked for, and how to build it."""
    return (f"{name} not found in {', '.join(dirs())} (reinstall the package, or run scripts/deps.sh in a "
            f"checkout)")
