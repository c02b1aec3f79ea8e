"""The rootless network namespace: where a rootless user's user-defined networks live (Podman's rootless-netns).

A rootless user may not make bridges on the host, but as root of its own user namespace it may make them in a
network namespace that this user namespace owns. One such namespace per user (per run dir) holds every bridge,
veth host end, nftables table and embedded DNS server of the user's user-defined networks, so the bridge driver's
code runs there unchanged, as it does for root on the host. It is made on first use and kept by a small holder
process (``sleep infinity`` after ``unshare(CLONE_NEWNET)``); ``<run dir>/netns.pid`` records ``pid inode``, the
namespace's path is ``/proc/<pid>/ns/net``. IPv4 forwarding is on inside it.

Outbound traffic: ``slirp4netns`` attached to it (``tap0`` 10.0.2.100, default route by 10.0.2.2, the host's
loopback out of reach as for the default network), the bridges' masquerade rule making containers' packets its
own. Published ports: the bridge firewall's DNAT maps in the namespace do what they do on root's host; slirp4netns
listens on the host port as the user and forwards to 10.0.2.100 on the same port (``add_hostfwd``), where the DNAT
sends it to the container. The forwards' ids are kept in ``<run dir>/netns-fwd/<container>`` for their removal.

``run_in(fn, ...)`` calls ``fn`` in that namespace when rootless (in a thread of its own: see there); for root it
calls it here: root's networks stay on the host.
"""

from __future__ import annotations

import contextlib
import os
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    T = TypeVar("T")

from dockyard.errors import DockyardError
from dockyard.rootless import ENV, run_dir

CLONE_NEWNET = 0x40000000
TAP_IP = "10.0.2.100"


def _libc():  # type: ignore[no-untyped-def]
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    import ctypes

    if _libc().setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def _read(run: str) -> str | None:
    """The namespace's path when its holder still lives (its inode checked: the pid may have been reused)."""
    try:
        with open(os.path.join(run, "netns.pid")) as f:
            pid, ino = (int(x) for x in f.read().split())
        path = f"/proc/{pid}/ns/net"
        if os.stat(path).st_ino == ino:
            return path
    except (OSError, ValueError):
        pass
    return None


def path() -> str:
    """The user's network namespace, made (with its slirp4netns) on first use."""
    run = run_dir()
    p = _read(run)
    if p:
        return p
    import fcntl

    lock = os.open(os.path.join(run, "netns.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        p = _read(run)
        if p is None:
            p = _make(run)
    finally:
        os.close(lock)
    return p


def _make(run: str) -> str:
    from dockyard.network import slirp

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the holder
        try:
            os.close(r)
            os.setsid()
            if _libc().unshare(CLONE_NEWNET) != 0:
                os._exit(1)
            with open("/proc/sys/net/ipv4/ip_forward", "w") as f:  # this namespace's (per netns)
                f.write("1")
            from dockyard.network.netlink import Netlink

            with Netlink() as nl:
                lo = nl.index("lo")
                if lo is not None:
                    nl.set_up(lo)
            os.write(w, b"1")
            null = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, 65536)
            os.execv("/bin/sleep", ["sleep", "infinity"])
        finally:
            os._exit(127)
    os.close(w)
    try:
        if os.read(r, 1) != b"1":
            raise DockyardError("cannot make the rootless network namespace")
        nspath = f"/proc/{pid}/ns/net"
        slirp.launch(pid, os.path.join(run, "netns-slirp.pid"), os.path.join(run, "netns-slirp.sock"))
        from dockyard.fsutil import atomic_write

        atomic_write(os.path.join(run, "netns.pid"), f"{pid} {os.stat(nspath).st_ino}\n".encode(), 0o600,
                     durable=False)
    except BaseException:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        raise
    finally:
        os.close(r)
    return nspath


def run_in(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in the user's network namespace when rootless, else here (see the module's docstring).

    A thread of its own does it: inside the user namespace a thread may enter the namespace but never come back
    to the host's (owned by the initial user namespace), so the thread that entered ends with the call. The
    processes it starts (``nft``, the DNS server) are made in that namespace."""
    if ENV not in os.environ:
        return fn(*args)
    import threading

    target = os.open(path(), os.O_RDONLY | os.O_CLOEXEC)
    out: list[Any] = []
    err: list[BaseException] = []

    def body() -> None:
        try:
            _setns(target)
            out.append(fn(*args))
        except BaseException as e:  # handed to the caller
            err.append(e)

    try:
        t = threading.Thread(target=body, name="rootless-netns")
        t.start()
        t.join()
    finally:
        os.close(target)
    if err:
        raise err[0]
    return out[0]


def _fwd_file(cid: str) -> str:
    from dockyard.network.slirp import _paths

    _paths(cid)  # checks the id's form
    d = os.path.join(run_dir(), "netns-fwd")
    os.makedirs(d, 0o700, exist_ok=True)
    return os.path.join(d, cid[:12])


def forward(cid: str, ports: list[tuple[str, int, int, str]]) -> None:
    """Host ports (host_ip, host_port, container_port, proto) forwarded by slirp4netns into the namespace."""
    from dockyard.network import slirp

    sock = os.path.join(run_dir(), "netns-slirp.sock")
    ids: list[str] = []
    try:
        for host_ip, hport, _cport, proto in ports:
            reply = slirp._api(sock, {"execute": "add_hostfwd", "arguments": {
                "proto": proto, "host_addr": host_ip or "0.0.0.0", "host_port": hport, "guest_addr": TAP_IP,
                "guest_port": hport}}, f"{host_ip or '0.0.0.0'}:{hport}/{proto}")
            ids.append(str((reply.get("return") or {}).get("id", "")))
    finally:
        if ids:
            from dockyard.fsutil import atomic_write

            atomic_write(_fwd_file(cid), " ".join(ids).encode(), 0o600, durable=False)


def unforward(cid: str) -> None:
    from dockyard.network import slirp

    f = _fwd_file(cid)
    try:
        with open(f) as fh:
            ids = fh.read().split()
    except OSError:
        return
    sock = os.path.join(run_dir(), "netns-slirp.sock")
    for i in ids:
        if i.isdigit():
            try:
                slirp._api(sock, {"execute": "remove_hostfwd", "arguments": {"id": int(i)}}, f"forward {i}")
            except (OSError, DockyardError):
                pass
    with contextlib.suppress(FileNotFoundError):
        os.unlink(f)
