"""Container filesystems: layers and overlay snapshots. Chapter 05.

    Snapshot.create(lowers, directory)   upper/ and work/ beside a merged rootfs/      overlay.py
    snapshot.mount() / unmount() / remove()
    apply_layer(tar, dir, overlay=...)    a layer tar into a directory, safely          layer.py
    write_layer_tar(upper, out)           an upper directory back into a layer tar      diff.py
    make_whiteout, set_opaque, ...        the two encodings of deletion                 whiteout.py
    changes.changes(upper, lowers)        what a container changed (docker diff)        changes.py
    extract_into(tar, dir)                a tar into an existing tree (docker cp)       layer.py
    TarSplitter, JoinedTar                a layer tar kept as its tree (chapter 06)     tarsplit.py

``layer`` and ``diff`` need tarfile, so they are imported on first use: ``run`` never
pays for them.
"""

from minidocker import lazy_attributes
from minidocker.storage.overlay import Snapshot, overlay_options

__all__ = ["LayerStats", "Snapshot", "UnsafeLayer", "apply_layer", "extract_into", "overlay_options",
           "write_layer_tar", "write_tree_tar"]

_LAZY = {"LayerStats": "layer", "UnsafeLayer": "layer", "apply_layer": "layer", "extract_into": "layer",
         "write_layer_tar": "diff", "write_tree_tar": "diff"}


__getattr__ = lazy_attributes(__name__, _LAZY)
