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


# ---- the host's programs and libraries dockyard uses at the point of use ----------------------------------------
# name -> (what it is, where: "cmd" on PATH or in /usr/sbin:/sbin, "lib" a shared library, the Debian package, what
# needs it). Checked where used (one line naming the package) and listed by ``info`` when missing.
SYSTEM_DEPS: dict[str, tuple[str, str, str]] = {
    "nft": ("cmd", "nftables", "bridge networks and published ports"),
    "zstd": ("cmd", "zstd", "zstd-compressed image layers"),
    "libseccomp.so.2": ("lib", "libseccomp2", "seccomp profiles"),
    "mkfs.erofs": ("cmd", "erofs-utils", "the EROFS layer store"),
}


def system_dep(name: str) -> str | None:
    """Where the host program or library ``name`` (a key of ``SYSTEM_DEPS``) is, or None when it is missing."""
    kind = SYSTEM_DEPS[name][0]
    if kind == "lib":
        import ctypes.util

        try:
            import ctypes

            ctypes.CDLL(name)
            return name
        except OSError:
            return ctypes.util.find_library(name.removeprefix("lib").split(".so")[0])
    import shutil

    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
    return shutil.which(name, path=path)


def missing_message(name: str) -> str:
    """``nft is not installed (needed for bridge networks and published ports): apt-get install nftables``."""
    _kind, package, use = SYSTEM_DEPS[name]
    return f"{name} is not installed (needed for {use}): apt-get install {package}"


def missing_system_deps() -> list[str]:
    """The messages of the host dependencies that are missing (``info`` lists them)."""
    return [missing_message(n) for n in SYSTEM_DEPS if system_dep(n) is None]
