"""``--sig-proxy`` (run and attach without a tty): signals this CLI receives go to the container's init.

As Docker's CLI: every catchable signal is forwarded as ``kill -s SIG`` would send it (so a fatal one disables the
restart policy, as with ``dockyard kill``), except SIGCHLD, SIGPIPE and SIGURG (as Docker) and the
synchronous faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS), which only a broken client receives. While
forwarding, Ctrl-C (SIGINT) no longer ends the client: the container decides. With ``--sig-proxy=false`` the
client keeps the default actions (SIGINT/SIGTERM end the client; the container runs on).

    with forwarding(store, container_id):
        status = stream.attach(...)
"""

from __future__ import annotations

import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.state.db import Store

_SKIP = {signal.SIGCHLD, signal.SIGPIPE, signal.SIGURG, signal.SIGKILL, signal.SIGSTOP, signal.SIGSEGV, signal.SIGBUS,
         signal.SIGFPE, signal.SIGILL, signal.SIGTRAP, signal.SIGSYS}


def forwarded_signals() -> list[signal.Signals]:
    return [s for s in signal.valid_signals() if isinstance(s, signal.Signals) and s not in _SKIP]


class forwarding:  # noqa: N801 - used as a function: `with forwarding(store, cid):`
    """Forward signals to container ``cid`` for the duration of the block, then restore the previous handlers.
    (A class, not contextlib.contextmanager: contextlib costs ~2 ms of imports on the run path.)"""

    def __init__(self, store: Store, cid: str, enabled: bool = True) -> None:
        self.store, self.cid, self.enabled = store, cid, enabled
        self.old: dict[signal.Signals, Any] = {}

    def forward(self, signum: int, frame: object) -> None:
        from dockyard.engine import local
        from dockyard.engine.containers import ContainerStore
        from dockyard.errors import DockyardError

        try:
            c = ContainerStore(self.store).get(self.cid)
            if c.running:
                local.kill(self.store, c, signum)
        except DockyardError:
            pass  # it has just exited: the attach loop reports how

    def __enter__(self) -> None:
        if not self.enabled:
            return
        for s in forwarded_signals():
            try:
                self.old[s] = signal.signal(s, self.forward)
            except (OSError, ValueError):
                continue

    def __exit__(self, *exc: object) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)
