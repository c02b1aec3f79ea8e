"""The engine's ``build``: a Dockerfile and a context directory (or a tar of one) -> an image, with typed progress
events (``build.events``: StepStarted, StepOutput, StepCached, StepDone, then BuildFinished).

Two ways to follow a build:

- ``run_build(store, ctx_dir, on_event=print)`` runs it in the caller's thread and calls ``on_event`` for each
  event; returns the image ID. The CLI uses it: a Ctrl-C interrupts the step being run and its workspace is
  cleaned up on the way out, as before.
- ``build(store, ctx_dir)`` is an iterator of the same events for a long-running caller (the API service): the
  build runs in a worker thread; closing the iterator early stops the build at its next event.

RUN and COPY steps run in ``engine.oneshot.Workspace`` (the same specgen and runtime as ``run``), handed to the
builder, which sits below the engine and does not import it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from dockyard.build.events import (BuildEvent, BuildFinished, BuildWarning, StepCached, StepDone, StepOutput,
                                   StepStarted)
from dockyard.errors import DockyardError, InvalidArgument
from dockyard.state.db import Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO

__all__ = ["BuildEvent", "BuildFinished", "BuildWarning", "StepStarted", "StepOutput", "StepCached", "StepDone",
           "BuildCancelled",
           "build", "run_build", "extract_context", "remove_context"]


class BuildCancelled(DockyardError):
    """The consumer of ``build``'s events went away."""


def extract_context(stream: IO[bytes]) -> str:
    """A build context sent as a tar (plain, gzip, bzip2 or xz; a seekable stream) -> a private temporary directory,
    extracted with
    the safe extractor (nothing outside it is touched, no device nodes). Remove it with ``remove_context``."""
    import tarfile
    import tempfile

    from dockyard.snapshots.extract import Extractor

    tmpdir = tempfile.mkdtemp(prefix="dockyard-build-ctx-")
    try:
        fd = os.open(tmpdir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with tarfile.open(fileobj=stream, mode="r:*") as tf:
                Extractor(fd, allow_devices=False).extract(tf)
        finally:
            os.close(fd)
    except BaseException:
        remove_context(tmpdir)
        raise
    return tmpdir


def remove_context(path: str) -> None:
    from dockyard.fsutil import rmtree

    rmtree(path)


def run_build(store: Store, context_dir: str, on_event: Callable[[BuildEvent], None], *,
              dockerfile: bytes | None = None, dockerfile_path: str | None = None, tags: list[str] | None = None,
              build_args: dict[str, str] | None = None, target: str | None = None, no_cache: bool = False,
              labels: dict[str, str] | None = None, network: str = "default", platform: str = "",
              pull: bool = False) -> str:
    """Build ``context_dir`` with ``dockerfile`` (its text) or the file ``dockerfile_path`` (default
    ``<context>/Dockerfile``); tag the final image with ``tags``; returns its ID. ``build_args`` are ARG values;
    ``network`` is RUN's default (``default`` = an isolated bridge, ``host``, ``none``). InvalidArgument for a
    missing context or Dockerfile and for what dockyard cannot do (another platform); BuildError (an
    InvalidArgument) naming the line for a failing step."""
    from dockyard.build.builder import Builder, Options
    from dockyard.build.context import Context as BuildContext
    from dockyard.build.dockerignore import load_patterns
    from dockyard.build.stages import parse_dockerfile, target_platforms
    from dockyard.engine.oneshot import Workspace
    from dockyard.images import reference

    if not os.path.isdir(context_dir):
        raise InvalidArgument(f"unable to prepare context: path \"{context_dir}\" not found")
    df_path = None
    if dockerfile is None:
        df_path = dockerfile_path or os.path.join(context_dir, "Dockerfile")
        try:
            with open(df_path, "rb") as f:
                dockerfile = f.read()
        except FileNotFoundError:
            raise InvalidArgument(f"failed to read dockerfile: open {df_path}: no such file or directory") from None
    df = parse_dockerfile(dockerfile, os.path.basename(df_path) if df_path else "Dockerfile")
    patterns = load_patterns(context_dir, df_path)
    tags = list(tags or [])
    platforms = target_platforms(platform)  # each one runnable here, or refused by name before any step
    multi = len(platforms) > 1
    images: list[tuple[str, str]] = []
    builder = None
    for plat in platforms:  # steps that do not depend on the platform hit the cache the first one filled
        opts = Options(tags=[] if multi else tags, build_args=dict(build_args or {}), target=target or None,
                       no_cache=no_cache, labels=dict(labels or {}), network=network, platform=plat, pull=pull,
                       show_platform=multi)
        builder = Builder(store, df, BuildContext(context_dir, patterns), opts, workspace=Workspace,
                          emit=on_event, first_step=builder.step_no if builder else 0)
        no_cache = False if multi else no_cache  # --no-cache: the first platform's steps refill the cache
        images.append((plat, builder.build()))
    assert builder is not None
    if multi:
        from dockyard.images.store import ImageStore

        image_id, _ = ImageStore(store).add_index(images, tags)
        builder.step(f"writing image index {image_id} ({', '.join(platforms)}) done")
    else:
        image_id = images[0][1]
        builder.step(f"writing image {image_id} done")
    named = [str(reference.parse_tagged(t)) for t in tags]
    for t in named:
        on_event(StepOutput(builder.step_no, f"naming to {t} done"))
    on_event(BuildFinished(image_id, named))
    return image_id


def build(store: Store, context_dir: str, **kw: object) -> Iterator[BuildEvent]:
    """``run_build``'s events as an iterator (same arguments but ``on_event``); the last one is BuildFinished.
    An error of the build is raised from the iterator with its type."""
    import queue
    import threading

    q: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=256)
    stop = threading.Event()

    def emit(ev: BuildEvent) -> None:
        if stop.is_set():
            raise BuildCancelled("build cancelled")
        q.put(("event", ev))

    def work() -> None:
        try:
            run_build(store, context_dir, emit, **kw)  # type: ignore[arg-type]
            q.put(("done", None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer's thread
            q.put(("error", e))

    t = threading.Thread(target=work, name="dockyard-build", daemon=True)
    t.start()
    try:
        while True:
            kind, item = q.get()
            if kind == "event":
                yield item  # type: ignore[misc]
            elif kind == "error":
                raise item  # type: ignore[misc]
            else:
                return
    finally:
        stop.set()
        while t.is_alive():  # let the worker reach its next event (it then stops and cleans up)
            try:
                q.get(timeout=0.1)
            except queue.Empty:
                pass
        t.join()



def builder_platforms() -> list[str]:
    """``buildx ls``/``inspect``: the platforms the built-in builder runs (native, then each qemu-user one
    binfmt_misc has registered)."""
    from dockyard.runtime.binfmt import runnable_platforms

    return runnable_platforms()


def export_filesystem(store: Store, image_id: str, dest: str, kind: str = "local",
                      out: IO[bytes] | None = None) -> list[str]:
    """BuildKit's ``local`` and ``tar`` exporters (``buildx build -o type=local,dest=DIR|type=tar,dest=F``): the
    final image's filesystem written to directory ``dest`` (``local``) or as a tar to file ``dest`` (or to
    ``out``, for ``dest=-``). An image index gives one subdirectory (one top-level directory in the tar) per
    platform, named as BuildKit names them: ``linux_amd64``, ``linux_arm64``, ``linux_arm_v7``. The tree is read
    from a read-only view of the layers through fds and copied with owners and modes (device nodes refused).
    Returns the platforms written (``[]`` for one image)."""
    import tarfile

    from dockyard.engine.oneshot import Workspace
    from dockyard.fdtree import Copier, add_to_tar
    from dockyard.images.store import ImageStore

    if kind not in ("local", "tar"):
        raise InvalidArgument(f"unsupported output type {kind!r}")
    if not dest:
        raise InvalidArgument(f"output type {kind} requires dest=" + ("DIR" if kind == "local" else "FILE"))
    ist = ImageStore(store)
    im = ist.resolve(image_id)
    parts = ([(plat.replace("/", "_"), ist.resolve(iid)) for plat, iid in ist.members(im.id)] if im.is_index
             else [("", im)])
    tf = None
    tmp = ""
    if kind == "tar":
        if dest == "-" and out is not None:
            tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
        else:
            tmp = f"{dest}.tmp-{os.getpid()}"  # renamed into place when complete
            tf = tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT)
    else:
        os.makedirs(dest, exist_ok=True)
    try:
        for sub, member in parts:
            with Workspace(store, member.top_chain_id) as ws:
                rfd = os.open(ws.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    if tf is not None:
                        add_to_tar(tf, rfd, ".", sub or ".", one_fs=True, root_entry=bool(sub))
                        continue
                    target = os.path.join(dest, sub) if sub else dest
                    os.makedirs(target, exist_ok=True)
                    dfd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
                    try:
                        with Copier(owners=True, devices=False, merge=True) as cp:
                            cp.copy_contents(rfd, dfd)
                    finally:
                        os.close(dfd)
                finally:
                    os.close(rfd)
        if tf is not None:
            tf.close()
            tf = None
            if tmp:
                os.rename(tmp, dest)
                tmp = ""
    finally:
        if tf is not None:
            tf.close()
        if tmp:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
    return [sub for sub, _ in parts if sub]
