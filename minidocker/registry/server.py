"""A registry server: the distribution API v2 on a content-addressable store. Chapter 07.

Like ``registry:2`` (distribution), small enough to read: ``minidocker registry serve``.
skopeo and docker push to it and pull from it. Routes::

    GET  /v2/                                       200 {}            (the version check; 401 without auth)
    GET  /v2/_catalog?n=&last=                      repositories, paginated with a Link header
    GET  /v2/<name>/tags/list?n=&last=              tags, sorted, paginated
    HEAD|GET|PUT|DELETE /v2/<name>/manifests/<tag|digest>
    HEAD|GET|DELETE     /v2/<name>/blobs/<digest>   (GET honours Range: bytes=a-b, a-, -n)
    GET  /v2/<name>/referrers/<digest>?artifactType=   the manifests whose subject is <digest> (an index)
    POST  /v2/<name>/blobs/uploads/[?digest=|?mount=&from=]   a session (202), a monolithic upload or
                                                              a mount (201)
    PATCH|PUT|GET|DELETE /v2/<name>/blobs/uploads/<uuid>      append (Content-Range checked), finish
                                                              (?digest=), status, cancel

On disk (``--root``, default ``$MINIDOCKER_ROOT/lib/registry``)::

    blobs/sha256/<hex>                   every blob and manifest, by digest (image.blobs.BlobStore)
    repositories/<name>/_layers/<hex>    blob linked into the repository (a blob is served only where linked)
    repositories/<name>/_manifests/<hex> a manifest of the repository; the file holds its media type
    repositories/<name>/_tags/<tag>      the digest a tag points to
    repositories/<name>/_referrers/<subject hex>/<hex>   a manifest's descriptor, under the subject it names

A digest names its algorithm, sha256 or sha512 (blobs/sha512/<hex>); the files under a
repository are named by the hex part alone, whose length (64 or 128) tells the two apart.

An upload streams into a BlobWriter, which hashes as it writes and renames into place only
when ``PUT ?digest=`` matches. Where registry 2.8 is lenient (Content-Range, ``?n=`` on tags,
single-POST uploads) this server follows the OCI distribution spec.
See: https://github.com/opencontainers/distribution-spec/blob/main/spec.md
"""

from __future__ import annotations

import json
import os
import re
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from minidocker.atomic import write_bytes
from minidocker.errors import DigestMismatch
from minidocker.image import manifest as mf
from minidocker.image.blobs import BlobStore, BlobWriter, digest_of
from minidocker.image.reference import DIGEST_PATTERN

__all__ = ["RegistryServer", "load_htpasswd", "repository_dirs", "verify_password"]

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME = rf"(?P<name>{_COMPONENT}(?:/{_COMPONENT})*)"
_ROUTES = [
    ("base", re.compile(r"^/v2/?$")),
    ("catalog", re.compile(r"^/v2/_catalog$")),
    ("tags", re.compile(rf"^/v2/{_NAME}/tags/list$")),
    ("manifest", re.compile(rf"^/v2/{_NAME}/manifests/(?P<ref>[A-Za-z0-9_.:+-]+)$")),
    ("uploads", re.compile(rf"^/v2/{_NAME}/blobs/uploads/?$")),
    ("upload", re.compile(rf"^/v2/{_NAME}/blobs/uploads/(?P<uuid>[a-f0-9-]+)$")),
    ("blob", re.compile(rf"^/v2/{_NAME}/blobs/(?P<digest>[^/]+)$")),
    ("referrers", re.compile(rf"^/v2/{_NAME}/referrers/(?P<digest>[^/]+)$")),
]
_DIGEST = re.compile(rf"^{DIGEST_PATTERN}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_MANIFEST_TYPES = (mf.OCI_MANIFEST, mf.OCI_INDEX, mf.DOCKER_MANIFEST, mf.DOCKER_LIST)
_MANIFEST_LIMIT = 4 << 20
_CHUNK = 1 << 20
# Layers a registry may store without their blob: their content lives at the descriptor's ``urls``.
# See: image-spec layer.md "Non-distributable" and Docker's foreign layers.
_NONDISTRIBUTABLE = ("application/vnd.oci.image.layer.nondistributable.v1.tar",
                     "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
                     "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
                     "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")


def load_htpasswd(path: str | os.PathLike[str]) -> dict[str, str]:
    """``user:hash`` lines of an htpasswd file (bcrypt hashes, as ``htpasswd -B`` writes)."""
    users = {}
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            user, _, hashed = line.strip().partition(":")
            users[user] = hashed
    return users


def verify_password(password: str, hashed: str) -> bool:
    """Check a password against a crypt(3) hash (``$2y$``/``$2b$`` bcrypt, as htpasswd -B writes).

    Uses libxcrypt through the ``crypt`` module (Python ≤ 3.12), else the ``bcrypt`` package.
    See: crypt(5).
    """
    import hmac

    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt
        computed = crypt.crypt(password, hashed)
        return computed is not None and hmac.compare_digest(computed, hashed)
    except ImportError:
        import bcrypt

        return bcrypt.checkpw(password.encode(), hashed.encode())


class RegistryServer(ThreadingHTTPServer):
    """The registry: ``RegistryServer(root, ("127.0.0.1", 5000)).serve_forever()``.

    Args:
        root: the storage directory.
        address: (host, port); port 0 picks a free one (see ``url``).
        htpasswd: an htpasswd file: every request then needs Basic credentials.
        log: a callable taking each access-log line (default: none).
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: str | os.PathLike[str], address: tuple[str, int] = ("127.0.0.1", 5000),
                 htpasswd: str | os.PathLike[str] | None = None, log=None, realm: str = "minidocker-registry",
                 token_auth: bool = False) -> None:
        self.root = Path(root)
        self.blobs = BlobStore(self.root / "blobs")
        self.users = load_htpasswd(htpasswd) if htpasswd else None
        self.realm = realm
        # Bearer tokens from our own token server at /token (registry/token.py); htpasswd users, if
        # any, then log in there, and the registry itself asks for tokens only.
        self.tokens = None
        if token_auth:
            from minidocker.registry.token import TokenIssuer

            self.tokens = TokenIssuer(service=realm)
        self.log = log
        self.uploads: dict[str, tuple[str, BlobWriter]] = {}
        self.lock = threading.Lock()
        self._verified: set[str] = set()
        self._thread: threading.Thread | None = None
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def address(self) -> str:
        """``host:port``, as a reference's registry part."""
        host, port = self.server_address[:2]
        return f"{host}:{port}"

    def start(self) -> RegistryServer:
        """Serve in a background thread (tests, notebooks); ``stop()`` ends it."""
        self._thread = threading.Thread(target=self.serve_forever, args=(0.05,), name="registry", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(5)
        with self.lock:
            for _, writer in self.uploads.values():
                writer.abort()
            self.uploads.clear()

    def __enter__(self) -> RegistryServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- storage ----------------------------------------------------------------------------

    def repo(self, name: str) -> Path:
        return self.root / "repositories" / name

    def linked(self, name: str, digest: str) -> bool:
        return (self.repo(name) / "_layers" / digest[7:]).exists() and self.blobs.exists(digest)

    def link(self, name: str, digest: str) -> None:
        path = self.repo(name) / "_layers" / digest[7:]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()

    def manifest_type(self, name: str, digest: str) -> str | None:
        try:
            return (self.repo(name) / "_manifests" / digest[7:]).read_text()
        except FileNotFoundError:
            return None

    def resolve(self, name: str, reference: str) -> str | None:
        if _DIGEST.match(reference):
            return reference
        if ":" in reference:   # a digest, but not one of the registered algorithms
            raise _Error(400, "DIGEST_INVALID", f"invalid digest {reference!r}: sha256 or sha512 expected",
                         reference)
        try:
            return (self.repo(name) / "_tags" / reference).read_text().strip()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def tags(self, name: str) -> list[str] | None:
        directory = self.repo(name)
        if not (directory / "_manifests").is_dir():
            return None
        tags = directory / "_tags"
        return sorted(os.listdir(tags)) if tags.is_dir() else []

    def add_referrer(self, name: str, subject: str, descriptor: dict[str, Any]) -> None:
        directory = self.repo(name) / "_referrers" / subject[7:]
        directory.mkdir(parents=True, exist_ok=True)
        write_bytes(directory / descriptor["digest"][7:], json.dumps(descriptor).encode(), durable=False)

    def remove_referrer(self, name: str, digest: str) -> None:
        base = self.repo(name) / "_referrers"
        for subject in os.listdir(base) if base.is_dir() else []:
            (base / subject / digest[7:]).unlink(missing_ok=True)

    def referrers(self, name: str, subject: str) -> list[dict[str, Any]]:
        """The descriptors of the manifests that name ``subject``, oldest first (as pushed)."""
        directory = self.repo(name) / "_referrers" / subject[7:]
        if not directory.is_dir():
            return []
        entries = sorted(directory.iterdir(), key=lambda p: p.stat().st_mtime_ns)
        return [json.loads(entry.read_bytes()) for entry in entries]

    def repositories(self) -> list[str]:
        base = self.root / "repositories"
        return sorted(os.path.relpath(directory, base) for directory in repository_dirs(self.root))

    def authorized(self, header: str | None) -> bool:
        """Basic credentials, checked against the htpasswd users (everyone passes without a file)."""
        if self.users is None:
            return True
        return self.user_of(header) is not None

    def user_of(self, header: str | None) -> str | None:
        """The htpasswd user whose Basic credentials ``header`` carries, else None."""
        if not header or not header.startswith("Basic ") or self.users is None:
            return None
        import base64
        import hashlib

        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        key = hashlib.sha256(header.encode()).hexdigest()
        if key in self._verified:   # bcrypt costs ~50 ms: remember answers already checked
            return user
        if user in self.users and verify_password(password, self.users[user]):
            self._verified.add(key)
            return user
        return None


class _Error(Exception):
    def __init__(self, status: int, code: str, message: str, detail: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail
        self.headers = headers or {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: RegistryServer
    server_version = "minidocker-registry/0.1"

    # -- plumbing ---------------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.server.log is not None:
            self.server.log(f"{self.client_address[0]} {format % args}")

    def _dispatch(self) -> None:
        self._body_read = False
        parts = urllib.parse.urlsplit(self.path)
        self.query = urllib.parse.parse_qs(parts.query)
        try:
            if self.server.tokens is not None and parts.path == "/token" and self.command == "GET":
                self.token_get()
                return
            for route, pattern in _ROUTES:
                match = pattern.match(parts.path)
                if match:
                    self._check_access(route, match.groupdict().get("name"))
                    handler = getattr(self, f"{route}_{self.command.lower()}", None)
                    if handler is None:
                        raise _Error(405, "UNSUPPORTED", f"{self.command} is not supported on {route}")
                    handler(**match.groupdict())
                    return
            self._check_access("base", None)
            raise _Error(404, "NOT_FOUND", f"no route for {parts.path}")
        except _Error as err:
            self._send_error(err)
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _dispatch

    # -- access -----------------------------------------------------------------------------

    def _check_access(self, route: str, name: str | None) -> None:
        """401 with the challenge a client answers: Basic (htpasswd) or Bearer with the scope needed."""
        authorization = self.headers.get("Authorization")
        if self.server.tokens is None:
            if not self.server.authorized(authorization):
                raise _Error(401, "UNAUTHORIZED", "authentication required",
                             headers={"WWW-Authenticate": f'Basic realm="{self.server.realm}"'})
            return
        scope = _scope_needed(route, self.command, name)
        self.access = self._token_access(authorization)
        if self.access is None:
            raise self._challenge(scope, "authentication required")
        if scope is not None:
            from minidocker.registry.token import covers, parse_scope

            kind, scope_name, actions = parse_scope(scope)
            if not all(covers(self.access, kind, scope_name, a) for a in actions):
                raise self._challenge(scope, "insufficient scope", error="insufficient_scope")

    def _token_access(self, authorization: str | None) -> list[dict[str, Any]] | None:
        """The ``access`` claim of a valid Bearer token, else None."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        try:
            return self.server.tokens.verify(authorization[7:]).get("access") or []
        except ValueError:
            return None

    def _challenge(self, scope: str | None, message: str, error: str | None = None) -> _Error:
        host = self.headers.get("Host") or self.server.address
        challenge = f'Bearer realm="http://{host}/token",service="{self.server.realm}"'
        if scope:
            challenge += f',scope="{scope}"'
        if error:
            challenge += f',error="{error}"'
        return _Error(401, "UNAUTHORIZED", message, headers={"WWW-Authenticate": challenge})

    def may(self, name: str, action: str) -> bool:
        """Does this request's token allow ``action`` on repository ``name`` (always, without tokens)?"""
        if self.server.tokens is None:
            return True
        from minidocker.registry.token import covers

        return covers(getattr(self, "access", None) or [], "repository", name, action)

    def token_get(self) -> None:
        """Our token server: a token for the scopes asked, to htpasswd users (or anyone without a file).

        The answer carries both ``token`` and ``access_token``, as the token spec asks.
        """
        from minidocker.registry.token import parse_scope

        user = self.server.user_of(self.headers.get("Authorization"))
        if self.server.users is not None and user is None:
            raise _Error(401, "UNAUTHORIZED", "authentication required",
                         headers={"WWW-Authenticate": f'Basic realm="{self.server.realm}"'})
        access = []
        for scope in self.query.get("scope", []):
            for one in scope.split(" "):   # a client may join several with spaces
                try:
                    kind, name, actions = parse_scope(one)
                except ValueError:
                    raise _Error(400, "UNSUPPORTED", f"invalid scope {one!r}") from None
                access.append({"type": kind, "name": name, "actions": actions})
        token = self.server.tokens.issue(user or "", access)
        self._send_json(200, {"token": token, "access_token": token,
                              "expires_in": self.server.tokens.lifetime})

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
              content_type: str | None = "application/json") -> None:
        if not self._body_read and self._has_body():
            self.close_connection = True   # the request body was not read: do not reuse the connection
        self.send_response(status)
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        if content_type and body:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _send_error(self, err: _Error) -> None:
        error = {"code": err.code, "message": err.message, "detail": err.detail}
        self._send_json(err.status, {"errors": [error]}, err.headers)

    def _has_body(self) -> bool:
        return int(self.headers.get("Content-Length") or 0) > 0 or \
            "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _body_chunks(self):
        """The request body in pieces: Content-Length or chunked transfer coding (Go clients use it)."""
        self._body_read = True
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                while size:
                    data = self.rfile.read(min(size, _CHUNK))
                    if not data:
                        raise ConnectionError("request body ended early")
                    size -= len(data)
                    yield data
                self.rfile.readline()
        left = int(self.headers.get("Content-Length") or 0)
        while left:
            data = self.rfile.read(min(left, _CHUNK))
            if not data:
                raise ConnectionError("request body ended early")
            left -= len(data)
            yield data

    def _body(self, limit: int) -> bytes:
        data = bytearray()
        for chunk in self._body_chunks():
            data += chunk
            if len(data) > limit:
                self.close_connection = True
                raise _Error(413, "SIZE_INVALID", f"body larger than {limit} bytes")
        return bytes(data)

    def _param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    # -- base, catalog, tags ----------------------------------------------------------------

    def base_get(self) -> None:
        self._send_json(200, {})

    base_head = base_get

    def _page(self, items: list[str], path: str, extra: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        last = self._param("last")
        if last:
            items = [i for i in items if i > last]
        n = self._param("n")
        headers = {}
        if n is not None:
            try:
                count = int(n)
            except ValueError:
                raise _Error(400, "PAGINATION_NUMBER_INVALID", f"invalid n {n!r}") from None
            if len(items) > count:
                items = items[:count]
                query = urllib.parse.urlencode({**extra, "last": items[-1] if items else "", "n": count})
                headers["Link"] = f'<{path}?{query}>; rel="next"'
            else:
                items = items[:count]
        return items, headers

    def catalog_get(self) -> None:
        repositories, headers = self._page(self.server.repositories(), "/v2/_catalog", {})
        self._send_json(200, {"repositories": repositories}, headers)

    def tags_get(self, name: str) -> None:
        tags = self.server.tags(name)
        if tags is None:
            raise _Error(404, "NAME_UNKNOWN", "repository name not known to registry", {"name": name})
        tags, headers = self._page(tags, f"/v2/{name}/tags/list", {})
        self._send_json(200, {"name": name, "tags": tags}, headers)

    # -- manifests --------------------------------------------------------------------------

    def _manifest(self, name: str, ref: str) -> tuple[str, str]:
        digest = self.server.resolve(name, ref)
        media_type = self.server.manifest_type(name, digest) if digest else None
        if digest is None or media_type is None or not self.server.blobs.exists(digest):
            raise _Error(404, "MANIFEST_UNKNOWN", "manifest unknown", {"name": name, "reference": ref})
        return digest, media_type

    def manifest_get(self, name: str, ref: str) -> None:
        # SPEC: a manifest is served as stored, whatever the Accept header: we never convert (registry
        # 2.8 rewrites schema 2 to schema 1 for old clients, 404s OCI types they do not accept)
        digest, media_type = self._manifest(name, ref)
        data = self.server.blobs.read(digest)
        self._send(200, data, {"Docker-Content-Digest": digest, "Etag": f'"{digest}"'},
                   content_type=media_type)

    def manifest_head(self, name: str, ref: str) -> None:
        digest, media_type = self._manifest(name, ref)
        self._send(200, b"", {"Docker-Content-Digest": digest, "Etag": f'"{digest}"',
                              "Content-Type": media_type,
                              "Content-Length": str(self.server.blobs.size(digest))}, content_type=None)

    def manifest_put(self, name: str, ref: str) -> None:
        if not _DIGEST.match(ref) and not _TAG.match(ref):
            raise _Error(400, "TAG_INVALID", f"invalid tag {ref!r}")
        data = self._body(_MANIFEST_LIMIT)
        try:
            document = json.loads(data)
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
        except ValueError as err:
            raise _Error(400, "MANIFEST_INVALID", f"manifest invalid: {err}") from None
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        media_type = content_type if content_type in _MANIFEST_TYPES else document.get("mediaType")
        if media_type not in _MANIFEST_TYPES:
            media_type = mf.OCI_INDEX if "manifests" in document else mf.OCI_MANIFEST
        if document.get("mediaType") not in (None, media_type):
            raise _Error(400, "MANIFEST_INVALID", f"mediaType {document.get('mediaType')!r} does not match "
                         f"Content-Type {content_type!r}")
        self._check_references(name, document, media_type)
        # A manifest pushed by digest is named with that digest's algorithm; by tag, sha256.
        digest = digest_of(data, ref.partition(":")[0] if _DIGEST.match(ref) else "sha256")
        if _DIGEST.match(ref) and ref != digest:
            raise _Error(400, "DIGEST_INVALID", f"manifest hashes to {digest}, not {ref}")
        self.server.blobs.put(data, digest)
        manifests = self.server.repo(name) / "_manifests"
        manifests.mkdir(parents=True, exist_ok=True)
        write_bytes(manifests / digest[7:], media_type.encode(), durable=False)
        if not _DIGEST.match(ref):
            tags = self.server.repo(name) / "_tags"
            tags.mkdir(exist_ok=True)
            write_bytes(tags / ref, digest.encode(), durable=False)
        headers = {"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest}
        subject = document.get("subject")
        if subject is not None:
            # SPEC: the subject need not exist (yet): a signature may be pushed before its image.
            self.server.add_referrer(name, subject["digest"], _referrer_descriptor(document, media_type,
                                                                                   digest, len(data)))
            headers["OCI-Subject"] = subject["digest"]
        self._send(201, b"", headers)

    def _check_references(self, name: str, document: dict[str, Any], media_type: str) -> None:
        subject = document.get("subject")
        if subject is not None and not (isinstance(subject, dict)
                                        and _DIGEST.match(str(subject.get("digest")))):
            raise _Error(400, "MANIFEST_INVALID",
                         "manifest invalid: subject must be a descriptor with a digest")
        if media_type in mf.INDEX_TYPES:
            children = document.get("manifests")
            if not isinstance(children, list):
                raise _Error(400, "MANIFEST_INVALID", "manifest invalid: an index needs a manifests list")
            for child in children:
                digest = child.get("digest", "") if isinstance(child, dict) else ""
                if not _DIGEST.match(digest) or self.server.manifest_type(name, digest) is None:
                    raise _Error(400, "MANIFEST_BLOB_UNKNOWN", "manifest blob unknown to registry", digest)
            return
        if not isinstance(document.get("config"), dict) or not isinstance(document.get("layers"), list):
            raise _Error(400, "MANIFEST_INVALID", "manifest invalid: config and layers are required")
        if document.get("schemaVersion") != 2:
            raise _Error(400, "MANIFEST_INVALID", "manifest invalid: schemaVersion must be 2")
        for descriptor in [document["config"], *document["layers"]]:
            digest = descriptor.get("digest", "") if isinstance(descriptor, dict) else ""
            if not _DIGEST.match(digest):
                raise _Error(400, "DIGEST_INVALID", f"invalid digest {digest!r} in manifest", digest)
            if descriptor.get("mediaType") in _NONDISTRIBUTABLE:
                continue   # its blob lives at its urls, never here
            if not self.server.linked(name, digest):
                raise _Error(400, "MANIFEST_BLOB_UNKNOWN", "manifest blob unknown to registry", digest)

    def manifest_delete(self, name: str, ref: str) -> None:
        digest, _ = self._manifest(name, ref)
        tags = self.server.repo(name) / "_tags"
        if not _DIGEST.match(ref):
            (tags / ref).unlink()
        else:
            for tag in os.listdir(tags) if tags.is_dir() else []:
                if (tags / tag).read_text().strip() == digest:
                    (tags / tag).unlink(missing_ok=True)
            (self.server.repo(name) / "_manifests" / digest[7:]).unlink(missing_ok=True)
            self.server.remove_referrer(name, digest)
        self._send(202)

    # -- referrers --------------------------------------------------------------------------

    def referrers_get(self, name: str, digest: str) -> None:
        """The referrers API (distribution-spec 1.1): always an index, empty for an unknown subject."""
        if not _DIGEST.match(digest):
            raise _Error(400, "DIGEST_INVALID", f"invalid digest {digest!r}", digest)
        descriptors = self.server.referrers(name, digest)
        headers = {}
        wanted = self._param("artifactType")
        if wanted is not None:
            descriptors = [d for d in descriptors if d.get("artifactType") == wanted]
            headers["OCI-Filters-Applied"] = "artifactType"
        index = {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": descriptors}
        self._send(200, json.dumps(index).encode(), headers, content_type=mf.OCI_INDEX)

    # -- blobs ------------------------------------------------------------------------------

    def _blob(self, name: str, digest: str) -> int:
        if not _DIGEST.match(digest):
            raise _Error(400, "DIGEST_INVALID", f"invalid digest {digest!r}: sha256 or sha512 expected",
                         digest)
        if not self.server.linked(name, digest):
            raise _Error(404, "BLOB_UNKNOWN", "blob unknown to registry", digest)
        return self.server.blobs.size(digest)

    def blob_head(self, name: str, digest: str) -> None:
        size = self._blob(name, digest)
        self._send(200, b"", {"Content-Length": str(size), "Docker-Content-Digest": digest,
                              "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream",
                              "Etag": f'"{digest}"'}, content_type=None)

    def blob_get(self, name: str, digest: str) -> None:
        size = self._blob(name, digest)
        start, end, status = 0, size - 1, 200
        headers = {"Docker-Content-Digest": digest, "Accept-Ranges": "bytes", "Etag": f'"{digest}"',
                   "Content-Type": "application/octet-stream", "Cache-Control": "max-age=31536000"}
        wanted = self.headers.get("Range")
        if wanted:
            start, end = _byte_range(wanted, size)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["Content-Length"] = str(end - start + 1)
        self._send(status, b"", headers, content_type=None)
        with self.server.blobs.open(digest) as f:
            if end >= start:
                self.wfile.flush()
                self.connection.sendfile(f, start, end - start + 1)

    def blob_delete(self, name: str, digest: str) -> None:
        self._blob(name, digest)
        (self.server.repo(name) / "_layers" / digest[7:]).unlink(missing_ok=True)
        self._send(202)

    # -- uploads ----------------------------------------------------------------------------

    def _created(self, name: str, digest: str) -> None:
        self.server.link(name, digest)
        self._send(201, b"", {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest})

    def uploads_post(self, name: str) -> None:
        mount, source = self._param("mount"), self._param("from")
        # SPEC: a mount the registry cannot do (unknown blob, or a source the token does not let us
        # pull) starts an ordinary upload session instead (202), and nothing is linked.
        if mount and source and _DIGEST.match(mount) and self.server.linked(source, mount) and \
                self.may(source, "pull"):
            self._created(name, mount)
            return
        digest = self._param("digest")
        if digest is not None:   # single-request monolithic upload
            writer = self.server.blobs.writer()
            self._finish(name, writer, digest)
            return
        upload = str(uuid.uuid4())
        with self.server.lock:
            self.server.uploads[upload] = (name, self.server.blobs.writer())
        self._send(202, b"", self._session_headers(name, upload, 0))

    def _session_headers(self, name: str, upload: str, size: int) -> dict[str, str]:
        return {"Location": f"/v2/{name}/blobs/uploads/{upload}", "Docker-Upload-UUID": upload,
                "Range": f"0-{max(size - 1, 0)}"}

    def _session(self, name: str, upload: str) -> BlobWriter:
        with self.server.lock:
            found = self.server.uploads.get(upload)
        if found is None or found[0] != name:
            raise _Error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", upload)
        return found[1]

    def upload_get(self, name: str, uuid: str) -> None:
        writer = self._session(name, uuid)
        self._send(204, b"", self._session_headers(name, uuid, writer.size))

    def upload_patch(self, name: str, uuid: str) -> None:
        writer = self._session(name, uuid)
        content_range = self.headers.get("Content-Range")
        if content_range:
            match = re.fullmatch(r"(?:bytes )?(\d+)-(\d+)", content_range.strip())
            if not match or int(match[1]) != writer.size:
                raise _Error(416, "BLOB_UPLOAD_INVALID", f"Content-Range {content_range!r} does not continue "
                             f"the {writer.size} bytes received", headers=self._session_headers(name, uuid,
                                                                                                writer.size))
        self._append(writer, uuid)
        self._send(202, b"", self._session_headers(name, uuid, writer.size))

    def _append(self, writer: BlobWriter, upload: str) -> None:
        try:
            for chunk in self._body_chunks():
                writer.write(chunk)
        except (ConnectionError, TimeoutError):
            with self.server.lock:
                self.server.uploads.pop(upload, None)
            writer.abort()
            raise

    def upload_put(self, name: str, uuid: str) -> None:
        writer = self._session(name, uuid)
        with self.server.lock:
            self.server.uploads.pop(uuid, None)
        self._finish(name, writer, self._param("digest") or "")

    def _finish(self, name: str, writer: BlobWriter, digest: str) -> None:
        try:
            if not _DIGEST.match(digest):
                raise _Error(400, "DIGEST_INVALID",
                             "a digest parameter sha256:<hex> or sha512:<hex> is required", digest)
            for chunk in self._body_chunks():
                writer.write(chunk)
            try:
                writer.commit(digest)
            except DigestMismatch:
                raise _Error(400, "DIGEST_INVALID", "provided digest did not match uploaded content",
                             digest) from None
        finally:
            writer.abort()   # no-op once committed
        self._created(name, digest)

    def upload_delete(self, name: str, uuid: str) -> None:
        writer = self._session(name, uuid)
        with self.server.lock:
            self.server.uploads.pop(uuid, None)
        writer.abort()
        self._send(204)


def repository_dirs(root: Path) -> list[Path]:
    """The directories of the repositories stored under ``root`` (those with a ``_manifests``)."""
    base = root / "repositories"
    found = []
    for directory, dirs, _ in os.walk(base):
        if "_manifests" in dirs:
            found.append(Path(directory))
        dirs[:] = [d for d in dirs if not d.startswith("_")]
    return found


def _scope_needed(route: str, method: str, name: str | None) -> str | None:
    """The token scope a request needs: pull to read, push to write, delete to delete.

    The version check (``/v2/``) needs only a valid token; the catalog, registry:catalog:*.
    """
    if route == "base" or name is None:
        return "registry:catalog:*" if route == "catalog" else None
    if method in ("GET", "HEAD") and route not in ("upload", "uploads"):
        return f"repository:{name}:pull"
    if method == "DELETE" and route in ("manifest", "blob"):
        return f"repository:{name}:delete"
    return f"repository:{name}:pull,push"


def _byte_range(header: str, size: int) -> tuple[int, int]:
    """The first and last byte a ``Range`` header asks for: ``bytes=a-b``, ``bytes=a-`` or ``bytes=-n``.

    416 (with ``Content-Range: bytes */SIZE``) when it is malformed or starts past the end.
    See: RFC 9110 section 14.1.2 (byte ranges).
    """
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", header.strip())
    first, last = (match[1], match[2]) if match else ("", "")
    if first:
        start = int(first)
        end = min(size - 1, int(last)) if last else size - 1
        valid = start < size and (not last or int(last) >= start)
    else:   # a suffix: the last n bytes
        n = int(last) if last else 0
        start, end = max(0, size - n), size - 1
        valid = n > 0 and size > 0
    if not valid:
        raise _Error(416, "RANGE_INVALID", f"invalid range {header!r} for {size} bytes",
                     headers={"Content-Range": f"bytes */{size}"})
    return start, end


def _referrer_descriptor(document: dict[str, Any], media_type: str, digest: str, size: int) -> dict[str, Any]:
    """How the referrers API lists a manifest: its descriptor, artifactType and annotations.

    ``artifactType`` is the manifest's own, else its config's media type (the spec's rule for
    image manifests that carry an artifact in their config).
    """
    descriptor: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": size}
    artifact_type = document.get("artifactType") or (document.get("config") or {}).get("mediaType")
    if artifact_type:
        descriptor["artifactType"] = artifact_type
    if document.get("annotations"):
        descriptor["annotations"] = document["annotations"]
    return descriptor
