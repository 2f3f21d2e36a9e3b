"""``import``: a root filesystem tarball becomes a one-layer image. Chapter 06.

The tar (plain, gzip or zstd) is the layer: its blob is stored as it comes, the tar
inside is hashed into the diff_id and unpacked safely, and a config with an empty
runtime part and one history entry is written. Like ``docker import``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from minidocker.image import manifest as mf
from minidocker.image.store import Image, ImageStore

__all__ = ["import_tarball"]


def import_tarball(store: ImageStore, source: str | os.PathLike[str], reference: str | None = None,
                   message: str = "", runtime: dict | None = None, tags: Sequence[str] = ()) -> Image:
    """Import the tarball at ``source`` ("-" for stdin) as an image named ``reference``."""
    with store.lock("gc", shared=True):
        if os.fspath(source) == "-":
            layer = store.ingest_layer(sys.stdin.buffer)
        else:
            with open(source, "rb") as f:
                layer = store.ingest_layer(f)
        config = mf.new_config([layer.diff_id], runtime or {},
                               history=[mf.history_entry("minidocker import", comment=message
                                                         or f"Imported from {os.fspath(source)}")])
        names = [reference] if reference else []
        return store.add_image(mf.canonical_json(config), [layer], tags=[*names, *tags])
