"""Chapter 07 exercises: a registry client by hand. Fill in the five functions.

Read exercises/ch07/README.md first; grade with ``make grade CH=07`` (or ``TASK=7_3``).

    parse_challenge(header)                         task 7.1  WWW-Authenticate -> (scheme, {realm, service, scope ...})
    pick_platform(index, os, architecture, variant) task 7.2  the manifest digest of one platform in an index
    download_verified(chunks, digest, dest)         task 7.3  write a blob while hashing it; keep it only if right
    fetch_manifest(address, repository, reference)  task 7.4  GET a manifest with http.client, Accept and digest check
    referrers_index(manifests, subject, artifact_type)  task 7.5  the referrers API's answer for a subject

See: RFC 7235 (challenges), the OCI image spec (image-index.md), the OCI distribution spec
(pulling manifests), https://distribution.github.io/distribution/spec/auth/token/
"""

from __future__ import annotations

import hashlib  # noqa: F401
import http.client  # noqa: F401
import json  # noqa: F401
import os
from collections.abc import Iterable
from pathlib import Path  # noqa: F401
from typing import Any

__all__ = ["download_verified", "fetch_manifest", "parse_challenge", "pick_platform", "referrers_index"]

ACCEPT = ", ".join((
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json"))


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """Split a ``WWW-Authenticate`` header into its scheme (lower case) and parameters.

    ``Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"``
    -> ``("bearer", {"realm": ..., "service": ..., "scope": "repository:library/busybox:pull"})``.
    Values may be quoted (and then hold commas, colons, spaces and ``\\"``) or bare tokens;
    parameter names are case-insensitive (return them lower case). Raise ``ValueError`` for a
    header that is not a challenge (no scheme, an unterminated quote).

    Hint: walk the string with an index: name, ``=``, then a quoted string or a token, then ``,``.
    Questions: why can't you simply ``split(",")``? What does the ``scope`` ask for on a push?

    See: RFC 7235 section 4.1, RFC 6750 section 3
    """
    # TODO(task 7.1): walk the header: scheme, then name=value pairs, quoted or not
    raise NotImplementedError("task 7.1: walk the header: scheme, then name=value pairs, quoted or not")


def pick_platform(index: dict[str, Any], os_name: str, architecture: str, variant: str | None = None) -> str:
    """The digest of the manifest for one platform in an image index (or Docker manifest list).

    An entry matches when its ``platform`` has the same ``os`` and ``architecture`` and, if
    ``variant`` is given, the same ``variant`` or none at all. Entries without ``platform``
    (attestations, an OCI layout's tags) never match. Raise ``LookupError`` naming the
    platforms the index offers when none matches.

    Hint: ``"/".join(filter(None, (os, arch, variant)))`` gives Docker's spelling.
    Questions: what would ``docker pull`` do on a Raspberry Pi (linux/arm/v7) with this index?

    See: https://github.com/opencontainers/image-spec/blob/main/image-index.md
    """
    # TODO(task 7.2): find the entry whose platform matches, else LookupError listing the others
    raise NotImplementedError("task 7.2: find the entry whose platform matches, else LookupError listing the others")


def download_verified(chunks: Iterable[bytes], digest: str, dest: str | os.PathLike[str]) -> int:
    """Write a blob arriving in ``chunks`` to ``dest``, hashing it on the way; returns its size.

    ``dest`` must appear only if the bytes hash to ``digest`` (``sha256:<hex>``), and then
    complete: write a temporary file beside it, then ``os.rename``. On a mismatch, or if the
    chunks raise (a dropped connection), remove the temporary file and raise (``ValueError``
    for the mismatch). Never hold the whole blob in memory.

    Hint: ``hashlib.sha256()`` and ``.update(chunk)``; ``os.fsync`` before the rename.
    Questions: why not hash the file after writing it? What would a reader of ``dest`` see
    if you wrote ``dest`` directly and the connection dropped halfway?

    See: rename(2), https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests
    """
    # TODO(task 7.3): hash while writing a temporary file, rename only if the digest matches
    raise NotImplementedError("task 7.3: hash while writing a temporary file, rename only if the digest matches")


def fetch_manifest(address: str, repository: str, reference: str) -> tuple[dict[str, Any], str, str]:
    """GET ``/v2/<repository>/manifests/<reference>`` from the plain-HTTP registry at ``address``.

    Send an ``Accept`` header listing the four manifest types (OCI manifest and index,
    Docker schema 2 manifest and manifest list: without them a registry may answer with an
    old schema 1 or a 404). Check the bytes: their sha256 must equal the reference when it
    is a digest, else the ``Docker-Content-Digest`` header. Return (the parsed manifest, its
    media type from ``Content-Type``, its digest). Raise ``LookupError`` on a 404 and
    ``ValueError`` on a digest mismatch.

    Hint: ``http.client.HTTPConnection(address)``, ``conn.request("GET", path, headers=...)``,
    ``conn.getresponse()``; hash ``response.read()`` before ``json.loads``.
    Questions: why hash the bytes rather than ``json.dumps(manifest)``? What does the
    registry answer without ``Accept``?

    See: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
    """
    # TODO(task 7.4): GET with Accept, hash the bytes, compare with the digest
    raise NotImplementedError("task 7.4: GET with Accept, hash the bytes, compare with the digest")


def referrers_index(manifests: list[bytes], subject: str, artifact_type: str | None = None) -> dict[str, Any]:
    """The answer of ``GET /v2/<name>/referrers/<subject>``: an image index of the manifests pointing at ``subject``.

    ``manifests`` are the raw bytes of every manifest pushed to the repository, in push order.
    A manifest refers to ``subject`` when its ``subject.digest`` is that digest. Each one is
    listed as a descriptor: ``mediaType`` (the manifest's own), ``digest`` (sha256 of the exact
    bytes), ``size``, ``artifactType`` (the manifest's ``artifactType``, else its config's
    ``mediaType``; left out if neither) and ``annotations`` (if it has some). With
    ``artifact_type``, only the descriptors of that type are kept. The index is
    ``{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [...]}``,
    with an empty list when nothing refers to the subject (never a 404).

    Hint: hash the bytes you were given, never ``json.dumps`` of what you parsed: the digest names bytes.
    Questions: why can a signature be pushed before the image it signs?

    See: https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-referrers
    """
    # TODO(task 7.5): parse each manifest, keep those whose subject matches, describe them
    raise NotImplementedError("task 7.5: parse each manifest, keep those whose subject matches, describe them")
