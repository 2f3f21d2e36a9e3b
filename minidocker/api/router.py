"""The Engine API's routes: method and path pattern to handler, with or without a ``/vX.Y`` prefix.

Each noun module (system.py, containers.py ...) lists its ``ROUTES`` as
``(method, pattern, handler)``; a pattern's ``{name}`` matches one path segment and
reaches the handler as ``request.params["name"]``. :func:`route` strips and checks the
version, finds the handler, turns exceptions into ``{"message"}`` answers
(api/errors.py) and answers what matches nothing with 404 "page not found", as
dockerd does for an unknown path and for a known path with another method.
See: the Docker Engine API reference, "Versioning".
"""

from __future__ import annotations

import logging
import re

from minidocker.api.errors import error_reply
from minidocker.api.server import Reply, Request
from minidocker.engine.system import API_VERSION, MIN_API_VERSION

__all__ = ["Router"]

_VERSIONED = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")

log = logging.getLogger("minidockerd")


def _version_tuple(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


class Router:
    """Routes in order; the first whose method and pattern match answers."""

    def __init__(self, modules, daemon=None) -> None:
        self.daemon = daemon
        self.routes: list[tuple[str, re.Pattern, object]] = []
        for module in modules:
            for method, pattern, handler in module.ROUTES:
                regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$"
                self.routes.append((method, re.compile(regex), handler))

    def __call__(self, request: Request) -> None:
        try:
            reply = self._dispatch(request)
        except Exception as err:  # noqa: BLE001 - every error becomes an answer, the daemon stays up
            if request.answered:
                log.debug("%s %s failed after its answer began: %s", request.method, request.target, err)
                return
            reply = error_reply(err)
            if reply.status >= 500 and "minidocker.errors" in type(err).__module__:
                # one line, as dockerd logs a handler's 5xx; a client's error (4xx) is not logged
                log.error("Handler for %s %s returned error: %s", request.method, request.target, err)
            elif reply.status >= 500:  # raised by nobody on purpose: a bug, its traceback for the log
                log.exception("%s %s failed", request.method, request.target)
        if reply is not None and not request.answered:
            request.send(reply)

    def _dispatch(self, request: Request) -> Reply | None:
        request.daemon = self.daemon
        match = _VERSIONED.match(request.raw_path)
        if match:
            version = f"{match.group(1)}.{match.group(2)}"
            request.path, request.api_version = match.group(3), version
            if _version_tuple(version) > _version_tuple(API_VERSION):
                return Reply.json({"message": f"client version {version} is too new. "
                                              f"Maximum supported API version is {API_VERSION}"}, 400)
            if _version_tuple(version) < _version_tuple(MIN_API_VERSION):
                text = (f"client version {version} is too old. Minimum supported API version is "
                        f"{MIN_API_VERSION}, please upgrade your client to a newer version\n")
                return Reply(400, text.encode(), "text/plain; charset=utf-8")
        method = "GET" if request.method == "HEAD" else request.method
        for route_method, regex, handler in self.routes:
            if route_method != method and not (route_method == "HEAD" and request.method == "HEAD"):
                continue
            found = regex.match(request.path)
            if found:
                request.params = found.groupdict()
                return handler(request)
        return Reply.json({"message": "page not found"}, 404)
