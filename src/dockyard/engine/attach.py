"""The attach protocol between a container's monitor and its clients (``run``, ``start -a``, ``attach``, ``wait``).

The monitor listens on an abstract unix socket named ``dockyard-<container id>`` (no file to leak; it vanishes with
the monitor). A client sends one JSON line ``{"stdin": bool, "stdout": bool, "stderr": bool}`` and then both sides
exchange frames, shaped like Docker's multiplexed stream: 1 byte stream type, 3 zero bytes, 4 bytes big-endian
payload length, payload.

Stream types: 0 stdin (client -> monitor; an empty payload closes the container's stdin), 1 stdout, 2 stderr,
3 exit (monitor -> client; payload is the exit status as decimal text), 4 resize (client -> monitor; payload
"rows cols"), 5 start (client -> monitor: the first attached client of ``run`` asks the monitor to start the
process once it is attached, so no early output is lost).
"""

from __future__ import annotations

import socket
import struct

STDIN, STDOUT, STDERR, EXIT, RESIZE, START = 0, 1, 2, 3, 4, 5
_HDR = struct.Struct(">BxxxI")


def address(container_id: str) -> str:
    return "\0dockyard-" + container_id


def frame(kind: int, payload: bytes = b"") -> bytes:
    return _HDR.pack(kind, len(payload)) + payload


class FrameReader:
    """Incrementally splits a byte stream into (kind, payload) frames."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buf += data
        out = []
        while len(self.buf) >= 8:
            kind, n = _HDR.unpack_from(self.buf)
            if len(self.buf) < 8 + n:
                break
            out.append((kind, bytes(self.buf[8:8 + n])))
            del self.buf[:8 + n]
        return out


def connect(container_id: str, timeout: float | None = None) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    if timeout is not None:
        s.settimeout(timeout)
    try:
        s.connect(address(container_id))
    except (ConnectionRefusedError, FileNotFoundError):
        s.close()
        return None
    s.settimeout(None)
    return s
