"""Artifacts attached to an image: an SBOM, a signature, found again through the referrers API.

OCI distribution 1.1 lets any manifest name another as its ``subject``. An artifact is an
image manifest whose ``artifactType`` says what it carries, whose config is the empty
descriptor (the two bytes ``{}``) and whose one layer is the file itself. The registry
indexes it under the subject, so ``GET /v2/<name>/referrers/<digest>`` finds every SBOM
or signature of an image without knowing their tags (what cosign and notation build on)::

    digest = attach("host:5000/app:v1", "application/spdx+json", sbom_bytes)
    referrers("host:5000/app:v1", artifact_type="application/spdx+json")   # [descriptor, ...]

See: https://github.com/opencontainers/image-spec/blob/v1.1.0/manifest.md#guidelines-for-artifact-usage
and distribution-spec 1.1, "Listing Referrers".
"""

from __future__ import annotations

import json
import urllib.parse

from minidocker.image import manifest as mf
from minidocker.image.blobs import sha256_digest
from minidocker.image.reference import parse_reference
from minidocker.registry.client import RegistryClient
from minidocker.registry.credentials import load_credentials

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

__all__ = ["EMPTY_MEDIA_TYPE", "attach", "referrers"]

EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
_EMPTY = b"{}"


def attach(reference: str, artifact_type: str, data: bytes, *, media_type: str | None = None,
           annotations: Mapping[str, str] | None = None, insecure_registries: Sequence[str] = ()) -> str:
    """Push ``data`` as an artifact whose subject is the image ``reference`` names; returns its digest.

    Like ``oras attach``. The artifact is pushed by digest, without a tag: it is found
    through its subject, never by name.
    """
    ref = parse_reference(reference)
    client = _client(ref.domain, ref.path, insecure_registries, push=True)
    try:
        subject = _descriptor_of(client, ref.path, ref.digest or ref.tag or "latest")
        layer_type = media_type or artifact_type
        for blob in (_EMPTY, data):
            _upload(client, ref.path, blob)
        document: dict[str, Any] = {
            "schemaVersion": 2, "mediaType": mf.OCI_MANIFEST, "artifactType": artifact_type,
            "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": sha256_digest(_EMPTY), "size": len(_EMPTY)},
            "layers": [{"mediaType": layer_type, "digest": sha256_digest(data), "size": len(data)}],
            "subject": subject,
        }
        if annotations:
            document["annotations"] = dict(annotations)
        manifest = json.dumps(document, separators=(",", ":")).encode()
        digest = sha256_digest(manifest)
        client.request("PUT", f"/v2/{ref.path}/manifests/{digest}", headers={"Content-Type": mf.OCI_MANIFEST},
                       body=manifest, expect=(201,), what=f"artifact manifest for {ref.familiar}")
        return digest
    finally:
        client.close()


def referrers(reference: str, *, artifact_type: str | None = None,
              insecure_registries: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The descriptors of the artifacts attached to the image ``reference`` names.

    Filtered by ``artifact_type`` here as well when the registry did not say it filtered
    (``OCI-Filters-Applied``): the spec lets a registry ignore the parameter.
    """
    ref = parse_reference(reference)
    client = _client(ref.domain, ref.path, insecure_registries, push=False)
    try:
        subject = _descriptor_of(client, ref.path, ref.digest or ref.tag or "latest")["digest"]
        query = f"?artifactType={urllib.parse.quote(artifact_type, safe='')}" if artifact_type else ""
        response = client.request("GET", f"/v2/{ref.path}/referrers/{subject}{query}",
                                  what=f"referrers of {ref.familiar}")
        found = response.json().get("manifests", [])
        if artifact_type and "artifactType" not in (response.header("OCI-Filters-Applied") or ""):
            found = [d for d in found if d.get("artifactType") == artifact_type]
        return found
    finally:
        client.close()


def _client(domain: str, repository: str, insecure_registries: Sequence[str], push: bool) -> RegistryClient:
    actions = "pull,push" if push else "pull"
    return RegistryClient(domain, credentials=load_credentials(domain),
                          scopes=[f"repository:{repository}:{actions}"],
                          insecure_registries=insecure_registries)


def _descriptor_of(client: RegistryClient, repository: str, reference: str) -> dict[str, Any]:
    """The subject descriptor of a manifest: HEAD gives its media type, digest and size."""
    head = client.request("HEAD", f"/v2/{repository}/manifests/{reference}",
                          headers={"Accept": ", ".join((mf.OCI_MANIFEST, mf.OCI_INDEX, mf.DOCKER_MANIFEST,
                                                        mf.DOCKER_LIST))},
                          what=f"manifest {repository}:{reference}")
    return {"mediaType": (head.header("Content-Type") or mf.OCI_MANIFEST).split(";")[0],
            "digest": head.header("Docker-Content-Digest"), "size": int(head.header("Content-Length") or 0)}


def _upload(client: RegistryClient, repository: str, data: bytes) -> None:
    digest = sha256_digest(data)
    if client.request("HEAD", f"/v2/{repository}/blobs/{digest}", expect=(200, 404)).status == 200:
        return
    client.request("POST", f"/v2/{repository}/blobs/uploads/?digest={digest}", body=data, expect=(201,),
                   what=f"blob {digest[7:19]}")
