"""A Dockerfile as build stages, the global (meta) ARGs, target lookup and which stages a target needs.

    df = parse_dockerfile(text, "Dockerfile")
    genv = df.global_args(build_args, platform_args("linux/amd64"))
    target = df.target("build")                       # name (any case), index, or None for the last stage
    for stage in df.stages_needed(target, genv):      # dependencies first, then the target
        base = df.base_of(stage, genv)                # Source: kind "stage" | "image" | "scratch"
        for instr in stage.instructions: ...

Stage references follow BuildKit: ``FROM <name>`` names an earlier stage (after expanding the global args),
``COPY --from=<name|index|image>``, ``RUN --mount=from=<name|image>``; a name that is no stage is an image.
"""

from __future__ import annotations

from collections.abc import Mapping

from dockyard.build.instructions import (ArgInstruction, CopyInstruction, FromInstruction, Instruction,
                                         RunInstruction, make_instruction)
from dockyard.build.parser import DockerfileError, parse
from dockyard.errors import InvalidArgument

__all__ = ["Stage", "Dockerfile", "Source", "parse_dockerfile", "platform_args", "normalize_platform",
           "host_platform", "target_platforms", "PROXY_ARGS", "PLATFORM_ARGS"]

PROXY_ARGS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY",
              "no_proxy", "ALL_PROXY", "all_proxy")
"""Predefined ARGs usable without an ARG line (when given with --build-arg); kept out of history and cache keys
unless the Dockerfile declares them with ARG."""

PLATFORM_ARGS = ("TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT", "BUILDPLATFORM", "BUILDOS",
                 "BUILDARCH", "BUILDVARIANT")
"""Automatic platform ARGs in the global scope (a stage sees one only after ``ARG NAME`` without a value)."""


class Stage:
    """One ``FROM`` and the instructions up to the next: ``index`` (0-based), ``name`` (lower case or None),
    ``base`` (the image as written, before expansion), ``platform`` (as written or None)."""

    __slots__ = ("index", "name", "base", "platform", "from_", "instructions")

    def __init__(self, index: int, from_: FromInstruction) -> None:
        self.index = index
        self.name = from_.stage_name
        self.base = from_.image
        self.platform = from_.platform
        self.from_ = from_
        self.instructions: list[Instruction] = []

    @property
    def display_name(self) -> str:
        """``build`` or ``stage-1`` (BuildKit's name for unnamed stages)."""
        return self.name or f"stage-{self.index}"

    def to_json(self) -> dict:
        return {"index": self.index, "name": self.name, "base": self.base, "platform": self.platform,
                "line": self.from_.line, "instructions": [i.to_json() for i in self.instructions]}

    def __repr__(self) -> str:
        return f"<Stage {self.index} {self.display_name} FROM {self.base}>"


class Source:
    """Where a stage's base, a ``COPY --from`` or a ``RUN --mount from=`` comes from: ``kind`` is ``"stage"``
    (``stage`` set), ``"image"`` (``ref`` is the reference) or ``"scratch"``; ``platform`` for FROM only."""

    __slots__ = ("kind", "ref", "stage", "platform")

    def __init__(self, kind: str, ref: str, stage: Stage | None = None, platform: str | None = None) -> None:
        self.kind = kind
        self.ref = ref
        self.stage = stage
        self.platform = platform

    def __repr__(self) -> str:
        return f"Source({self.kind!r}, {self.ref!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Source) and (self.kind, self.ref, self.stage, self.platform) == (
            other.kind, other.ref, other.stage, other.platform)


class Dockerfile:
    """A parsed Dockerfile: ``stages``, ``meta_args`` (ARG lines before the first FROM), ``directives``
    (``syntax``/``escape``/``check`` -> value), ``escape``, ``filename``, ``warnings``."""

    __slots__ = ("filename", "directives", "escape", "meta_args", "stages", "warnings")

    def __init__(self, filename: str, directives: dict[str, str], escape: str, meta_args: list[ArgInstruction],
                 stages: list[Stage], warnings: list[str]) -> None:
        self.filename = filename
        self.directives = directives
        self.escape = escape
        self.meta_args = meta_args
        self.stages = stages
        self.warnings = warnings

    # -- lookups ------------------------------------------------------------------------------------------------
    def stage_by_name(self, name: str) -> Stage | None:
        low = name.lower()
        for st in self.stages:
            if st.name == low:
                return st
        return None

    def target(self, ref: str | int | None = None) -> Stage:
        """``--target``: a stage name (any case) or index; None means the last stage."""
        if ref is None or ref == "":
            return self.stages[-1]
        if isinstance(ref, int) or ref.isdigit():
            i = int(ref)
            if 0 <= i < len(self.stages):
                return self.stages[i]
        else:
            st = self.stage_by_name(ref)
            if st is not None:
                return st
        raise InvalidArgument(f'target stage "{ref}" could not be found')

    def global_args(self, build_args: Mapping[str, str] | None = None,
                    predefined: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment FROM lines are expanded with: ``predefined`` (platform_args()), then each meta ARG
        (its --build-arg value, else its expanded default; an ARG without either leaves a predefined value)."""
        env = dict(predefined or {})
        build_args = build_args or {}
        for instr in self.meta_args:
            for key, default in instr.expand(env).args:
                if key in build_args:
                    env[key] = build_args[key]
                elif default is not None:
                    env[key] = default
        return env

    def _genv(self, global_env: Mapping[str, str] | None) -> Mapping[str, str]:
        return self.global_args({}, platform_args()) if global_env is None else global_env

    # -- sources and dependencies ----------------------------------------------------------------------------------
    def base_of(self, stage: Stage, global_env: Mapping[str, str] | None = None) -> Source:
        """The stage's base: an earlier stage named like the expanded image, ``scratch``, or an image."""
        frm = stage.from_.expand(self._genv(global_env))
        for st in self.stages[:stage.index]:
            if st.name is not None and st.name == frm.image.lower():
                return Source("stage", frm.image, st, frm.platform)
        if frm.image.lower() == "scratch":
            return Source("scratch", "scratch", None, frm.platform)
        return Source("image", frm.image, None, frm.platform)

    def copy_source(self, ref: str, instr: Instruction | None = None) -> Source:
        """``COPY --from=<ref>``: a stage by name or index, else an image (``scratch`` included)."""
        if ref.isdigit():
            i = int(ref)
            if i >= len(self.stages):
                err = f"invalid stage index {i}"
                raise instr.error(err) if instr is not None else InvalidArgument(err)
            return Source("stage", ref, self.stages[i])
        return self._named(ref)

    def mount_source(self, ref: str) -> Source:
        """``RUN --mount=from=<ref>``: a stage by name, else an image."""
        return self._named(ref)

    def _named(self, ref: str) -> Source:
        st = self.stage_by_name(ref)
        if st is not None:
            return Source("stage", ref, st)
        if ref.lower() == "scratch":
            return Source("scratch", "scratch")
        return Source("image", ref)

    def dependencies(self, stage: Stage, global_env: Mapping[str, str] | None = None) -> list[Stage]:
        """The stages ``stage`` uses directly (base, COPY --from, RUN --mount from=), in index order."""
        deps: dict[int, Stage] = {}
        base = self.base_of(stage, global_env)
        if base.stage is not None:
            deps[base.stage.index] = base.stage
        for instr in stage.instructions:
            if isinstance(instr, CopyInstruction) and instr.from_ is not None:
                src = self.copy_source(instr.from_, instr)
                if src.stage is not None:
                    deps[src.stage.index] = src.stage
            elif isinstance(instr, RunInstruction):
                for m in instr.mounts:
                    if m.from_:
                        src = self.mount_source(m.from_)
                        if src.stage is not None:
                            deps[src.stage.index] = src.stage
        return [deps[i] for i in sorted(deps)]

    def stages_needed(self, target: Stage, global_env: Mapping[str, str] | None = None) -> list[Stage]:
        """Every stage ``target`` needs, transitively, dependencies before dependents (ties in index order),
        ending with ``target``; stages it does not need are left out, as BuildKit skips them. ``global_env``
        defaults to the meta ARG defaults with this machine's platform ARGs."""
        global_env = self._genv(global_env)
        order: list[Stage] = []
        state: dict[int, int] = {}  # 1 = visiting, 2 = done

        def visit(st: Stage) -> None:
            mark = state.get(st.index)
            if mark == 2:
                return
            if mark == 1:
                raise DockerfileError(self.filename, st.from_.line,
                                      f"circular dependency detected on stage: {st.display_name}")
            state[st.index] = 1
            for dep in self.dependencies(st, global_env):
                visit(dep)
            state[st.index] = 2
            order.append(st)

        visit(target)
        return order

    def to_json(self) -> dict:
        return {"directives": dict(self.directives), "escape": self.escape,
                "args": [a.to_json() for a in self.meta_args], "stages": [s.to_json() for s in self.stages]}


def parse_dockerfile(text: str | bytes, filename: str = "Dockerfile") -> Dockerfile:
    """Parse and check a whole Dockerfile. Raises DockerfileError (``Dockerfile:7: unknown instruction: RUNN``)."""
    res = parse(text, filename)
    meta: list[ArgInstruction] = []
    stages: list[Stage] = []
    for node in res.nodes:
        instr = make_instruction(node, res.escape, filename)
        if isinstance(instr, FromInstruction):
            stages.append(Stage(len(stages), instr))
        elif stages:
            stages[-1].instructions.append(instr)
        elif isinstance(instr, ArgInstruction):
            meta.append(instr)
        else:
            raise DockerfileError(filename, node.line, "no build stage in current context")
    if not stages:
        raise DockerfileError(filename, max(res.lines, 1), "dockerfile contains no stages to build")
    return Dockerfile(filename, res.directives, res.escape, meta, stages, res.warnings)


# -- platforms ----------------------------------------------------------------------------------------------------

_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386", "i686": "386",
                 "armhf": "arm", "armel": "arm", "armv7l": "arm", "armv6l": "arm", "ppc64el": "ppc64le"}


def normalize_platform(spec: str) -> tuple[str, str, str]:
    """``linux/arm64/v8`` -> ("linux", "arm64", ""); ``linux/arm`` -> ("linux", "arm", "v7"), as containerd's
    platforms.Normalize. A bare architecture (``arm64``) means linux."""
    parts = spec.strip().lower().split("/")
    if not parts[0] or len(parts) > 3 or any(not p for p in parts):
        raise InvalidArgument(f'"{spec}": unknown operating system or architecture: invalid argument')
    if len(parts) == 1:
        parts = ["linux", parts[0]]
    os_, arch = parts[0], parts[1]
    variant = parts[2] if len(parts) == 3 else ""
    if arch in ("armhf",):
        variant = "v7"
    elif arch == "armel":
        variant = "v6"
    elif arch == "armv7l":
        variant = "v7"
    elif arch == "armv6l":
        variant = "v6"
    arch = _ARCH_ALIASES.get(arch, arch)
    if arch == "arm64":
        variant = {"8": "", "v8": "", "v8.0": "", "9": "v9", "9.0": "v9", "v9.0": "v9"}.get(variant, variant)
    elif arch == "arm":
        variant = {"": "v7", "7": "v7", "5": "v5", "6": "v6", "8": "v8"}.get(variant, variant)
    elif arch == "amd64" and variant == "v1":
        variant = ""
    return os_, arch, variant


def host_platform() -> str:
    """The platform of this machine (``linux/amd64``)."""
    import os

    os_, arch, variant = normalize_platform(os.uname().machine)
    return "/".join(p for p in (os_, arch, variant) if p)


def target_platforms(spec: str) -> list[str]:
    """``build --platform P1,P2``: each platform normalised (duplicates dropped), the host's when empty. Every one
    must run here (natively or through qemu-user, registered now if needed): one that cannot is refused by name
    before any step runs."""
    from dockyard.runtime.binfmt import EmulationUnavailable, ensure_platform

    host = host_platform()
    out: list[str] = []
    for p in [p.strip() for p in (spec or host).split(",") if p.strip()] or [host]:
        norm = "/".join(x for x in normalize_platform(p) if x)
        if norm not in out:
            out.append(norm)
    for norm in out:
        try:
            ensure_platform(norm)
        except EmulationUnavailable as e:
            raise InvalidArgument(f"cannot build for {norm}: {e}") from None
    return out


def unconsumed_build_args(df: Dockerfile, stages: list[Stage], build_args: Mapping[str, str]) -> list[str]:
    """The ``--build-arg`` names no ARG of the built stages (or before the first FROM) declares, sorted; the
    predefined proxy ARGs never count (as Docker's classic builder warns)."""
    declared = {k for a in df.meta_args for k, _ in a.args}
    for st in stages:
        for x in st.instructions:
            if isinstance(x, ArgInstruction):
                declared |= {k for k, _ in x.args}
    return sorted(k for k in build_args if k not in declared and k not in PROXY_ARGS)


def platform_args(target: str | None = None, build: str | None = None) -> dict[str, str]:
    """TARGETPLATFORM/TARGETOS/TARGETARCH/TARGETVARIANT and BUILD*: ``build`` defaults to this machine, ``target``
    to ``build``. Example: platform_args("linux/arm64/v8")["TARGETPLATFORM"] == "linux/arm64"."""
    b = normalize_platform(build or host_platform())
    t = normalize_platform(target) if target else b
    out: dict[str, str] = {}
    for prefix, (os_, arch, variant) in (("BUILD", b), ("TARGET", t)):
        out[prefix + "PLATFORM"] = "/".join(p for p in (os_, arch, variant) if p)
        out[prefix + "OS"] = os_
        out[prefix + "ARCH"] = arch
        out[prefix + "VARIANT"] = variant
    return out
