"""minidocker's errors as Engine API answers: the one table of status codes.

    NotFound          404   {"message": "No such container: web"}
    Forbidden         403   never allowed (removing a predefined network)
    Conflict          409   a name in use, removing a running container, InvalidState
    InvalidArgument   400   bad parameter, invalid JSON, wrong type (also ValueError)
    PayloadTooLarge   413   a JSON body over the limit (refused from its declared size)
    DigestMismatch    400
    ContainerError    400 when the command is missing or not executable (docker's exits
                      127 and 126: the CLI reads them from the message), else 500
    OSError           400 for ENAMETOOLONG (a name from the client longer than NAME_MAX)
    anything else     500

The body is ``{"message": ...}``: the docker CLI prints it after "Error response from
daemon: ", docker-py raises ``docker.errors.NotFound`` / ``APIError`` with it. Messages
keep minidocker's wording, except where clients match on Docker's (404 "No such
container: X", "page not found").
See: the Docker Engine API reference, "Errors".
"""

from __future__ import annotations

import errno

from minidocker.errors import (Conflict, ContainerError, DigestMismatch, InvalidArgument, MinidockerError,
                               NotFound)

__all__ = ["STATUS", "Forbidden", "NotModified", "PayloadTooLarge", "error_reply", "status_of"]

class Forbidden(MinidockerError):
    """What dockerd answers 403 for: an operation never allowed, such as removing ``bridge``."""


class PayloadTooLarge(InvalidArgument):
    """A request body over its limit (a JSON body of more than 32 MiB): 413, refused before it is read."""


STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (PayloadTooLarge, 413),
    (NotFound, 404),
    (Forbidden, 403),
    (Conflict, 409),
    (InvalidArgument, 400),
    (DigestMismatch, 400),
    (ValueError, 400),
)


class NotModified(Exception):
    """Nothing to do (start of a running container, stop of a stopped one): 304 without a body."""


def status_of(err: BaseException) -> int:
    """The HTTP status for an exception, from :data:`STATUS`."""
    if isinstance(err, NotModified):
        return 304
    if isinstance(err, ContainerError):
        return 400 if err.exit_code in (126, 127) else 500
    if isinstance(err, OSError) and err.errno == errno.ENAMETOOLONG:
        return 400
    for cls, status in STATUS:
        if isinstance(err, cls):
            return status
    return 500


def error_reply(err: BaseException):
    """The :class:`~minidocker.api.server.Reply` for an exception: status and ``{"message"}``."""
    from minidocker.api.server import Reply

    status = status_of(err)
    if status == 304:
        return Reply.empty(304)
    if isinstance(err, MinidockerError):
        message = str(err)
    elif isinstance(err, OSError):
        message = f"{err.strerror or err}: {err.filename}" if err.filename else (err.strerror or str(err))
    else:
        message = str(err) or type(err).__name__
    return Reply.json({"message": message}, status)
