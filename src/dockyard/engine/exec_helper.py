"""An exec started for a long-running, threaded caller (the API service) without forking it.

``exec_start`` forks the container's process as a child of its caller, made a child subreaper to wait for it:
right for the one-shot CLI, wrong for the service (a fork of a threaded process, and the service would become a
subreaper and parent of container processes). The service starts ``python -m dockyard.engine.exec_helper``
instead (``subprocess``: fork+exec in C, no Python in the child), handing it, as inherited fds, the ends of the
pipes the process gets (or of the console socket, through which the runtime sends the pty master straight to the
service) and a status pipe. The helper starts the exec, reports ``{"pid": N}`` (or ``{"error": ..., "kind": ...}``,
the error's class by name), waits for the process, records its end (``exec_finished``) and exits with its
status. The service relays the bytes itself; the helper holds no copy of them.

    argv: ROOT EXEC_ID STATUS_FD STDIN_FD STDOUT_FD STDERR_FD CONSOLE_FD   (-1: none)
"""

from __future__ import annotations

import os
import subprocess
import sys

from dockyard import jsonc as json


def spawn(root: str, exec_id: str, status_w: int, stdin: int = -1, stdout: int = -1, stderr: int = -1,
          console: int = -1) -> subprocess.Popen[bytes]:
    """Start the helper (the caller closes its copies of the fds it handed over, and reaps the helper)."""
    fds = tuple(fd for fd in (status_w, stdin, stdout, stderr, console) if fd >= 0)
    return subprocess.Popen([sys.executable, "-m", "dockyard.engine.exec_helper", root, exec_id,
                             *(str(x) for x in (status_w, stdin, stdout, stderr, console))],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            pass_fds=fds, start_new_session=True)


def main(argv: list[str]) -> int:
    from dockyard.engine import exec as ex
    from dockyard.state.db import Store

    root, exec_id = argv[0], argv[1]
    status, stdin, stdout, stderr, console = (int(x) for x in argv[2:7])
    store = Store(root)

    def report(d: dict[str, object]) -> None:
        try:
            os.write(status, json.dumps(d).encode() + b"\n")
        except OSError:
            pass

    try:
        rec = ex.exec_inspect(store, exec_id)
        pid = ex.exec_start(store, rec, None if stdin < 0 else stdin, None if stdout < 0 else stdout,
                            None if stderr < 0 else stderr, console_socket=None if console < 0 else console)
    except Exception as e:  # noqa: BLE001 - reported to the service with its class
        report({"error": str(e), "kind": type(e).__name__})
        return 126
    for fd in (stdin, stdout, stderr, console):
        if fd >= 0:
            os.close(fd)  # the process has its copies: EOF reaches the service when it ends
    report({"pid": pid})
    code = ex.wait_exit(pid)
    ex.exec_finished(store, rec, code)
    report({"exit": code})
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
