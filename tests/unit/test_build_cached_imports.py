"""A fully cached ``build`` stays cheap: what it imports, and the hand-written parts that replaced the imports.

A rebuild whose every step hits the cache does no work beyond parsing the Dockerfile, checksumming the context and
reading the store, so most of its time was Python importing modules it did not use (``dataclasses`` for six event
classes, ``typing``, ``re`` for the parser's patterns, ``datetime`` for the base image's creation time, ``tarfile``,
``shutil`` and ``tempfile`` for a final image it had recorded before, ``copy`` for the configs, ``hashlib``'s
libcrypto for a few small digests). The first test
holds the budget the way tests/unit/test_import_budget.py holds ``run``'s; the others check the hand-written
replacements against what they replaced.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import random
import re

import pytest

from dockyard import ids
from dockyard.build import parser
from dockyard.timeparse import parse_rfc3339
from tests.unit.test_import_budget import imported

DOCKERFILE = """FROM busybox
COPY app.txt /app/app.txt
RUN echo built > /app/built
ENV MODE=bench
RUN cat /app/app.txt /app/built > /app/all
CMD ["cat", "/app/all"]
"""

# what the cached build imported before (dataclasses brought inspect, ast, dis and tokenize with it)
NOT_ON_THE_CACHED_PATH = {"dataclasses", "inspect", "typing", "re", "fnmatch", "datetime", "copy", "tarfile",
                          "shutil", "tempfile", "bz2", "lzma", "dockyard.images.importer", "dockyard.snapshots.layer",
                          "hashlib", "_hashlib"}


@pytest.mark.e2e
@pytest.mark.skipif(os.geteuid() != 0, reason="the first build runs RUN steps: needs root")
def test_a_fully_cached_build_imports_nothing_it_does_not_use(dy, root, busybox, tmp_path):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "app.txt").write_text("hello\n")
    first = dy("build", "-q", "-t", "cached:1", str(ctx), timeout=120, check=True).stdout.strip()
    names, p = imported(str(root), "build", "-q", "-t", "cached:1", str(ctx))
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip() == first  # the same image, found again
    assert len(names) > 30, "no -X importtime output: the measurement itself broke"
    extra = sorted(NOT_ON_THE_CACHED_PATH & set(names))
    assert not extra, f"a fully cached build now imports {extra}: import them where the work needs them"
    again = dy("build", "--progress", "plain", "-t", "cached:2", str(ctx), check=True)
    assert again.stderr.count(" CACHED\n") == 3  # COPY and both RUNs; ENV and CMD are metadata
    assert dy("images", "-q", "--no-trunc", "cached:2", check=True).stdout.split() == [first]
    out = dy("run", "--rm", "--network", "none", "cached:2", check=True).stdout
    assert out == "hello\nbuilt\n"


def _old_parse_rfc3339(s: str) -> float:
    """timeparse.parse_rfc3339 as it was, on datetime."""
    if not s:
        return 0.0
    try:
        main, frac, tz = s, "", ""
        if s.endswith(("Z", "z")):
            main, tz = s[:-1], "+00:00"
        else:
            for i in range(len(s) - 1, 9, -1):
                if s[i] in "+-":
                    main, tz = s[:i], s[i:]
                    break
        if "." in main:
            main, frac = main.split(".", 1)
        d = datetime.datetime.fromisoformat(main.replace("t", "T") + (tz or "+00:00"))
        return d.timestamp() + (float("0." + frac) if frac.isdigit() else 0.0)
    except ValueError:
        return 0.0


def test_rfc3339_by_hand_agrees_with_datetime():
    fixed = ["2000-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
             "2024-02-29T12:00:00+05:30", "2023-02-29T12:00:00Z", "1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z",
             "2024-01-02T03:04:05.123456789Z", "2024-01-02 03:04:05Z", "2024-01-02t03:04:05z", "2024-01-02",
             "2024-01-02T03:04:05-07:00", "2024-01-02T24:00:00Z", "2024-01-02T03:04:60Z", "20240102T030405Z",
             "2024-01-02T03:04:05+0700", "2024-01-02T03:04:05+24:00", "0000-01-01T00:00:00Z", "", "garbage"]
    r = random.Random(16)
    cases = fixed + [f"{r.randint(0, 10000):04d}-{r.randint(0, 13):02d}-{r.randint(0, 32):02d}{r.choice('Tt ')}"
                     f"{r.randint(0, 25):02d}:{r.randint(0, 61):02d}:{r.randint(0, 61):02d}"
                     f"{r.choice(['', '.5', '.123456789', '.'])}"
                     f"{r.choice(['Z', '+00:00', f'-{r.randint(0, 25):02d}:{r.randint(0, 61):02d}', ''])}"
                     for _ in range(20000)]
    for c in cases:
        assert parse_rfc3339(c) == _old_parse_rfc3339(c), c


def test_the_parsers_hand_checks_agree_with_the_patterns_they_replaced():
    ws = re.compile(r"[\t\v\f\r ]+")
    directive = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*", re.DOTALL)
    alphabet = ["a", "Z", "1", " ", "\t", "\v", "\r", "\n", "\\", "`", "=", "#", "\u2003", "\x85", "<<", "-", '"']
    r = random.Random(16)
    for _ in range(30000):
        s = "".join(r.choice(alphabet) for _ in range(r.randint(0, 10)))
        assert parser._ws_split(s) == ws.split(s), repr(s)
        assert parser._ws_split(s, 1) == ws.split(s, maxsplit=1), repr(s)
        for esc in ("\\", "`"):
            e = re.escape(esc)
            m = re.search(rf"(?:([^{e}]){e}[ \t]*$)|(?:^{e}[ \t]*$)", s)
            want = (s, True) if m is None else (s[:m.start()] + (m.group(1) or ""), False)
            assert parser._trim_continuation(s, esc) == want, (repr(s), esc)
        line = r.choice(["#", "# ", "#\t"]) + r.choice(["escape", "syntax", "check", "x1", "1x", ""]) + \
            r.choice(["=", " = ", "\u2003=", ""]) + s
        m = directive.fullmatch(line[1:].lstrip())
        key = m.group(1).lower() if m else None
        want_d = None if key not in parser.DIRECTIVES else (key, m.group(2))  # type: ignore[union-attr]
        assert parser._directive(line, {}) == want_d, repr(line)


def test_small_and_large_digests_are_sha256():
    for n in (0, 1, 1000, ids.OPENSSL_FROM - 1, ids.OPENSSL_FROM, 3 * ids.OPENSSL_FROM):
        data = bytes(range(256)) * (n // 256) + b"x" * (n % 256)
        assert ids.sha256_digest(data) == "sha256:" + hashlib.sha256(data).hexdigest()
        h = ids.sha256(size_hint=n)
        h.update(data)
        assert h.hexdigest() == hashlib.sha256(data).hexdigest()


def test_build_events_behave_as_the_frozen_dataclasses_they_were():
    import copy
    import pickle

    from dockyard.build.events import (BuildFinished, BuildWarning, StepCached, StepDone, StepOutput,
                                       StepStarted)

    evs = [StepStarted(1, "[1/2] FROM busybox"), StepOutput(number=2, text="hi"), StepCached(3), StepDone(4, 0.5),
           BuildWarning("[Warning] x"), BuildFinished("sha256:ab", ["docker.io/library/a:1"])]
    assert BuildFinished("sha256:ab").tags == []
    assert repr(evs[3]) == "StepDone(number=4, seconds=0.5)"
    assert StepOutput(2, "hi") == evs[1] and StepStarted(2, "hi") != evs[1] and hash(StepCached(3)) == hash(evs[2])
    for ev in evs:
        assert type(ev)(**ev.to_json()) == ev
        assert pickle.loads(pickle.dumps(ev)) == ev and copy.deepcopy(ev) == ev
        with pytest.raises(AttributeError):
            ev.number = 9  # type: ignore[misc,union-attr]
