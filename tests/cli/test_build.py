"""`dockyard build` as a user sees it: images that run, the cache, multi-stage, errors, contexts."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def write(d: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        p = d / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return d


@pytest.fixture
def ctx(tmp_path):
    d = tmp_path / "ctx"
    d.mkdir()
    return d


def build(dy, *args, **kw):
    return dy("build", *args, **kw)


def test_build_run_and_full_cache(dy, busybox, ctx):
    write(ctx, {"Dockerfile": "FROM busybox\nARG GREETING=hi\nENV NAME=work\nWORKDIR /app\nCOPY . /app\n"
                              "RUN echo \"$GREETING from $NAME\" > msg\nCMD [\"cat\", \"/app/msg\"]\n",
                "app.txt": "x\n"})
    p = build(dy, "-t", "you/app:latest", str(ctx))
    assert p.returncode == 0, p.stderr
    assert "naming to docker.io/you/app:latest done" in p.stderr
    assert dy("run", "--rm", "you/app").stdout == "hi from work\n"
    assert dy("run", "--rm", "you/app", "sh", "-c", "pwd; echo $NAME; ls").stdout.split() == [
        "/app", "work", "Dockerfile", "app.txt", "msg"]
    iid = dy("inspect", "-f", "{{.Id}}", "you/app").stdout.strip()
    p = build(dy, "-t", "you/app:latest", str(ctx))
    assert p.stderr.count("CACHED") == 2 and "DONE" not in p.stderr
    assert dy("inspect", "-f", "{{.Id}}", "you/app").stdout.strip() == iid
    # changing one source rebuilds from the first step that uses it (COPY), not before
    (ctx / "app.txt").write_text("y\n")
    p = build(dy, "-t", "you/app:latest", str(ctx))
    assert p.stderr.count("CACHED") == 0 and p.stderr.count("DONE") == 2
    # build args reach ARG and RUN, not the image's environment
    p = build(dy, "-q", "--build-arg", "GREETING=hello", str(ctx))
    out = p.stdout.strip()
    assert out.startswith("sha256:") and p.stderr == ""
    assert dy("run", "--rm", out).stdout == "hello from work\n"
    assert "GREETING" not in dy("run", "--rm", out, "env").stdout


def test_touching_a_file_without_changing_it_keeps_the_cache(dy, busybox, ctx):
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY f /f\nRUN cat /f\n", "f": "same\n"})
    assert build(dy, str(ctx)).returncode == 0
    os.utime(ctx / "f", (1, 1))
    assert build(dy, str(ctx)).stderr.count("CACHED") == 2


def test_no_cache_builds_are_reproducible(dy, busybox, ctx):
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY . /src\nRUN date > /built-at-build-time; touch /x\n"
                              "LABEL a=b\n", "f": "1\n"})
    a = build(dy, "-q", "--no-cache", str(ctx)).stdout.strip()
    b = build(dy, "-q", "--no-cache", str(ctx)).stdout.strip()
    assert a.startswith("sha256:")
    # `date` writes different text each time, so the RUN layer differs... unless it does not: compare a
    # Dockerfile whose steps are deterministic
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY . /src\nRUN mkdir -p /out && cp /src/f /out/f\nLABEL a=b\n"})
    a = build(dy, "-q", "--no-cache", str(ctx)).stdout.strip()
    b = build(dy, "-q", "--no-cache", str(ctx)).stdout.strip()
    assert a == b


def test_multi_stage_from_scratch_target_and_unused_stages(dy, busybox, ctx):
    write(ctx, {"Dockerfile": (
        "FROM busybox AS build\nRUN mkdir /out && cp /bin/busybox /out/app\n"
        "FROM busybox AS unused\nRUN exit 1\n"
        "FROM scratch\nCOPY --from=build /out/app /busybox\nENTRYPOINT [\"/busybox\"]\n"
        "CMD [\"echo\", \"from scratch\"]\n")})
    p = build(dy, "-t", "multi", str(ctx))
    assert p.returncode == 0, p.stderr
    assert "unused" not in p.stderr  # BuildKit skips stages the target does not need
    assert dy("run", "--rm", "multi").stdout == "from scratch\n"
    assert dy("run", "--rm", "multi", "echo", "args replace CMD").stdout == "args replace CMD\n"
    assert dy("run", "--rm", "--entrypoint", "/busybox", "multi", "true").returncode == 0
    p = build(dy, "--target", "build", "-t", "stage1", str(ctx))
    assert p.returncode == 0
    assert dy("run", "--rm", "stage1", "ls", "/out").stdout == "app\n"
    rows = dy("images", "--format", "{{.Repository}} {{.Size}}").stdout
    assert "multi " in rows


def test_entrypoint_vs_cmd(dy, busybox, ctx):
    write(ctx, {"Dockerfile": 'FROM busybox\nENTRYPOINT ["echo", "E"]\nCMD ["c1"]\n'})
    build(dy, "-t", "ep", str(ctx), check=True)
    assert dy("run", "--rm", "ep").stdout == "E c1\n"
    assert dy("run", "--rm", "ep", "x").stdout == "E x\n"
    assert dy("run", "--rm", "--entrypoint", "echo", "ep", "y").stdout == "y\n"
    write(ctx, {"Dockerfile": "FROM busybox\nCMD echo shell form $HOME\n"})
    build(dy, "-t", "sh-form", str(ctx), check=True)
    assert dy("run", "--rm", "sh-form").stdout == "shell form /root\n"


def test_failing_run_names_the_step_and_tags_nothing(dy, busybox, ctx):
    write(ctx, {"Dockerfile": "FROM busybox\nRUN echo before\nRUN exit 3\nRUN echo after\n"})
    p = build(dy, "-t", "broken", str(ctx))
    assert p.returncode == 1
    assert 'Dockerfile:3: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3' in p.stderr
    assert "after" not in p.stderr
    assert "broken" not in dy("images").stdout


def test_malformed_dockerfile_names_the_line(dy, busybox, ctx):
    write(ctx, {"Dockerfile": "FROM busybox\n\nRUNN echo hi\n"})
    p = build(dy, "-t", "bad", str(ctx))
    assert p.returncode == 1
    assert p.stderr.strip() == "Error: Dockerfile:3: unknown instruction: RUNN"
    assert dy("images", "-q").stdout.split() == [dy("inspect", "-f", "{{.Id}}", "busybox").stdout[7:19]]


def test_dockerignore_and_sources_outside_the_context(dy, busybox, ctx, tmp_path):
    (tmp_path / "secret").write_text("s")
    write(ctx, {".dockerignore": "*.log\nbuild/**\n!build/keep.txt\n", "a.log": "l", "main.go": "g",
                "build/x.o": "o", "build/keep.txt": "k",
                "Dockerfile": "FROM busybox\nCOPY . /src\nCMD [\"find\", \"/src\", \"-type\", \"f\"]\n"})
    build(dy, "-t", "ign", str(ctx), check=True)
    files = sorted(dy("run", "--rm", "ign").stdout.split())
    assert files == ["/src/.dockerignore", "/src/Dockerfile", "/src/build/keep.txt", "/src/main.go"]
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY ../secret /s\n"})
    p = build(dy, str(ctx))
    assert p.returncode == 1 and "outside the build context" in p.stderr
    os.symlink(str(tmp_path / "secret"), ctx / "link")
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY link /s\n"})
    p = build(dy, str(ctx))
    assert p.returncode == 1 and "outside the build context" in p.stderr


def test_dockerfile_and_context_on_stdin(dy, busybox, ctx, tmp_path):
    p = build(dy, "-q", "-", input="FROM busybox\nRUN echo piped > /p\n")
    assert p.returncode == 0, p.stderr
    assert dy("run", "--rm", p.stdout.strip(), "cat", "/p").stdout == "piped\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in {"Dockerfile": b"FROM busybox\nCOPY hello /hello\n", "hello": b"tar ctx\n"}.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    p = build(dy, "-q", "--iidfile", str(tmp_path / "iid"), "-", input=buf.getvalue())
    assert p.returncode == 0, p.stderr
    iid = (tmp_path / "iid").read_text()
    assert dy("run", "--rm", iid, "cat", "/hello").stdout == "tar ctx\n"
    write(ctx, {"other.Dockerfile": "FROM busybox\nLABEL which=other\n"})
    p = build(dy, "-q", "-f", str(ctx / "other.Dockerfile"), str(ctx))
    assert dy("inspect", "-f", "{{.Config.Labels.which}}", p.stdout.strip()).stdout.strip() == "other"


def test_predefined_args_cache_mounts_add_archives_and_heredocs(dy, busybox, ctx):
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:gz") as tf:
        ti = tarfile.TarInfo("inside/file.txt")
        ti.size = 2
        tf.addfile(ti, io.BytesIO(b"ok"))
    (ctx / "bundle.tar.gz").write_bytes(tar.getvalue())
    write(ctx, {"Dockerfile": (
        "FROM busybox\nARG TARGETARCH\nRUN echo arch=$TARGETARCH > /arch\n"
        "RUN --mount=type=cache,target=/cache echo run >> /cache/count; wc -l < /cache/count > /count\n"
        "ADD bundle.tar.gz /unpacked/\n"
        "COPY <<EOF /greeting\nhello heredoc\nEOF\n"
        "RUN <<EOS\necho from heredoc > /h\nEOS\n")})
    iid = build(dy, "-q", str(ctx)).stdout.strip()
    run = lambda *a: dy("run", "--rm", iid, *a).stdout  # noqa: E731
    assert run("cat", "/arch").startswith("arch=")
    assert run("cat", "/unpacked/inside/file.txt") == "ok"
    assert run("cat", "/greeting") == "hello heredoc\n"
    assert run("cat", "/h") == "from heredoc\n"
    assert run("cat", "/count").strip() == "1"
    iid2 = build(dy, "-q", "--no-cache", str(ctx)).stdout.strip()
    assert dy("run", "--rm", iid2, "cat", "/count").stdout.strip() == "2"  # the cache mount persisted


def test_add_url_from_a_loopback_server(dy, busybox, ctx, tmp_path):
    import http.server
    import threading

    served = tmp_path / "www"
    served.mkdir()
    (served / "remote.txt").write_text("over http\n")
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **k)  # noqa: E731
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}/remote.txt"
        write(ctx, {"Dockerfile": f"FROM busybox\nADD {url} /dl/\n"})
        p = build(dy, "-q", str(ctx))
        assert p.returncode == 0, p.stderr
        out = dy("run", "--rm", p.stdout.strip(), "sh", "-c", "cat /dl/remote.txt; stat -c %a /dl/remote.txt")
        assert out.stdout == "over http\n600\n"
        write(ctx, {"Dockerfile": f"FROM busybox\nADD {url}.missing /dl/\n"})
        p = build(dy, str(ctx))
        assert p.returncode == 1 and "download failed" in p.stderr
    finally:
        srv.shutdown()
        srv.server_close()


def test_run_bind_mounts_from_a_stage_and_the_context(dy, busybox, ctx):
    write(ctx, {"data.txt": "from context\n", "Dockerfile": (
        "FROM busybox AS build\nRUN mkdir /out && echo from stage > /out/made\n"
        "FROM busybox\n"
        "RUN --mount=type=bind,from=build,source=/out,target=/mnt cp /mnt/made /made\n"
        "RUN --mount=type=bind,target=/ctx cat /ctx/data.txt > /copied && ! touch /ctx/new 2>/dev/null\n")})
    p = build(dy, "-q", str(ctx))
    assert p.returncode == 0, p.stderr
    iid = p.stdout.strip()
    assert dy("run", "--rm", iid, "cat", "/made", "/copied").stdout == "from stage\nfrom context\n"
    assert not (ctx / "new").exists()  # the context is never written by a build


def test_run_steps_get_a_sandboxed_network(dy, busybox, ctx):
    write(ctx, {"Dockerfile": "FROM busybox\nRUN ip -4 -o addr show eth0 > /net && ip route | grep default >> /net\n"
                              "RUN --network=none ip -o link > /links\n"})
    iid = build(dy, "-q", "--no-cache", str(ctx)).stdout.strip()
    net = dy("run", "--rm", iid, "cat", "/net").stdout
    assert "eth0" in net and "default via" in net  # its own namespace on the bridge, with a NAT'd route out
    links = dy("run", "--rm", iid, "cat", "/links").stdout
    assert "eth0" not in links and "lo" in links
    write(ctx, {"Dockerfile": "FROM busybox\nRUN hostname > /h; ip -o link | wc -l > /n\n"})
    iid = build(dy, "-q", "--no-cache", "--network", "host", str(ctx)).stdout.strip()
    host_links = len(open("/proc/net/dev").read().splitlines()) - 2
    assert int(dy("run", "--rm", iid, "cat", "/n").stdout) == host_links  # the host's interfaces
    assert dy("run", "--rm", iid, "cat", "/h").stdout == "buildkitsandbox\n"  # its UTS namespace stays its own
