"""images, tag, rmi, image inspect, history and image prune, as a user sees them."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import Runner

EPOCH = {"SOURCE_DATE_EPOCH": "946684800"}


def _import(dy: Runner, tar: Path, ref: str | None, *changes: str) -> str:
    args = ["import"]
    for c in changes:
        args += ["--change", c]
    args.append(str(tar))
    if ref:
        args.append(ref)
    return dy(*args, env=EPOCH, check=True).stdout.strip()


def test_images_table(dy: Runner, busybox: str) -> None:
    p = dy("images", check=True)
    lines = p.stdout.splitlines()
    assert lines[0] == "REPOSITORY   TAG       IMAGE ID       CREATED        SIZE"
    assert re.fullmatch(rf"busybox      latest    {busybox[7:19]}   2\d years ago   \d+(\.\d+)?MB", lines[1])
    assert len(lines) == 2


def test_tag_quiet_notrunc_and_digests(dy: Runner, busybox: str) -> None:
    dy("tag", "busybox", "localhost:5000/x/y:t", check=True)
    dy("tag", busybox[7:19], "me/app", check=True)
    out = dy("images", "--format", "{{.Repository}}:{{.Tag}}", check=True).stdout.split()
    assert sorted(out) == ["busybox:latest", "localhost:5000/x/y:t", "me/app:latest"]
    assert dy("images", "-q", check=True).stdout.split() == [busybox[7:19]] * 3
    assert dy("images", "-q", "--no-trunc", "busybox", check=True).stdout.split() == [busybox]
    hdr = dy("images", "--digests", check=True).stdout.splitlines()[0]
    assert hdr.split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID", "CREATED", "SIZE"]
    p = dy("tag", "busybox", "Bad/Name:x")
    assert p.returncode == 1 and "repository name must be lowercase" in p.stderr
    p = dy("tag", "nope", "x")
    assert p.returncode == 1 and p.stderr == "Error: No such image: nope\n"
    p = dy("tag", "busybox")
    assert p.returncode == 1 and "requires exactly 2 arguments" in p.stderr  # the Docker 28 CLI: 1


def test_format_json_and_table(dy: Runner, busybox: str) -> None:
    rows = [json.loads(x) for x in dy("images", "--format", "json", check=True).stdout.splitlines()]
    assert rows[0]["Repository"] == "busybox" and rows[0]["Tag"] == "latest"
    assert rows[0]["ID"] == busybox[7:19] and rows[0]["Digest"] == "<none>"
    assert set(rows[0]) >= {"CreatedAt", "CreatedSince", "Size", "VirtualSize", "Containers"}
    assert json.loads(dy("images", "--format", "{{json .}}", check=True).stdout) == rows[0]
    out = dy("images", "--format", "table {{.ID}}\t{{.Repository}}", check=True).stdout
    assert out == f"IMAGE ID       REPOSITORY\n{busybox[7:19]}   busybox\n"
    p = dy("images", "--format", "{{.Nope")
    assert p.returncode == 1 and p.stderr.startswith("Error: template:")


def test_filters(dy: Runner, busybox: str, busybox_tar: Path, hello_tar: Path) -> None:
    labelled = _import(dy, hello_tar, "hello:1", "LABEL team=core tier=1")
    dy("tag", "busybox", "other/busybox:2", check=True)

    def refs(*args: str) -> list[str]:
        return dy("images", "--format", "{{.Repository}}:{{.Tag}}", *args, check=True).stdout.split()

    assert sorted(refs("--filter", "reference=busybox")) == ["busybox:latest"]
    assert sorted(refs("--filter", "reference=*/busy*")) == ["other/busybox:2"]
    assert sorted(refs("busybox:latest")) == ["busybox:latest"]
    assert refs("--filter", "label=team") == ["hello:1"]
    assert refs("--filter", "label=team=core") == ["hello:1"]
    assert refs("--filter", "label=team=other") == []
    assert refs("--filter", "dangling=true") == []
    # moving the tag leaves the old image dangling: <none>:<none>
    assert dy("rmi", "other/busybox:2", check=True).stdout == "Untagged: other/busybox:2\n"
    _import(dy, hello_tar, "busybox:latest")
    assert refs("--filter", "dangling=true") == ["<none>:<none>"]
    assert dy("images", "-q", "--filter", "dangling=true", check=True).stdout.split() == [busybox[7:19]]
    assert "<none>:<none>" not in refs("--filter", "dangling=false")
    assert refs("--filter", f"since={busybox[7:19]}", "--filter", "dangling=false") == []
    p = dy("images", "--filter", "bogus=1")
    assert p.returncode == 1 and p.stderr == "Error: invalid filter 'bogus'\n"
    assert labelled


def test_rmi_untag_then_delete(dy: Runner, busybox: str) -> None:
    dy("tag", "busybox", "second:1", check=True)
    p = dy("rmi", "busybox", check=True)
    assert p.stdout == "Untagged: busybox:latest\n"
    p = dy("rmi", "second:1", check=True)
    assert p.stdout == f"Untagged: second:1\nDeleted: {busybox}\n"
    assert dy("images", "-q", check=True).stdout == ""
    p = dy("rmi", "busybox")
    assert p.returncode == 1 and p.stderr == "Error: No such image: busybox\n"


def test_rmi_by_id_with_two_repositories(dy: Runner, busybox: str) -> None:
    dy("tag", "busybox", "second:1", check=True)
    p = dy("rmi", busybox[7:19])
    assert p.returncode == 1
    assert p.stderr == (f"Error: conflict: unable to delete {busybox[7:19]} (must be forced) - image is referenced "
                        "in multiple repositories\n")
    p = dy("rmi", "-f", busybox[7:19], check=True)
    assert p.stdout == f"Untagged: busybox:latest\nUntagged: second:1\nDeleted: {busybox}\n"
    assert dy("images", "-q", "-a", check=True).stdout == ""


def test_rmi_frees_blobs_and_snapshots(dy: Runner, root: Path, busybox: str) -> None:
    blobs = root / "content" / "blobs" / "sha256"
    assert len(list(blobs.iterdir())) == 3  # layer, config, manifest
    dy("rmi", "busybox", check=True)
    assert list(blobs.iterdir()) == []
    assert [p for p in (root / "snapshots").iterdir() if len(p.name) == 16] == []


def test_inspect(dy: Runner, busybox: str) -> None:
    p = dy("image", "inspect", "busybox", check=True)
    [d] = json.loads(p.stdout)
    assert d["Id"] == busybox
    assert d["RepoTags"] == ["busybox:latest"] and d["RepoDigests"] == []
    assert d["Config"]["Cmd"] == ["sh"] and d["Config"]["Env"] is None
    assert d["Os"] == "linux" and d["Architecture"] == "amd64"
    assert d["Created"] == "2000-01-01T00:00:00Z"
    assert d["RootFS"]["Type"] == "layers" and len(d["RootFS"]["Layers"]) == 1
    assert d["Comment"] == "Imported from -" and d["Parent"] == ""
    assert d["Size"] > 1_000_000
    assert d["Metadata"] == {"LastTagTime": "0001-01-01T00:00:00Z"}
    out = dy("image", "inspect", "-f", "{{.Config.Cmd}} {{.Os}}/{{.Architecture}} {{len .RootFS.Layers}}",
             busybox[7:19], check=True).stdout
    assert out == "[sh] linux/amd64 1\n"
    p = dy("image", "inspect", "busybox", "nope")
    assert p.returncode == 1 and p.stderr == "Error: No such image: nope\n"
    assert len(json.loads(p.stdout)) == 1


def test_history(dy: Runner, busybox: str) -> None:
    lines = dy("history", "busybox", check=True).stdout.splitlines()
    assert lines[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert lines[1].startswith(busybox[7:19] + "   ")
    assert lines[1].rstrip().endswith("Imported from -")
    assert dy("history", "-q", "busybox", check=True).stdout == busybox[7:19] + "\n"
    assert dy("history", "--no-trunc", "--format", "{{.ID}}|{{.Comment}}", "busybox",
              check=True).stdout == f"{busybox}|Imported from -\n"
    p = dy("history", "nope")
    assert p.returncode == 1 and p.stderr == "Error: No such image: nope\n"


def test_image_prune(dy: Runner, busybox: str, hello_tar: Path) -> None:
    hello = _import(dy, hello_tar, "hello:1")
    _import(dy, hello_tar, None, "CMD x")  # dangling
    p = dy("image", "prune", "-f", check=True)
    assert p.stdout.startswith("Deleted Images:\ndeleted: sha256:")
    assert p.stdout.splitlines()[-1].startswith("Total reclaimed space: ")
    assert sorted(dy("images", "-q", "-a", check=True).stdout.split()) == sorted([busybox[7:19], hello[7:19]])
    p = dy("image", "prune", "-f", check=True)
    assert p.stdout == "Total reclaimed space: 0B\n"
    p = dy("image", "prune", input="n\n", check=True)
    assert p.stdout == "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
    p = dy("image", "prune", "-a", input="y\n", check=True)
    assert "untagged: busybox:latest\n" in p.stdout and "untagged: hello:1\n" in p.stdout
    assert dy("images", "-q", "-a", check=True).stdout == ""


def test_image_prune_filters(dy, tmp_path):
    import io
    import os
    import tarfile

    def tar(name: str) -> str:
        p = tmp_path / f"{name}.tar"
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            ti = tarfile.TarInfo(name)
            ti.size = len(name)
            tf.addfile(ti, io.BytesIO(name.encode()))
        p.write_bytes(buf.getvalue())
        return str(p)

    old = {**os.environ, "SOURCE_DATE_EPOCH": "946684800"}  # created in 2000
    dy("import", "--change", "LABEL keep=yes", tar("a"), "keep:1", env=old, check=True)
    dy("import", "--change", "LABEL tier=tmp", tar("b"), "tmp:1", env=old, check=True)
    dy("import", tar("c"), "new:1", check=True)  # created now
    p = dy("image", "prune", "-a", "-f", "--filter", "label=tier=tmp")
    assert p.returncode == 0, p.stderr
    left = sorted(dy("images", "--format", "{{.Repository}}").stdout.split())
    assert left == ["keep", "new"]
    dy("image", "prune", "-a", "-f", "--filter", "until=24h", "--filter", "label!=keep", check=True)
    assert sorted(dy("images", "--format", "{{.Repository}}").stdout.split()) == ["keep", "new"]
    dy("image", "prune", "-a", "-f", "--filter", "until=24h", check=True)
    assert dy("images", "--format", "{{.Repository}}").stdout.split() == ["new"]
    p = dy("image", "prune", "-f", "--filter", "bogus=1")
    assert p.returncode == 125 and "invalid filter" in p.stderr
