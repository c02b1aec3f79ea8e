"""specgen: Docker's rules for command, environment, user and resources, as OCI spec fields."""

from __future__ import annotations

import pytest

from dockyard.engine import specgen
from dockyard.engine.options import ContainerSpec, Resources
from dockyard.errors import InvalidArgument

IMG = {"Entrypoint": ["/entry"], "Cmd": ["default", "arg"], "Env": ["PATH=/img/bin", "A=1"], "WorkingDir": "/w"}


@pytest.mark.parametrize("entry,cmd,expected", [
    (None, None, ["/entry", "default", "arg"]),          # image ENTRYPOINT + CMD
    (None, ["x", "y"], ["/entry", "x", "y"]),            # run args replace CMD only
    (["/other"], None, ["/other"]),                      # --entrypoint clears the image CMD
    (["/other"], ["z"], ["/other", "z"]),
    ([], ["sh"], ["sh"]),                                # --entrypoint "" with a command
])
def test_command(entry, cmd, expected):
    assert specgen.command(ContainerSpec(image="i", entrypoint=entry, cmd=cmd), IMG) == expected


def test_no_command_is_an_error():
    with pytest.raises(InvalidArgument, match="no command specified"):
        specgen.command(ContainerSpec(image="i"), {})


def test_environment_order_and_overrides():
    spec = ContainerSpec(image="i", env=["B=3", "A=2"], tty=True)
    # as Docker: Config.Env is -e first, then the image's entries -e does not set; no PATH/HOSTNAME added
    assert specgen.config_env(spec, IMG) == ["B=3", "A=2", "PATH=/img/bin"]
    assert specgen.config_env(ContainerSpec(image="i"), {}) == []
    # the process: PATH, HOSTNAME, TERM (each replaced in place), then Config.Env's others in order
    env = specgen.environment(spec, IMG, "h1")
    assert env == ["PATH=/img/bin", "HOSTNAME=h1", "TERM=xterm", "B=3", "A=2"]
    assert specgen.environment(ContainerSpec(image="i", env=["TERM=dumb", "HOSTNAME=x"], tty=True), {}, "h") == [
        specgen.DEFAULT_PATH, "HOSTNAME=x", "TERM=dumb"]
    env = specgen.environment(ContainerSpec(image="i"), {}, "h")
    assert env[0] == specgen.DEFAULT_PATH


def test_resolve_user(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\nweb:x:33:33::/var/www:/bin/false\n")
    (tmp_path / "etc/group").write_text("root:x:0:\nweb:x:33:\nextra:x:99:web\n")
    # as Docker's: the primary group first, then the groups listing the user (none when a group is named)
    assert specgen.resolve_user("", str(tmp_path)) == {"uid": 0, "gid": 0, "additionalGids": [0], "home": "/root"}
    assert specgen.resolve_user("web", str(tmp_path)) == {"uid": 33, "gid": 33, "additionalGids": [33, 99],
                                                          "home": "/var/www"}
    assert specgen.resolve_user("web:root", str(tmp_path))["additionalGids"] == [0]
    assert specgen.resolve_user("1000:extra", str(tmp_path))["gid"] == 99
    assert specgen.resolve_user("1000", str(tmp_path)) == {"uid": 1000, "gid": 0, "additionalGids": [0],
                                                           "home": "/"}
    with pytest.raises(InvalidArgument, match="unable to find user nobody"):
        specgen.resolve_user("nobody", str(tmp_path))


def test_generate_resources_and_caps(tmp_path):
    spec = ContainerSpec(image="i", cmd=["true"], cap_drop=["chown"], cap_add=["SYS_TIME"],
                         resources=Resources(memory=64 << 20, nano_cpus=1_500_000_000, pids_limit=50))
    oci = specgen.generate(spec, {}, container_id="c" * 64, rootfs=str(tmp_path), cdir=str(tmp_path),
                           hostname="h")
    caps = oci["process"]["capabilities"]["bounding"]
    assert "CAP_CHOWN" not in caps and "CAP_SYS_TIME" in caps and "CAP_NET_RAW" in caps
    assert "CAP_SYS_ADMIN" not in caps
    res = oci["linux"]["resources"]
    assert res["memory"] == {"limit": 64 << 20, "swap": 128 << 20}
    assert res["cpu"] == {"period": 100000, "quota": 150000}
    assert res["pids"] == {"limit": 50}
    assert oci["process"]["cwd"] == "/"
    assert {"type": "network"} in oci["linux"]["namespaces"]
    assert "/proc/kcore" in oci["linux"]["maskedPaths"]


def test_host_network_shares_the_host_stack(tmp_path):
    spec = ContainerSpec(image="i", cmd=["true"], network_mode="host")
    oci = specgen.generate(spec, {}, container_id="c", rootfs=str(tmp_path), cdir=str(tmp_path), hostname="h")
    assert all(ns["type"] != "network" for ns in oci["linux"]["namespaces"])


def test_parse_signal():
    assert specgen.parse_signal("TERM") == 15
    assert specgen.parse_signal("SIGKILL") == 9
    assert specgen.parse_signal("10") == 10
    for bad in ("NOPE", "0", "65", "99999999999"):  # an image's StopSignal is not trusted either
        with pytest.raises(InvalidArgument):
            specgen.parse_signal(bad)


def test_spec_json_round_trip():
    s = ContainerSpec(image="busybox", cmd=["sh"], resources=Resources(memory=1))
    assert ContainerSpec.from_json(s.to_json()) == s
