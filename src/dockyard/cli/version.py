"""``version`` and ``info``."""

from __future__ import annotations

import os
import platform

from dockyard.cli.main import Context


def main(ctx: Context, argv: list[str]) -> int:
    from dockyard import __version__

    if ctx.verb == "version":
        print(f"Client:\n Version:    {__version__}\n OS/Arch:    linux/{_arch()}\n\n"
              f"Engine (daemonless):\n Version:    {__version__}\n Runtime:    dockyard (built-in), runc, crun\n"
              f" Root:       {ctx.root}")
        return 0
    from dockyard.runtime import cgroups

    rows = ctx.store.query("SELECT state, COUNT(*) AS n FROM containers GROUP BY state")
    by = {r["state"]: r["n"] for r in rows}
    n_img = ctx.store.query("SELECT COUNT(*) AS n FROM images")[0]["n"]
    print(f"Containers: {sum(by.values())}\n Running: {by.get('running', 0)}\n Paused: {by.get('paused', 0)}\n"
          f" Stopped: {by.get('exited', 0) + by.get('created', 0)}\nImages: {n_img}\n"
          f"Server Version: {__version__}\nStorage Driver: overlay\nLogging Driver: json-file\n"
          f"Cgroup Version: {'2' if cgroups.is_v2() else '1'}\nRuntimes: dockyard runc crun\n"
          f"Default Runtime: dockyard\nKernel Version: {platform.release()}\nOperating System: {_os()}\n"
          f"Architecture: {platform.machine()}\nCPUs: {os.cpu_count()}\nDockyard Root Dir: {ctx.root}")
    return 0


def _arch() -> str:
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def _os() -> str:
    try:
        with open("/etc/os-release") as f:
            for ln in f:
                if ln.startswith("PRETTY_NAME="):
                    return ln.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"
