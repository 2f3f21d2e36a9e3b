"""HTTP to a registry: endpoints, 401 challenges answered with Basic or Bearer, redirects. Chapter 07.

::

    client = RegistryClient("127.0.0.1:5000", credentials=("u", "p"), scopes=["repository:demo:pull"])
    client.request("GET", "/v2/demo/manifests/v1", headers={"Accept": ...})  -> Response (body read)
    client.open_blob("demo", "sha256:...")                                  -> BlobStream (a reader)

- **Endpoint.** ``docker.io`` is ``https://registry-1.docker.io``. Plain HTTP is used for
  loopback registries and those named in ``insecure_registries`` (docker's rule for
  ``--insecure-registry``; SPEC: we do not try TLS first on those), HTTPS for the rest.
- **Auth.** A request goes out with the authorization we already have; a 401 carries a
  challenge: ``Basic`` -> send the credentials; ``Bearer`` -> ask the realm for a token
  for the challenge's scope plus ours, with the credentials if we have any. One retry:
  a second 401 is an error ("unauthorized").
- **Connections.** One keep-alive connection per thread and host (layers download in
  parallel threads); a connection that failed or was left mid-body is closed.
- **Redirects.** 301/302/303/307/308 on GET and HEAD are followed (blob storage); the
  ``Authorization`` header is not sent to another host.

Errors: RegistryError (with the registry's ``{"errors": [...]}`` text), Unauthorized,
NotFound, and a fast "failed to connect to registry HOST" when nothing listens.
See: https://github.com/opencontainers/distribution-spec/blob/main/spec.md, RFC 9110 §15.4.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.parse
from collections.abc import Mapping, Sequence

from minidocker.errors import MinidockerError, NotFound
from minidocker.registry.auth import basic_authorization, merge_scopes, parse_challenge

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["BlobStream", "RegistryClient", "RegistryError", "Response", "Unauthorized", "endpoint_of",
           "is_insecure"]

DOCKER_HUB = "registry-1.docker.io"
_REDIRECTS = (301, 302, 303, 307, 308)
_BLOCK = 1 << 20


class RegistryError(MinidockerError):
    """The registry refused a request or could not be reached."""

    exit_code = 1


class Unauthorized(RegistryError):
    """Missing or wrong credentials, or a token without the access asked for."""


class Response:
    """A response whose body has been read."""

    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes, url: str) -> None:
        self.status, self.headers, self.body, self.url = status, headers, body, url

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    def json(self) -> Any:
        return json.loads(self.body)


def is_insecure(domain: str, insecure_registries: Sequence[str] = ()) -> bool:
    """Plain HTTP for this registry? Loopback always, others only when listed (docker's rule)."""
    host = urllib.parse.urlsplit(f"//{domain}").hostname or ""
    if host == "localhost" or host == "::1" or host.startswith("127."):
        return True
    return domain in insecure_registries or host in insecure_registries


def endpoint_of(domain: str, insecure_registries: Sequence[str] = ()) -> str:
    """The base URL of a registry: ``https://registry-1.docker.io``, ``http://127.0.0.1:5000``."""
    if domain in ("docker.io", "index.docker.io"):
        domain = DOCKER_HUB
    scheme = "http" if is_insecure(domain, insecure_registries) else "https"
    return f"{scheme}://{domain}"


class RegistryClient:
    """Requests to one registry, authenticated as needed; safe to share between threads.

    ``endpoint`` (``http://host:port``) overrides where requests go: a mirror of ``domain``.
    """

    def __init__(self, domain: str, *, credentials: tuple[str, str] | None = None, scopes: Sequence[str] = (),
                 insecure_registries: Sequence[str] = (), connect_timeout: float = 5.0,
                 timeout: float = 60.0, endpoint: str | None = None) -> None:
        self.domain = domain
        self.base = endpoint.rstrip("/") if endpoint else endpoint_of(domain, insecure_registries)
        self.credentials = credentials
        self.scopes = list(scopes)
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self._authorization: str | None = None
        self._auth_lock = threading.Lock()
        self._local = threading.local()

    # -- connections ------------------------------------------------------------------------

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        pool = self._local.__dict__.setdefault("pool", {})
        conn = pool.get((scheme, netloc))
        if conn is None:
            if scheme == "https":
                import ssl

                conn = http.client.HTTPSConnection(netloc, timeout=self.connect_timeout, blocksize=_BLOCK,
                                                   context=ssl.create_default_context())
            else:
                conn = http.client.HTTPConnection(netloc, timeout=self.connect_timeout, blocksize=_BLOCK)
            try:
                conn.connect()
            except OSError as err:
                conn.close()
                raise RegistryError(f"failed to connect to registry {netloc}: {_reason(err)}",
                                    hint=f"is a registry listening at {scheme}://{netloc}?") from None
            conn.sock.settimeout(self.timeout)
            pool[(scheme, netloc)] = conn
        return conn

    def _drop(self, scheme: str, netloc: str) -> None:
        conn = self._local.__dict__.get("pool", {}).pop((scheme, netloc), None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        """Close this thread's connections."""
        for conn in self._local.__dict__.pop("pool", {}).values():
            conn.close()

    def _send(self, method: str, url: str, headers: Mapping[str, str], body: Any) -> http.client.HTTPResponse:
        """One request on this thread's connection to the URL's host; reconnects once if it went stale."""
        parts = urllib.parse.urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        start = body.tell() if hasattr(body, "seek") else None
        for attempt in (1, 2):
            reused = (parts.scheme, parts.netloc) in self._local.__dict__.get("pool", {})
            conn = self._connection(parts.scheme, parts.netloc)
            try:
                conn.request(method, target, body=body, headers=dict(headers))
                return conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as err:
                self._drop(parts.scheme, parts.netloc)
                replayable = body is None or isinstance(body, bytes) or start is not None
                if attempt == 2 or not reused or not replayable:
                    raise RegistryError(f"failed to {method} {url}: {_reason(err)}") from None
                if start is not None:
                    body.seek(start)
            except (OSError, http.client.HTTPException) as err:
                self._drop(parts.scheme, parts.netloc)
                raise RegistryError(f"failed to {method} {url}: {_reason(err)}") from None
        raise AssertionError("unreachable")

    # -- requests ---------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return urllib.parse.urljoin(self.base + "/", path)

    def open(self, method: str, path: str, headers: Mapping[str, str] | None = None, body: Any = None,
             scopes: Sequence[str] = ()) -> tuple[http.client.HTTPResponse, str]:
        """Send a request, answer a 401 challenge once, follow redirects; returns (response, final URL).

        The body of the returned response is unread: read it, or ``discard`` the connection.
        """
        url = self.url(path)
        for attempt in (1, 2):
            response, final = self._follow(method, url, dict(headers or {}), body)
            if response.status != 401 or attempt == 2:
                return response, final
            challenge = response.getheader("WWW-Authenticate", "")
            response.read()
            self._authenticate(challenge, scopes, url)
            if hasattr(body, "seek"):
                body.seek(0)
        raise AssertionError("unreachable")

    def _follow(self, method: str, url: str, headers: dict[str, str], body: Any
                ) -> tuple[http.client.HTTPResponse, str]:
        registry_netloc = urllib.parse.urlsplit(self.base).netloc
        for _ in range(6):
            sent = dict(headers)
            if self._authorization and urllib.parse.urlsplit(url).netloc == registry_netloc:
                sent["Authorization"] = self._authorization
            response = self._send(method, url, sent, body)
            if response.status not in _REDIRECTS or method not in ("GET", "HEAD"):
                return response, url
            location = response.getheader("Location", "")
            response.read()
            url = urllib.parse.urljoin(url, location)
        raise RegistryError(f"failed to {method} {url}: too many redirects")

    def _authenticate(self, header: str, scopes: Sequence[str], url: str) -> None:
        """Answer a challenge: set the Authorization header later requests carry."""
        try:
            challenge = parse_challenge(header)
        except ValueError:
            raise Unauthorized(f"unauthorized: {self.domain} answered 401 without a usable challenge "
                               f"({header!r})") from None
        with self._auth_lock:
            if challenge.scheme == "basic":
                if self.credentials is None:
                    raise Unauthorized(f"unauthorized: authentication required by {self.domain}",
                                       hint=f"run: minidocker login {self.domain}")
                self._authorization = basic_authorization(*self.credentials)
            elif challenge.scheme == "bearer":
                self._authorization = "Bearer " + self._token(challenge, scopes)
            else:
                raise Unauthorized(f"unauthorized: unsupported authentication scheme {challenge.scheme!r} "
                                   f"at {self.domain}")

    def _token(self, challenge, scopes: Sequence[str]) -> str:
        """Fetch a token from the challenge's realm for its scope and ours. See: the token spec."""
        realm = challenge.params.get("realm")
        if not realm:
            raise Unauthorized(f"unauthorized: {self.domain}'s Bearer challenge has no realm")
        wanted = merge_scopes(challenge.scopes, self.scopes, list(scopes))
        query = [("service", challenge.params["service"])] if "service" in challenge.params else []
        query += [("scope", s) for s in wanted]
        if self.credentials:
            query.append(("account", self.credentials[0]))
        url = realm + ("&" if "?" in realm else "?") + urllib.parse.urlencode(query)
        headers = {"Authorization": basic_authorization(*self.credentials)} if self.credentials else {}
        response = self._send("GET", url, headers, None)
        body = response.read()
        if response.status in (401, 403):
            raise Unauthorized(f"unauthorized: the token server {realm} refused "
                               f"{'the credentials' if self.credentials else 'anonymous access'} "
                               f"(HTTP {response.status})",
                               hint=None if self.credentials else f"run: minidocker login {self.domain}")
        if response.status != 200:
            raise RegistryError(f"failed to get a token from {realm}: HTTP {response.status}")
        try:
            answer = json.loads(body)
            return answer.get("token") or answer["access_token"]
        except (ValueError, KeyError, AttributeError):
            raise RegistryError(f"failed to get a token from {realm}: the answer has no token") from None

    def request(self, method: str, path: str, headers: Mapping[str, str] | None = None, body: Any = None,
                expect: Sequence[int] = (200,), scopes: Sequence[str] = (), what: str = "") -> Response:
        """Send a request and read the whole answer; a status outside ``expect`` raises."""
        response, url = self.open(method, path, headers, body, scopes)
        try:
            data = response.read()   # b"" for HEAD, but it marks the response complete
        except (OSError, http.client.HTTPException) as err:
            self.discard(url)
            raise RegistryError(f"failed to read the answer to {method} {url}: {_reason(err)}") from None
        result = Response(response.status, response.headers, data, url)
        if response.status not in expect:
            raise error_of(result, what or f"{method} {urllib.parse.urlsplit(url).path}")
        return result

    def discard(self, url: str) -> None:
        """Close this thread's connection to the host of ``url`` (a body was left unread)."""
        parts = urllib.parse.urlsplit(url)
        self._drop(parts.scheme, parts.netloc)

    def open_blob(self, repository: str, digest: str, offset: int = 0) -> BlobStream:
        """A reader of a blob's bytes as they arrive (redirects followed). Raises NotFound."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        response, url = self.open("GET", f"/v2/{repository}/blobs/{digest}", headers)
        if response.status not in (200, 206):
            body = response.read()
            raise error_of(Response(response.status, response.headers, body, url), f"blob {digest}")
        parts = urllib.parse.urlsplit(url)
        conn = self._local.__dict__.get("pool", {}).get((parts.scheme, parts.netloc))   # the one just used
        return BlobStream(self, response, url, conn.sock if conn is not None else None)


class BlobStream:
    """A blob being downloaded: ``read(n)`` and ``close()``; a transport failure is kept in ``failure``.

    ``abort()``, from any thread, ends a ``read`` waiting for the network (Ctrl-C, another
    layer failed): it shuts the socket down, and the read fails at once.
    """

    def __init__(self, client: RegistryClient, response: http.client.HTTPResponse, url: str,
                 sock: socket.socket | None = None) -> None:
        self.client, self.response, self.url, self.sock = client, response, url, sock
        self.length = int(response.getheader("Content-Length") or -1)
        self.received = 0
        self.failure: BaseException | None = None
        self.on_read = None

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.response.read(n if n and n > 0 else None)
        except (OSError, http.client.HTTPException) as err:
            self.failure = err
            raise RegistryError(f"failed to download {self.url}: {_reason(err)}") from None
        if not data and n != 0 and 0 <= self.received < self.length:
            # http.client returns b"" when the server closes early: a short body is a failure
            self.failure = http.client.IncompleteRead(b"\0" * self.received, self.length - self.received)
            raise RegistryError(f"failed to download {self.url}: {_reason(self.failure)}")
        self.received += len(data)
        if self.on_read is not None:
            self.on_read(len(data))
        return data

    def abort(self) -> None:
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass   # already closed

    def close(self) -> None:
        if self.failure is not None or not self.response.isclosed():
            self.client.discard(self.url)   # bytes may be left on the socket
        self.response.close()

    def __enter__(self) -> BlobStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def error_of(response: Response, what: str) -> RegistryError:
    """The error for a failed answer, with the registry's own code and message."""
    messages = []
    try:
        for error in response.json().get("errors", []):
            code = str(error.get("code", "")).lower().replace("_", " ")
            messages.append(f"{code}: {error.get('message', '')}".strip(": "))
    except (ValueError, AttributeError):
        pass
    text = "; ".join(messages) or f"HTTP {response.status}"
    if response.status == 401:
        challenge = response.header("WWW-Authenticate", "") or ""
        detail = " (insufficient scope)" if "insufficient_scope" in challenge else \
            " (invalid token)" if "invalid_token" in challenge else ""
        return Unauthorized(f"unauthorized: {what}: {text}{detail}")
    if response.status == 403:
        return Unauthorized(f"denied: requested access to the resource is denied: {what}: {text}")
    if response.status == 404:
        return _NotFoundError(f"{what} not found: {text}")
    return RegistryError(f"failed: {what}: {text}")


class _NotFoundError(RegistryError, NotFound):
    """404 from a registry: a NotFound that is also a RegistryError."""


def _reason(err: BaseException) -> str:
    if isinstance(err, socket.timeout):
        return "timed out"
    if isinstance(err, http.client.IncompleteRead):
        return f"connection closed after {len(err.partial)} bytes, {err.expected} more expected"
    if isinstance(err, http.client.RemoteDisconnected):
        return "the server closed the connection"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror.lower()
    return str(err) or type(err).__name__
