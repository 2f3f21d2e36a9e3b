"""Bearer tokens for ``registry serve``: the token flow Docker Hub and registry 2.8 use, small enough to read.

A client that gets ``401`` with ``WWW-Authenticate: Bearer realm=…,service=…,scope=…``
asks the realm (the token server) for a token covering that scope, with its
credentials if it has some, and sends ``Authorization: Bearer <token>`` from then on.
The token is a JWT: a JSON header, JSON claims and a signature, each base64url-encoded
and joined by dots. Its ``access`` claim lists what it allows::

    {"iss": "minidocker-registry", "sub": "alice", "aud": "<service>", "exp": …,
     "access": [{"type": "repository", "name": "demo/app", "actions": ["pull", "push"]}]}

The registry checks the signature and that ``access`` covers the request: ``pull``
for GET/HEAD, ``push`` for uploads and manifest PUTs, ``delete`` for DELETE. Here the
token server is built into ``registry serve`` (``GET /token``) and signs with HMAC-SHA256
(HS256) under a secret only it knows; registry 2.8 verifies RS256/ES256 tokens of an
external server against its certificate instead.

See: https://distribution.github.io/distribution/spec/auth/token/ and /spec/auth/jwt/, RFC 7519 (JWT).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

__all__ = ["TokenIssuer", "covers", "parse_scope"]

_HEADER = {"alg": "HS256", "typ": "JWT"}


def parse_scope(scope: str) -> tuple[str, str, list[str]]:
    """``repository:demo/app:pull,push`` -> ``("repository", "demo/app", ["pull", "push"])``.

    The name may hold a colon (a registry host with a port): type is first, actions last.
    """
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name:
        raise ValueError(f"invalid scope {scope!r}: expected TYPE:NAME:ACTIONS")
    return kind, name, [a for a in actions.split(",") if a]


def covers(access: Sequence[dict[str, Any]], kind: str, name: str, action: str) -> bool:
    """Does a token's ``access`` claim allow ``action`` on ``kind:name``? ``*`` allows every action."""
    return any(entry.get("type") == kind and entry.get("name") == name
               and (action in entry.get("actions", ()) or "*" in entry.get("actions", ()))
               for entry in access)


class TokenIssuer:
    """Signs and verifies the registry's tokens with one HMAC secret (random unless given)."""

    def __init__(self, service: str, secret: bytes | None = None, issuer: str = "minidocker-registry",
                 lifetime: int = 300) -> None:
        self.service = service
        self.issuer = issuer
        self.lifetime = lifetime
        self._secret = secret or os.urandom(32)

    def issue(self, subject: str, access: list[dict[str, Any]]) -> str:
        """A token for ``subject`` (a user, or "" when anonymous) allowing ``access``."""
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "iat": now, "nbf": now - 1,
                  "exp": now + self.lifetime, "jti": os.urandom(8).hex(), "access": access}
        signing_input = f"{_encode(_HEADER)}.{_encode(claims)}"
        return f"{signing_input}.{_b64(self._sign(signing_input))}"

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token this issuer signed and that is valid now; ValueError otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            raise ValueError("malformed token")
        header, claims = _decode(parts[0]), _decode(parts[1])
        if header.get("alg") != "HS256":   # never let the token choose a weaker check ("none")
            raise ValueError(f"unsupported token algorithm {header.get('alg')!r}")
        if not hmac.compare_digest(_unb64(parts[2]), self._sign(f"{parts[0]}.{parts[1]}")):
            raise ValueError("bad token signature")
        now = time.time()
        if claims.get("iss") != self.issuer or claims.get("aud") != self.service:
            raise ValueError("token issued for another registry")
        if not claims.get("nbf", 0) <= now < claims.get("exp", 0):
            raise ValueError("token expired")
        return claims

    def _sign(self, signing_input: str) -> bytes:
        return hmac.new(self._secret, signing_input.encode(), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _encode(obj: dict[str, Any]) -> str:
    return _b64(json.dumps(obj, separators=(",", ":")).encode())


def _decode(text: str) -> dict[str, Any]:
    try:
        value = json.loads(_unb64(text))
    except ValueError as err:
        raise ValueError(f"malformed token: {err}") from None
    if not isinstance(value, dict):
        raise ValueError("malformed token")
    return value
