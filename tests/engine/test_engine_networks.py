"""engine.networks called directly with a real store (rows only: no container is started here)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from dockyard.engine import networks as eng
from dockyard.errors import Conflict, InvalidArgument, NotFound
from dockyard.state.db import Store


@pytest.fixture
def store(root: Path) -> Store:
    return Store(str(root))


@pytest.fixture
def name(store: Store):
    n = "t" + uuid.uuid4().hex[:10]
    yield n
    try:
        eng.remove_network(store, n)
    except NotFound:
        pass


def test_create_validation_keeps_error_types(store: Store, name: str) -> None:
    with pytest.raises(InvalidArgument, match="not supported by dockyard"):
        eng.create_network(store, name, driver="macvlan")
    with pytest.raises(InvalidArgument, match="needs a cluster store"):  # overlay without --cluster-store
        eng.create_network(store, name, driver="overlay")
    with pytest.raises(InvalidArgument, match='plugin "nope" not found'):
        eng.create_network(store, name, driver="nope")
    with pytest.raises(InvalidArgument, match="IPv6"):
        eng.create_network(store, name, ipv6=True)
    with pytest.raises(InvalidArgument, match="corresponding subnet"):
        eng.create_network(store, name, gateways=["10.1.2.1"])
    with pytest.raises(InvalidArgument):
        eng.create_network(store, "bad name")


def test_create_list_inspect_remove(store: Store, name: str) -> None:
    n = eng.create_network(store, name, labels={"tier": "db"}, options={"x": "1"})
    assert (n.name, n.driver, n.labels, n.builtin) == (name, "bridge", {"tier": "db"}, False)
    assert n.subnet and n.gateway
    with pytest.raises(Conflict):
        eng.create_network(store, name)
    names = [x.name for x in eng.list_networks(store)]
    assert {"bridge", "host", "none", name} <= set(names) and names == sorted(names)
    assert [x.name for x in eng.list_networks(store, {"label": ["tier=db"]})] == [name]
    assert {x.name for x in eng.list_networks(store, {"type": ["builtin"]})} == {"bridge", "host", "none"}
    assert [x.name for x in eng.list_networks(store, {"dangling": ["true"]})] == [name]
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        eng.list_networks(store, {"colour": ["red"]})
    with pytest.raises(InvalidArgument, match="'type'='odd'"):
        eng.list_networks(store, {"type": ["odd"]})
    data = eng.inspect_network(store, n.id[:12])
    assert data["Name"] == name and data["IPAM"]["Config"][0]["Subnet"] == n.subnet
    assert data["Labels"] == {"tier": "db"} and data["Options"] == {"x": "1"}
    host = eng.inspect_network(store, "host")
    assert host["Driver"] == "host" and host["Id"] == eng.find_network(store, "host").id
    with pytest.raises(Conflict, match="pre-defined"):
        eng.remove_network(store, "host")
    eng.remove_network(store, name)
    with pytest.raises(NotFound):
        eng.inspect_network(store, name)


def test_prune_report(store: Store, name: str) -> None:
    eng.create_network(store, name, labels={"keep": "yes"})
    other = eng.create_network(store, name + "x")
    with pytest.raises(InvalidArgument):
        eng.prune_networks(store, {"colour": ["x"]})
    r = eng.prune_networks(store, {"label!": ["keep"]})
    assert (r.deleted, r.errors) == ([other.name], [])
    assert eng.prune_networks(store).deleted == [name]


def test_connect_unknown_container_is_not_found(store: Store, name: str) -> None:
    eng.create_network(store, name)
    with pytest.raises(NotFound, match="No such container"):
        eng.connect_network(store, name, "ghost")
    with pytest.raises(NotFound):
        eng.container_ports(store, "ghost")
