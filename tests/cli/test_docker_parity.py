"""Docker parity (issue 12): what a Docker user trips on in the first hour, checked as a user sees it."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def _ctx(tmp_path: Path, files: dict[str, str]) -> Path:
    d = tmp_path / "ctx"
    for name, text in files.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return d


def test_copy_to_dot_and_relative_destinations_go_into_workdir(dy, busybox, tmp_path):
    # the Go calculator's Dockerfile: WORKDIR then COPY to "." must put the file inside the directory
    ctx = _ctx(tmp_path, {"Dockerfile": "FROM busybox\nWORKDIR /src\nCOPY calc.go .\nCOPY calc.go ./b.go\n"
                                        "COPY calc.go sub/\nCOPY calc.go sub2/.\nCOPY <<EOF ./\nhi\nEOF\n"
                                        "RUN cat calc.go b.go sub/calc.go sub2/calc.go\n",
                          "calc.go": "package main\n"})
    p = dy("build", "-q", "-t", "calc", str(ctx))
    assert p.returncode == 0, p.stderr
    out = dy("run", "--rm", "calc", "sh", "-c", "cd /src && find . -type f | sort").stdout.split()
    assert out == ["./EOF", "./b.go", "./calc.go", "./sub/calc.go", "./sub2/calc.go"]


@pytest.fixture
def net(root: Path, dy, busybox):  # type: ignore[no-untyped-def]
    """busybox, and the containers and networks a test made removed afterwards, even on failure."""
    from tests.conftest import cleanup_root

    yield dy
    cleanup_root(root)
    dy("network", "prune", "-f")


def test_published_port_in_time_wait_is_accepted(net) -> None:
    import socket

    # a connection on the port in TIME_WAIT: the side that closes first (here the listener's) keeps it. The
    # listener sets SO_REUSEADDR as Docker's, Podman's and every Go server's do (the kernel lets a new bind share
    # the port with a TIME_WAIT only when both sockets set it)
    with socket.socket() as lst:
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lst.bind(("0.0.0.0", 0))
        lst.listen()
        port = lst.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)) as cl:
            srv, _ = lst.accept()
            srv.close()
            assert cl.recv(1) == b""
    ss = __import__("subprocess").run(["ss", "-Htan", "state", "time-wait", f"( sport = :{port} )"],
                                      capture_output=True, text=True).stdout
    assert str(port) in ss
    p = net("run", "-d", "-p", f"{port}:80", "busybox", "sleep", "30")
    assert p.returncode == 0, p.stderr
    assert net("port", p.stdout.strip(), check=True).stdout.strip() == f"80/tcp -> 0.0.0.0:{port}"
    # a listener is still refused
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        s.listen()
        q = net("run", "-d", "-p", f"{s.getsockname()[1]}:80", "busybox", "sleep", "30")
        assert q.returncode == 125 and "port is already allocated" in q.stderr


@pytest.mark.parametrize("runtime", ["dockyard", "runc", "crun"])
def test_supplementary_groups_from_the_image(dy, busybox, tmp_path, runtime):
    import shutil

    if runtime != "dockyard" and not shutil.which(runtime):
        pytest.skip(f"{runtime} not installed")
    ctx = _ctx(tmp_path, {"Dockerfile": "FROM busybox\nRUN echo 'u:x:1000:1000::/home/u:/bin/sh' >> /etc/passwd && "
                                        "echo 'u:x:1000:' >> /etc/group && echo 'extra:x:2000:root,u' >> /etc/group\n"})
    dy("build", "-q", "-t", "gimg", str(ctx), check=True)

    def id_(*args: str) -> str:
        return dy("run", "--rm", "--runtime", runtime, *args, "gimg", "id", check=True).stdout.strip()

    # Docker: the primary group, then every group of the image's /etc/group that lists the user
    assert id_("-u", "u") == "uid=1000(u) gid=1000(u) groups=1000(u),2000(extra)"
    assert id_() == "uid=0(root) gid=0(root) groups=0(root),10(wheel),2000(extra)"
    assert id_("-u", "u:extra") == "uid=1000(u) gid=2000(extra) groups=2000(extra)"
    assert id_("-u", "4242") == "uid=4242 gid=0(root) groups=0(root)"


def test_config_env_is_the_image_env_and_e_only(dy, busybox, tmp_path):
    import json

    ctx = _ctx(tmp_path, {"Dockerfile": "FROM busybox\nENV PATH=/x:/bin:/usr/bin FOO=1 BAR=2\n"})
    dy("build", "-q", "-t", "envimg", str(ctx), check=True)
    cid = dy("create", "-e", "A=9", "-e", "FOO=3", "envimg", "env", check=True).stdout.strip()
    info = json.loads(dy("inspect", cid, check=True).stdout)[0]
    # Docker: -e first, then the image's entries not overridden; PATH and HOSTNAME are the runtime's, not config
    assert info["Config"]["Env"] == ["A=9", "FOO=3", "PATH=/x:/bin:/usr/bin", "BAR=2"]
    out = dy("start", "-a", cid, check=True).stdout.split()
    assert out == ["PATH=/x:/bin:/usr/bin", f"HOSTNAME={cid[:12]}", "A=9", "FOO=3", "BAR=2", "HOME=/root"]
    cid = dy("create", "busybox", "true", check=True).stdout.strip()
    assert json.loads(dy("inspect", cid, check=True).stdout)[0]["Config"]["Env"] in ([], None)


def test_go_templates_as_docker_users_write_them(dy, busybox):
    cid = dy("create", "--name", "tpl", "--label", "b=2", "--label", "a=1", "busybox", "true",
             check=True).stdout.strip()
    p = dy("inspect", "-f", '{{$n := .Name}}{{$n}} {{json .Config.Labels}} {{(index .Config.Labels "a")}}'
           '{{if eq .State.Status "running"}} up{{else if eq .State.Status "created"}} new{{end}}', cid)
    assert p.stdout == '/tpl {"a":"1","b":"2"} 1 new\n', p.stderr
    assert dy("ps", "-a", "--format", '{{.Names}} {{.Label "b"}}', check=True).stdout == "tpl 2\n"
    p = dy("inspect", "-f", "{{.Nope 1}}", cid)
    assert p.returncode != 0 and p.stderr.count("\n") == 1 and "template: " in p.stderr


def test_help_unknown_verb_and_completion(dy):
    from dockyard.cli.main import MANAGEMENT, VERBS

    out = dy("--help", check=True).stdout
    listed = {ln.split()[0] for ln in out.splitlines() if ln.startswith("  ") and not ln.startswith("   ")}
    assert set(VERBS) | set(MANAGEMENT) <= listed and {"build", "port"} <= listed
    p = dy("foo")
    assert (p.returncode, p.stdout, p.stderr) == (1, "", "dockyard: 'foo' is not a dockyard command.\n"
                                                        "See 'dockyard --help'\n")
    bash = dy("completion", "bash", check=True).stdout
    import subprocess

    got = subprocess.run(["bash", "-c", bash + '\nCOMP_WORDS=(dockyard run --nam); COMP_CWORD=2; _dockyard; '
                          'echo "${COMPREPLY[@]}"; COMP_WORDS=(dockyard net); COMP_CWORD=1; _dockyard; '
                          'echo "${COMPREPLY[@]}"'], capture_output=True, text=True, check=True).stdout
    assert got == "--name\nnetwork\n"
    fish = dy("completion", "fish", check=True).stdout
    assert "complete -c dockyard -n '__fish_seen_subcommand_from build' -l build-arg" in fish
    assert dy("completion", "zsh", check=True).stdout.startswith("#compdef dockyard\n")
    assert dy("completion", "ksh").returncode == 125


def test_build_platforms_never_dropped_and_unused_build_args_warned(dy, busybox, tmp_path):
    ctx = _ctx(tmp_path, {"Dockerfile": "ARG BASE=busybox\nFROM $BASE\nARG USED\nRUN echo ${USED:-none}\n"})
    p = dy("build", "-q", "--platform", "linux/amd64,linux/arm64", str(ctx))
    assert p.returncode != 0 and "linux/arm64" in p.stderr and p.stderr.count("\n") == 1
    assert "linux/arm64" in dy("build", "-q", "--platform", "arm64", str(ctx)).stderr
    # nothing tagged (the amd64 variant built before arm64's FROM failed stays as build cache only)
    assert dy("images", "--filter", "dangling=false", "--format", "{{.Repository}}:{{.Tag}}",
              check=True).stdout.split() == ["busybox:latest"]
    p = dy("build", "--build-arg", "USED=1", "--build-arg", "BASE=busybox", "--build-arg", "ZED=1",
           "--build-arg", "NOPE=2", "--build-arg", "HTTP_PROXY=http://p", str(ctx))
    assert p.returncode == 0, p.stderr
    assert "[Warning] One or more build-args [NOPE ZED] were not consumed\n" in p.stderr
    p = dy("build", "--build-arg", "USED=1", str(ctx))
    assert p.returncode == 0 and "Warning" not in p.stderr


def test_host_network_container_has_the_hosts_name(dy, busybox):
    import json
    import os

    p = dy("run", "--name", "hn", "--network", "host", "busybox", "sh", "-c", "hostname; echo $HOSTNAME")
    assert p.stdout.split() == [os.uname().nodename] * 2, p.stderr
    assert json.loads(dy("inspect", "hn", check=True).stdout)[0]["Config"]["Hostname"] == os.uname().nodename
    assert dy("run", "--rm", "--network", "host", "-h", "own", "busybox", "hostname", check=True).stdout == "own\n"
