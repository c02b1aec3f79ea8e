"""Progress on a terminal (issue 12): build's live view as BuildKit's tty mode, and byte bars for load/save/import,
driven through a real pseudo-terminal (pexpect); plain output when not a terminal or with --progress=plain."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pexpect
import pytest

from tests.conftest import DOCKYARD

pytestmark = pytest.mark.e2e

_CSI = re.compile(r"\x1b\[(\d*)([A-Za-z])")


def screen(data: str) -> list[str]:
    """What a terminal shows after ``data``: text, CR, LF and the only sequences dockyard draws with (cursor up
    ``ESC[nA``, erase to end of line ``ESC[K``, erase below ``ESC[J``). Lines are kept (no scrolling limit)."""
    lines: list[str] = [""]
    row = col = 0
    i = 0
    while i < len(data):
        c = data[i]
        m = _CSI.match(data, i) if c == "\x1b" else None
        if m:
            n, op = int(m.group(1) or 1), m.group(2)
            if op == "A":
                row = max(row - n, 0)
            elif op == "K":
                lines[row] = lines[row][:col]
            elif op == "J":
                lines[row] = lines[row][:col]
                del lines[row + 1:]
            else:
                raise AssertionError(f"unexpected sequence {m.group(0)!r}")
            i = m.end()
            continue
        if c == "\r":
            col = 0
        elif c == "\n":
            row += 1
            if row == len(lines):
                lines.append("")
        else:
            ln = lines[row].ljust(col)
            lines[row] = ln[:col] + c + ln[col + 1:]
            col += 1
        i += 1
    return [ln.rstrip() for ln in lines if ln.strip()]


def spawn(root: Path, *args: str, cwd: str | None = None) -> pexpect.spawn:
    return pexpect.spawn(DOCKYARD, ["--root", str(root), *args], timeout=60, encoding="utf-8",
                         dimensions=(40, 120), cwd=cwd)


def read_all(child: pexpect.spawn, until: float = 60) -> str:
    out = []
    deadline = time.monotonic() + until
    while time.monotonic() < deadline:
        try:
            out.append(child.read_nonblocking(65536, timeout=max(deadline - time.monotonic(), 0.1)))
        except pexpect.EOF:
            break
    child.close()
    return "".join(out)


def test_build_on_a_terminal_shows_the_running_step_ticking_and_every_step_at_the_end(root, busybox,
                                                                                       tmp_path: Path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo started-$((40+2)) && sleep 2\nENV A=1\n"
                                    "RUN echo b > /b\n")
    child = spawn(root, "build", "-t", "live:1", str(ctx))
    step = r"=> \[stage-0 2/4\] RUN echo started-\$\(\(40\+2\)\) && sleep 2 +(\d+\.\d)s"
    # while the step sleeps: its line with a time that changes, and its output under it
    child.expect(r"=> => # started-42")
    seen = set()
    deadline = time.monotonic() + 10
    while len(seen) < 3 and time.monotonic() < deadline:
        child.expect(step)
        secs = float(child.match.group(1))
        if secs < 1.9:  # still running (the step sleeps 2 s)
            seen.add(secs)
    assert len(seen) >= 3, seen
    rest = read_all(child)
    assert child.exitstatus == 0, rest
    final = screen(rest)
    # the final frame: the header and every step, the running ones' output gone
    frame = final[final.index(next(x for x in final if x.startswith("[+] Building") and "FINISHED" in x)):]
    assert re.fullmatch(r"\[\+\] Building \d+\.\ds \(5/5\) FINISHED", frame[0]), frame
    names = [re.sub(r" +\d+\.\ds$", "", x) for x in frame[1:]]
    assert names[:4] == [" => [stage-0 1/4] FROM busybox",
                         " => [stage-0 2/4] RUN echo started-$((40+2)) && sleep 2",
                         " => [stage-0 3/4] ENV A=1",
                         " => [stage-0 4/4] RUN echo b > /b"], frame
    assert names[4].startswith(" => writing image sha256:"), frame
    assert names[5] == " => => naming to docker.io/library/live:1", frame
    assert len(frame) == 7 and not names[4].endswith(" done"), frame
    run_secs = float(frame[2].rsplit(None, 1)[1][:-1])
    assert run_secs >= 2.0, frame
    # the cache: CACHED steps
    child = spawn(root, "build", "-t", "live:1", str(ctx))
    final = screen(read_all(child))
    assert child.exitstatus == 0
    assert sum(1 for x in final if x.startswith(" => CACHED [stage-0 ")) == 2, final


def test_plain_progress_on_a_terminal_and_a_failing_step_in_the_live_view(root, busybox, tmp_path: Path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo hello\n")
    child = spawn(root, "build", "--progress=plain", str(ctx))
    out = read_all(child)
    assert child.exitstatus == 0
    assert "\x1b" not in out
    lines = out.replace("\r\n", "\n").splitlines()
    assert lines[:4] == ["#1 [stage-0 1/2] FROM busybox", "#2 [stage-0 2/2] RUN echo hello", "#2 hello",
                         lines[3]] and re.fullmatch(r"#2 DONE \d+\.\ds", lines[3]), lines
    # a failing step keeps its output on the final screen, marked ERROR, then the error line
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo about-to-fail && exit 3\n")
    child = spawn(root, "build", str(ctx))
    final = screen(read_all(child))
    assert child.exitstatus == 1
    i = next(i for i, x in enumerate(final) if "ERROR [stage-0 2/2] RUN echo about-to-fail" in x)
    assert final[i + 1] == " => => # about-to-fail", final
    assert "did not complete successfully: exit code: 3" in final[-1], final


def _bar_frames(out: str, label: str) -> list[tuple[int, int]]:
    """(done, total) in kB of each ``label [===>  ]  done/total  rate`` frame drawn."""
    units = {"B": 0.001, "kB": 1, "MB": 1000, "GB": 1e6}
    frames = re.findall(label + r" \[[=> ]+\]  ([\d.]+)(B|kB|MB|GB)/([\d.]+)(B|kB|MB|GB)  [\d.]+(?:B|kB|MB|GB)/s",
                        out)
    return [(round(float(a) * units[u]), round(float(b) * units[v])) for a, u, b, v in frames]


def test_load_save_and_import_show_a_byte_bar_on_a_terminal_only(root, dy, busybox, busybox_tar, tmp_path: Path):
    archive = tmp_path / "bb.tar"
    child = spawn(root, "save", "-o", str(archive), "busybox")
    out = read_all(child)
    assert child.exitstatus == 0 and archive.stat().st_size > 1_000_000
    assert re.search(r"Saving  [\d.]+MB  [\d.]+(kB|MB|GB)/s", out), out
    for args, label in ((("load", "-i", str(archive)), "Loading"), (("import", str(busybox_tar), "bb:2"),
                                                                        "Importing")):
        child = spawn(root, *args)
        out = read_all(child)
        assert child.exitstatus == 0, out
        frames = _bar_frames(out, label)
        size = (archive if label == "Loading" else busybox_tar).stat().st_size
        assert frames and frames[-1][0] == frames[-1][1] == round(size / 1000, -1 if size < 10e6 else -2), \
            (frames, size, out)
        assert screen(out)[-1] == ("Loaded image: busybox:latest" if label == "Loading" else
                                   dy("images", "-q", "--no-trunc", "bb:2").stdout.strip())
    # not a terminal: nothing but what the verbs always print
    for args in (("save", "-o", str(archive), "busybox"), ("load", "-i", str(archive)),
                 ("import", str(busybox_tar), "bb:3")):
        p = dy(*args)
        assert p.returncode == 0 and p.stderr == "", (args, p.stderr)
    child = spawn(root, "load", "-q", "-i", str(archive))
    assert read_all(child).replace("\r\n", "\n") == "Loaded image: busybox:latest\n"
