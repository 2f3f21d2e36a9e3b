"""OCI image layouts, in and out. Chapter 06.

A layout is what ``skopeo copy ... oci:DIR:TAG`` and ``umoci`` write::

    oci-layout        {"imageLayoutVersion": "1.0.0"}
    index.json        {"schemaVersion": 2, "manifests": [descriptor + annotations
                       {"org.opencontainers.image.ref.name": "TAG"}]}
    blobs/sha256/...  manifests, configs, layers (compressed as they were pushed)

The tag lives only in the ``ref.name`` annotation; a layout has no repository name,
so ``load`` takes one (``--name``, default: the layout's directory name), unless the
annotation is a full reference (containerd's ``io.containerd.image.name``).
Every blob read is hashed and compared to its descriptor before it is used.
See: https://github.com/opencontainers/image-spec/blob/main/image-layout.md
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

from minidocker.errors import DigestMismatch, InvalidArgument, NotFound
from minidocker.image import manifest as mf
from minidocker.image.blobs import check_digest, sha256_digest
from minidocker.image.reference import looks_like_id, parse_reference
from minidocker.image.store import ImageStore

__all__ = ["DirLayout", "REF_NAME", "TarLayout", "load_oci_layout", "open_layout", "save_oci_layout"]

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
LAYOUT = {"imageLayoutVersion": "1.0.0"}


class DirLayout:
    """An OCI layout in a directory."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def open(self, name: str) -> BinaryIO:
        try:
            return open(self.path / name, "rb")
        except FileNotFoundError:
            raise NotFound(f"invalid OCI layout {self.path}: {name} is missing") from None


class TarLayout:
    """An OCI layout inside a tar archive (``docker save`` of docker ≥ 25, ``skopeo oci-archive:``)."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar

    def open(self, name: str) -> BinaryIO:
        try:
            f = self.tar.extractfile(name)
        except KeyError:
            raise NotFound(f"invalid OCI archive: {name} is missing") from None
        if f is None:
            raise InvalidArgument(f"invalid OCI archive: {name} is not a file")
        return f


def open_layout(path: str | os.PathLike[str]) -> DirLayout:
    """The layout at ``path`` (a directory), checked for its ``oci-layout`` marker."""
    layout = DirLayout(path)
    with layout.open("oci-layout") as f:
        version = json.loads(f.read()).get("imageLayoutVersion")
    if version != "1.0.0":
        raise InvalidArgument(f"unsupported OCI layout version {version!r} in {path}")
    return layout


def _blob(layout: DirLayout | TarLayout, descriptor: dict[str, Any], limit: int = 4 << 20) -> bytes:
    """A small blob (manifest, config, index), verified against its descriptor."""
    digest = check_digest(descriptor.get("digest", ""))
    if descriptor.get("size", 0) > limit:
        raise InvalidArgument(f"refusing {digest}: {descriptor['size']} bytes is too large for a JSON "
                              "document")
    with layout.open(f"blobs/sha256/{digest[7:]}") as f:
        data = f.read(limit + 1)
    if sha256_digest(data) != digest or len(data) != descriptor.get("size", len(data)):
        raise DigestMismatch(f"failed to verify blob {digest}: it hashes to {sha256_digest(data)}, "
                             f"{len(data)} bytes")
    return data


def load_oci_layout(store: ImageStore, layout: DirLayout | TarLayout | str | os.PathLike[str],
                    name: str | None = None, ref_name: str | None = None) -> list[str]:
    """Load every image of an OCI layout (or only the one tagged ``ref_name``).

    Returns "Loaded image: NAME:TAG" lines.

    Raises:
        DigestMismatch, UnsafeLayer: a blob or layer fails its checks; nothing of it is kept.
    """
    if not isinstance(layout, (DirLayout, TarLayout)):
        path = Path(layout)
        name = name or _default_name(path)
        layout = open_layout(path)
    with layout.open("index.json") as f:
        index = json.loads(f.read())
    lines = []
    with store.lock("gc", shared=True):
        for entry in index.get("manifests", []):
            annotations = entry.get("annotations") or {}
            tag = annotations.get(REF_NAME)
            if ref_name is not None and tag != ref_name:
                continue
            reference = _reference_for(annotations, name)
            image = _load_manifest(store, layout, entry, [reference] if reference else [])
            lines.append(f"Loaded image: {parse_reference(reference).familiar}" if reference
                         else f"Loaded image ID: {image}")
    if not lines:
        raise NotFound(f"no image {'tagged ' + repr(ref_name) + ' ' if ref_name else ''}in the OCI layout")
    return lines


def _load_manifest(store: ImageStore, layout: DirLayout | TarLayout, entry: dict[str, Any],
                   tags: list[str]) -> str:
    data = _blob(layout, entry)
    document = mf.parse_manifest(data, entry.get("mediaType"))
    if "manifests" in document:                    # an index: choose our platform
        entry = dict(mf.select_platform(document))
        data = _blob(layout, entry)
        document = mf.parse_manifest(data, entry.get("mediaType"))
    config = _blob(layout, document["config"])
    diff_ids = json.loads(config).get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(document["layers"]):
        raise InvalidArgument(f"invalid image: {len(document['layers'])} layers for {len(diff_ids)} diff_ids")
    layers = []
    for descriptor, diff_id in zip(document["layers"], diff_ids):
        digest = check_digest(descriptor["digest"])
        with layout.open(f"blobs/sha256/{digest[7:]}") as blob:
            layers.append(store.ingest_layer(blob, digest=digest, size=descriptor.get("size"),
                                             media_type=descriptor.get("mediaType"), diff_id=diff_id))
    manifest_digest = sha256_digest(data)
    repo_digests = [f"{parse_reference(t).name}@{manifest_digest}" for t in tags]
    image = store.add_image(config, layers, tags=tags, manifest=data,
                            manifest_media_type=document.get("mediaType") or entry.get("mediaType")
                            or mf.OCI_MANIFEST, repo_digests=repo_digests)
    return image.id


def _reference_for(annotations: dict[str, str], name: str | None) -> str | None:
    full = annotations.get(CONTAINERD_NAME)
    if full:
        return full
    tag = annotations.get(REF_NAME)
    if tag and ("/" in tag or (":" in tag and not tag.startswith(":"))):
        return tag                                 # a full reference used as ref.name (docker ≥ 25)
    if tag is None:
        return None
    return f"{name or 'loaded'}:{tag}"


def _default_name(path: Path) -> str:
    base = path.name.split(".")[0].lower()
    return "".join(c for c in base if c.isalnum() or c in "-_") or "loaded"


def save_oci_layout(store: ImageStore, references: Sequence[str], dest: str | os.PathLike[str],
                    ref_names: Sequence[str] | None = None) -> None:
    """Write images as an OCI layout directory; its ``ref.name`` is each image's tag.

    Blobs are copied as stored, so layer digests (and compression) stay the same.
    An existing layout at ``dest`` gets the images added (and same ref.names replaced).
    """
    dest = Path(dest)
    (dest / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    from minidocker.atomic import write_json

    write_json(dest / "oci-layout", LAYOUT)
    index_path = dest / "index.json"
    if index_path.exists():
        index = json.loads(index_path.read_bytes())
    else:
        index = {"schemaVersion": 2, "manifests": []}
    for i, reference in enumerate(references):
        image_id = store.resolve(reference)
        manifest, media_type = store.manifest_of(image_id)
        digests = [image_id, sha256_digest(manifest)] + [layer.digest for layer in store.layers_of(image_id)]
        for digest in digests:
            target = dest / "blobs" / "sha256" / digest[7:]
            if not target.exists():
                _copy_blob(store, digest, target)
        tag = ref_names[i] if ref_names else _tag_of(reference)
        annotations = {REF_NAME: tag}
        if not looks_like_id(reference):
            annotations[CONTAINERD_NAME] = str(parse_reference(reference))
        index["manifests"] = [m for m in index["manifests"]
                              if (m.get("annotations") or {}).get(REF_NAME) != tag]
        index["manifests"].append(mf.descriptor(media_type or mf.OCI_MANIFEST, sha256_digest(manifest),
                                                len(manifest), annotations))
    write_json(index_path, index)


def _copy_blob(store: ImageStore, digest: str, target: Path) -> None:
    """Copy a blob out of the store (a rebuilt layer is checked as it is read), then rename."""
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    try:
        with store.open_blob(digest) as source, open(tmp, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        os.rename(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _tag_of(reference: str) -> str:
    if looks_like_id(reference):
        return "latest"
    return parse_reference(reference).tag or "latest"
