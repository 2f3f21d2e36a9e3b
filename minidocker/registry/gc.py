"""Garbage collection for ``registry serve``'s storage: remove the blobs no manifest references.

Deleting a manifest or a blob link through the API frees no space: the bytes stay in
``blobs/``, perhaps shared with another repository. ``gc`` is a mark-and-sweep over the
whole storage, as registry 2.8's ``garbage-collect`` is:

1. mark: every manifest of every repository, and every blob its config and layers
   name (an index's children are manifests of the repository, marked in their turn);
2. sweep: every blob in ``blobs/`` that is not marked is deleted (``dry_run`` only lists
   them), with the repository links that point at it.

Run it while the registry is stopped: a push in progress has uploaded blobs that no
manifest references yet, and gc would take them.
See: https://distribution.github.io/distribution/about/garbage-collection/
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from minidocker.image.blobs import BlobStore
from minidocker.image.reference import DIGEST_PATTERN
from minidocker.registry.server import repository_dirs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["GcReport", "collect_garbage"]


class GcReport:
    """What a collection kept and removed (or would remove, on a dry run)."""

    def __init__(self, marked: set[str], removed: list[str], freed: int) -> None:
        self.marked = marked
        self.removed = removed
        self.freed = freed


def collect_garbage(root: str | os.PathLike[str], dry_run: bool = False) -> GcReport:
    """Mark what the manifests of ``root`` reference, delete the other blobs; see the module docstring."""
    root = Path(root)
    blobs = BlobStore(root / "blobs")
    marked = set()
    for repository in repository_dirs(root):
        for digest in _manifests(repository):
            if not blobs.exists(digest):
                continue
            marked.add(digest)
            marked.update(_references(blobs.read(digest)))
    removed, freed = [], 0
    for digest in blobs.digests():
        if digest in marked:
            continue
        removed.append(digest)
        freed += blobs.size(digest)
        if not dry_run:
            blobs.delete(digest)
            for repository in repository_dirs(root):
                (repository / "_layers" / digest[7:]).unlink(missing_ok=True)
    return GcReport(marked, removed, freed)


def _manifests(repository: Path) -> Iterator[str]:
    """The digests of a repository's manifests: file names are the hex part, its length the algorithm."""
    for name in os.listdir(repository / "_manifests"):
        yield f"sha256:{name}" if len(name) == 64 else f"sha512:{name}"


def _references(manifest: bytes) -> set[str]:
    """The blob digests a manifest's config and layers name (a foreign layer's too: none is stored)."""
    import re

    try:
        document = json.loads(manifest)
    except ValueError:
        return set()
    if isinstance(document, dict):
        descriptors = [document.get("config"), *(document.get("layers") or [])]
    else:
        descriptors = []
    pattern = re.compile(rf"^{DIGEST_PATTERN}$")
    return {d["digest"] for d in descriptors if isinstance(d, dict) and pattern.match(str(d.get("digest")))}
