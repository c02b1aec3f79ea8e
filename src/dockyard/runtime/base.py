"""The runtime interface: what the engine asks of an OCI runtime.

Vocabulary and lifecycle (the OCI runtime spec's):

- A *bundle* is a directory holding ``config.json`` (the OCI runtime spec). ``root.path`` names an already-mounted
  root filesystem (e.g. the engine's overlay mount). The runtime never sees images.
- ``create(id, bundle, stdio)`` builds the container: namespaces, cgroup with limits, mounts, pivot_root, user,
  capabilities... and leaves its init process stopped just before ``execve`` (state ``created``). It returns the
  init's host pid. The caller is expected to be a child subreaper and ``waitpid()`` that pid.
- ``start(id)`` lets the init ``execve`` ``process.args`` (state ``running``); when it exits: ``stopped``.
- ``delete(id)`` removes the cgroup and the runtime's state.

Example::

    rt = get_runtime()                                   # built-in; get_runtime("runc") for runc
    pid = rt.create("c1", "/path/to/bundle", Stdio(0, 1, 2))
    rt.start("c1")
    os.waitpid(pid, 0)
    rt.delete("c1")
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Stdio:
    """File descriptors (open in the caller) that the container process gets as 0, 1 and 2.

    ``None`` means /dev/null. With ``terminal_fd`` (a pty *slave*), that fd becomes the controlling terminal and
    0, 1 and 2, and is bind-mounted on the container's /dev/console.

    With ``console_socket`` (one end of a unix socket pair) the runtime allocates the terminal itself, inside the
    container's own /dev/pts (as runc's --console-socket: ``tty`` in the container then names /dev/pts/0), and
    sends the pty *master* back over that socket (SCM_RIGHTS); see ``receive_console``.
    """

    __slots__ = ("stdin", "stdout", "stderr", "terminal_fd", "console_socket")

    def __init__(self, stdin: int | None = None, stdout: int | None = None, stderr: int | None = None,
                 terminal_fd: int | None = None, console_socket: int | None = None) -> None:
        self.stdin, self.stdout, self.stderr, self.terminal_fd = stdin, stdout, stderr, terminal_fd
        self.console_socket = console_socket

    def __repr__(self) -> str:
        return f"Stdio({self.stdin}, {self.stdout}, {self.stderr}, terminal_fd={self.terminal_fd})"


class Runtime:
    """The interface every runtime implements (a protocol: nothing is inherited from it)."""

    name: str

    def create(self, container_id: str, bundle: str, stdio: Stdio) -> int: ...

    def start(self, container_id: str) -> None: ...

    def state(self, container_id: str) -> dict[str, Any]: ...

    def kill(self, container_id: str, sig: int, all: bool = False) -> None: ...

    def pause(self, container_id: str) -> None: ...

    def resume(self, container_id: str) -> None: ...

    def delete(self, container_id: str, force: bool = False) -> None: ...

    def exec(self, container_id: str, process: dict[str, Any], stdio: Stdio) -> int: ...

    def stats(self, container_id: str) -> dict[str, Any]: ...

    def oom_killed(self, container_id: str) -> bool: ...


def send_console(sock_fd: int, master: int) -> None:
    """Send a pty master over a console socket (the runtime's side)."""
    import socket

    s = socket.socket(fileno=os.dup(sock_fd))
    try:
        socket.send_fds(s, [b"pty"], [master])
    finally:
        s.close()


def receive_console(sock_fd: int) -> int:
    """Receive the pty master a runtime sent over a console socket (the caller's side)."""
    import socket

    s = socket.socket(fileno=os.dup(sock_fd))
    try:
        _, fds, _, _ = socket.recv_fds(s, 16, 1)
    finally:
        s.close()
    if not fds:
        raise OSError(5, "the runtime sent no terminal")
    return fds[0]


def get_runtime(name: str = "dockyard", state_root: str = "/run/dockyard/runtime") -> Runtime:
    """``"dockyard"``: the built-in runtime; ``"runc"``, ``"crun"`` or a path: that OCI runtime binary."""
    if name in ("dockyard", "builtin", ""):
        from dockyard.runtime.builtin import BuiltinRuntime

        return BuiltinRuntime(state_root)
    from dockyard.runtime.ocibin import OCIBinaryRuntime

    return OCIBinaryRuntime(name, state_root)
