"""Rootless networking: the default network of a rootless container is user-mode networking by slirp4netns.

A rootless user may not make bridges, veths or nftables rules on the host. Instead, once the runtime has created
the container (its network namespace exists, its process has not run), ``slirp4netns`` (Debian package of that
name) joins the namespace, makes a tap device ``tap0`` with 10.0.2.100/24, the gateway 10.0.2.2 and a DNS forwarder
on 10.0.2.3, and carries the container's traffic through ordinary sockets of the user on the host. It runs
sandboxed (its own mount namespace, no capabilities, seccomp) and with ``--disable-host-loopback``: the host's
127.0.0.1 stays out of reach, as with the bridge driver. Published ports (``-p``, ``-P``) are asked of its API
socket (``add_hostfwd``): slirp4netns listens on the host port as the user, so a port below 1024 or one in use is
refused with one line. Its pid and API socket live in ``<run dir>/slirp/<container id>.{pid,sock}``; ``release``
stops it (the monitor when the container exits, ``rm``).

Needs ``/dev/net/tun`` usable by the user (mode 0666, as udev makes it; some hosts leave it 0600).
"""

from __future__ import annotations

import os
import socket
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.engine.containers import Container

from dockyard import jsonc as json
from dockyard.errors import Conflict, DockyardError, InvalidArgument
from dockyard.rootless import run_dir

IP = "10.0.2.100"
NAMESERVER = "10.0.2.3"
READY_TIMEOUT = 10.0


def _dir() -> str:
    d = os.path.join(run_dir(), "slirp")
    os.makedirs(d, 0o700, exist_ok=True)
    return d


def _paths(cid: str) -> tuple[str, str]:
    if not (len(cid) == 64 and all(ch in "0123456789abcdef" for ch in cid)):
        raise InvalidArgument(f"invalid container id: {cid!r}")
    d = _dir()
    return os.path.join(d, f"{cid[:12]}.pid"), os.path.join(d, f"{cid[:12]}.sock")


def binary() -> str:
    import shutil

    path = shutil.which("slirp4netns")
    if path is None:
        raise DockyardError("rootless networking needs slirp4netns (apt-get install slirp4netns), "
                            "or run with --network none")
    return path


class SlirpAttachment:
    """``network.attach.Attachment``'s shape for the monitor: no endpoints, no netns to join."""

    def __init__(self, cid: str, ports: list[tuple[str, int, int, str]], dns: bool) -> None:
        self.cid = cid
        self.endpoints: list[Any] = []
        self.netns: str | None = None
        self.ports = ports
        self.mac = ""
        self.nameserver = None if dns else NAMESERVER
        self.ip: str | None = IP

    def plumb(self, pid: int) -> None:
        start(self.cid, pid, self.ports)


def prepare(c: Container, image_config: dict[str, Any]) -> SlirpAttachment:
    from dockyard.network.attach import _wanted_ports

    mode = c.spec.network_mode
    if mode not in ("bridge", "default"):
        raise InvalidArgument(f"network {mode}: rootless dockyard has only the default network (slirp4netns), "
                              "host, none and container:NAME")
    binary()
    ports = _wanted_ports(c, image_config)
    for host_ip, host_port, cport, proto in ports:
        if not host_port:
            raise InvalidArgument(f"rootless: publish {cport}/{proto} with an explicit host port (-p HOST:{cport})")
    return SlirpAttachment(c.id, ports, bool(getattr(c.spec, "dns", None)))


def start(cid: str, pid: int, ports: list[tuple[str, int, int, str]]) -> None:
    pidfile, sock = _paths(cid)
    try:
        launch(pid, pidfile, sock)
        for host_ip, host_port, cport, proto in ports:
            _api(sock, {"execute": "add_hostfwd", "arguments": {
                "proto": proto, "host_addr": host_ip or "0.0.0.0", "host_port": host_port, "guest_port": cport}},
                f"{host_ip or '0.0.0.0'}:{host_port}/{proto}")
    except BaseException:
        release(cid)
        raise


def launch(pid: int, pidfile: str, sock: str) -> None:
    """slirp4netns for the network namespace of ``pid``, ready (its pid in ``pidfile``, its API on ``sock``)."""
    import select
    import subprocess
    import time

    for p in (pidfile, sock):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
    r, w = os.pipe()
    try:
        proc = subprocess.Popen(
            [binary(), "--configure", "--mtu=65520", "--disable-host-loopback", "--enable-sandbox",
             "--enable-seccomp", "--api-socket", sock, "--ready-fd", str(w), str(pid), "tap0"],
            pass_fds=(w,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True, close_fds=True)
    finally:
        os.close(w)
    try:
        poll = select.poll()
        poll.register(r, select.POLLIN)
        deadline = time.monotonic() + READY_TIMEOUT
        got = b""
        while not got:
            left = deadline - time.monotonic()
            if left <= 0 or not poll.poll(left * 1000):
                raise DockyardError("slirp4netns did not become ready")
            got = os.read(r, 1)
            if not got:  # it exited
                err = (proc.stderr.read() if proc.stderr else b"").decode(errors="replace").strip()
                if "tun" in err:
                    err += " (rootless networking needs /dev/net/tun mode 0666)"
                raise DockyardError(f"slirp4netns failed: {err.splitlines()[-1] if err else proc.wait()}")
        from dockyard.fsutil import atomic_write

        atomic_write(pidfile, f"{proc.pid}\n".encode(), 0o600, durable=False)
        if proc.stderr:
            proc.stderr.close()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        os.close(r)


def _api(sock: str, req: dict[str, Any], what: str) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
        s.settimeout(5)
        s.connect(sock)
        s.sendall(json.dumps(req).encode())
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            data += b
    try:
        reply = json.loads(data or b"{}")
    except ValueError:
        reply = {"error": {"desc": data.decode(errors="replace")}}
    if "error" in reply:
        desc = str((reply["error"] or {}).get("desc") or reply["error"])
        raise Conflict(f"cannot publish {what}: {desc} (a rootless user can publish only free ports >= "
                       f"{_unprivileged_port_start()})")
    return reply if isinstance(reply, dict) else {}


def _unprivileged_port_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1024


def release(cid: str) -> None:
    """Stop the container's slirp4netns (idempotent)."""
    import signal

    pidfile, sock = _paths(cid)
    try:
        with open(pidfile) as f:
            pid = int(f.read())
        with open(f"/proc/{pid}/comm") as f:
            if f.read().strip() == "slirp4netns":
                os.kill(pid, signal.SIGKILL)  # the monitor ignores SIGTERM, and so does its child
    except (OSError, ValueError):
        pass
    for p in (pidfile, sock):
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
