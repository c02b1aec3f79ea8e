"""Typed progress events of a build, and what the builder needs from the engine to run steps.

A build is a sequence of numbered *steps* (BuildKit's vertices: ``#1``, ``#2``...): one per FROM and instruction,
then "writing image" and one "naming to" line per tag. Events carry data, not text: the CLI renders them as
BuildKit's plain progress lines (``#3 [2/4] RUN make``, ``#3 CACHED``, ``#3 DONE 0.4s``), the Engine API as
Docker's JSON lines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class StepStarted:
    number: int
    text: str           # "[stage 2/4] RUN make", "writing image sha256:... done"


@dataclass(frozen=True)
class StepOutput:
    number: int
    text: str           # one line a RUN step printed (stdout and stderr), or "naming to ... done"


@dataclass(frozen=True)
class StepCached:
    number: int


@dataclass(frozen=True)
class StepDone:
    number: int
    seconds: float


@dataclass(frozen=True)
class BuildWarning:
    text: str           # "[Warning] One or more build-args [X] were not consumed"


@dataclass(frozen=True)
class BuildFinished:
    image_id: str
    tags: list[str] = field(default_factory=list)   # normalised references the image was tagged with


BuildEvent = StepStarted | StepOutput | StepCached | StepDone | BuildWarning | BuildFinished
Emit = Callable[[BuildEvent], None]


class Sandbox(Protocol):
    """A throwaway writable root over an image's layers (the engine's ``oneshot.Workspace``): ``root`` is the
    merged tree to copy files into, ``upper`` the changes that become the step's layer."""

    root: str
    upper: str

    def __enter__(self) -> Sandbox: ...

    def __exit__(self, *exc: object) -> None: ...

    def close(self) -> None: ...

    def run(self, args: list[str], *, env: list[str], cwd: str, user: str, network: str, stdout: int,
            stderr: int, extra_mounts: list[dict[str, Any]] | None = None,
            on_created: Callable[[], None] | None = None) -> int:
        """Run ``args``; ``on_created`` is called once its process exists (no fork of the caller after it)."""
        ...

    def resolve_user(self, user: str) -> dict[str, Any]:
        """``name|uid[:group|gid]`` -> {"uid", "gid", ...} from the sandbox's /etc/passwd and /etc/group."""
        ...


SandboxFactory = Callable[[Any, "str | None"], Sandbox]   # (store, chain ID of the parent layers or None)
