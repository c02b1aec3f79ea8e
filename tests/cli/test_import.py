"""import FILE|- [REF] [--change ...] [--message] [--platform]."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

from tests.conftest import DOCKYARD, Runner

EPOCH = {"SOURCE_DATE_EPOCH": "946684800"}


def _inspect(dy: Runner, name: str) -> dict:
    return json.loads(dy("image", "inspect", name, check=True).stdout)[0]


def test_import_is_deterministic_and_gzip_gives_the_same_image(dy: Runner, tmp_path: Path,
                                                              busybox_tar: Path) -> None:
    a = dy("import", str(busybox_tar), "bb:plain", env=EPOCH, check=True).stdout.strip()
    assert a.startswith("sha256:") and len(a) == 71
    gz = tmp_path / "bb.tar.gz"
    gz.write_bytes(gzip.compress(busybox_tar.read_bytes(), compresslevel=1))
    b = dy("import", str(gz), "bb:gz", env=EPOCH, check=True).stdout.strip()
    assert a == b
    other_root = tmp_path / "other"
    c = subprocess.run([DOCKYARD, "--root", str(other_root), "import", str(busybox_tar)],
                       env={**EPOCH, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True)
    assert c.stdout.strip() == a
    d = _inspect(dy, "bb:plain")
    assert d["RepoTags"] == ["bb:gz", "bb:plain"]
    assert d["Created"] == "2000-01-01T00:00:00Z"


def test_import_from_stdin(dy: Runner, busybox_tar: Path) -> None:
    p = dy("import", "-", "fromstdin", input=busybox_tar.read_bytes(), env=EPOCH)
    assert p.returncode == 0, p.stderr
    iid = p.stdout.decode().strip()
    d = _inspect(dy, "fromstdin:latest")
    assert d["Id"] == iid and d["Comment"] == "Imported from -"


def test_changes_message_and_platform(dy: Runner, busybox_tar: Path) -> None:
    changes = ['ENV A=1 B="two words"', "ENV C 3", "EXPOSE 80 53/udp", "WORKDIR /srv", "WORKDIR app",
               "USER nobody", "LABEL a=b", 'VOLUME ["/data"]', "STOPSIGNAL SIGTERM",
               'ENTRYPOINT ["/bin/sh", "-c"]', "CMD echo hi"]
    args = ["import", "--message", "from a test", "--platform", "linux/arm64"]
    for c in changes:
        args += ["-c", c]
    dy(*args, str(busybox_tar), "changed", env=EPOCH, check=True)
    d = _inspect(dy, "changed")
    c = d["Config"]
    assert c["Env"] == ["A=1", "B=two words", "C=3"]
    assert c["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert c["WorkingDir"] == "/srv/app" and c["User"] == "nobody"
    assert c["Labels"] == {"a": "b"} and c["Volumes"] == {"/data": {}} and c["StopSignal"] == "SIGTERM"
    assert c["Entrypoint"] == ["/bin/sh", "-c"] and c["Cmd"] == ["/bin/sh", "-c", "echo hi"]
    assert d["Architecture"] == "arm64" and d["Os"] == "linux" and d["Comment"] == "from a test"
    hist = dy("history", "--format", "{{.Comment}}", "changed", check=True).stdout
    assert hist == "from a test\n"


def test_bad_change_and_bad_reference_add_nothing(dy: Runner, busybox_tar: Path) -> None:
    p = dy("import", "-c", "FROB x", str(busybox_tar), "x")
    assert p.returncode == 1 and p.stderr == "Error: FROB is not a valid change command\n"
    p = dy("import", str(busybox_tar), "Upper")
    assert p.returncode == 1
    assert p.stderr == "Error: invalid reference format: repository name must be lowercase\n"
    assert dy("images", "-qa", check=True).stdout == ""


def test_not_a_tar_and_missing_file(dy: Runner, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive\n" * 100)
    p = dy("import", str(junk), "junk")
    assert p.returncode == 1 and p.stderr.startswith("Error: ") and len(p.stderr.splitlines()) == 1
    assert "Traceback" not in p.stderr
    empty = tmp_path / "empty.tar"
    empty.write_bytes(b"")
    p = dy("import", str(empty), "empty")
    assert p.returncode == 1 and len(p.stderr.splitlines()) == 1
    p = dy("import", str(tmp_path / "missing.tar"))
    assert p.returncode == 1 and "no such file or directory" in p.stderr
    assert dy("images", "-qa", check=True).stdout == ""
