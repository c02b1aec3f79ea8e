"""The client side of attach: copy a container's output to our stdout/stderr and our stdin to it.

With a tty the local terminal is put in raw mode, its size is sent now and on every SIGWINCH, and the detach
sequence (Ctrl-P Ctrl-Q by default) leaves the container running.
"""

from __future__ import annotations

import os
import selectors
import signal
import sys

from dockyard.engine import attach as proto

DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q


def _winsize(fd: int) -> tuple[int, int] | None:
    import fcntl
    import struct
    import termios

    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
        return rows, cols
    except OSError:
        return None


def parse_detach_keys(spec: str | None) -> bytes:
    if not spec:
        return DETACH_KEYS
    out = bytearray()
    for k in spec.split(","):
        k = k.strip().lower()
        if k.startswith("ctrl-") and len(k) == 6:
            out.append(ord(k[5]) & 0x1F)
        elif len(k) == 1:
            out.append(ord(k))
    return bytes(out) or DETACH_KEYS


def attach(cid: str, *, stdin: bool, tty: bool, start: bool = False, stdout: bool = True, stderr: bool = True,
           detach_keys: bytes = DETACH_KEYS) -> int | None:
    """Attach to a running container's monitor. Returns the exit status, or None when detached / not running."""
    sock = proto.connect(cid)
    if sock is None:
        return None
    from dockyard import jsonc as json

    sock.sendall(json.dumps({"stdin": stdin, "stdout": stdout, "stderr": stderr}).encode() + b"\n")
    in_fd = sys.stdin.fileno() if stdin else None
    raw_state = None
    if tty and in_fd is not None and os.isatty(in_fd):
        import termios
        import tty as ttymod

        raw_state = termios.tcgetattr(in_fd)
        ttymod.setraw(in_fd, termios.TCSANOW)  # not TCSAFLUSH: keys typed ahead reach the container
    old_winch = None
    if tty and os.isatty(sys.stdout.fileno()):
        ws = _winsize(sys.stdout.fileno())
        if ws:
            sock.sendall(proto.frame(proto.RESIZE, f"{ws[0]} {ws[1]}".encode()))

        def on_winch(signum: int, frame: object) -> None:
            w = _winsize(sys.stdout.fileno())
            if w:
                try:
                    sock.sendall(proto.frame(proto.RESIZE, f"{w[0]} {w[1]}".encode()))
                except OSError:
                    pass

        old_winch = signal.signal(signal.SIGWINCH, on_winch)
    if start:
        sock.sendall(proto.frame(proto.START))
    out = {proto.STDOUT: sys.stdout.buffer, proto.STDERR: sys.stderr.buffer}
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, "sock")
    if in_fd is not None:
        sel.register(in_fd, selectors.EVENT_READ, "stdin")
    reader = proto.FrameReader()
    status: int | None = None
    pending = b""
    try:
        while status is None:
            try:
                events = sel.select()
            except InterruptedError:
                continue
            for key, _ in events:
                if key.data == "sock":
                    try:
                        data = sock.recv(65536)
                    except OSError:  # the monitor went away: the caller reads the outcome from the store
                        data = b""
                    if not data:
                        return status
                    for kind, payload in reader.feed(data):
                        if kind in out:
                            f = out[proto.STDOUT if tty else kind]
                            f.write(payload)
                            f.flush()
                        elif kind == proto.EXIT:
                            status = int(payload)
                else:
                    data = os.read(in_fd, 65536)  # type: ignore[arg-type]
                    if not data:
                        sel.unregister(in_fd)
                        sock.sendall(proto.frame(proto.STDIN))
                        continue
                    if tty and detach_keys:
                        data = pending + data
                        pending = b""
                        idx = data.find(detach_keys)
                        if idx >= 0:
                            if idx:
                                sock.sendall(proto.frame(proto.STDIN, data[:idx]))
                            return None
                        # hold back a prefix of the detach sequence until the next read decides
                        for n in range(len(detach_keys) - 1, 0, -1):
                            if data.endswith(detach_keys[:n]):
                                pending, data = data[-n:], data[:-n]
                                break
                        if not data:
                            continue
                    sock.sendall(proto.frame(proto.STDIN, data))
        return status
    finally:
        if raw_state is not None:
            import termios

            termios.tcsetattr(in_fd, termios.TCSADRAIN, raw_state)  # type: ignore[arg-type]
        if old_winch is not None:
            signal.signal(signal.SIGWINCH, old_winch)
        sock.close()
