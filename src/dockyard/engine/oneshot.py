"""Throwaway containers for ``build``: a writable root over an image's layers, processes run in it, and the upper
dir that becomes the next layer. No container record, no monitor: the caller waits for the process itself.

    with Workspace(store, parent_image) as ws:
        status = ws.run(["/bin/sh", "-c", "make"], env=[...], cwd="/src", user="", network="host",
                        stdout=1, stderr=2)
        ... ws.root (the merged root, to copy files into), ws.upper (the changes) ...

The process gets the same OCI spec (``engine.specgen``) and the same runtime as ``dockyard run``.
"""

from __future__ import annotations

import os

from dockyard import jsonc as json
from dockyard.errors import DockyardError
from dockyard.state.db import Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Workspace:
    def __init__(self, store: Store, chain_id: str | None) -> None:
        from dockyard.engine import rootfs

        self.store = store
        self.id = "build-" + os.urandom(16).hex()
        self.dir = store.path("tmp", self.id)
        os.makedirs(self.dir, 0o700)
        try:
            from dockyard.engine.prune import record_owner

            record_owner(self.dir)  # a killed build's workspace is found and collected by prune (engine.prune)
            self.root = rootfs.mount_root(store, chain_id, self.dir)
        except BaseException:
            self.close()
            raise
        self.upper = os.path.join(self.dir, "diff")

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, args: list[str], *, env: list[str], cwd: str, user: str, network: str, stdout: int,
            stderr: int, extra_mounts: list[dict[str, Any]] | None = None, hostname: str = "buildkitsandbox",
            on_created: Any = None) -> int:
        """Run ``args`` in the workspace (stdin /dev/null); returns its exit status (128+N when killed).
        ``on_created()`` is called once the process exists, before it starts: the caller may start threads from
        then on (this process is not forked after it)."""
        from dockyard.engine import rootfs, specgen
        from dockyard.engine.options import ContainerSpec
        from dockyard.fsutil import atomic_write
        from dockyard.runtime import syscalls
        from dockyard.runtime.base import Stdio, get_runtime

        spec = ContainerSpec(image="", cmd=args, entrypoint=[], env=env, workdir=cwd, user=user,
                             network_mode=network, hostname=hostname)
        att = None
        if network not in ("host", "none"):  # the default bridge, as a build sandbox: NAT'd, isolated
            from dockyard.engine.containers import Container
            from dockyard.network.attach import prepare

            self._c = Container(self.id[6:].ljust(64, "0")[:64], self.id, None, "", "running", spec)
            att = prepare(self.store, self._c, {})
        ip = att.endpoints[0][1] if att is not None and att.endpoints else None
        rootfs.write_etc(self.dir, hostname, [], [], ip)
        oci = specgen.generate(spec, {}, container_id=self.id, rootfs=self.root, cdir=self.dir, hostname=hostname)
        oci["mounts"] += extra_mounts or []
        atomic_write(os.path.join(self.dir, "config.json"), json.dumps(oci).encode(), durable=False)
        from dockyard.engine.monitor import RUNTIME_STATE

        rt = get_runtime("dockyard", RUNTIME_STATE)
        syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            try:
                pid = rt.create(self.id, self.dir, Stdio(null, stdout, stderr))
            finally:
                os.close(null)
            try:
                if att is not None:
                    att.plumb(pid)
                if on_created is not None:
                    on_created()
                rt.start(self.id)
                _, st = os.waitpid(pid, 0)
            finally:
                try:
                    rt.delete(self.id, force=True)
                except DockyardError:
                    pass
        finally:
            if att is not None:
                from dockyard.network.attach import release

                release(self.store, self._c, forget=True)
        code = os.waitstatus_to_exitcode(st)
        return code if code >= 0 else 128 - code

    def resolve_user(self, user: str) -> dict[str, Any]:
        """``user[:group]`` -> OCI process.user from this workspace's /etc/passwd and /etc/group (COPY --chown)."""
        from dockyard.engine.specgen import resolve_user

        return resolve_user(user, self.root)

    def close(self) -> None:
        from dockyard.engine.rootfs import unmount_root
        from dockyard.fsutil import rmtree

        unmount_root(self.dir)
        rmtree(self.dir)
