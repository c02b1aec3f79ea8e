"""Small helpers for tests: polling with a deadline instead of sleeping."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(fn: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, what: str = "condition") -> T:
    """Call ``fn`` until it returns a truthy value or the deadline passes (then fail with ``what``)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loopback_get(port: int, path: str = "/", host: str = "127.0.0.1") -> str:
    """The whole raw answer of an HTTP/1.0 GET on ``host:port``, or "" while nothing answers (for wait_for)."""
    try:
        with socket.create_connection((host, port), timeout=2) as c:
            c.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
            data = b""
            while chunk := c.recv(4096):
                data += chunk
            return data.decode(errors="replace")
    except OSError:
        return ""
