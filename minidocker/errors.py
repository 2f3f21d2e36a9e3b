"""Exceptions of minidocker.

``MinidockerError`` is the catch-all: the CLI prints any of them as
``minidocker: <message>`` and exits non-zero. Subclasses say what went wrong so that
callers (and, later, the API's status table) can tell them apart:

    NotFound         an image, container, ... that does not exist   (API: 404)
    ImageNotFound    no image of that name or ID in the store       (API: 404)
    Conflict         a name in use, or an object in the wrong state  (API: 409)
    InvalidArgument  a bad flag, reference, size, hostname ...       (API: 400)
    ContainerError   the container could not be started or failed    (API: 500)
    DigestMismatch   content that does not hash to its digest        (API: 400)
    CorruptState     a state file that is not what minidocker wrote  (API: 500)

Kernel errors stay ``OSError`` (from ``minidocker.linux``); code that knows the
context re-raises them as one of these with ``raise ... from err``.
Messages are lower case, without a final period; a second line ``hint: ...``
says how to fix it when that is known.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "ContainerError",
    "CorruptState",
    "DigestMismatch",
    "ImageNotFound",
    "InvalidArgument",
    "InvalidState",
    "MinidockerError",
    "NotFound",
]


class MinidockerError(Exception):
    """Base of every error minidocker reports to a user."""

    exit_code = 125  # like docker: the error is minidocker's, not the container's

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\nhint: {self.hint}" if self.hint else text


class NotFound(MinidockerError):
    """The named image, container or other object does not exist."""


class ImageNotFound(NotFound):
    """No image answers to a name, digest or ID in the store (a damaged image is a plain NotFound)."""


class Conflict(MinidockerError):
    """The name is in use, or the object is in a state that forbids the action."""


class InvalidState(Conflict):
    """An action the object's current state does not allow: 'cannot start ...: it is stopped'."""


class InvalidArgument(MinidockerError, ValueError):
    """A flag, reference or value that cannot be used."""


class ContainerError(MinidockerError):
    """The container's process could not be started, like docker's 126 and 127 exits.

    Attributes:
        exit_code: 126 (found but not executable), 127 (not found) or 125.
        command: the argv that was to be executed.
    """

    def __init__(self, message: str, exit_code: int = 125, command: list[str] | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.exit_code = exit_code
        self.command = command or []


class DigestMismatch(MinidockerError):
    """Content whose sha256 is not the digest it was announced with."""


class CorruptState(MinidockerError, ValueError):
    """A state file (record, index) that cannot be read back: edited by hand, a disk error.

    Also a ValueError, as ``json.loads`` raises, for callers that skip what they cannot parse.
    """
