"""Starting monitors from a long-running, threaded caller (the API service) without forking it.

``monitor.Spawner`` forks the caller, which is right for a one-shot CLI but wrong for a process that holds threads
and an open database: a forked child of a threaded process may inherit a lock held by another thread. The
``ProcessSpawner`` here has the same ``launch``/``cancel`` interface but starts a fresh interpreter
(``python -m dockyard.engine.spawn``, exec'd by ``subprocess``, which forks and execs in C without running Python
in the child). That process detaches (setsid, then one fork in a process with a single thread) and the
grandchild becomes the monitor: an orphan reparented to init, never a child of the caller, which only reaps the
short-lived intermediate.
"""

from __future__ import annotations

import os
import subprocess
import sys

from dockyard.engine.monitor import Spawner


class ProcessSpawner(Spawner):
    """``Spawner`` by exec instead of fork (see the module doc)."""

    def __init__(self, root: str) -> None:  # noqa: D107 - no super().__init__: that forks
        self.root = root
        cmd_r, self.cmd_w = os.pipe2(os.O_CLOEXEC)
        self.ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        try:
            p = subprocess.Popen([sys.executable, "-m", "dockyard.engine.spawn", root, str(cmd_r), str(ready_w)],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 pass_fds=(cmd_r, ready_w), start_new_session=True)
        finally:
            os.close(cmd_r)
            os.close(ready_w)
        p.wait()  # the intermediate exits as soon as it has forked the monitor


def main(argv: list[str]) -> None:
    root, cmd_fd, ready_fd = argv[0], int(argv[1]), int(argv[2])
    if os.fork() != 0:
        os._exit(0)
    from dockyard.engine.monitor import _monitor_main

    _monitor_main(root, cmd_fd, ready_fd)


if __name__ == "__main__":
    main(sys.argv[1:])
