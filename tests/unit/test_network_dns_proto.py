"""The embedded DNS server's message handling (network.dns), without a network."""

from __future__ import annotations

import socket
import struct

from dockyard.network import dns


def query(name: str, qtype: int = 1, qid: int = 0x1234, flags: int = 0x0100) -> bytes:
    return struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 0) + dns.encode_name(name) + struct.pack("!HH", qtype, 1)


def test_parse_query_lowercases_and_rejects_malformed() -> None:
    q = query("Web.Example")
    assert dns.parse_query(q) == (0x1234, 0x0100, "web.example", 1, len(q))
    assert dns.parse_query(q[:-3]) is None  # truncated
    assert dns.parse_query(b"\0" * 5) is None
    assert dns.parse_query(query("a", flags=0x8100)) is None  # a response, not a query
    assert dns.parse_query(q[:12] + b"\xc0\x0c" + q[-4:]) is None  # compression in the question
    assert dns.parse_query(struct.pack("!HHHHHH", 1, 0, 2, 0, 0, 0) + q[12:]) is None  # two questions


def test_response_carries_question_and_a_records() -> None:
    q = query("db")
    r = dns.response(q, len(q), 0, [(1, socket.inet_aton("172.18.0.2")), (1, socket.inet_aton("172.18.0.3"))])
    qid, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", r)
    assert (qid, qd, an, ns, ar) == (0x1234, 1, 2, 0, 0)
    assert flags & 0x8000 and flags & 0x0100 and flags & 0x0400 and flags & 0xF == 0
    assert r[12:len(q)] == q[12:]
    assert r.endswith(socket.inet_aton("172.18.0.2") + r[-16:-4] + socket.inet_aton("172.18.0.3"))
    servfail = dns.response(q, len(q), 2, authoritative=False)
    assert struct.unpack_from("!H", servfail, 2)[0] & 0x040F == 2


def test_upstreams_from_spec() -> None:
    assert dns.upstreams("127.0.0.1:5353, 10.0.0.1") == [("127.0.0.1", 5353), ("10.0.0.1", 53)]
    assert all(not h.startswith("127.") for h, _ in dns.upstreams(""))
