"""Attach: the hijacked connection relayed to the container's monitor (``engine.attach``'s frame protocol).

The monitor's frames are Docker's multiplexed frames already (type 1/2, 3 zero bytes, big-endian length): without
a TTY they are written to the client as they are; with one, only their payloads (raw). Client bytes become stdin
frames; the client's half-close (shutdown of its write side) becomes the empty stdin frame that closes the
container's stdin, while output keeps flowing until the container exits or the client goes away.
"""

from __future__ import annotations

import asyncio
import socket
from dockyard import jsonc as json
from dockyard.engine import attach as proto


async def relay(cid: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, stdin: bool,
                stdout: bool, stderr: bool, tty: bool, start: bool = False) -> None:
    s = await asyncio.to_thread(proto.connect, cid, 10.0)
    if s is None:
        return
    s.setblocking(False)
    mreader, mwriter = await asyncio.open_connection(sock=s)
    mwriter.write(json.dumps({"stdin": stdin, "stdout": stdout, "stderr": stderr}).encode() + b"\n")
    if start:
        mwriter.write(proto.frame(proto.START))
    await mwriter.drain()

    async def to_container() -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                if stdin:
                    mwriter.write(proto.frame(proto.STDIN, data))
                    await mwriter.drain()
            if stdin:
                mwriter.write(proto.frame(proto.STDIN, b""))  # half-close: the container's stdin ends
                await mwriter.drain()
        except (ConnectionError, OSError):
            pass

    up = asyncio.ensure_future(to_container())
    fr = proto.FrameReader()
    try:
        while True:
            data = await mreader.read(65536)
            if not data:
                break
            out = []
            for kind, payload in fr.feed(data):
                if kind in (proto.STDOUT, proto.STDERR):
                    out.append(payload if tty else proto.frame(kind, payload))
                elif kind == proto.EXIT:
                    raise _Done
            if out:
                writer.write(b"".join(out))
                await writer.drain()
    except (_Done, ConnectionError, OSError):
        pass
    finally:
        up.cancel()
        mwriter.close()
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            pass


class _Done(Exception):
    pass


def resize(cid: str, h: int, w: int) -> None:
    """A resize frame through a client of the monitor that attaches no stream."""
    s = proto.connect(cid, 5.0)
    if s is None:
        from dockyard.errors import Conflict

        raise Conflict(f"Container {cid} is not running")
    try:
        s.sendall(b'{"stdin": false, "stdout": false, "stderr": false}\n' + proto.frame(proto.RESIZE,
                                                                                           f"{h} {w}".encode()))
        s.shutdown(socket.SHUT_WR)
    finally:
        s.close()


def wait_exit(cid: str) -> int | None:
    """Block until the monitor reports the container's exit (its EXIT frame); None if no monitor answers."""
    s = proto.connect(cid)
    if s is None:
        return None
    try:
        s.sendall(b'{"stdout": false, "stderr": false}\n')
        r = proto.FrameReader()
        while True:
            try:
                data = s.recv(65536)
            except OSError:
                return None
            if not data:
                return None
            for kind, payload in r.feed(data):
                if kind == proto.EXIT:
                    return int(payload)
    finally:
        s.close()


def frames(kind: int, payload: bytes) -> bytes:
    return proto.frame(kind, payload)

