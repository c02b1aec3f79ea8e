"""Typed progress events of a build, and what the builder needs from the engine to run steps.

A build is a sequence of numbered *steps* (BuildKit's vertices: ``#1``, ``#2``...): one per FROM and instruction,
then "writing image" and one "naming to" line per tag. Events carry data, not text: the CLI renders them as
BuildKit's plain progress lines (``#3 [2/4] RUN make``, ``#3 CACHED``, ``#3 DONE 0.4s``), the Engine API as
Docker's JSON lines.

The events are small immutable records written by hand (fields in ``__slots__``, keyword or positional
construction, equality, ``repr``, ``to_json``), not dataclasses: importing ``dataclasses`` (with ``inspect``,
``ast``, ``dis``, ``tokenize``) cost more than the rest of a fully cached build.
"""

from __future__ import annotations

from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol


class _Event:
    """Fields are ``__slots__`` (in order); instances are immutable, compare by type and fields, and hash like the
    tuple of their fields (as a frozen dataclass)."""

    __slots__: tuple[str, ...] = ()

    def _set(self, *values: object) -> None:
        for k, v in zip(self.__slots__, values):
            object.__setattr__(self, k, v)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, k) for k in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self._values())

    def __reduce__(self) -> tuple[type, tuple[Any, ...]]:  # copy and pickle rebuild through __init__
        return type(self), self._values()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in self.__slots__)})"

    def to_json(self) -> dict[str, Any]:
        """The fields by name (lists copied): what ``type(ev)(**ev.to_json())`` rebuilds."""
        return {k: (list(v) if isinstance(v, list) else v) for k, v in zip(self.__slots__, self._values())}


class StepStarted(_Event):
    __slots__ = ("number", "text")
    number: int
    text: str           # "[stage 2/4] RUN make", "writing image sha256:... done"

    def __init__(self, number: int, text: str) -> None:
        self._set(number, text)


class StepOutput(_Event):
    __slots__ = ("number", "text")
    number: int
    text: str           # one line a RUN step printed (stdout and stderr), or "naming to ... done"

    def __init__(self, number: int, text: str) -> None:
        self._set(number, text)


class StepCached(_Event):
    __slots__ = ("number",)
    number: int

    def __init__(self, number: int) -> None:
        self._set(number)


class StepDone(_Event):
    __slots__ = ("number", "seconds")
    number: int
    seconds: float

    def __init__(self, number: int, seconds: float) -> None:
        self._set(number, seconds)


class BuildWarning(_Event):
    __slots__ = ("text",)
    text: str           # "[Warning] One or more build-args [X] were not consumed"

    def __init__(self, text: str) -> None:
        self._set(text)


class BuildFinished(_Event):
    __slots__ = ("image_id", "tags")
    image_id: str
    tags: list[str]     # normalised references the image was tagged with

    def __init__(self, image_id: str, tags: list[str] | None = None) -> None:
        self._set(image_id, [] if tags is None else tags)


BuildEvent = StepStarted | StepOutput | StepCached | StepDone | BuildWarning | BuildFinished
Emit = Callable[[BuildEvent], None]


if TYPE_CHECKING:
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
