"""Disk usage of images, containers, volumes and the build cache: ``docker system df``. Chapter 14.

::

    usage = disk_usage(roots)
    usage.layers_size          bytes of every stored layer, each counted once
    usage.images               image summaries with Containers (how many use it) and SharedSize
    usage.containers           (container, size_rw, size_root_fs): its upper directory, plus its image
    usage.volumes              (volume, size, ref_count)

Sizes are what dockerd counts: a layer is its unpacked tar size, a container's ``SizeRw``
the bytes of the non-directory entries of its overlay upper directory (hard links
once), a volume the bytes of its files. A layer two images share is in both images'
``Size`` and in their ``SharedSize``; ``docker system df -v`` prints Size - SharedSize as
the unique size. The legacy builder's cache is made of images, so BuildCache is empty.
See: docker-system-df(1), the Engine API reference "SystemDataUsage".
"""

from __future__ import annotations

import os
import stat

from minidocker.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from minidocker.paths import StateRoots

__all__ = ["DiskUsage", "disk_usage", "tree_size"]


class DiskUsage(Record):
    FIELDS = ("layers_size", "images", "containers", "volumes")

    def __init__(self, layers_size: int, images: list, containers: list, volumes: list) -> None:
        self.layers_size, self.images = layers_size, images
        self.containers, self.volumes = containers, volumes


def tree_size(path: str | os.PathLike[str]) -> int:
    """Bytes of the non-directory entries under ``path`` (lstat sizes, a hard-linked inode once)."""
    total, seen = 0, set()
    for parent, dirs, files in os.walk(path):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(parent, d))]:
            try:
                st = os.lstat(os.path.join(parent, name))
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) or (st.st_nlink > 1 and (st.st_dev, st.st_ino) in seen):
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def disk_usage(roots: StateRoots) -> DiskUsage:
    """Everything ``GET /system/df`` answers, read from the stores (no container is touched)."""
    from minidocker.engine.container import list_containers
    from minidocker.engine.images import image_summaries
    from minidocker.engine.volumes import _usage, volume_store
    from minidocker.image import ImageStore

    store = ImageStore(roots.images)
    containers = list_containers(roots)
    images = image_summaries(store, all_images=True)
    layer_sizes: dict[str, int] = {}
    layer_users: dict[str, int] = {}
    layers_of: dict[str, list[str]] = {}
    for summary in images:
        diff_ids = []
        for layer in store.layers_of(summary["Id"]):
            layer_sizes[layer.diff_id] = int(layer.diff_size or 0)
            layer_users[layer.diff_id] = layer_users.get(layer.diff_id, 0) + 1
            diff_ids.append(layer.diff_id)
        layers_of[summary["Id"]] = diff_ids
    size_of = {s["Id"]: s["Size"] for s in images}
    for summary in images:
        summary["Containers"] = sum(1 for c in containers if c.image_id == summary["Id"])
        summary["SharedSize"] = sum(layer_sizes[d] for d in layers_of[summary["Id"]] if layer_users[d] > 1)
    rows = []
    for c in containers:
        upper = c.directory(roots) / "upper"
        size_rw = tree_size(upper) if upper.is_dir() else 0
        rows.append((c, size_rw, size_rw + size_of.get(c.image_id or "", 0)))
    used = _usage(roots)
    volumes = [(v, tree_size(v.mountpoint) if os.path.isdir(v.mountpoint) else 0, len(used.get(v.name, [])))
               for v in volume_store(roots).list()]
    return DiskUsage(sum(layer_sizes.values()), images, rows, volumes)
