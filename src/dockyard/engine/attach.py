"""The attach protocol between a container's monitor and its clients (``run``, ``start -a``, ``attach``, ``wait``).

The monitor listens on the unix socket ``/run/dockyard/attach/<container id>.sock``, in a directory only root can
enter (``/run/dockyard`` is 0700), and accepts only clients of its own user (SO_PEERCRED). It is not an abstract
socket: those are reachable from every process of the network namespace, i.e. from any local user and from any
``--network host`` container (containerd's CVE-2020-15257). ``/proc/net/unix``, which a host-network container can
read, shows only the name it was bound at: a neutral one (see ``listen``). A socket left by a monitor that
died refuses connections, and goes with the container (``rm``). A client sends one JSON line ``{"stdin": bool, "stdout": bool, "stderr": bool}`` and then both sides
exchange frames, shaped like Docker's multiplexed stream: 1 byte stream type, 3 zero bytes, 4 bytes big-endian
payload length, payload.

Stream types: 0 stdin (client -> monitor; an empty payload closes the container's stdin), 1 stdout, 2 stderr,
3 exit (monitor -> client; payload is the exit status as decimal text), 4 resize (client -> monitor; payload
"rows cols"), 5 start (client -> monitor: the first attached client of ``run`` asks the monitor to start the
process once it is attached, so no early output is lost).
"""

from __future__ import annotations

import os
import socket
import struct

STDIN, STDOUT, STDERR, EXIT, RESIZE, START = 0, 1, 2, 3, 4, 5
_HDR = struct.Struct(">BxxxI")
_UCRED = struct.Struct("3i")


from dockyard.rootless import run_dir

RUN_DIR = run_dir()  # runtime state that lives until reboot; root-only (0700); the user's when rootless
SOCK_DIR = RUN_DIR + "/attach"


def address(container_id: str) -> str:
    return f"{SOCK_DIR}/{container_id}.sock"


def private_dir(path: str) -> None:
    """Make ``path`` a directory only its owner (root) can enter; a wider existing one is narrowed (migration)."""
    try:
        os.mkdir(path, 0o700)
        return
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        try:
            os.mkdir(path, 0o700)
            return
        except FileExistsError:
            pass
    except FileExistsError:
        pass
    st = os.stat(path)
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def listen(container_id: str) -> socket.socket:
    """The monitor's listening socket (replacing a stale one of an earlier monitor of this container).

    It is bound under a name that says nothing (``/proc/self/fd/<dir fd>/.bind-<pid>``, which is what
    ``/proc/net/unix`` shows) and then renamed to its address."""
    private_dir(RUN_DIR)
    private_dir(SOCK_DIR)
    d = os.open(SOCK_DIR, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        tmp = f".bind-{os.getpid()}"
        try:
            os.unlink(tmp, dir_fd=d)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            s.bind(f"/proc/self/fd/{d}/{tmp}")
            os.chmod(tmp, 0o600, dir_fd=d)  # connecting needs write permission on the socket file: root only
            s.listen(64)
            os.rename(tmp, f"{container_id}.sock", src_dir_fd=d, dst_dir_fd=d)
        except BaseException:
            s.close()
            raise
    finally:
        os.close(d)
    return s


def forget(container_id: str) -> None:
    """Remove the socket of a container that is being removed."""
    try:
        os.unlink(address(container_id))
    except FileNotFoundError:
        pass


def peer_allowed(s: socket.socket) -> bool:
    """True when the connected peer runs as our own effective user (SO_PEERCRED: uid as of its connect)."""
    try:
        _pid, uid, _gid = _UCRED.unpack(s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size))
    except OSError:
        return False
    return uid == os.geteuid()


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
        connect_to(s, container_id)
    except (ConnectionRefusedError, FileNotFoundError, PermissionError):
        s.close()
        return None
    s.settimeout(None)
    return s


def connect_to(s: socket.socket, container_id: str) -> None:
    """Connect ``s`` to the container's attach socket. Its path outgrows a socket address (107 bytes) under a
    long runtime directory (a rootless user's $XDG_RUNTIME_DIR): it is then reached through a descriptor of its
    directory, as ``listen`` binds it."""
    path = address(container_id)
    if len(path) < 108:
        s.connect(path)
        return
    d = os.open(SOCK_DIR, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        s.connect(f"/proc/self/fd/{d}/{container_id}.sock")
    finally:
        os.close(d)
