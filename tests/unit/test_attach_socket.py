"""The monitor's attach socket on real unix sockets: reachable under a runtime directory long enough that its
path outgrows a socket address (a rootless user's $XDG_RUNTIME_DIR), which made `run` fail with "AF_UNIX path
too long"."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def test_attach_socket_under_a_long_runtime_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dockyard.engine import attach

    run = tmp_path / ("x" * 60)
    monkeypatch.setattr(attach, "RUN_DIR", str(run))
    monkeypatch.setattr(attach, "SOCK_DIR", str(run / "attach"))
    cid = "ab" * 32
    assert len(attach.address(cid)) > 107
    srv = attach.listen(cid)
    try:
        c = attach.connect(cid, timeout=5)
        assert c is not None
        peer, _ = srv.accept()
        with c, peer:
            c.sendall(attach.frame(attach.STDIN, b"hi"))
            assert attach.FrameReader().feed(peer.recv(64)) == [(attach.STDIN, b"hi")]
        assert attach.connect("cd" * 32, timeout=5) is None  # no monitor: None, as with a short path
    finally:
        srv.close()
        attach.forget(cid)
    assert os.listdir(run / "attach") == []
