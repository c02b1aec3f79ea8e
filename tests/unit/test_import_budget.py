"""The import budget of `run`: the modules the CLI process imports on its way to running a container.

Python spends a large part of a short command importing (the ``run`` of a busybox ``true`` is ~0.1 s, of which
~25 ms are imports), so the run path imports lazily and this test holds it there: it runs the installed
``dockyard`` launcher the way it starts (``python -S``, see scripts/deps.sh) with ``-X importtime`` and fails
when a module outside the allow-list below is imported. A module that ought to be on the path (measured: it
costs less than doing without it) is added to the list in the same change, with the reason in its commit; one
that leaves the path may be dropped from the list. docs/decisions.md tells the budget's story.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import DOCKYARD

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(os.geteuid() != 0, reason="runs a container: needs root")]

STDLIB = {  # not json or re (dockyard.jsonc, hand-written checks), sqlite3's wrapper with datetime (state.db
    # uses _sqlite3), threading, random, copy: this list keeps them out
    '__future__', '_abc', '_codecs', '_collections', '_collections_abc', '_frozen_importlib_external', '_functools',
    '_io', '_json', '_operator', '_signal', '_socket', '_sqlite3', '_stat', '_struct', 'abc', 'array', 'codecs',
    'collections', 'collections.abc', 'contextlib', 'encodings', 'encodings.aliases', 'encodings.utf_8', 'enum',
    'errno', 'functools', 'genericpath', 'importlib', 'io', 'itertools', 'keyword', 'marshal', 'math', 'operator',
    'os', 'posix', 'posixpath', 'reprlib', 'select', 'selectors', 'signal', 'socket', 'stat', 'struct', 'time',
    'types', 'warnings', 'zipimport',
}
DOCKYARD_MODULES = {
    'dockyard', 'dockyard.cli', 'dockyard.cli.flags', 'dockyard.cli.main', 'dockyard.cli.sigproxy',
    'dockyard.cli.stream', 'dockyard.cli.units', 'dockyard.engine', 'dockyard.engine.attach',
    'dockyard.engine.containers', 'dockyard.engine.events', 'dockyard.engine.health', 'dockyard.engine.local',
    'dockyard.engine.monitor', 'dockyard.engine.monitor_loop', 'dockyard.engine.names', 'dockyard.engine.options',
    'dockyard.engine.records', 'dockyard.engine.security', 'dockyard.engine.specgen', 'dockyard.engine.validate',
    'dockyard.errors', 'dockyard.ids', 'dockyard.images', 'dockyard.images.reference', 'dockyard.images.store',
    'dockyard.network', 'dockyard.network.ports', 'dockyard.state', 'dockyard.state.db', 'dockyard.trace',
    'dockyard.jsonc',  # JSON on the C accelerator: json's own modules import re and compile 4 patterns (~5 ms)
    'dockyard.lazyre',  # patterns compiled on first use (none on this path)
    'dockyard.rootless',  # the run dir (/run/dockyard or the rootless user's): os only
    'dockyard.runtime', 'dockyard.runtime.binfmt',  # create's check of the image's architecture (stdlib only)

}
BUDGET = STDLIB | DOCKYARD_MODULES


def imported(root: str, *args: str) -> tuple[list[str], subprocess.CompletedProcess]:
    with open(DOCKYARD) as f:
        shebang = f.readline()[2:].split()
    assert shebang[1:] == ["-S"], f"the launcher no longer starts python with -S: {shebang}"
    p = subprocess.run([shebang[0], "-S", "-X", "importtime", DOCKYARD, "--root", root, *args],
                       capture_output=True, text=True, timeout=60)
    names = [ln.split("|")[2].strip() for ln in p.stderr.splitlines()
             if ln.startswith("import time:") and "imported package" not in ln]
    return names, p


def test_run_imports_nothing_outside_its_budget(root, busybox):
    names, p = imported(str(root), "run", "--rm", "--network", "none", "busybox", "true")
    assert p.returncode == 0, p.stderr[-2000:]
    assert len(names) > 50, "no -X importtime output: the measurement itself broke"
    extra = sorted(set(names) - BUDGET)
    assert not extra, (f"`run` now imports {extra}: import them lazily off the run path, or add them to "
                       f"tests/unit/test_import_budget.py with the measurement that says why")


def test_exec_does_not_import_the_monitor(dy, root, busybox):
    """`exec` runs the process as a child of the CLI: the monitor (and its event loop, socket, selectors) has no
    part in it; it was imported for one constant, the runtime's state directory."""
    cid = dy("run", "-d", "--network", "none", "busybox", "sleep", "1000").stdout.strip()
    try:
        names, p = imported(str(root), "exec", cid, "echo", "hi")
        assert p.returncode == 0 and p.stdout == "hi\n", p.stderr[-2000:]
        assert len(names) > 50, "no -X importtime output: the measurement itself broke"
        assert not {"dockyard.engine.monitor", "dockyard.engine.monitor_loop"} & set(names)
        assert not {"json", "re"} & set(names)  # dockyard.jsonc; checks by hand or dockyard.lazyre
    finally:
        dy("rm", "-f", cid)
