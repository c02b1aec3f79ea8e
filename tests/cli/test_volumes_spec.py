"""Mount syntax (``-v``, ``--mount``, ``--volumes-from``) parsed as Docker does; no root, no containers."""

from __future__ import annotations

import pytest

from dockyard.errors import InvalidArgument
from dockyard.volumes.spec import parse_all, parse_mount, parse_volume, parse_volumes_from, valid_mode


def test_v_kinds():
    m = parse_volume("/host/dir/:/data:ro,rslave")
    assert (m["type"], m["source"], m["target"], m["readonly"], m["options"], m["mode"]) == (
        "bind", "/host/dir", "/data", True, ["rslave"], "ro,rslave")
    m = parse_volume("cache:/var/cache:nocopy")
    assert (m["type"], m["source"], m["nocopy"], m["readonly"]) == ("volume", "cache", True, False)
    m = parse_volume("/anon")
    assert (m["type"], m["source"], m["target"]) == ("volume", "", "/anon")
    assert parse_volume("v1:/x:z")["mode"] == "z"


@pytest.mark.parametrize("raw, message", [
    ("/x:ro", "invalid volume specification: '/x:ro'"),
    ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
    (":/x", "invalid volume specification: ':/x'"),
    ("v1:/x:ro,rw", "invalid mode: ro,rw"),
    ("v1:/x:shared", "invalid volume specification: 'v1:/x:shared': invalid mount config for type \"volume\": "
                     "field BindOptions must not be specified"),
    ("/h:/x:nocopy", "invalid volume specification: '/h:/x:nocopy': invalid mount config for type \"bind\": "
                     "field VolumeOptions must not be specified"),
    ("./rel:/x", 'create ./rel: "./rel" includes invalid characters for a local volume name, only '
                 '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute '
                 "path"),
])
def test_v_errors(raw, message):
    with pytest.raises(InvalidArgument) as ei:
        parse_volume(raw)
    assert str(ei.value) == message


def test_mount_fields_and_aliases():
    m = parse_mount("type=volume,src=v1,destination=/d,ro,volume-opt=type=tmpfs,volume-opt=device=tmpfs,"
                    "volume-label=a=b,volume-nocopy=true")
    assert (m["source"], m["target"], m["readonly"], m["nocopy"]) == ("v1", "/d", True, True)
    assert m["volume_options"] == {"type": "tmpfs", "device": "tmpfs"} and m["volume_labels"] == {"a": "b"}
    m = parse_mount("type=bind,source=/tmp,target=/t,bind-propagation=rshared,readonly=false")
    assert (m["type"], m["options"], m["readonly"]) == ("bind", ["rshared"], False)
    m = parse_mount("type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=0700")
    assert m["options"] == ["size=64m", "mode=700"]
    assert parse_mount("target=/anon")["type"] == "volume"  # Docker's default type
    assert parse_mount('"type=volume","dst=/a,b"')["target"] == "/a,b"  # CSV quoting, as the Docker CLI


@pytest.mark.parametrize("raw, message", [
    ("type=volume", "target is required"),
    ("type=volume,target=/x,bogus", "invalid field 'bogus' must be a key=value pair"),
    ("type=volume,target=/x,ro=maybe", "invalid value for ro: maybe"),
    ("type=tmpfs,target=/x,tmpfs-size=lots", "invalid value for tmpfs-size: lots"),
    ("type=tmpfs,target=/x,bind-propagation=shared", "cannot mix 'bind-*' options with mount type 'tmpfs'"),
])
def test_mount_flag_errors(raw, message):
    with pytest.raises(InvalidArgument) as ei:
        parse_mount(raw)
    assert str(ei.value) == f'invalid argument "{raw}" for "--mount" flag: {message}'


@pytest.mark.parametrize("raw, message", [
    ("type=bind,target=/x", 'invalid mount config for type "bind": field Source must not be empty'),
    ("type=bind,source=rel,target=/x", "invalid mount config for type \"bind\": invalid mount path: 'rel' mount "
                                       "path must be absolute"),
    ("type=bind,source=/tmp,target=/x,bind-propagation=weird",
     'invalid mount config for type "bind": invalid propagation mode: weird'),
    ("type=volume,target=/x,readonly", 'invalid mount config for type "volume": must not set ReadOnly mode when '
                                       "using anonymous volumes"),
    ("type=tmpfs,source=x,target=/x", 'invalid mount config for type "tmpfs": field Source must not be specified'),
    ("type=image,source=x,target=/x", 'invalid mount config for type "image": mount type unknown'),
    ("type=volume,source=v1,target=/x,volume-opt=colour=red", 'create v1: invalid option: "colour"'),
    ("type=volume,source=v1,target=/", "invalid mount config for type \"volume\": invalid specification: "
                                       "destination can't be '/'"),
])
def test_mount_engine_errors(raw, message):
    with pytest.raises(InvalidArgument) as ei:
        parse_mount(raw)
    assert str(ei.value) == message


def test_volumes_from_and_modes():
    assert parse_volumes_from("db")["source"] == "db"
    assert parse_volumes_from("db:ro")["mode"] == "ro"
    for bad in ("db:nocopy", "db:rshared", "db:xx"):
        with pytest.raises(InvalidArgument, match="^invalid mode: "):
            parse_volumes_from(bad)
    assert valid_mode("ro,z,rprivate,nocopy,cached") and not valid_mode("z,Z")


def test_parse_all_creates_v_dirs_only_when_everything_is_valid(tmp_path):
    d = tmp_path / "made"
    with pytest.raises(InvalidArgument):
        parse_all([f"{d}:/a", "bad/name:/b"], [])
    assert not d.exists()
    with pytest.raises(InvalidArgument, match="^Duplicate mount point: /t$"):
        parse_all([f"{d}:/t"], [], tmpfs=["/t:size=1m"])
    assert not d.exists()
    out = parse_all([f"{d}:/a"], ["type=tmpfs,dst=/b"], ["other:ro"])
    assert [m["type"] for m in out] == ["volumes-from", "bind", "tmpfs"] and d.is_dir()
