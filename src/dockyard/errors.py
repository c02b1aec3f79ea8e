"""One error tree for the whole engine.

Every failure a user can see is a ``DockyardError``. The CLI maps the classes to exit codes in exactly one place
(``dockyard.cli.main``); a future API service maps them to HTTP statuses in one place too. Messages are one line,
worded as Docker words them where Docker has a message for the case.
"""

from __future__ import annotations

import errno as _errno
import os


class DockyardError(Exception):
    """Base of every error dockyard reports to a user."""

    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class NotFound(DockyardError):
    """An object (image, container, volume, network, blob) does not exist."""

    http_status = 404


class Conflict(DockyardError):
    """The object exists, or is in use, or is in a state that forbids the action."""

    http_status = 409


class InvalidArgument(DockyardError):
    """The user's input is malformed (a reference, a flag value, an archive)."""

    http_status = 400


class CorruptContent(DockyardError):
    """Content does not match its digest or size, or an archive is damaged."""

    http_status = 400


class Unsafe(InvalidArgument):
    """An archive entry tries to leave its destination (``..``, absolute link, device node...)."""


class SystemFailure(DockyardError):
    """The kernel or an external tool refused an operation; the message says which and why."""


class NoSpace(SystemFailure):
    """The filesystem of the state root is full."""


class StoreDamaged(SystemFailure):
    """The state root's database is truncated or corrupt; the message says how to restore it."""


class CannotExecute(DockyardError):
    """The container's command exists but cannot be executed (Docker's exit status 126)."""

    exit_code = 126


class CommandNotFound(DockyardError):
    """The container's command does not exist (Docker's exit status 127)."""

    exit_code = 127


def exec_failure(message: str) -> DockyardError:
    """The error class for a runtime's message about starting the container's command."""
    low = message.lower()
    if "executable file" in low and "not found" in low or "exec" in low and "no such file or directory" in low:
        return CommandNotFound(message)
    if "exec" in low and ("permission denied" in low or "is a directory" in low) or "exec format error" in low:
        return CannotExecute(message)
    return DockyardError(message)


class NotImplementedYet(DockyardError):
    """A documented Docker feature dockyard does not have yet."""

    http_status = 501


class ContainerExit(Exception):
    """Not an error: carries the exit status of a container process up to the CLI."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


_HINTS = {
    _errno.ENODEV: "is the overlay module loaded?",
    _errno.EPERM: "are you root?",
    _errno.ENOSPC: "is the disk full?",
}


def from_oserror(action: str, exc: OSError, hint: str | None = None) -> SystemFailure:
    """Translate an OSError into a one-line message: "cannot mount overlay on /x: no such device (hint)"."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    reason = reason[:1].lower() + reason[1:]
    h = hint if hint is not None else _HINTS.get(exc.errno or 0)
    return SystemFailure(f"{action}: {reason}" + (f" ({h})" if h else ""))
