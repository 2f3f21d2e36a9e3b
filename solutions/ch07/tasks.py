"""Chapter 07 reference solutions: a registry client by hand.

    parse_challenge(header)                         task 7.1  WWW-Authenticate -> (scheme, {realm, service, scope ...})
    pick_platform(index, os, architecture, variant) task 7.2  the manifest digest of one platform in an index
    download_verified(chunks, digest, dest)         task 7.3  write a blob while hashing it; keep it only if right
    fetch_manifest(address, repository, reference)  task 7.4  GET a manifest with http.client, Accept and digest check
    referrers_index(manifests, subject, artifact_type)  task 7.5  the referrers API's answer for a subject

See: RFC 7235 (challenges), the OCI image spec (image-index.md), the OCI distribution spec
(pulling manifests), https://distribution.github.io/distribution/spec/auth/token/
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
from collections.abc import Iterable
from pathlib import Path
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
    scheme, _, rest = header.strip().partition(" ")
    if not scheme or not scheme.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"not a challenge: {header!r}")
    params: dict[str, str] = {}
    i, rest = 0, rest.strip()
    while i < len(rest):
        eq = rest.find("=", i)
        if eq < 0:
            raise ValueError(f"not a challenge: {header!r}")
        name = rest[i:eq].strip().lower()
        i = eq + 1
        while i < len(rest) and rest[i] == " ":
            i += 1
        if i < len(rest) and rest[i] == '"':
            value, i = [], i + 1
            while True:
                if i >= len(rest):
                    raise ValueError(f"unterminated quoted string in {header!r}")
                if rest[i] == "\\" and i + 1 < len(rest):
                    value.append(rest[i + 1])
                    i += 2
                elif rest[i] == '"':
                    i += 1
                    break
                else:
                    value.append(rest[i])
                    i += 1
            params[name] = "".join(value)
        else:
            end = rest.find(",", i)
            end = len(rest) if end < 0 else end
            params[name] = rest[i:end].strip()
            i = end
        while i < len(rest) and rest[i] in " ,":
            i += 1
    return scheme.lower(), params


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
    offered = []
    for entry in index.get("manifests", []):
        platform = entry.get("platform")
        if not platform:
            continue
        offered.append("/".join(filter(None, (platform.get("os"), platform.get("architecture"),
                                              platform.get("variant")))))
        if platform.get("os") == os_name and platform.get("architecture") == architecture and (
                variant is None or platform.get("variant") in (None, variant)):
            return entry["digest"]
    wanted = "/".join(filter(None, (os_name, architecture, variant)))
    raise LookupError(f"no manifest for {wanted}; the index has {', '.join(offered) or 'none'}")


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
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
    h = hashlib.sha256()
    size = 0
    try:
        with open(tmp, "xb") as f:
            for chunk in chunks:
                h.update(chunk)
                f.write(chunk)
                size += len(chunk)
            f.flush()
            os.fsync(f.fileno())
        found = "sha256:" + h.hexdigest()
        if found != digest:
            raise ValueError(f"blob does not match its digest: expected {digest}, found {found}")
        os.rename(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return size


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
    conn = http.client.HTTPConnection(address, timeout=10)
    try:
        conn.request("GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status == 404:
        raise LookupError(f"manifest {repository}:{reference} not found")
    if response.status != 200:
        raise RuntimeError(f"GET manifest {repository}:{reference}: HTTP {response.status}")
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    expected = reference if reference.startswith("sha256:") else response.getheader("Docker-Content-Digest")
    if expected and expected != digest:
        raise ValueError(f"manifest {repository}:{reference} hashes to {digest}, expected {expected}")
    media_type = (response.getheader("Content-Type") or "").split(";")[0].strip()
    return json.loads(body), media_type, digest


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
    found = []
    for data in manifests:
        document = json.loads(data)
        if (document.get("subject") or {}).get("digest") != subject:
            continue
        descriptor = {"mediaType": document.get("mediaType"), "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
                      "size": len(data)}
        kind_of = document.get("artifactType") or (document.get("config") or {}).get("mediaType")
        if kind_of:
            descriptor["artifactType"] = kind_of
        if document.get("annotations"):
            descriptor["annotations"] = document["annotations"]
        if artifact_type is None or descriptor.get("artifactType") == artifact_type:
            found.append(descriptor)
    return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": found}
