"""Images meet containers: ``commit``, ``export`` and ``rmi``. Chapters 05-06.

::

    commit_container("web", "myapp:v2")   the container's upper dir -> a new layer on its image
    export_container("web", out)          the container's merged filesystem as one tar
    remove_image("busybox")               refused while a container uses it (unless forced)

Export mounts the container's view again, read-only, in a private mount namespace of
a forked child (``lowerdir=upper:layers...``): the host never sees that mount and it
disappears with the child.
See: Documentation/filesystems/overlayfs.rst, mount_namespaces(7).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from minidocker.engine.container import Container, find_container, list_containers
from minidocker.errors import Conflict, NotFound
from minidocker.image import Image, ImageStore
from minidocker.image.reference import looks_like_id
from minidocker.paths import StateRoots, state_roots

__all__ = ["commit_container", "export_container", "remove_image"]


def _image_of(store: ImageStore, container: Container) -> Image:
    if container.image_id:
        return store.load_image(container.image_id)
    return store.get(container.image)


def commit_container(ref: str, reference: str | None = None, message: str = "", author: str = "",
                     roots: StateRoots | None = None) -> Image:
    """Make a new image of a container's changes on top of its image. Like ``docker commit``.

    The upper directory becomes one more layer (whiteouts and opaque directories in tar
    form); the config is the image's, with the new diff_id and a history entry.
    """
    import json

    from minidocker.image import manifest as mf
    from minidocker.storage.diff import write_layer_tar

    roots = roots or state_roots()
    store = ImageStore(roots.images)
    container = find_container(roots, ref)
    parent = _image_of(store, container)
    upper = container.directory(roots) / "upper"
    if not upper.is_dir():
        raise NotFound(f"container {container.id[:12]} has no filesystem left to commit")
    with store.lock("gc", shared=True), store.staging() as stage:
        tar_path = stage / "layer.tar"
        with open(tar_path, "wb") as out:
            write_layer_tar(upper, out)
        with open(tar_path, "rb") as source:
            layer = store.ingest_layer(source)
        config = json.loads(store.blobs.read(parent.id))
        config["rootfs"]["diff_ids"].append(layer.diff_id)
        config["created"] = mf.now_rfc3339()
        if author:
            config["author"] = author
        config.setdefault("history", []).append(
            mf.history_entry(f"minidocker commit {container.id[:12]} ({' '.join(container.command)[:60]})",
                             comment=message))
        layers = store.layers_of(parent.id) + [layer]
        return store.add_image(mf.canonical_json(config), layers, tags=[reference] if reference else [])


def export_container(ref: str, out: BinaryIO, roots: StateRoots | None = None) -> int:
    """Write a container's whole filesystem as a tar to ``out``. Like ``docker export``.

    Returns the number of bytes written.
    """
    from minidocker.forked import ChildFailed, call_in_child

    roots = roots or state_roots()
    container = find_container(roots, ref)
    image = _image_of(ImageStore(roots.images), container)
    directory = container.directory(roots)
    view = directory / "export"
    view.mkdir(exist_ok=True)
    out.flush()
    start = os.lseek(out.fileno(), 0, os.SEEK_CUR) if out.seekable() else 0
    try:
        written = call_in_child(_tar_view, [directory / "upper", *image.layers], view, out.fileno(), timeout=600)
    except ChildFailed as failed:
        raise failed.user_error(f"export container {container.id[:12]}") from None
    finally:
        view.rmdir()
    return written - start if out.seekable() else written


def _tar_view(lowers: list[Path], view: Path, fd: int) -> int:
    """In a forked child: private mount namespace, read-only overlay of ``lowers``, tar it to ``fd``."""
    from minidocker.linux import CloneFlag, MountFlag, mount, unshare
    from minidocker.rootfs import make_mounts_private
    from minidocker.storage.diff import write_tree_tar

    unshare(CloneFlag.CLONE_NEWNS)
    make_mounts_private()
    lowers = [p for p in lowers if p.is_dir()]
    if len(lowers) == 1:   # overlay needs two lowers without an upper: a bind mount does for one
        mount(lowers[0], view, None, MountFlag.MS_BIND)
    else:
        mount("overlay", view, "overlay", MountFlag.MS_RDONLY, "lowerdir=" + ":".join(os.fspath(p) for p in lowers))
    with os.fdopen(os.dup(fd), "wb") as out:
        write_tree_tar(view, out)
        out.flush()
        return out.tell() if out.seekable() else 0


def remove_image(reference: str, force: bool = False, roots: StateRoots | None = None) -> list[str]:
    """Remove an image (or one of its names). Like ``docker rmi``.

    Raises:
        Conflict: a container still uses the image and ``force`` is not set.
    """
    roots = roots or state_roots()
    store = ImageStore(roots.images)
    image_id = store.resolve(reference)
    names = [n for n, i in store.refs().items() if i == image_id]
    last_name = len(names) <= 1 or looks_like_id(reference)
    users = [c for c in list_containers(roots) if c.image_id == image_id]
    if users and last_name and not force:
        raise Conflict(f"unable to remove image {reference} (must be forced): image is being used by "
                       f"container {users[0].id[:12]}", hint=f"remove the container first: minidocker rm {users[0].name}")
    return store.remove(reference, force=force)
