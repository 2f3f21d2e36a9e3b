"""``image inspect`` and ``history``: an image described from its config and record. Chapter 06."""

from __future__ import annotations

from typing import Any

from minidocker.image.reference import parse_reference
from minidocker.image.store import ImageStore

__all__ = ["image_history", "inspect_image"]


def inspect_image(store: ImageStore, reference: str) -> dict[str, Any]:
    """Docker's ``image inspect`` fields that minidocker knows (same names, same shapes)."""
    image_id = store.resolve(reference)
    image = store.load_image(image_id)
    record = store.record(image_id)
    doc = image.document
    names = sorted(n for n, i in store.refs().items() if i == image_id)
    return {
        "Id": image_id,
        "RepoTags": [parse_reference(n).familiar for n in names],
        "RepoDigests": [_familiar_digest(d) for d in record.get("repoDigests", [])],
        "Created": doc.get("created", ""),
        "Author": doc.get("author", ""),
        "Config": doc.get("config") or {},
        "Architecture": doc.get("architecture", ""),
        "Os": doc.get("os", ""),
        "Size": sum(layer["diffSize"] for layer in record["layers"]),
        "RootFS": {"Type": "layers", "Layers": doc.get("rootfs", {}).get("diff_ids", [])},
        "Manifest": {"Digest": record["manifest"], "MediaType": record.get("manifestMediaType", ""),
                     "Layers": [{"Digest": layer["digest"], "MediaType": layer["mediaType"],
                                 "Size": layer["size"]}
                                for layer in record["layers"]]},
        "GraphDriver": {"Name": "overlay", "Data": {"LowerDirs": [str(p) for p in image.layers]}},
    }


def _familiar_digest(text: str) -> str:
    name, _, digest = text.partition("@")
    return f"{parse_reference(name, default_tag=None).familiar_name}@{digest}"


def image_history(store: ImageStore, reference: str) -> list[dict[str, Any]]:
    """The history entries, newest first, each with the size of its layer (0 for empty ones)."""
    image_id = store.resolve(reference)
    doc = store.load_image(image_id).document
    sizes = iter(layer["diffSize"] for layer in store.record(image_id)["layers"])
    rows = []
    history = doc.get("history") or [{"created_by": ""} for _ in doc.get("rootfs", {}).get("diff_ids", [])]
    for entry in history:
        size = 0 if entry.get("empty_layer") else next(sizes, 0)
        rows.append({**entry, "size": size, "image": "<missing>"})
    rows.reverse()
    if rows:
        rows[0]["image"] = image_id[7:19]
    return rows
