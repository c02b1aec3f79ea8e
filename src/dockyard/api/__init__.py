"""The Docker Engine API edge: ``dockyard system service`` serves the engine to the docker CLI, docker-py, Compose.

Like ``cli/``, this package only parses (HTTP requests, Docker's JSON), calls the engine and formats (Docker's JSON,
streams). It is just another client of the store: killing the service stops no container, and a restarted one
serves the same state. Layout: ``server`` (asyncio + h11 transport, error mapping), ``routes`` (routing, version
negotiation, system endpoints), ``containers``/``create``/``streams`` (containers, attach), ``execs`` (exec),
``objects`` (images, volumes, networks).
"""

from __future__ import annotations

import threading
from typing import Any


class Api:
    """What every handler gets: the store, and the service's in-memory rendezvous for attach-before-start."""

    def __init__(self, root: str, debug: bool = False) -> None:
        from dockyard.state.db import Store

        self.root = root
        self.store = Store(root)
        self.debug = debug
        self.lock = threading.Lock()
        self.pending_attach: dict[str, list[Any]] = {}  # container id -> futures of attach clients before start
        self.started: dict[str, list[Any]] = {}  # container id -> waiters of ``wait?condition=next-exit``
        self.execs: dict[str, Any] = {}  # exec id -> execs.ExecRecord


def serve(root: str, uri: str = "", idle: float = 0, debug: bool = False) -> None:
    """Serve until ``idle`` seconds pass with no connection (0: forever) or SIGTERM/SIGINT."""
    import asyncio
    import os
    import signal
    import sys

    if sys.flags.no_site:  # the dockyard command starts with -S (fast run path); the service needs site-packages
        import site

        site.main()
    from dockyard.api import server
    from dockyard.api.routes import build_router, make_dispatch

    sock, path = server.listen(uri or server.DEFAULT_URI)
    api = Api(root, debug)
    api.store.ensure_root()

    async def main() -> None:
        srv = server.Server(make_dispatch(api, build_router()), idle, os.path.join(root, "tmp"))
        loop = asyncio.get_running_loop()
        for s in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(s, srv.closing.set)
        await server.serve_socket(sock, srv)

    loop = asyncio.new_event_loop()
    try:
        # no executor shutdown at the end: a worker blocked in a wait must not hold the exit (the process ends)
        loop.run_until_complete(main())
    finally:
        sock.close()
        if path:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
