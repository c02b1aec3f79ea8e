"""Just enough rtnetlink for bridges, veth pairs, addresses and routes: raw ``AF_NETLINK`` sockets, no library.

Vocabulary: a *link* is a network interface (``ip link``), known by name or by index; each network namespace has
its own links. ``Netlink()`` talks to the caller's namespace; ``Netlink(netns=path)`` opens its socket inside
another namespace (a socket stays bound to the namespace it was created in), so one process can configure a
container's ``eth0`` without forking or spawning ``ip``.

Example: a bridge, and a veth pair whose peer becomes ``eth0`` of a container::

    nl = Netlink()
    nl.create_bridge("dockyard0", group=0x6479)
    nl.add_address(nl.index("dockyard0"), "172.17.0.1", 16)
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    nl.create_veth("vethabc", "eth0", peer_netns_fd=fd, master=nl.index("dockyard0"), mac=b"\\x02\\x42...")
    inner = Netlink(netns=f"/proc/{pid}/ns/net")
    inner.add_address(inner.index("eth0"), "172.17.0.2", 16)
    inner.add_route_default(inner.index("eth0"), "172.17.0.1")

Importing ``pyroute2`` costs more than a whole ``dockyard run`` (see docs/decisions.md), hence this module.
"""

from __future__ import annotations

import os
import socket
import struct

NETLINK_ROUTE = 0
NETLINK_NETFILTER = 12
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE = 1, 4, 0x100, 0x200, 0x400
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR = 20, 21
RTM_NEWROUTE = 24
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO = 1, 3, 4, 10, 18
IFLA_GROUP, IFLA_NET_NS_FD = 27, 28
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
IFF_UP = 1
NFNL_SUBSYS_NFTABLES, NFT_MSG_GETCHAIN = 10, 4
NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME = 1, 3
AF_INET = 2
AF_BRIDGE = 7
RTM_GETADDR = 22
RTM_NEWNEIGH, RTM_DELNEIGH, RTM_GETNEIGH = 28, 29, 30
NLM_F_APPEND = 0x800
IFLA_VXLAN_ID, IFLA_VXLAN_LOCAL, IFLA_VXLAN_LEARNING, IFLA_VXLAN_PROXY, IFLA_VXLAN_PORT = 1, 4, 7, 11, 15
NDA_DST, NDA_LLADDR = 1, 2
NUD_NOARP, NUD_PERMANENT = 0x40, 0x80
NTF_SELF = 0x02
ZERO_MAC = b"\0" * 6
_NDMSG = struct.Struct("=BxxxiHBB")

_HDR = struct.Struct("=IHHII")
_IFINFO = struct.Struct("=BxHiII")


def _attr(kind: int, data: bytes) -> bytes:
    n = 4 + len(data)
    return struct.pack("=HH", n, kind) + data + b"\0" * ((4 - n % 4) % 4)


def _str(kind: int, s: str) -> bytes:
    return _attr(kind, s.encode() + b"\0")


def _u32(kind: int, v: int) -> bytes:
    return _attr(kind, struct.pack("=I", v))


def _ifinfo(index: int = 0, flags: int = 0, change: int = 0) -> bytes:
    return _IFINFO.pack(0, 0, index, flags, change)


def _attrs(data: bytes) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    i = 0
    while i + 4 <= len(data):
        n, kind = struct.unpack_from("=HH", data, i)
        if n < 4:
            break
        out[kind & 0x3FFF] = data[i + 4:i + n]
        i += (n + 3) & ~3
    return out


class NetlinkError(OSError):
    pass


class Netlink:
    """An rtnetlink socket in the caller's network namespace, or in the one at ``netns`` (a path)."""

    def __init__(self, netns: str | None = None, protocol: int = NETLINK_ROUTE) -> None:
        if netns is None:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, protocol)
        else:
            self.sock = _socket_in(netns)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Netlink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, kind: int, flags: int, body: bytes, dump: bool = False) -> list[tuple[int, bytes]]:
        """Send one message; return the replies (type, payload). Raises NetlinkError for a negative ack."""
        self.seq += 1
        seq = self.seq
        msg = _HDR.pack(_HDR.size + len(body), kind, NLM_F_REQUEST | NLM_F_ACK | flags, seq, 0) + body
        self.sock.sendto(msg, (0, 0))
        out: list[tuple[int, bytes]] = []
        while True:
            data = self.sock.recv(65536)
            i = 0
            while i + _HDR.size <= len(data):
                n, t, _f, s, _p = _HDR.unpack_from(data, i)
                payload = data[i + _HDR.size:i + n]
                i += (n + 3) & ~3
                if s != seq:
                    continue
                if t == NLMSG_ERROR:
                    (err,) = struct.unpack_from("=i", payload)
                    if err:
                        raise NetlinkError(-err, os.strerror(-err))
                    return out
                if t == NLMSG_DONE:
                    return out
                out.append((t, payload))
            if not dump and out:
                return out

    # ---- links ----------------------------------------------------------------------------------------------
    def index(self, name: str) -> int | None:
        """The index of link ``name``, or None when there is no such link."""
        try:
            r = self.request(RTM_GETLINK, 0, _ifinfo() + _str(IFLA_IFNAME, name))
        except NetlinkError as e:
            if e.errno in (19, 2):  # ENODEV, ENOENT
                return None
            raise
        for t, payload in r:
            if t == RTM_NEWLINK:
                return int(_IFINFO.unpack_from(payload)[2])
        return None

    def link(self, name: str) -> tuple[int, str] | None:
        """(index, kind) of link ``name`` (kind as ``ip -d link`` shows it: "bridge", "veth", "dummy"; "" for a
        device without one, such as a physical NIC), or None when there is no such link."""
        try:
            r = self.request(RTM_GETLINK, 0, _ifinfo() + _str(IFLA_IFNAME, name))
        except NetlinkError as e:
            if e.errno in (19, 2):  # ENODEV, ENOENT
                return None
            raise
        for t, payload in r:
            if t == RTM_NEWLINK:
                info = _attrs(_attrs(payload[_IFINFO.size:]).get(IFLA_LINKINFO, b""))
                return int(_IFINFO.unpack_from(payload)[2]), info.get(IFLA_INFO_KIND, b"").rstrip(b"\0").decode()
        return None

    def links(self) -> list[tuple[int, str]]:
        """(index, name) of every link."""
        out = []
        for t, payload in self.request(RTM_GETLINK, 0x300, _ifinfo(), dump=True):  # NLM_F_DUMP
            if t == RTM_NEWLINK:
                a = _attrs(payload[_IFINFO.size:])
                out.append((int(_IFINFO.unpack_from(payload)[2]), a.get(IFLA_IFNAME, b"").rstrip(b"\0").decode()))
        return out

    def ports(self, master: int) -> list[str]:
        """The names of the links enslaved to link ``master`` (a bridge's ports)."""
        out = []
        for t, payload in self.request(RTM_GETLINK, 0x300, _ifinfo(), dump=True):  # NLM_F_DUMP
            if t == RTM_NEWLINK:
                a = _attrs(payload[_IFINFO.size:])
                if a.get(IFLA_MASTER) == struct.pack("=I", master):
                    out.append(a.get(IFLA_IFNAME, b"").rstrip(b"\0").decode())
        return out

    def move_link(self, name: str, netns_fd: int) -> None:
        """Move link ``name`` into the namespace ``netns_fd`` (it arrives down, without its master)."""
        self.request(RTM_NEWLINK, 0, _ifinfo() + _str(IFLA_IFNAME, name) + _u32(IFLA_NET_NS_FD, netns_fd))

    def create_bridge(self, name: str, group: int = 0, mtu: int = 0) -> int:
        body = _ifinfo(0, IFF_UP, IFF_UP) + _str(IFLA_IFNAME, name) + _attr(IFLA_LINKINFO, _str(IFLA_INFO_KIND,
                                                                                             "bridge"))
        if group:
            body += _u32(IFLA_GROUP, group)
        if mtu:
            body += _u32(IFLA_MTU, mtu)
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)
        idx = self.index(name)
        assert idx is not None
        return idx

    def create_veth(self, name: str, peer: str, *, peer_netns_fd: int | None = None, master: int | None = None,
                    mac: bytes | None = None, mtu: int = 0, group: int = 0) -> None:
        """A veth pair: ``name`` here, up (enslaved to ``master``, in interface group ``group``); ``peer`` in the
        given namespace, down (the kernel refuses to open a peer before the pair exists: bring it up with
        ``set_up`` from its namespace)."""
        peer_body = _ifinfo() + _str(IFLA_IFNAME, peer)
        if peer_netns_fd is not None:
            peer_body += _u32(IFLA_NET_NS_FD, peer_netns_fd)
        if mac:
            peer_body += _attr(IFLA_ADDRESS, mac)
        if mtu:
            peer_body += _u32(IFLA_MTU, mtu)
        info = _str(IFLA_INFO_KIND, "veth") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_body))
        body = _ifinfo(0, IFF_UP, IFF_UP) + _str(IFLA_IFNAME, name) + _attr(IFLA_LINKINFO, info)
        if master:
            body += _u32(IFLA_MASTER, master)
        if mtu:
            body += _u32(IFLA_MTU, mtu)
        if group:
            body += _u32(IFLA_GROUP, group)
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)

    def delete_link(self, name: str) -> bool:
        """Delete link ``name`` (a veth takes its peer with it). False when it did not exist."""
        try:
            self.request(RTM_DELLINK, 0, _ifinfo() + _str(IFLA_IFNAME, name))
            return True
        except NetlinkError as e:
            if e.errno in (19, 2):
                return False
            raise

    def set_up(self, index: int, master: int = 0) -> None:
        """Bring link ``index`` up (and enslave it to ``master``, in the same request)."""
        self.request(RTM_NEWLINK, 0, _ifinfo(index, IFF_UP, IFF_UP) + (_u32(IFLA_MASTER, master) if master else b""))

    # ---- addresses and routes --------------------------------------------------------------------------------
    def add_address(self, index: int, ip: str, prefixlen: int, broadcast: str | None = None) -> None:
        raw = socket.inet_aton(ip)
        body = struct.pack("=BBBBI", AF_INET, prefixlen, 0, 0, index) + _attr(IFA_LOCAL, raw) + _attr(IFA_ADDRESS,
                                                                                                   raw)
        if broadcast:
            body += _attr(IFA_BROADCAST, socket.inet_aton(broadcast))
        try:
            self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)
        except NetlinkError as e:
            if e.errno != 17:  # EEXIST: already there
                raise

    def del_address(self, index: int, ip: str, prefixlen: int) -> None:
        raw = socket.inet_aton(ip)
        body = struct.pack("=BBBBI", AF_INET, prefixlen, 0, 0, index) + _attr(IFA_LOCAL, raw)
        try:
            self.request(RTM_DELADDR, 0, body)
        except NetlinkError as e:
            if e.errno not in (99, 19, 2):  # EADDRNOTAVAIL, ENODEV
                raise

    def address_index(self, ip: str) -> int | None:
        """The index of the link holding IPv4 address ``ip`` (None when no link has it)."""
        raw = socket.inet_aton(ip)
        for t, payload in self.request(RTM_GETADDR, 0x300, struct.pack("=BBBBI", AF_INET, 0, 0, 0, 0), dump=True):
            if t == RTM_NEWADDR and _attrs(payload[8:]).get(IFA_LOCAL) == raw:
                return int(struct.unpack_from("=I", payload, 4)[0])
        return None

    def mtu(self, index: int) -> int:
        """The MTU of link ``index`` (0 when there is no such link)."""
        try:
            r = self.request(RTM_GETLINK, 0, _ifinfo(index))
        except NetlinkError:
            return 0
        for t, payload in r:
            if t == RTM_NEWLINK:
                v = _attrs(payload[_IFINFO.size:]).get(IFLA_MTU, b"")
                return int(struct.unpack("=I", v)[0]) if len(v) == 4 else 0
        return 0

    def add_route_default(self, index: int, gateway: str) -> None:
        # rtmsg: family, dst_len, src_len, tos, table main, proto boot, scope universe, type unicast; flags
        body = struct.pack("=BBBBBBBBI", AF_INET, 0, 0, 0, 254, 3, 0, 1, 0)
        body += _attr(RTA_GATEWAY, socket.inet_aton(gateway)) + _u32(RTA_OIF, index)
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body)


    # ---- VXLAN, forwarding database, neighbours (overlay networks: network.overlay) --------------------------
    def create_vxlan(self, name: str, vni: int, local: str, *, port: int = 4789, master: int | None = None,
                     mtu: int = 0, group: int = 0, netns_fd: int | None = None) -> None:
        """A VXLAN device for ``vni``, sourcing from ``local``, UDP ``port``, learning off and ARP proxy on (ARP
        requests are answered from its neighbour table and never flooded), up, enslaved to ``master``.

        With ``netns_fd`` the device is made in that namespace while its UDP socket is opened in this socket's
        namespace (the kernel keeps the namespace the request came from as the device's link namespace):
        encapsulated packets leave and arrive by this namespace's routes and addresses. Not up then (bring it up
        from its namespace, with its master there)."""
        data = (_u32(IFLA_VXLAN_ID, vni) + _attr(IFLA_VXLAN_LOCAL, socket.inet_aton(local))
                + _attr(IFLA_VXLAN_LEARNING, b"\0") + _attr(IFLA_VXLAN_PROXY, b"\1")
                + _attr(IFLA_VXLAN_PORT, struct.pack("!H", port)))
        info = _str(IFLA_INFO_KIND, "vxlan") + _attr(IFLA_INFO_DATA, data)
        up = 0 if netns_fd is not None else IFF_UP
        body = _ifinfo(0, up, up) + _str(IFLA_IFNAME, name) + _attr(IFLA_LINKINFO, info)
        if netns_fd is not None:
            body += _u32(IFLA_NET_NS_FD, netns_fd)
        if master:
            body += _u32(IFLA_MASTER, master)
        if mtu:
            body += _u32(IFLA_MTU, mtu)
        if group:
            body += _u32(IFLA_GROUP, group)
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)

    def _neigh(self, kind: int, family: int, index: int, mac: bytes, dst: str, flags: int, nlflags: int) -> None:
        body = _NDMSG.pack(family, index, NUD_PERMANENT | (NUD_NOARP if family == AF_BRIDGE else 0), flags, 0)
        body += _attr(NDA_LLADDR, mac) + _attr(NDA_DST, socket.inet_aton(dst))
        self.request(kind, nlflags, body)

    def fdb_add(self, index: int, mac: bytes, dst: str) -> None:
        """``bridge fdb append MAC dev VXLAN dst DST self``: frames for ``mac`` (all-zero: flooded frames) go to
        the VXLAN endpoint ``dst``; several all-zero entries flood to several hosts."""
        flags = NLM_F_CREATE | (NLM_F_APPEND if mac == ZERO_MAC else NLM_F_REPLACE)
        self._neigh(RTM_NEWNEIGH, AF_BRIDGE, index, mac, dst, NTF_SELF, flags)

    def fdb_del(self, index: int, mac: bytes, dst: str) -> None:
        try:
            self._neigh(RTM_DELNEIGH, AF_BRIDGE, index, mac, dst, NTF_SELF, 0)
        except NetlinkError as e:
            if e.errno not in (2, 19):  # ENOENT, ENODEV
                raise

    def neigh_add(self, index: int, ip: str, mac: bytes) -> None:
        """A permanent ARP entry ``ip`` -> ``mac`` on link ``index`` (answered by a proxying VXLAN device)."""
        self._neigh(RTM_NEWNEIGH, AF_INET, index, mac, ip, 0, NLM_F_CREATE | NLM_F_REPLACE)

    def neigh_del(self, index: int, ip: str, mac: bytes) -> None:
        try:
            self._neigh(RTM_DELNEIGH, AF_INET, index, mac, ip, 0, 0)
        except NetlinkError as e:
            if e.errno not in (2, 19):
                raise

    def neighbours(self, index: int, family: int = AF_INET) -> set[tuple[bytes, str]]:
        """(mac, dst address) of the permanent entries of link ``index``: ``AF_INET`` its ARP table, ``AF_BRIDGE``
        its forwarding database (entries with a VXLAN destination)."""
        out = set()
        for t, payload in self.request(RTM_GETNEIGH, 0x300, _NDMSG.pack(family, 0, 0, 0, 0), dump=True):
            if t != RTM_NEWNEIGH:
                continue
            fam, idx, state, _flags, _type = _NDMSG.unpack_from(payload)
            if idx != index or not state & NUD_PERMANENT:
                continue
            a = _attrs(payload[_NDMSG.size:])
            mac, dst = a.get(NDA_LLADDR, b""), a.get(NDA_DST, b"")
            if len(mac) == 6 and len(dst) == 4:
                out.add((mac, socket.inet_ntoa(dst)))
        return out


def nft_has_chain(table: str, chain: str) -> bool:
    """Whether nftables table ``ip TABLE`` has a chain named ``chain`` (one nfnetlink query, no ``nft`` process:
    ~50 us). False when the table itself is missing."""
    msg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETCHAIN
    body = struct.pack("=BBH", AF_INET, 0, 0) + _str(NFTA_CHAIN_TABLE, table) + _str(NFTA_CHAIN_NAME, chain)
    with Netlink(protocol=NETLINK_NETFILTER) as nl:
        try:
            return bool(nl.request(msg_type, 0, body))
        except NetlinkError as e:
            if e.errno == 2:  # ENOENT: no such table or chain
                return False
            raise


def _socket_in(netns: str) -> socket.socket:
    """A netlink socket created inside the network namespace at ``netns`` (this thread returns home after)."""
    from dockyard.runtime import syscalls

    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        syscalls.setns(target, syscalls.CLONE_NEWNET)
        try:
            return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
        finally:
            syscalls.setns(home, syscalls.CLONE_NEWNET)
    finally:
        os.close(home)
        os.close(target)


def host_routes() -> list[tuple[int, int]]:
    """(network, mask) as integers of every IPv4 route of the caller's namespace (``/proc/net/route``)."""
    out = []
    try:
        with open("/proc/net/route") as f:
            next(f)
            for ln in f:
                p = ln.split()
                if len(p) >= 8:
                    mask = int.from_bytes(bytes.fromhex(p[7])[::-1], "big")
                    if mask:  # the default route covers everything; it is not a network in use
                        out.append((int.from_bytes(bytes.fromhex(p[1])[::-1], "big"), mask))
    except OSError:
        pass
    return out
