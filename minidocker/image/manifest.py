"""Manifests, configs and descriptors: the JSON documents of an image. Chapter 06.

::

    index / manifest list   platform -> manifest descriptor         (multi-arch images)
    manifest                config descriptor + layer descriptors   (its sha256 = the "digest" of the image)
    config                  runtime defaults + rootfs.diff_ids      (its sha256 = Docker's image ID)
    layer                   a (compressed) tar; its sha256 != its diff_id when compressed

A descriptor is ``{"mediaType", "digest", "size"}``: a typed, verifiable pointer.
Docker's schema2 and OCI's formats are the same shape with other media types.
See: https://github.com/opencontainers/image-spec (manifest.md, config.md, image-index.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence

from minidocker.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "DOCKER_CONFIG", "DOCKER_LAYER", "DOCKER_LAYER_GZIP", "DOCKER_LIST", "DOCKER_MANIFEST", "INDEX_TYPES",
    "MANIFEST_TYPES", "OCI_CONFIG", "OCI_INDEX", "OCI_LAYER", "OCI_LAYER_GZIP", "OCI_LAYER_ZSTD",
    "OCI_MANIFEST", "canonical_json", "descriptor", "history_entry", "new_config", "new_manifest",
    "now_rfc3339", "parse_manifest", "select_platform",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
OCI_LAYER_ZSTD = OCI_LAYER + "+zstd"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
LAYER_TYPES = (OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, DOCKER_LAYER, DOCKER_LAYER_GZIP,
               "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
               "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")


def canonical_json(obj: Any) -> bytes:
    """Compact JSON with sorted keys: the bytes minidocker hashes for documents it writes."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def descriptor(media_type: str, digest: str, size: int, annotations: Mapping[str, str] | None = None
               ) -> dict[str, Any]:
    d: dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": size}
    if annotations:
        d["annotations"] = dict(annotations)
    return d


def history_entry(created_by: str, comment: str = "", empty_layer: bool = False,
                  created: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"created": created or now_rfc3339(), "created_by": created_by}
    if comment:
        entry["comment"] = comment
    if empty_layer:
        entry["empty_layer"] = True
    return entry


def new_config(diff_ids: Sequence[str], runtime: Mapping[str, Any] | None = None,
               history: Sequence[Mapping[str, Any]] = (), created: str | None = None,
               architecture: str = "amd64", os_name: str = "linux") -> dict[str, Any]:
    """An image config (OCI and Docker agree on it): runtime defaults and the diff_ids, bottom first."""
    return {
        "architecture": architecture,
        "os": os_name,
        "created": created or now_rfc3339(),
        "config": dict(runtime or {}),
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [dict(h) for h in history],
    }


def new_manifest(config: Mapping[str, Any], layers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """An OCI image manifest for a config descriptor and layer descriptors (bottom first)."""
    return {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": dict(config),
            "layers": [dict(layer) for layer in layers]}


def parse_manifest(data: bytes, media_type: str | None = None) -> dict[str, Any]:
    """Check that ``data`` is an image manifest and return it. Raises InvalidArgument."""
    try:
        manifest = json.loads(data)
    except ValueError as err:
        raise InvalidArgument(f"failed to parse manifest: {err}") from None
    kind = manifest.get("mediaType") or media_type or OCI_MANIFEST
    if kind in INDEX_TYPES or "manifests" in manifest:
        return manifest
    if kind not in MANIFEST_TYPES or manifest.get("schemaVersion") != 2:
        raise InvalidArgument(f"unsupported manifest type {kind!r} "
                              f"(schemaVersion {manifest.get('schemaVersion')})",
                              hint="schema1 manifests are obsolete; re-push the image with a current docker")
    if not isinstance(manifest.get("config"), dict) or not isinstance(manifest.get("layers"), list):
        raise InvalidArgument("invalid manifest: config and layers are required")
    for layer in manifest["layers"]:
        if layer.get("mediaType") not in LAYER_TYPES:
            raise InvalidArgument(f"unsupported layer media type {layer.get('mediaType')!r}")
    return manifest


def select_platform(index: Mapping[str, Any], os_name: str = "linux", architecture: str = "amd64",
                    variant: str | None = None) -> Mapping[str, Any]:
    """The manifest descriptor of an index for this platform. Like docker pull's choice."""
    candidates = []
    for entry in index.get("manifests", []):
        platform = entry.get("platform")
        if platform is None:
            candidates.append(entry)   # an OCI layout's index: entries without platform
            continue
        if platform.get("os") == os_name and platform.get("architecture") == architecture and (
                variant is None or platform.get("variant") in (None, variant)):
            return entry
    if len(candidates) == 1:
        return candidates[0]
    raise InvalidArgument(f"no manifest for platform {os_name}/{architecture} in the index")
