"""Timing marks for finding where a command spends its time: ``DYTRACE=/tmp/t dockyard run ...`` appends
``<ms> <pid> <label>`` lines to that file from the CLI and the monitor. Costs one environment lookup otherwise."""

from __future__ import annotations

import os
import time

_FILE = os.environ.get("DYTRACE")


def mark(label: str) -> None:
    if _FILE:
        try:
            with open(_FILE, "a") as f:
                f.write(f"{time.time() * 1000:.1f} {os.getpid()} {label}\n")
        except OSError:  # a trace file that cannot be written never fails the command it traces
            pass
