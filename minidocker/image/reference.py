"""Image references and Docker's normalisation rules. Chapter 06.

::

    busybox                       -> docker.io/library/busybox:latest
    library/busybox:1.36          -> docker.io/library/busybox:1.36
    docker.io/library/busybox     -> docker.io/library/busybox:latest
    host:5000/ns/name:tag         -> host:5000/ns/name:tag      (a domain has '.' or ':', or is localhost)
    name@sha256:<64 hex>          -> docker.io/library/name@sha256:...  (no tag added)

The first component is a registry domain only if it contains '.' or ':' or is
``localhost``; otherwise the domain is docker.io, and a one-component name gets
``library/``. The "familiar" form drops both again, as ``docker images`` shows it.
See: https://github.com/distribution/reference (normalize.go, regexp.go).
"""

from __future__ import annotations

import re

from minidocker.errors import InvalidArgument

__all__ = ["DEFAULT_DOMAIN", "DIGEST_PATTERN", "Reference", "id_prefix", "is_full_id", "looks_like_id",
           "parse_reference"]

DEFAULT_DOMAIN = "docker.io"
_LEGACY_DOMAINS = ("index.docker.io", "registry-1.docker.io")
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_DOMAIN = re.compile(r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)"        # a host name: labels
                     r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                     r"(?::[0-9]+)?$|^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$")      # a port; or [IPv6]
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
# The registered digest algorithms and the length of their lower-case hex encoding
# (blobs.py, the registry and references share it). See: image-spec descriptor.md, "Registered algorithms".
DIGEST_PATTERN = r"(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})"
_DIGEST = re.compile(rf"^{DIGEST_PATTERN}$")
_HEX64 = re.compile(r"^[a-f0-9]{64}$")


class Reference:
    """A normalised reference: ``domain/path[:tag][@digest]`` (immutable, compares by value)."""

    __slots__ = ("digest", "domain", "path", "tag")

    def __init__(self, domain: str, path: str, tag: str | None = None, digest: str | None = None) -> None:
        self.domain, self.path, self.tag, self.digest = domain, path, tag, digest

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Reference) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __repr__(self) -> str:
        return f"Reference({str(self)!r})"

    @property
    def name(self) -> str:
        """The full repository name: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The short name ``docker images`` shows: ``busybox``, ``user/app``, ``host:5000/app``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        return self.path.removeprefix("library/") if self.path.count("/") == 1 else self.path

    @property
    def familiar(self) -> str:
        """``busybox:latest``: the familiar name with the tag (or digest)."""
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        return (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()


def parse_reference(reference: str, default_tag: str | None = "latest") -> Reference:
    """Parse and normalise ``reference`` the way ``docker pull`` does.

    Args:
        default_tag: the tag for a reference with neither tag nor digest (None: leave it).

    Raises:
        InvalidArgument: "invalid reference format" with the reason.
    """
    text = reference.strip()
    if not text:
        raise InvalidArgument("invalid reference format: empty reference")
    if _HEX64.match(text):
        raise InvalidArgument(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.match(digest):
            raise InvalidArgument(f"invalid reference format: bad digest {digest!r}",
                                  hint="a digest is sha256: and 64, or sha512: and 128, lower-case hex "
                                       "digits")
    tag = None
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1:]
        if not _TAG.match(tag):
            raise InvalidArgument(f"invalid reference format: bad tag {tag!r} in {reference!r}")
    domain, remainder = _split_domain(text)
    if remainder.lower() != remainder:
        raise InvalidArgument(f"invalid reference format: repository name ({remainder}) must be lowercase")
    if not remainder or not all(_COMPONENT.match(c) for c in remainder.split("/")):
        raise InvalidArgument(f"invalid reference format: {reference!r}",
                              hint="a name is lower-case letters, digits and separators, like busybox:latest")
    if len(domain) + 1 + len(remainder) > 255:
        raise InvalidArgument("invalid reference format: repository name longer than 255 characters")
    if tag is None and digest is None:
        tag = default_tag
    return Reference(domain, remainder, tag, digest)


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or (not any(c in first for c in ".:") and first != "localhost" and first.lower() == first):
        domain, remainder = DEFAULT_DOMAIN, name
    else:
        if not _DOMAIN.match(first):
            raise InvalidArgument(f"invalid reference format: bad registry domain {first!r}")
        domain, remainder = first, rest
    if domain in _LEGACY_DOMAINS:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = f"library/{remainder}"
    return domain, remainder


# -- image IDs: the one place that tells an ID from a name ---------------------------------------

_HEX = frozenset("0123456789abcdef")


def is_full_id(text: str) -> bool:
    """``sha256:`` and 64 lower-case hex digits: an image ID as the store writes it."""
    return len(text) == 71 and text.startswith("sha256:") and _HEX.issuperset(text[7:])


def looks_like_id(reference: str) -> bool:
    """``sha256:...`` or 64 hex digits: an image ID, never a name to pull (docker's rule).

    A shorter hex string (``3f2a9c``) is also a valid repository name: the store tries it
    as a name first, then as an ID prefix (:func:`id_prefix`).
    """
    return reference.startswith("sha256:") or (len(reference) == 64 and _HEX.issuperset(reference))


def id_prefix(reference: str) -> str | None:
    """The hex digits of ``reference`` if it can name an image by ID prefix (4 digits at least)."""
    prefix = reference.removeprefix("sha256:")
    return prefix if 4 <= len(prefix) <= 64 and _HEX.issuperset(prefix) else None
