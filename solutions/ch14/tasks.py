"""Chapter 14 reference solutions: the Engine API by hand.

    parse_filters(text)                              task 14.1  the ``filters`` query parameter -> {"name": ["web"]}
    encode_frame(stream, data) / split_frames(data)  task 14.2  the 8-byte header of attach and logs streams
    encode_registry_auth(...) / decode_registry_auth task 14.3  the X-Registry-Auth header, both ways
    match_route(routes, method, path, max_version)   task 14.4  a router with /vX.Y prefixes and "page not found"

See: the Docker Engine API reference (https://docs.docker.com/reference/api/engine/), sections
"Versioning", "Errors", "Authentication" and "Stream format" (ContainerAttach); RFC 4648 section 5.
"""

from __future__ import annotations

import base64
import json
import re
import struct

__all__ = ["decode_registry_auth", "encode_frame", "encode_registry_auth", "match_route", "parse_filters",
           "split_frames"]

STDIN, STDOUT, STDERR = 0, 1, 2


def parse_filters(text: str | None) -> dict[str, list[str]]:
    """The ``filters`` query parameter of a list endpoint, in one shape: ``{"name": ["web", "db"]}``.

    Clients send JSON in two shapes: the docker CLI ``{"name":{"web":true}}`` (a set: keys
    whose value is ``true``), docker-py and old clients ``{"name":["web"]}`` (a list of
    strings). Both become ``{"name": ["web"]}``, in the order given; a key whose value is
    ``false`` is left out. ``None`` or ``""`` is no filter: ``{}``. Raise ``ValueError``
    (message starting "invalid filters") for text that is not JSON, not an object, or holds
    a value of another shape (a number, a list with a non-string).

    Hint: ``json.loads``, then one ``isinstance`` branch per shape.
    Questions: why would the CLI send a set as an object of booleans? What does
    ``docker images --filter dangling=true --filter dangling=false`` send?

    See: the Engine API reference, ``GET /images/json`` parameter "filters"
    """
    if not text:
        return {}
    try:
        document = json.loads(text)
    except ValueError as err:
        raise ValueError(f"invalid filters: {err}") from None
    if not isinstance(document, dict):
        raise ValueError("invalid filters: expected a JSON object")
    filters: dict[str, list[str]] = {}
    for key, value in document.items():
        if isinstance(value, dict) and all(isinstance(on, bool) for on in value.values()):
            filters[key] = [k for k, on in value.items() if on]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            filters[key] = list(value)
        else:
            raise ValueError(f"invalid filters: '{key}' is neither an object of booleans nor a list of strings")
    return filters


def encode_frame(stream: int, data: bytes) -> bytes:
    """One frame of a multiplexed attach/logs stream: an 8-byte header, then ``data``.

    The header is ``[STREAM_TYPE, 0, 0, 0, SIZE1, SIZE2, SIZE3, SIZE4]``: the stream (0
    stdin, 1 stdout, 2 stderr), three zero bytes, then ``len(data)`` as a big-endian
    unsigned 32-bit integer. Raise ``ValueError`` for another stream number or data of
    4 GiB or more.

    Hint: ``struct.pack(">BxxxL", stream, len(data))``.
    Questions: why does a container started with ``-t`` have no such header at all?

    See: the Engine API reference, ``POST /containers/{id}/attach``, "Stream format"
    """
    if stream not in (STDIN, STDOUT, STDERR):
        raise ValueError(f"invalid stream {stream}: expected 0 (stdin), 1 (stdout) or 2 (stderr)")
    if len(data) >= 1 << 32:
        raise ValueError(f"a frame holds less than 4 GiB, found {len(data)} bytes")
    return struct.pack(">BxxxL", stream, len(data)) + data


def split_frames(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Decode as many whole frames as ``data`` holds: ``([(stream, payload), ...], rest)``.

    ``rest`` is what follows the last whole frame (a header cut short, a payload not yet
    complete): a reader keeps it and appends the next ``recv``. Raise ``ValueError`` for a
    header whose stream byte is not 0, 1 or 2 or whose three padding bytes are not zero
    (that is not a multiplexed stream: a tty's raw bytes, perhaps).

    Hint: loop while 8 header bytes are there; ``struct.unpack(">BxxxL", data[i:i + 8])``
    ignores the padding, so check it yourself.
    Questions: why does a reader need ``rest`` at all, when the daemon writes whole frames?

    See: the Engine API reference, ``POST /containers/{id}/attach``, "Stream format"
    """
    frames: list[tuple[int, bytes]] = []
    pos = 0
    while len(data) - pos >= 8:
        header = data[pos:pos + 8]
        stream, size = header[0], struct.unpack(">L", header[4:])[0]
        if stream not in (STDIN, STDOUT, STDERR) or header[1:4] != b"\0\0\0":
            raise ValueError(f"not a multiplexed stream: frame header {header.hex()} at byte {pos}")
        if len(data) - pos - 8 < size:
            break
        frames.append((stream, data[pos + 8:pos + 8 + size]))
        pos += 8 + size
    return frames, data[pos:]


def encode_registry_auth(username: str, password: str, serveraddress: str = "") -> str:
    """The ``X-Registry-Auth`` header a client sends with a pull or a push.

    It is the JSON object ``{"username": ..., "password": ..., "serveraddress": ...}``
    (``serveraddress`` left out when empty) encoded in base64 with the **URL and filename
    safe** alphabet (``-`` and ``_`` instead of ``+`` and ``/``), with ``=`` padding, as the
    docker CLI sends it.

    Hint: ``base64.urlsafe_b64encode(json.dumps(...).encode()).decode()``.
    Questions: why not the ordinary alphabet in an HTTP header? Is this header a secret
    on a unix socket, and on TCP without TLS?

    See: the Engine API reference, "Authentication"; RFC 4648 section 5
    """
    auth = {"username": username, "password": password}
    if serveraddress:
        auth["serveraddress"] = serveraddress
    return base64.urlsafe_b64encode(json.dumps(auth).encode()).decode()


def decode_registry_auth(header: str) -> dict[str, str]:
    """What a daemon reads from ``X-Registry-Auth``: the JSON object, or ``{}`` for an empty header.

    Accept the header with or without its ``=`` padding (clients differ). Raise
    ``ValueError`` (message starting "invalid X-Registry-Auth") when it is not base64url,
    not JSON, or not a JSON object.

    Hint: add ``"=" * (-len(header) % 4)``; ``base64.urlsafe_b64decode`` does not reject
    characters of the other alphabet unless you ask: ``binascii`` or a regex helps.
    Questions: the docker CLI sends ``e30=`` before any ``docker login``: what is it?

    See: the Engine API reference, "Authentication"; RFC 4648 section 5
    """
    header = header.strip()
    if not header:
        return {}
    if not re.fullmatch(r"[A-Za-z0-9_-]+={0,2}", header):
        raise ValueError("invalid X-Registry-Auth header: not base64url")
    try:
        document = json.loads(base64.urlsafe_b64decode(header.rstrip("=") + "=" * (-len(header.rstrip("=")) % 4)))
    except ValueError as err:
        raise ValueError(f"invalid X-Registry-Auth header: {err}") from None
    if not isinstance(document, dict):
        raise ValueError("invalid X-Registry-Auth header: not a JSON object")
    return document


def match_route(routes: list[tuple[str, str, str]], method: str, path: str,
                max_version: str = "1.41") -> tuple[str, dict[str, str], str | None]:
    """Find the route for a request: ``(route name, path parameters, API version or None)``.

    ``routes`` are ``(method, pattern, name)`` in order; the first that matches wins. A
    pattern's ``{id}`` matches one path segment (no ``/``); ``{name:.*}`` matches the rest
    greedily, slashes included (an image name such as ``127.0.0.1:5000/course/busybox``).
    A path may start with ``/vX.Y``: strip it and return ``"X.Y"``; a version above
    ``max_version`` raises ``ValueError("client version X.Y is too new. Maximum supported
    API version is MAX")``. ``HEAD`` is answered by a ``GET`` route. No route for the
    method and path: ``LookupError("page not found")``, as dockerd says it.

    Hint: turn each pattern into a regular expression once: ``re.sub(r"\\{(\\w+)(?::([^}]*))?\\}", ...)``,
    and compare versions as tuples of ints ("1.9" < "1.41").
    Questions: why must ``/images/{name:.*}/push`` come before ``/images/{name:.*}``
    in the table for ``DELETE``? Which status does a known path with the wrong method get?

    See: the Engine API reference, "Versioning"; RFC 9112 section 3.2 (the request target)
    """
    version = None
    found = re.match(r"^/v(\d+)\.(\d+)(/.*)$", path)
    if found:
        version, path = f"{found.group(1)}.{found.group(2)}", found.group(3)
        if (int(found.group(1)), int(found.group(2))) > tuple(int(p) for p in max_version.split(".")):
            raise ValueError(f"client version {version} is too new. Maximum supported API version is {max_version}")
    path = path.split("?", 1)[0]
    for route_method, pattern, name in routes:
        if route_method != method and not (method == "HEAD" and route_method == "GET"):
            continue

        def group(m: re.Match) -> str:
            return f"(?P<{m.group(1)}>{m.group(2) or '[^/]+'})"

        regex = "^" + re.sub(r"\{(\w+)(?::([^}]*))?\}", group, pattern) + "$"
        matched = re.match(regex, path)
        if matched:
            return name, matched.groupdict(), version
    raise LookupError("page not found")
