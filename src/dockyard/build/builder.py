"""The build executor: stages of a parsed Dockerfile -> images, with a cache.

Vocabulary: a *step* is one instruction; its *cache key* chains the key of the step before it (the base image ID
for the first), the instruction as expanded, the build args in scope and, for COPY/ADD, a digest of the source
contents (not their mtimes). Metadata steps (ENV, CMD, LABEL...) only change the image config in memory;
filesystem steps (RUN, COPY, ADD) run in a throwaway container (a ``Sandbox``: the engine passes its
``oneshot.Workspace``, this layer does not import the engine) over the current
image, and the container's upper dir becomes a deterministic layer. Each filesystem step records an image (with
the metadata before it) and ``build-cache/<key>`` -> image ID, so a rebuild whose keys match does no work beyond
checksumming the context. The stage's last step records the final image.

Reproducibility: layer mtimes are clamped to, and image/history timestamps set to, the build epoch:
``SOURCE_DATE_EPOCH`` when set, else the base image's creation time (0 for ``FROM scratch``). Two ``--no-cache``
builds of the same Dockerfile and context therefore give the same image ID.
"""

from __future__ import annotations

import os
import time

from dockyard import jsonc as json
from dockyard.jsonc import copied
from dockyard.build.context import Context, copy_tree, selected
from dockyard.build.events import BuildWarning, StepCached, StepDone, StepOutput, StepStarted
from dockyard.build.instructions import (
    AddInstruction, ArgInstruction, CmdInstruction, CopyInstruction, EntrypointInstruction, EnvInstruction,
    ExposeInstruction, HealthcheckInstruction, LabelInstruction, MaintainerInstruction, OnbuildInstruction,
    RunInstruction, ShellInstruction, StopSignalInstruction, UserInstruction, VolumeInstruction,
    WorkdirInstruction,
)
from dockyard.build.stages import Dockerfile, Stage, normalize_platform, platform_args, unconsumed_build_args
from dockyard.errors import DockyardError, InvalidArgument, NotFound
from dockyard.ids import sha256, sha256_digest
from dockyard.state.db import Store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from dockyard.build.events import Emit, SandboxFactory

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ["/bin/sh", "-c"]


class BuildError(DockyardError):
    """A step failed: the message names the Dockerfile line and what went wrong (exit 1)."""


class Options:
    def __init__(self, *, tags: list[str] | None = None, build_args: dict[str, str] | None = None,
                 target: str | None = None, no_cache: bool = False, quiet: bool = False,
                 labels: dict[str, str] | None = None, network: str = "default", platform: str = "",
                 pull: bool = False, show_platform: bool = False) -> None:
        self.show_platform = show_platform  # a multi-platform build: steps and errors name their platform
        self.tags = tags or []
        self.build_args = build_args or {}
        self.target = target
        self.no_cache = no_cache
        self.quiet = quiet
        self.labels = labels or {}
        self.network = network
        self.platform = platform
        self.pull = pull  # build --pull: pull every base image, even one present here


def _rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class _StageState:
    """Where a stage is: its current image (None: nothing recorded yet), config, pending history, args, key."""

    def __init__(self, image: Any, config: dict[str, Any], key: str, epoch: int) -> None:
        self.image = image            # images.store.Image the next layer goes on (None: scratch)
        self.config = config          # the whole image config JSON being built
        self.pending: list[dict[str, Any]] = []  # history entries not yet recorded in an image
        self.args: dict[str, str] = {}
        self.key = key
        self.epoch = epoch
        self.dirty = True             # config/pending differ from ``image``
        self.cmd_set = False          # a CMD of this stage (not the base's) is in effect

    @property
    def inner(self) -> dict[str, Any]:
        return self.config.setdefault("config", {})

    def env(self) -> dict[str, str]:
        out = {}
        for e in self.inner.get("Env") or []:
            k, _, v = e.partition("=")
            out[k] = v
        return out


class Builder:
    def __init__(self, store: Store, dockerfile: Dockerfile, context: Context, opts: Options, *,
                 workspace: SandboxFactory, emit: Emit, first_step: int = 0) -> None:
        self.store = store
        self.df = dockerfile
        self.ctx = context
        self.opts = opts
        self.workspace = workspace
        self.emit = emit
        self.step_no = first_step
        self.stage_images: dict[int, Any] = {}
        self.platform = platform_args(opts.platform or None)  # one target platform (engine.build checked it)
        self.target_platform = self.platform["TARGETPLATFORM"]
        self.global_env = dockerfile.global_args(opts.build_args, self.platform)
        self.cache_dir = store.path("build-cache")

    # ---- driver ---------------------------------------------------------------------------------------------
    def build(self) -> str:
        target = self.df.target(self.opts.target)
        stages = self.df.stages_needed(target, self.global_env)
        image_id = ""
        for st in stages:
            image_id = self.build_stage(st, final=st is target)
        unused = unconsumed_build_args(self.df, stages, self.opts.build_args)
        if unused:
            self.emit(BuildWarning(f"[Warning] One or more build-args [{' '.join(unused)}] were not consumed"))
        return image_id

    def build_stage(self, stage: Stage, final: bool) -> str:
        from dockyard.images.store import ImageStore

        base = self.df.base_of(stage, self.global_env)
        want = self.target_platform
        if base.platform:  # FROM --platform=$BUILDPLATFORM ...: that platform's image, run natively or emulated
            from dockyard.runtime.binfmt import EmulationUnavailable, ensure_platform

            want = "/".join(x for x in normalize_platform(base.platform) if x)
            try:
                ensure_platform(want)
            except EmulationUnavailable as e:
                raise BuildError(f"{self.df.filename}:{stage.from_.line}: FROM --platform={base.platform}: {e}") \
                    from None
        total = len(stage.instructions) + 1
        label = stage.display_name
        if self.opts.show_platform:
            label = f"{self.target_platform} {label}"
        self.step(f"[{label} 1/{total}] FROM {base.ref}" + (f" AS {stage.name}" if stage.name else ""))
        if base.kind == "stage":
            img = self.stage_images[base.stage.index]  # type: ignore[union-attr]
        elif base.kind == "scratch":
            img = None
        else:
            img = None
            if not self.opts.pull:
                try:
                    img = ImageStore(self.store).resolve(base.ref)
                except NotFound:
                    pass
            if img is None:  # missing here (or --pull): from its registry, as Docker does
                img = self._pull_base(base.ref, stage.from_.line, want)
            img = self._variant(img, base.ref, want, stage.from_.line)
        epoch = self._epoch(img)
        config = copied(img.config) if img is not None else {
            "architecture": self.platform["TARGETARCH"], "os": self.platform["TARGETOS"], "config": {},
            "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
        config.pop("container_config", None)
        st = _StageState(img, config, "sha256:" + sha256(
            f"FROM {img.id if img else 'scratch'}".encode()).hexdigest(), epoch)
        st.dirty = img is None
        inner = st.inner
        if not any(e.startswith("PATH=") for e in inner.get("Env") or []):
            inner["Env"] = [f"PATH={DEFAULT_PATH}"] + list(inner.get("Env") or [])
            st.dirty = True
        # ONBUILD triggers of the base run first, then are cleared (they are not inherited further)
        triggers = list(inner.pop("OnBuild", None) or [])
        instructions = list(stage.instructions)
        if triggers:
            from dockyard.build.stages import parse_dockerfile

            trig_df = parse_dockerfile("FROM scratch\n" + "\n".join(triggers), self.df.filename)
            instructions = trig_df.stages[0].instructions + instructions
            st.dirty = True
        for n, instr in enumerate(instructions, start=2):
            self.run_step(st, instr, f"[{label} {n}/{len(instructions) + 1}]")
        if final and self.opts.labels:
            inner.setdefault("Labels", {}).update(self.opts.labels)
            st.dirty = True
        image_id = self.record(st, layer=None) if st.dirty or st.image is None else st.image.id
        from dockyard.images.store import ImageStore as _IS

        # st.image is the image just recorded or found in the cache (read back from the store either way)
        self.stage_images[stage.index] = st.image if st.image.id == image_id else _IS(self.store).get(image_id)
        if final:
            for t in self.opts.tags:
                _IS(self.store).tag(image_id, t)
        return image_id

    def _variant(self, img: Any, ref: str, want: str, line: int) -> Any:
        """The image of ``img`` (maybe an index) for platform ``want``; a single image of another platform is
        refused naming both (never built on the wrong base)."""
        from dockyard.images.store import ImageStore

        if img.is_index:
            try:
                return ImageStore(self.store).resolve_image(img.id, want)
            except NotFound:
                raise BuildError(f"{self.df.filename}:{line}: FROM {ref}: no image for platform {want} "
                                 f"(it has {', '.join(img.platforms)})") from None
        c = img.config
        have = normalize_platform(f"{c.get('os') or 'linux'}/{c.get('architecture') or 'amd64'}"
                                  + (f"/{c['variant']}" if c.get("variant") else ""))
        if have[:2] != normalize_platform(want)[:2]:
            raise BuildError(f"{self.df.filename}:{line}: FROM {ref}: the image is for {'/'.join(x for x in have if x)}"
                             f", not {want}")
        return img

    def _pull_base(self, ref: str, line: int, platform: str = "") -> Any:
        """Pull a FROM image, its progress as the step's output lines; BuildError naming the line if it fails."""
        from dockyard.images.distribution import pull
        from dockyard.images.store import ImageStore

        try:
            for ev in pull(self.store, ref, platform):
                if ev.kind == "status":
                    self.emit(StepOutput(self.step_no, ev.status))
                elif ev.kind == "layer" and ev.status not in ("Downloading", "Extracting"):
                    self.emit(StepOutput(self.step_no, f"{ev.id}: {ev.status}"))
            return ImageStore(self.store).resolve(ref)
        except DockyardError as e:
            raise BuildError(f"{self.df.filename}:{line}: FROM {ref}: {e}") from None

    def step(self, text: str) -> None:
        self.step_no += 1
        self.emit(StepStarted(self.step_no, text))

    def _epoch(self, img: Any) -> int:
        if os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
            return int(os.environ["SOURCE_DATE_EPOCH"])
        if img is not None and img.created_ts:
            return int(img.created_ts)
        return 0

    # ---- steps ----------------------------------------------------------------------------------------------
    def run_step(self, st: _StageState, instr: Any, label: str) -> None:
        scope = {**self.global_env, **st.args, **st.env()}
        x = instr.expand(scope)
        self.step(f"{label} {instr.original.strip()}")
        t0 = time.monotonic()
        inner = st.inner
        created_by = self._created_by(instr, x)
        if isinstance(x, (RunInstruction, CopyInstruction)):
            extra = ""
            self._downloads = None
            if isinstance(x, CopyInstruction):
                self._check_copy(x)
            elif x.security != "sandbox":  # BuildKit needs the security.insecure entitlement, never granted here
                raise BuildError(f"{self.df.filename}:{x.line}: RUN --security={x.security}: the security.insecure "
                                 "entitlement is not allowed (dockyard runs every step sandboxed)")
            if isinstance(x, AddInstruction) and any(_is_url(s) for s in x.sources):
                self._downloads = self._download([s for s in x.sources if _is_url(s)], x)
                extra = self._downloads.checksum([r for r in _walk_all(self._downloads.root, "")[1:]
                                                  if "/" not in r], self._exclude(x))
            if isinstance(x, CopyInstruction) and not x.from_ and not x.contents:
                rels, pivots = self._context_sources(x)
                extra += self.ctx.checksum(rels, self._exclude(x), pivots)
            elif isinstance(x, RunInstruction):
                extra = json.dumps(sorted(self._run_args(st).items()))
            key = self._key(st.key, json.dumps(x.to_json(), sort_keys=True) + "\0" +
                            json.dumps(st.config, sort_keys=True) + "\0" + extra)
            hit = None if self.opts.no_cache else self._cached(key)
            if hit is not None:
                self.emit(StepCached(self.step_no))
                st.image, st.config, st.pending, st.key, st.dirty = hit, copied(hit.config), [], key, False
                return
            if isinstance(x, RunInstruction):
                layer_dir_fn = self._do_run
            else:
                layer_dir_fn = self._do_copy
            st.pending.append({"created_by": created_by})
            try:
                image_id = self._fs_step(st, x, layer_dir_fn)
            finally:
                if self._downloads is not None:
                    from dockyard.fsutil import rmtree

                    rmtree(self._downloads.root)
            self._remember(key, image_id)
            st.key = key
            self.emit(StepDone(self.step_no, time.monotonic() - t0))
            return
        # metadata steps: they only change the config, which the next filesystem step's key includes
        if isinstance(x, ArgInstruction):
            for k, default in x.args:
                if k in self.opts.build_args:
                    st.args[k] = self.opts.build_args[k]
                elif k in self.global_env and default is None:
                    st.args[k] = self.global_env[k]
                elif default is not None:
                    st.args[k] = default
                elif k in self.platform:
                    st.args[k] = self.platform[k]
            return  # ARG leaves no history of its own in the image
        if isinstance(x, EnvInstruction):
            env = st.env()
            for k, v in x.pairs:
                env.pop(k, None)
                env[k] = v
            inner["Env"] = [f"{k}={v}" for k, v in env.items()]
        elif isinstance(x, LabelInstruction):
            inner.setdefault("Labels", {})
            inner["Labels"] = {**(inner["Labels"] or {}), **dict(x.pairs)}
        elif isinstance(x, ExposeInstruction):
            ports = dict(inner.get("ExposedPorts") or {})
            for p in x.ports:
                ports[p if "/" in p else p + "/tcp"] = {}
            inner["ExposedPorts"] = ports
        elif isinstance(x, WorkdirInstruction):
            inner["WorkingDir"] = os.path.normpath(os.path.join(inner.get("WorkingDir") or "/", x.path))
        elif isinstance(x, UserInstruction):
            inner["User"] = x.user
        elif isinstance(x, VolumeInstruction):
            vols = dict(inner.get("Volumes") or {})
            for p in x.paths:
                vols[p] = {}
            inner["Volumes"] = vols
        elif isinstance(x, StopSignalInstruction):
            inner["StopSignal"] = x.signal
        elif isinstance(x, ShellInstruction):
            inner["Shell"] = list(x.shell)
        elif isinstance(x, (CmdInstruction, EntrypointInstruction)):
            cmd = (list(inner.get("Shell") or DEFAULT_SHELL) + x.cmd) if x.shell_form else list(x.cmd)
            if isinstance(x, CmdInstruction):
                inner["Cmd"] = cmd
            else:
                inner["Entrypoint"] = cmd
                if not st.cmd_set:
                    inner["Cmd"] = None  # ENTRYPOINT resets a CMD inherited from the base image
        elif isinstance(x, HealthcheckInstruction):
            hc: dict[str, Any] = {"Test": x.test}
            for k, attr in (("Interval", "interval"), ("Timeout", "timeout"), ("StartPeriod", "start_period"),
                            ("StartInterval", "start_interval"), ("Retries", "retries")):
                if getattr(x, attr):
                    hc[k] = getattr(x, attr)
            inner["Healthcheck"] = hc
        elif isinstance(x, OnbuildInstruction):
            inner["OnBuild"] = list(inner.get("OnBuild") or []) + [x.expression]
        elif isinstance(x, MaintainerInstruction):
            st.config["author"] = x.maintainer
        if isinstance(x, CmdInstruction):
            st.cmd_set = True
        st.pending.append({"created_by": created_by, "empty_layer": True})
        st.dirty = True

    def _created_by(self, instr: Any, x: Any) -> str:
        text = " ".join(instr.original.split())
        name = instr.name
        rest = text[len(name):].strip() if text.upper().startswith(name) else text
        if isinstance(x, RunInstruction):
            return f"RUN {rest} # buildkit"
        return f"{name} {rest}" + (" # buildkit" if name in ("COPY", "ADD") else "")

    def _key(self, prev: str, what: str) -> str:
        return "sha256:" + sha256((prev + "\n" + what).encode()).hexdigest()

    def _cached(self, key: str) -> Any:
        try:
            with open(os.path.join(self.cache_dir, key[7:])) as f:
                iid = f.read().strip()
        except FileNotFoundError:
            return None
        from dockyard.images.store import ImageStore

        return ImageStore(self.store).get(iid)

    def _remember(self, key: str, image_id: str) -> None:
        from dockyard.fsutil import atomic_write

        os.makedirs(self.cache_dir, exist_ok=True)
        atomic_write(os.path.join(self.cache_dir, key[7:]), image_id.encode())

    # ---- filesystem steps -----------------------------------------------------------------------------------
    def _run_args(self, st: _StageState) -> dict[str, str]:
        """Build args visible to RUN as environment (not kept in the image)."""
        return {k: v for k, v in st.args.items() if k not in st.env()}

    def _fs_step(self, st: _StageState, x: Any, fn: Any) -> str:
        chain = st.image.top_chain_id if st.image is not None else None
        with self.workspace(self.store, chain) as ws:
            fn(st, x, ws)
            return self.record(st, layer=ws.upper)

    def _do_run(self, st: _StageState, x: RunInstruction, ws: Any) -> None:
        inner = st.inner
        script = x.script()
        args = list(inner.get("Shell") or DEFAULT_SHELL) + [script] if script is not None else list(x.cmd)
        env = [f"{k}={v}" for k, v in {**st.env(), **self._run_args(st)}.items()]
        net = x.network if x.network != "default" else self.opts.network
        if net == "default":
            net = "bridge"  # BuildKit's sandbox: a NAT'd namespace of its own; `--network host` shares the host's
        opened: list[Any] = []
        try:
            mounts = self._run_mounts(st, x, opened)
            self._run_process(st, x, ws, args, env, net, mounts, script)
        finally:
            for other in opened:
                other.close()

    def _run_process(self, st: _StageState, x: RunInstruction, ws: Any, args: list[str], env: list[str], net: str,
                     mounts: list[dict[str, Any]], script: str | None) -> None:
        inner = st.inner
        r, w = os.pipe()
        import threading

        def pump() -> None:
            with os.fdopen(r, "rb") as f:
                for line in f:
                    self.emit(StepOutput(self.step_no, line.decode('utf-8', 'replace').rstrip()))

        # the pump starts once the sandbox's process exists: the runtime forks this process to make it, and a
        # fork must not happen while another thread may hold a lock (the emit path's)
        threads: list[threading.Thread] = []

        def created() -> None:
            threads.append(threading.Thread(target=pump, daemon=True))
            threads[0].start()

        try:
            status = ws.run(args, env=env, cwd=inner.get("WorkingDir") or "/", user=inner.get("User") or "",
                            network=net, stdout=w, stderr=w, extra_mounts=mounts, on_created=created)
        finally:
            os.close(w)
            if threads:
                threads[0].join()
            else:
                pump()  # nothing was started: what a failed create wrote is shown here
        if status != 0:
            shown = json.dumps(" ".join(args) if script is not None else args)
            if script is not None:
                shown = json.dumps(" ".join(list(inner.get("Shell") or DEFAULT_SHELL) + [script]))
            where = f" (platform {self.target_platform})" if self.opts.show_platform else ""
            raise BuildError(f"{self.df.filename}:{x.line}: process {shown} did not complete successfully: "
                             f"exit code: {status}{where}")

    def _run_mounts(self, st: _StageState, x: RunInstruction, opened: list[Any]) -> list[dict[str, Any]]:
        """RUN --mount: cache dirs kept between builds, tmpfs, and binds of the context (read-only: the context
        must not change under a build) or of another stage/image (a throwaway overlay: writes are discarded)."""
        out = []
        for m in x.mounts:
            target = m.target
            if not target.startswith("/"):
                target = os.path.join(st.inner.get("WorkingDir") or "/", target)
            if m.type == "cache":
                cid = sha256((m.id or target).encode()).hexdigest()[:32]
                src = self.store.path("build-cache-mounts", cid)
                os.makedirs(src, exist_ok=True)
                out.append({"destination": target, "type": "bind", "source": src, "options": ["rbind", "rw"]})
            elif m.type == "tmpfs":
                out.append({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]})
            elif m.type == "bind" and m.from_:
                from dockyard.rootpath import secure_join

                img = self._image_of(self.df.mount_source(m.from_), x)
                other = self.workspace(self.store, img.top_chain_id if img is not None else None)
                opened.append(other)
                src = secure_join(other.root, m.source or "/")
                if not os.path.exists(src):
                    raise BuildError(f"{self.df.filename}:{x.line}: RUN --mount from={m.from_}: \"{m.source}\" "
                                     "not found")
                out.append({"destination": target, "type": "bind", "source": src,
                            "options": ["rbind", "ro" if m.readonly else "rw"]})
            elif m.type == "bind":
                rel = self.ctx.resolve(m.source or ".")[0]
                src = self.ctx._check_inside(rel, m.source or ".")
                out.append({"destination": target, "type": "bind", "source": src, "options": ["rbind", "ro"]})
            else:
                raise BuildError(f"{self.df.filename}:{x.line}: RUN --mount=type={m.type} is not supported yet")
        return out

    def _fail(self, x: Any, msg: str) -> BuildError:
        return BuildError(f"{self.df.filename}:{x.line}: {x.name} {msg}")

    def _check_copy(self, x: CopyInstruction) -> None:
        """Flags that cannot be applied are refused here, naming the line (never accepted and ignored)."""
        if x.chmod:
            from dockyard.build.chmod import parse_chmod

            try:
                parse_chmod(x.chmod)
            except ValueError as e:
                raise self._fail(x, f"--chmod={x.chmod}: {e}") from None
        self._exclude(x)
        if not isinstance(x, AddInstruction):
            return
        if x.keep_git_dir is not None:
            raise self._fail(x, "--keep-git-dir: adding a Git repository is not supported")
        for s in x.sources:
            if _is_git(s):
                raise self._fail(x, f"{s}: adding a Git repository is not supported")
        if x.checksum is not None:
            if len(x.sources) != 1 or x.contents:
                raise self._fail(x, "--checksum can't be specified for multiple sources")
            if not _is_url(x.sources[0]):
                raise self._fail(x, "--checksum can't be specified for non-HTTP(S) sources")
            algo, _, hexd = x.checksum.partition(":")
            if algo != "sha256" or len(hexd) != 64 or any(c not in "0123456789abcdef" for c in hexd):
                raise self._fail(x, f"--checksum={x.checksum}: expected sha256:<64 lowercase hex digits>")

    def _exclude(self, x: CopyInstruction) -> Any:
        """The ``--exclude`` patterns as a matcher (None without any)."""
        if not x.excludes:
            return None
        from dockyard.build.dockerignore import Matcher

        try:
            return Matcher(x.excludes)
        except InvalidArgument as e:
            raise self._fail(x, f"--exclude: {e}") from None

    def _context_sources(self, x: CopyInstruction) -> tuple[list[str], list[str] | None]:
        """The context entries a COPY/ADD names, and with ``--parents`` the pivot of each."""
        srcs = [s for s in x.sources if not _is_url(s)]
        if not x.parents:
            return [r for s in srcs for r in self.ctx.resolve(s)], None
        rels, pivots = [], []
        for s in srcs:
            pivot, found = self.ctx.parents_sources(s)
            rels += found
            pivots += [pivot] * len(found)
        return rels, pivots

    def _do_copy(self, st: _StageState, x: CopyInstruction, ws: Any) -> None:
        from dockyard.rootpath import secure_join

        inner = st.inner
        dest = x.dest
        dest_is_dir = _names_a_directory(dest) or len(x.sources) + len(x.contents) > 1
        if not dest.startswith("/"):
            dest = os.path.join(inner.get("WorkingDir") or "/", dest)
        uid = gid = None
        if x.chown:
            u = ws.resolve_user(x.chown)
            uid, gid = u["uid"], u["gid"]
        chmod = None
        if x.chmod:
            from dockyard.build.chmod import parse_chmod

            chmod = parse_chmod(x.chmod)
        exclude = self._exclude(x)
        host_dest = secure_join(ws.root, dest)
        if x.contents:  # COPY <<EOF /file
            for h in x.contents:
                p = os.path.join(host_dest, h.name) if dest_is_dir else host_dest
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "w") as f:
                    f.write(h.data)
                os.chmod(p, chmod(0o644, False) if chmod is not None else 0o644)
                os.lchown(p, uid or 0, gid or 0)
            return
        if x.from_:
            src_image = self._source_image(x)
            with self.workspace(self.store, src_image.top_chain_id if src_image else None) as src_ws:
                rels, from_pivots = [], []
                for s in x.sources:
                    pivot, sep, _ = s.partition("/./")
                    p = secure_join(src_ws.root, s)
                    if not os.path.lexists(p):
                        raise BuildError(f"{self.df.filename}:{x.line}: COPY --from={x.from_}: \"{s}\" not found")
                    rels.append(os.path.relpath(p, src_ws.root))
                    from_pivots.append(os.path.relpath(secure_join(src_ws.root, pivot), src_ws.root)
                                       if sep else "")
                copy_tree(src_ws.root, rels, lambda rel: _walk_all(src_ws.root, rel), host_dest,
                          dest_is_dir, uid, gid, chmod, exclude, [("" if p == "." else p) for p in from_pivots]
                          if x.parents else None)
            return
        rels, pivots = self._context_sources(x)
        if len(rels) + (len(os.listdir(self._downloads.root)) if self._downloads else 0) > 1:
            dest_is_dir = True
        if isinstance(x, AddInstruction):
            rels, pivots = self._add_archives(rels, pivots, host_dest, exclude, x)
        if self._downloads is not None:  # ADD URL: downloaded files, not unpacked (as Docker), mode 0600
            dl = self._downloads
            copy_tree(dl.root, sorted(os.listdir(dl.root)), dl.walk, host_dest, dest_is_dir, uid, gid,
                      chmod if chmod is not None else (lambda mode, is_dir: 0o600), exclude)
        copy_tree(self.ctx.root, rels, self.ctx.walk, host_dest, dest_is_dir, uid, gid, chmod, exclude, pivots)

    def _download(self, urls: list[str], x: Any) -> Context:
        """Fetch ADD's URLs into a private directory (named by the URL's last path segment); with
        ``--checksum`` the body's digest must be the one given, else the build fails naming the line."""
        import hashlib
        import tempfile
        import urllib.parse
        import urllib.request

        from dockyard.fsutil import rmtree

        d = tempfile.mkdtemp(dir=self.store.tmp, prefix="add-")
        for url in urls:
            name = os.path.basename(urllib.parse.urlparse(url).path) or "index.html"
            h = hashlib.sha256()
            try:
                with urllib.request.urlopen(url, timeout=60) as r, open(os.path.join(d, name), "wb") as f:
                    while chunk := r.read(1 << 20):
                        h.update(chunk)
                        f.write(chunk)
            except OSError as e:
                rmtree(d)
                raise BuildError(f"{self.df.filename}:{x.line}: ADD {url}: download failed: {e}") from None
            got = "sha256:" + h.hexdigest()
            if x.checksum is not None and got != x.checksum:
                rmtree(d)
                raise BuildError(f"{self.df.filename}:{x.line}: ADD {url}: digest mismatch: the --checksum "
                                 f"given is {x.checksum}, the downloaded content is {got}")
        return Context(d)

    def _add_archives(self, rels: list[str], pivots: list[str] | None, host_dest: str, exclude: Any,
                      x: Any) -> tuple[list[str], list[str] | None]:
        """ADD: local tar archives (plain, gzip, bzip2, xz) are unpacked at the destination, safely (an archive
        that ``--exclude`` matches is left out, not unpacked)."""
        import tarfile

        rest, rest_pivots = [], []
        for i, rel in enumerate(rels):
            p = os.path.join(self.ctx.root, rel)
            pivot = pivots[i] if pivots is not None else None
            if not selected(self.ctx.root, rel, lambda r: [r], exclude, pivot):
                continue
            if x.unpack is not False and os.path.isfile(p) and tarfile.is_tarfile(p):
                from dockyard.snapshots.extract import Extractor

                os.makedirs(host_dest, exist_ok=True)
                fd = os.open(host_dest, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    with tarfile.open(p, "r:*") as tf:
                        Extractor(fd, allow_devices=False).extract(tf)
                finally:
                    os.close(fd)
            else:
                rest.append(rel)
                rest_pivots.append(pivot)
        return rest, (rest_pivots if pivots is not None else None)  # type: ignore[return-value]

    def _source_image(self, x: Any) -> Any:
        return self._image_of(self.df.copy_source(x.from_, x), x)

    def _image_of(self, src: Any, x: Any) -> Any:
        """The image behind a COPY --from / RUN --mount from= source (None for scratch)."""
        if src.kind == "stage":
            return self.stage_images[src.stage.index]  # type: ignore[union-attr]
        if src.kind == "scratch":
            return None
        from dockyard.images.store import ImageStore

        try:
            img = ImageStore(self.store).resolve(src.ref)
        except NotFound:
            raise BuildError(f"{self.df.filename}:{x.line}: {src.ref}: image not found locally") from None
        if not img.is_index:
            return img  # a single image of any platform: its files are copied as they are (as BuildKit)
        try:  # an index: its variant for the platform being built
            return ImageStore(self.store).resolve_image(img.id, self.target_platform)
        except NotFound:
            raise BuildError(f"{self.df.filename}:{x.line}: {src.ref}: no image for platform {self.target_platform}"
                             f" (it has {', '.join(img.platforms)})") from None

    # ---- recording images -----------------------------------------------------------------------------------
    def record(self, st: _StageState, layer: str | None) -> str:
        """Record the stage's current config (+ one layer from ``layer``, an upper dir) as an image."""
        from dockyard.images.store import ImageStore, images_lock, with_retry

        created = _rfc3339(st.epoch)
        cfg = st.config
        history = list(cfg.get("history") or [])
        for h in st.pending:
            history.append({"created": created, **h})
        if not st.pending:
            history.append({"created": created, "created_by": "", "empty_layer": True})
        layers = list(st.image.layers) if st.image is not None else []

        def config_bytes(lys: list[Any]) -> bytes:
            c = dict(cfg)
            c["created"] = created
            c["history"] = history
            c["rootfs"] = {"type": "layers", "diff_ids": [ly.diff_id for ly in lys]}
            return json.dumps(c, sort_keys=True, separators=(",", ":")).encode()

        if layer is None:  # metadata only: an image an earlier build recorded has this very config (its ID)
            known = ImageStore(self.store).get(sha256_digest(config_bytes(layers)))
            if known is not None:  # ImageStore.add would change nothing (INSERT OR IGNORE, no tags)
                st.image, st.config, st.pending, st.dirty = known, copied(known.config), [], False
                return known.id
        from dockyard.images.importer import _ingest_layer
        from dockyard.snapshots.layer import MOUNT_TARGETS, write_layer

        parent_chain = st.image.top_chain_id if st.image is not None else None

        tmp = None
        try:
            if layer is not None:  # inside the try: a full disk while writing leaves no staging file
                import tempfile

                fd, tmp = tempfile.mkstemp(dir=self.store.tmp, prefix="layer-")
                with os.fdopen(fd, "wb") as f:
                    write_layer(layer, f, epoch=st.epoch, skip_empty=MOUNT_TARGETS)  # RUN made them
            with images_lock(self.store, exclusive=False):
                def attempt() -> str:
                    lys = list(layers)
                    if tmp is not None:
                        lys.append(_ingest_layer(self.store, tmp, parent_chain))
                    data = config_bytes(lys)
                    iid, _ = ImageStore(self.store).add(data, lys, parent=st.image.id if st.image else None)
                    return iid

                iid = with_retry(attempt)
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except FileNotFoundError:
                    pass
        img = ImageStore(self.store).get(iid)
        st.image, st.config, st.pending, st.dirty = img, copied(img.config), [], False  # type: ignore[union-attr]
        return iid


def _names_a_directory(dest: str) -> bool:
    """A COPY/ADD destination that means "into this directory" whatever exists there (as BuildKit): one ending
    in ``/``, ``.`` or ``..`` as a path component (``.``, ``./``, ``sub/.``); an existing directory also does."""
    return dest.endswith("/") or os.path.basename(dest) in (".", "..")


def _is_url(s: str) -> bool:
    return s.startswith(("http://", "https://"))


def _is_git(s: str) -> bool:
    """A source BuildKit would clone (``git@host:repo``, ``git://``, ``ssh://``, an http(s) URL of a ``.git``)."""
    if s.startswith(("git@", "git://", "ssh://")):
        return True
    if _is_url(s):
        import urllib.parse

        return urllib.parse.urlparse(s).path.endswith(".git")
    return False


def _walk_all(root: str, rel: str) -> list[str]:
    out = [rel]
    top = os.path.join(root, rel)
    if os.path.isdir(top) and not os.path.islink(top):
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for n in dirnames + sorted(filenames):
                out.append(os.path.relpath(os.path.join(dirpath, n), root))
    return out
