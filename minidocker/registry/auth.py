"""Authentication challenges and tokens: what a 401 asks for and how to answer it. Chapter 07.

::

    GET /v2/library/busybox/manifests/latest          -> 401
    WWW-Authenticate: Bearer realm="https://auth.docker.io/token",service="registry.docker.io",
                      scope="repository:library/busybox:pull"
    GET https://auth.docker.io/token?service=registry.docker.io&scope=repository:library/busybox:pull
                                                      -> {"token": "<JWT>", "expires_in": 300}
    GET /v2/library/busybox/manifests/latest  Authorization: Bearer <JWT>   -> 200

``Basic`` challenges (htpasswd registries) are answered with ``base64(user:password)``
on every request instead. See: RFC 7235 (challenges), RFC 7617 (Basic),
https://distribution.github.io/distribution/spec/auth/token/
"""

from __future__ import annotations

import base64
import re

__all__ = ["Challenge", "basic_authorization", "merge_scopes", "parse_challenge", "parse_scope"]

# a token (scheme or parameter name), then '=' and a token or a quoted string with \-escapes
_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)')


class Challenge:
    """One ``WWW-Authenticate`` challenge: a scheme (lower case) and its parameters."""

    def __init__(self, scheme: str, params: dict[str, str]) -> None:
        self.scheme, self.params = scheme, params

    def __repr__(self) -> str:
        return f"Challenge({self.scheme!r}, {self.params!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Challenge) and (self.scheme, self.params) == (other.scheme, other.params)

    @property
    def scopes(self) -> list[str]:
        """The scopes asked for (several may be space-separated in one parameter)."""
        return self.params.get("scope", "").split()


def parse_challenge(header: str) -> Challenge:
    """Parse ``Bearer realm="…",service="…",scope="…"`` (or ``Basic realm="…"``).

    Quoted values may hold commas, colons and ``\\"``; names are case-insensitive.

    Raises:
        ValueError: not a challenge.
    """
    scheme, _, rest = header.strip().partition(" ")
    if not scheme or not re.fullmatch(r"[A-Za-z0-9_.-]+", scheme):
        raise ValueError(f"invalid authentication challenge {header!r}")
    params: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if match is None or match.end() == position:
            raise ValueError(f"invalid authentication challenge {header!r} at {rest[position:]!r}")
        name, quoted, plain = match.groups()
        params[name.lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else plain
        position = match.end()
    return Challenge(scheme.lower(), params)


def parse_scope(scope: str) -> tuple[str, str, list[str]]:
    """``repository:host/ns/name:pull,push`` -> (type, name, actions).

    The type ends at the first colon and the actions start after the last one: names
    may hold colons (a registry port), actions never do.
    """
    kind, _, rest = scope.partition(":")
    name, _, actions = rest.rpartition(":")
    if not kind or not name:
        raise ValueError(f"invalid scope {scope!r}: expected type:name:actions")
    return kind, name, [a for a in actions.split(",") if a]


def merge_scopes(*groups: list[str] | tuple[str, ...]) -> list[str]:
    """One scope per resource, with the union of the actions asked for it, in first-seen order."""
    merged: dict[tuple[str, str], list[str]] = {}
    for group in groups:
        for scope in group:
            kind, name, actions = parse_scope(scope)
            known = merged.setdefault((kind, name), [])
            known += [a for a in actions if a not in known]
    return [f"{kind}:{name}:{','.join(actions)}" for (kind, name), actions in merged.items()]


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` header value of Basic authentication. See: RFC 7617."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
