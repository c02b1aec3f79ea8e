"""network.checks: the allow-lists for values that reach firewall rules, interface names and sysctl paths."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.network import checks


@pytest.mark.parametrize("v, want", [(1, 1), ("65535", 65535), (8080, 8080)])
def test_port_ok(v: object, want: int) -> None:
    assert checks.port(v) == want


@pytest.mark.parametrize("v", [0, 65536, -1, True, "80 ", "0x50", "٣", "80; drop", None, 80.0, "123456"])
def test_port_refused(v: object) -> None:
    with pytest.raises(InvalidArgument):
        checks.port(v)


def test_proto() -> None:
    assert [checks.proto(p) for p in ("TCP", "udp", "sctp")] == ["tcp", "udp", "sctp"]
    for bad in ("icmp", "tcp ", "tcp . 1", "", None):
        with pytest.raises(InvalidArgument):
            checks.proto(bad)


def test_addresses() -> None:
    assert checks.ipv4("127.0.0.1") == "127.0.0.1"
    assert checks.ipv4_network("172.18.0.0/16") == ("172.18.0.0", 16)
    for bad in ("1.2.3", "01.2.3.4", "1.2.3.4 ", "::1", "1.2.3.4/32", "", None):
        with pytest.raises(InvalidArgument):
            checks.ipv4(bad)
    with pytest.raises(InvalidArgument):
        checks.ipv4_network("172.18.0.1/16")


@pytest.mark.parametrize("v", ["dockyard0", "dy-0123456789ab", "br_1.x", "a" * 15])
def test_ifname_ok(v: str) -> None:
    assert checks.ifname(v) == v


@pytest.mark.parametrize("v", ["", ".", "..", "../all", "a/b", "a" * 16, "br 0", 'br"0', "-x", "br*", "é", None])
def test_ifname_refused(v: object) -> None:
    with pytest.raises(InvalidArgument):
        checks.ifname(v)


def test_exposed() -> None:
    assert checks.exposed("80") == [(80, "tcp")]
    assert checks.exposed("53/UDP") == [(53, "udp")]
    assert checks.exposed("8000-8002/tcp") == [(8000, "tcp"), (8001, "tcp"), (8002, "tcp")]
    for bad in ("80/tcp . 1 : 10.0.0.1 . 1 }", "/tcp", "0/tcp", "9-8", "80-/tcp", "a/tcp", 80):
        with pytest.raises(InvalidArgument):
            checks.exposed(bad)


def test_mac_and_alias() -> None:
    assert checks.mac("02:42:AC:11:00:02") == bytes.fromhex("0242ac110002")
    assert checks.mac("02-42-ac-11-00-02") == bytes.fromhex("0242ac110002")
    for bad in ("zz", "02:42:ac:11:00", "01:00:5e:00:00:01", "02:42:ac:11:00:0g", ""):
        with pytest.raises(InvalidArgument):
            checks.mac(bad)
    assert checks.alias("db.local") == "db.local"
    for bad in ("", "a b", "a\nb", "#x", "x" * 256):
        with pytest.raises(InvalidArgument):
            checks.alias(bad)
