"""Dockerfile COPY/ADD flags that must be applied, never parsed and ignored: --exclude, --checksum, --parents,
--chmod (octal and symbolic), and the ones dockyard cannot apply refused with the Dockerfile line."""

from __future__ import annotations

import hashlib
import http.server
import threading
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


@pytest.fixture
def http_files(tmp_path):
    """A loopback HTTP server over a directory: yields (directory, base URL)."""
    served = tmp_path / "www"
    served.mkdir()
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(served), **k)  # noqa: E731
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield served, f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(5)


def files_in(dy, image: str, path: str) -> list[str]:
    p = dy("run", "--rm", image, "find", path)
    assert p.returncode == 0, p.stderr
    return sorted(p.stdout.split())


def test_copy_exclude_keeps_matching_files_out_of_the_image(dy, busybox, ctx):
    write(ctx, {"app.txt": "app\n", "secret.pem": "KEY\n", "sub/keep.txt": "k\n", "sub/deep.pem": "KEY2\n",
                "Dockerfile": "FROM busybox\nCOPY --exclude=*.pem --exclude=sub/*.pem . /app/\n"})
    p = dy("build", "-t", "ex:1", str(ctx))
    assert p.returncode == 0, p.stderr
    assert files_in(dy, "ex:1", "/app") == ["/app", "/app/Dockerfile", "/app/app.txt", "/app/sub",
                                             "/app/sub/keep.txt"]
    # an excluded file does not take part in the cache key: changing it keeps the cache
    (ctx / "secret.pem").write_text("OTHER KEY\n")
    p = dy("build", "-t", "ex:1", str(ctx))
    assert p.returncode == 0 and "CACHED" in p.stderr, p.stderr
    # other patterns are another step: the cache key changes with them
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY --exclude=sub/*.pem . /app/\n"})
    p = dy("build", "-t", "ex:2", str(ctx))
    assert p.returncode == 0 and "CACHED" not in p.stderr, p.stderr
    assert "/app/secret.pem" in files_in(dy, "ex:2", "/app")


def test_exclude_with_reinclusion_wildcard_sources_and_add(dy, busybox, ctx):
    write(ctx, {"home.txt": "1\n", "home.md": "2\n", "homer.sh": "3\n", "logs/a.log": "a\n", "logs/keep.log": "k\n",
                "Dockerfile": "FROM busybox\n"
                              "COPY --exclude=*.txt --exclude=*.md hom* /mydir/\n"
                              "ADD --exclude=logs --exclude=!logs/keep.log --exclude=Dockerfile --exclude=hom* "
                              ". /added/\n"})
    p = dy("build", "-t", "ex:3", str(ctx))
    assert p.returncode == 0, p.stderr
    assert files_in(dy, "ex:3", "/mydir") == ["/mydir", "/mydir/homer.sh"]
    assert files_in(dy, "ex:3", "/added") == ["/added", "/added/logs", "/added/logs/keep.log"]


def test_add_checksum_is_verified(dy, busybox, ctx, http_files):
    served, base = http_files
    (served / "tool.bin").write_bytes(b"the real tool\n")
    good = "sha256:" + hashlib.sha256(b"the real tool\n").hexdigest()
    bad = "sha256:" + hashlib.sha256(b"something else\n").hexdigest()
    write(ctx, {"Dockerfile": f"FROM busybox\nADD --checksum={bad} {base}/tool.bin /t/\n"})
    p = dy("build", "-t", "sum:bad", str(ctx))
    assert p.returncode == 1
    assert "Dockerfile:2" in p.stderr and "digest mismatch" in p.stderr and bad in p.stderr and good in p.stderr
    assert dy("image", "inspect", "sum:bad").returncode != 0  # nothing tagged
    write(ctx, {"Dockerfile": f"FROM busybox\nADD --checksum={good} {base}/tool.bin /t/\n"})
    p = dy("build", "-t", "sum:good", str(ctx))
    assert p.returncode == 0, p.stderr
    assert dy("run", "--rm", "sum:good", "cat", "/t/tool.bin").stdout == "the real tool\n"
    # a source that is not HTTP cannot be verified: refused, naming the line
    write(ctx, {"Dockerfile": f"FROM busybox\nRUN true\nADD --checksum={good} Dockerfile /x\n"})
    p = dy("build", str(ctx))
    assert p.returncode == 1 and "Dockerfile:3" in p.stderr and "non-HTTP(S)" in p.stderr, p.stderr
    write(ctx, {"Dockerfile": f"FROM busybox\nADD --checksum=md5:abc {base}/tool.bin /x\n"})
    p = dy("build", str(ctx))
    assert p.returncode == 1 and "Dockerfile:2" in p.stderr and "sha256:" in p.stderr, p.stderr


def test_copy_parents_keeps_the_source_directories(dy, busybox, ctx):
    write(ctx, {"a/b/file.txt": "f\n", "x/y/one.txt": "1\n", "x/y/two.txt": "2\n", "x/y/skip.md": "s\n",
                "src/a.go": "", "src/m/b.go": "", "src/m/n/c.go": "", "src/m/n/d.txt": "",
                "Dockerfile": "FROM busybox\n"
                              "COPY --parents a/b/file.txt x/./y/*.txt /dst/\n"
                              "COPY --parents ./src/**/*.go /deep/\n"
                              "COPY a/b/file.txt /flat/\n"})
    p = dy("build", "-t", "par:1", str(ctx))
    assert p.returncode == 0, p.stderr
    assert files_in(dy, "par:1", "/dst") == ["/dst", "/dst/a", "/dst/a/b", "/dst/a/b/file.txt", "/dst/y",
                                             "/dst/y/one.txt", "/dst/y/two.txt"]
    assert [f for f in files_in(dy, "par:1", "/deep") if f.endswith(".go")] == [
        "/deep/src/a.go", "/deep/src/m/b.go", "/deep/src/m/n/c.go"]
    assert files_in(dy, "par:1", "/flat") == ["/flat", "/flat/file.txt"]


def test_copy_parents_from_a_stage(dy, busybox, ctx):
    write(ctx, {"f": "hi\n", "Dockerfile": "FROM busybox AS b\nCOPY f /out/lib/x/f\n"
                                           "FROM busybox\nCOPY --from=b --parents /out/./lib/x/f /dst/\n"})
    p = dy("build", "-t", "par:2", str(ctx))
    assert p.returncode == 0, p.stderr
    assert dy("run", "--rm", "par:2", "cat", "/dst/lib/x/f").stdout == "hi\n"


def test_chmod_symbolic_and_bad_modes(dy, busybox, ctx):
    write(ctx, {"d/run.sh": "#!/bin/sh\n", "d/data.txt": "x\n",
                "Dockerfile": "FROM busybox\nCOPY --chmod=u=rwX,go=rX d /d/\nCOPY --chmod=640 d/data.txt /e\n"})
    (ctx / "d" / "run.sh").chmod(0o700)
    (ctx / "d" / "data.txt").chmod(0o600)
    p = dy("build", "-t", "mode:1", str(ctx))
    assert p.returncode == 0, p.stderr
    out = dy("run", "--rm", "mode:1", "stat", "-c", "%n %a", "/d", "/d/run.sh", "/d/data.txt", "/e").stdout
    assert out.split("\n")[:4] == ["/d 755", "/d/run.sh 755", "/d/data.txt 644", "/e 640"]
    write(ctx, {"Dockerfile": "FROM busybox\nRUN true\nCOPY --chmod=u=rwq d /d/\n"})
    p = dy("build", str(ctx))
    assert p.returncode == 1 and "Dockerfile:3" in p.stderr and "--chmod" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr


def test_add_flags_dockyard_cannot_apply_are_refused(dy, busybox, ctx):
    write(ctx, {"f": "x\n", "Dockerfile": "FROM busybox\nADD --keep-git-dir=true f /f\n"})
    p = dy("build", str(ctx))
    assert p.returncode == 1 and "Dockerfile:2" in p.stderr and "--keep-git-dir" in p.stderr, p.stderr
    write(ctx, {"Dockerfile": "FROM busybox\nADD https://127.0.0.1:9/repo.git /src\n"})
    p = dy("build", str(ctx))
    assert p.returncode == 1 and "Dockerfile:2" in p.stderr and "Git repository" in p.stderr, p.stderr


def test_copy_link_gives_the_same_files(dy, busybox, ctx):
    """--link is accepted: dockyard always copies into a layer of its own, so the files are the same."""
    write(ctx, {"a.txt": "a\n", "Dockerfile": "FROM busybox\nCOPY --link a.txt /l/\nCOPY a.txt /n/\n"})
    p = dy("build", "-t", "link:1", str(ctx))
    assert p.returncode == 0, p.stderr
    assert dy("run", "--rm", "link:1", "cat", "/l/a.txt", "/n/a.txt").stdout == "a\na\n"


def test_run_and_from_flags_that_cannot_be_applied_are_refused(dy, busybox, ctx):
    import platform

    other = "linux/arm64" if platform.machine() in ("x86_64", "AMD64") else "linux/amd64"
    write(ctx, {"Dockerfile": "FROM busybox\nRUN --security=insecure true\n"})
    p = dy("build", str(ctx))
    assert p.returncode == 1 and "Dockerfile:2" in p.stderr and "security.insecure" in p.stderr, p.stderr
    write(ctx, {"Dockerfile": f"FROM --platform={other} busybox\nCOPY Dockerfile /\n"})
    p = dy("build", str(ctx))
    assert p.returncode == 1 and "Dockerfile:1" in p.stderr and other in p.stderr, p.stderr
    write(ctx, {"Dockerfile": "FROM --platform=$BUILDPLATFORM busybox\nCOPY Dockerfile /\n"})
    assert dy("build", str(ctx)).returncode == 0


def test_build_cli_flags_that_cannot_be_applied_are_refused(dy, busybox, ctx):
    write(ctx, {"Dockerfile": "FROM busybox\nCOPY Dockerfile /\n"})
    p = dy("build", "--pull", str(ctx))  # applied: busybox is pulled from docker.io (tests have no route there)
    assert p.returncode == 1 and "Dockerfile:1: FROM busybox" in p.stderr, p.stderr
    p = dy("build", "--progress=rawjson", str(ctx))
    assert p.returncode == 1 and "invalid progress mode" in p.stderr, p.stderr
    p = dy("build", "--progress=quiet", str(ctx))
    assert p.returncode == 0 and p.stdout.strip().startswith("sha256:") and p.stderr == "", p.stderr
    assert dy("build", "--progress=plain", "--pull=false", str(ctx)).returncode == 0


def test_build_output_writes_the_files_as_buildx_does(dy, busybox, ctx, tmp_path):
    """``build -o/--output`` takes buildx's forms: type=local,dest=DIR (or -o DIR), type=tar,dest=FILE (or -o -
    for stdout), type=docker|oci,dest=FILE (the save archive); a wrong form is a usage error, exit 125."""
    import io
    import tarfile

    write(ctx, {"Dockerfile": "FROM busybox AS b\nRUN mkdir /out && echo built > /out/result\n"
                              "FROM scratch\nCOPY --from=b /out /\n"})
    out = tmp_path / "out"
    p = dy("build", "-o", f"type=local,dest={out}", str(ctx))
    assert p.returncode == 0, p.stderr
    assert sorted(x.name for x in out.iterdir()) == ["result"] and (out / "result").read_text() == "built\n"
    short = tmp_path / "short"
    p = dy("build", f"--output={short}", str(ctx))
    assert p.returncode == 0, p.stderr
    assert (short / "result").read_text() == "built\n"
    tar = tmp_path / "fs.tar"
    p = dy("build", "--output", f"type=tar,dest={tar}", "-t", "out:1", str(ctx))
    assert p.returncode == 0, p.stderr
    with tarfile.open(tar) as tf:
        assert tf.getnames() == ["result"]
    p = dy("build", "-q", "-o", "-", str(ctx), input=b"")  # the tar alone on stdout (no image ID with it)
    assert p.returncode == 0, p.stderr
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tf:
        assert tf.extractfile("result").read() == b"built\n"  # type: ignore[union-attr]
    arch = tmp_path / "img.tar"
    p = dy("build", "-o", f"type=docker,dest={arch}", "-t", "out:2", str(ctx))
    assert p.returncode == 0, p.stderr
    with tarfile.open(arch) as tf:
        assert "manifest.json" in tf.getnames()
    bad = dy("build", "-o", "type=local", str(ctx))
    assert (bad.returncode, bad.stderr.splitlines()[0]) == (125, "output type local requires dest=DIR"), bad.stderr
    bad = dy("build", "-o", "type=nope,dest=x", str(ctx))
    assert bad.returncode == 125 and bad.stderr.startswith("unsupported output type 'nope'"), bad.stderr
    assert "Traceback" not in bad.stderr
