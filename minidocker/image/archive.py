"""``docker save`` / ``docker load`` archives. Chapter 06.

The format (docker 20.10 writes it, and reads skopeo's variant too)::

    manifest.json        [{"Config": "<id>.json", "RepoTags": ["busybox:latest"],
                           "Layers": ["<v1>/layer.tar"]}]
    repositories         {"busybox": {"latest": "<v1 id of the top layer>"}}
    <id>.json            the image config; <id> = sha256 of these bytes = the image ID
    <v1>/layer.tar       an UNCOMPRESSED layer: its sha256 is the diff_id
    <v1>/VERSION, json   legacy v1 metadata (<v1> here: the layer's chain ID)

``load`` follows ``manifest.json`` only (skopeo writes ``<diff_id>.tar`` at top level,
docker ≥ 25 ``blobs/sha256/...``); an archive with only an OCI ``index.json`` is read as
an OCI layout. Members of the archive are read, never extracted as they are: only the
layers go through the safe extractor.
See: https://github.com/moby/moby/blob/master/image/spec/v1.2.md
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import time
from collections.abc import Sequence
from typing import BinaryIO

from minidocker.errors import InvalidArgument, NotFound
from minidocker.image.blobs import sha256_digest
from minidocker.image.compression import NONE, PeekReader, decompress_reader, detect
from minidocker.image.reference import parse_reference
from minidocker.image.store import Image, ImageStore

__all__ = ["chain_ids", "load_archive", "save_archive"]


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """OCI ChainIDs: ``chain[0] = diff_id[0]``, ``chain[n] = sha256(chain[n-1] + " " + diff_id[n])``."""
    chains: list[str] = []
    for diff_id in diff_ids:
        chains.append(diff_id if not chains else sha256_digest(f"{chains[-1]} {diff_id}".encode()))
    return chains


def save_archive(store: ImageStore, references: Sequence[str], out: BinaryIO) -> None:
    """Write the images ``references`` name as a ``docker save`` tar to ``out``. Like ``docker save``."""
    entries, repositories, written = [], {}, set()
    mtime = time.time()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for reference in references:
            image_id = store.resolve(reference)
            config = store.blobs.read(image_id)
            tags = _tags_for(store, reference)
            layers = store.layers_of(image_id)
            chains = chain_ids([layer.diff_id for layer in layers])
            paths = []
            for index, (layer, chain) in enumerate(zip(layers, chains)):
                v1 = chain[7:]
                paths.append(f"{v1}/layer.tar")
                if v1 in written:
                    continue
                written.add(v1)
                _add_bytes(tar, f"{v1}/VERSION", b"1.0", mtime)
                legacy = {"id": v1, **({"parent": chains[index - 1][7:]} if index else {})}
                _add_bytes(tar, f"{v1}/json", json.dumps(legacy).encode(), mtime)
                info = tarfile.TarInfo(f"{v1}/layer.tar")
                info.size, info.mtime, info.mode = layer.diff_size, mtime, 0o644
                with store.open_blob(layer.digest) as blob:   # stored, or rebuilt from the tree
                    source = PeekReader(blob)
                    tar.addfile(info, decompress_reader(source, detect(source.peek(4))))
            if f"{image_id[7:]}.json" not in written:
                written.add(f"{image_id[7:]}.json")
                _add_bytes(tar, f"{image_id[7:]}.json", config, mtime)
            entries.append({"Config": f"{image_id[7:]}.json", "RepoTags": tags or None, "Layers": paths})
            for tag in tags:
                ref = parse_reference(tag)
                repositories.setdefault(ref.familiar_name, {})[ref.tag] = chains[-1][7:] if chains else ""
        _add_bytes(tar, "manifest.json", json.dumps(entries).encode(), mtime)
        if repositories:
            _add_bytes(tar, "repositories", json.dumps(repositories).encode(), mtime)


def load_archive(store: ImageStore, path: str | os.PathLike[str], name: str | None = None) -> list[str]:
    """Load a ``docker save`` tar (or an OCI layout tar). Returns docker's "Loaded image: ..." lines.

    Raises:
        DigestMismatch: a layer is not what the config's diff_ids say (nothing is kept).
        UnsafeLayer: a layer entry the extractor refuses (nothing is kept).
        InvalidArgument: not an image archive.
    """
    try:
        tar = tarfile.open(path, mode="r:*")
    except (tarfile.TarError, OSError) as err:
        raise InvalidArgument(f"failed to load {path}: not a tar archive ({err})") from None
    with tar:
        names = set(tar.getnames())
        if "manifest.json" not in names:
            if "index.json" in names:
                from minidocker.image.oci import TarLayout, load_oci_layout

                return load_oci_layout(store, TarLayout(tar), name=name or _stem(path))
            raise InvalidArgument(f"failed to load {path}: no manifest.json or index.json in the archive",
                                  hint="make one with 'minidocker save' or 'docker save'")
        manifest = json.loads(_read(tar, "manifest.json"))
        lines = []
        with store.lock("gc", shared=True):
            for entry in manifest:
                image = _load_entry(store, tar, entry)
                tags = entry.get("RepoTags") or []
                lines += [f"Loaded image: {parse_reference(t).familiar}" for t in tags] or \
                    [f"Loaded image ID: {image.id}"]
        return lines


def _load_entry(store: ImageStore, tar: tarfile.TarFile, entry: dict) -> Image:
    config = _read(tar, entry["Config"])
    diff_ids = json.loads(config).get("rootfs", {}).get("diff_ids", [])
    if len(diff_ids) != len(entry.get("Layers", [])):
        raise InvalidArgument(f"invalid archive: {len(entry.get('Layers', []))} layers for {len(diff_ids)} "
                              "diff_ids")
    layers = []
    for layer_path, diff_id in zip(entry["Layers"], diff_ids):
        with _open(tar, layer_path) as stream:
            compressed = detect(stream.read(4)) != NONE
            stream.seek(0)
            layers.append(store.ingest_layer(stream, diff_id=diff_id,
                                             digest=None if compressed else diff_id))
    return store.add_image(config, layers, tags=entry.get("RepoTags") or [])


def _read(tar: tarfile.TarFile, name: str) -> bytes:
    with _open(tar, name) as f:
        return f.read()


def _open(tar: tarfile.TarFile, name: str) -> BinaryIO:
    try:
        f = tar.extractfile(name)   # follows symlinks inside the archive (skopeo's <v1>/layer.tar)
    except KeyError:
        raise NotFound(f"invalid archive: it has no member {name!r}") from None
    if f is None:
        raise InvalidArgument(f"invalid archive: {name!r} is not a file")
    return f


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o644
    tar.addfile(info, io.BytesIO(data))


def _tags_for(store: ImageStore, reference: str) -> list[str]:
    """The name to record for ``reference``: itself if it is a name, none for an image ID."""
    try:
        ref = parse_reference(reference)
    except InvalidArgument:
        return []
    return [ref.familiar] if str(ref) in store.refs() else []


def _stem(path: str | os.PathLike[str]) -> str:
    base = os.path.basename(os.fspath(path)).split(".")[0].lower()
    return "".join(c for c in base if c.isalnum() or c in "-_") or "loaded"

