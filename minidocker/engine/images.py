"""Images meet containers: the local lookup, ``commit``, ``export`` and ``rmi``. Chapters 05-06.

::

    local_image(store, "busybox")         the image to use; the built-in busybox is made on first use
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

from minidocker.engine.container import Container, find_container, list_containers
from minidocker.errors import Conflict, ImageNotFound, NotFound
from minidocker.image import Image, ImageStore
from minidocker.image.reference import looks_like_id, parse_reference
from minidocker.paths import StateRoots, state_roots

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = ["ImageSummaryCache", "commit_container", "export_container", "find_image_id", "image_details",
           "image_summaries", "local_image", "names_default_image", "remove_image", "unix_seconds",
           "with_default_image"]


def local_image(store: ImageStore, reference: str) -> Image:
    """The local image ``reference`` names, for anything that uses one (run, create, build's FROM, the
    daemon).

    The one place of the rule "``busybox`` is built in": when the store has no ``busybox:latest``
    it is made from the host's static busybox (image/busybox.py), so a first container needs no
    registry. Any other missing image stays ``ImageNotFound`` (``run`` then pulls it).

    Raises:
        ImageNotFound: no such image here, and it is not the built-in one.
        NotFound: busybox is not installed on the host, or the store is damaged.
    """
    try:
        return store.get(reference)   # the hot path: a name that is here
    except ImageNotFound:
        if not names_default_image(reference):
            raise
    from minidocker.image.busybox import create_busybox

    return create_busybox(store)


def names_default_image(reference: str) -> bool:
    """Does ``reference`` name the built-in image (``busybox``, ``busybox:latest``,
    ``docker.io/library/busybox``)?"""
    from minidocker.image.busybox import DEFAULT_IMAGE

    return not looks_like_id(reference) and str(parse_reference(reference)) == DEFAULT_IMAGE


def with_default_image(store: ImageStore, references: list[str] | tuple[str, ...]) -> ImageStore:
    """``store``, the built-in busybox made first if ``references`` name it and it is not there yet.

    For the commands that read images by name without running them (tag, inspect, history,
    save, push): ``minidocker tag busybox mine`` works on a fresh machine, as ``run`` does.
    """
    for reference in references:
        if names_default_image(reference):
            local_image(store, reference)
    return store


def _image_of(store: ImageStore, container: Container) -> Image:
    if container.image_id:
        return store.load_image(container.image_id)
    return local_image(store, container.image)


def commit_container(ref: str, reference: str | None = None, message: str = "", author: str = "",
                     roots: StateRoots | None = None) -> Image:
    """Make a new image of a container's changes on top of its image. Like ``docker commit``.

    The upper directory becomes one more layer (whiteouts and opaque directories in tar
    form); the config is the image's, with the new diff_id and a history entry.
    """
    import json

    from minidocker.image import manifest as mf

    roots = roots or state_roots()
    store = ImageStore(roots.images)
    container = find_container(roots, ref)
    parent = _image_of(store, container)
    upper = container.directory(roots) / "upper"
    if not upper.is_dir():
        raise NotFound(f"container {container.id[:12]} has no filesystem left to commit")
    with store.lock("gc", shared=True):
        layer = store.add_upper_layer(upper)
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
        written = call_in_child(_tar_view, [directory / "upper", *image.layers], view, out.fileno(),
                                timeout=600)
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
        mount("overlay", view, "overlay", MountFlag.MS_RDONLY,
              "lowerdir=" + ":".join(os.fspath(p) for p in lowers))
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
                       f"container {users[0].id[:12]}",
                       hint=f"remove the container first: minidocker rm {users[0].name}")
    return store.remove(reference, force=force)


# -- what the Engine API shows of images (api/images.py) ------------------------------------------

def find_image_id(store: ImageStore, reference: str, make_default: bool = True) -> str:
    """The image ID ``reference`` names, or ImageNotFound in dockerd's words
    ("No such image: busybox:latest").

    ``make_default``: the built-in busybox is made if named and missing (``local_image``); not
    for ``rmi``, which has nothing to remove then.
    """
    try:
        if make_default:
            with_default_image(store, [reference])
        return store.resolve(reference)
    except ImageNotFound:
        shown = reference if looks_like_id(reference) else parse_reference(reference).familiar
        if not looks_like_id(reference) and ":" not in shown.rpartition("/")[2] and "@" not in shown:
            shown += ":latest"
        raise ImageNotFound(f"No such image: {shown}") from None


def image_summaries(store: ImageStore, all_images: bool = False, filters: dict[str, list[str]] | None = None,
                    digests: bool = False) -> list[dict]:
    """``GET /images/json``: one entry per image (not per tag), its tags in RepoTags. Like dockerd.

    ``Created`` and ``Size`` are integers (the docker CLI refuses anything else); an image
    without a name has ``RepoTags: ["<none>:<none>"]``, hidden from ``docker images`` unless ``-a``.
    """
    import fnmatch

    from minidocker.image.reference import parse_reference

    filters = filters or {}
    by_id: dict[str, list[str]] = {}
    for name, image_id in sorted(store.refs().items()):
        by_id.setdefault(image_id, []).append(parse_reference(name).familiar)
    summaries = []
    for image in store.list():
        if any(s["Id"] == image.id for s in summaries):
            continue
        tags = by_id.get(image.id, [])
        record = store.record(image.id)
        labels = (image.config or {}).get("Labels") or {}
        if "dangling" in filters and (filters["dangling"][0].lower() in ("1", "true")) != (not tags):
            continue
        if "reference" in filters and not any(fnmatch.fnmatch(t, pattern) or
                                              fnmatch.fnmatch(t.rpartition(":")[0], pattern)
                                              for t in tags for pattern in filters["reference"]):
            continue
        if "label" in filters and not all(_label_matches(labels, wanted) for wanted in filters["label"]):
            continue
        summaries.append({
            "Id": image.id, "ParentId": record.get("parent", ""), "RepoTags": tags or ["<none>:<none>"],
            "RepoDigests": [d for d in record.get("repoDigests", [])] or ([] if tags else ["<none>@<none>"]),
            "Created": unix_seconds(image.document.get("created")), "Size": int(image.size),
            "SharedSize": -1, "VirtualSize": int(image.size), "Labels": labels or None, "Containers": -1,
        })
    for key in ("before", "since"):
        if key in filters:
            pivot = unix_seconds(store.load_image(store.resolve(filters[key][0])).document.get("created"))
            summaries = [s for s in summaries
                         if (s["Created"] < pivot if key == "before" else s["Created"] > pivot)]
    if not all_images:
        summaries = [s for s in summaries
                     if s["RepoTags"] != ["<none>:<none>"] or not _is_intermediate(store, s)]
    return sorted(summaries, key=lambda s: -s["Created"])


class ImageSummaryCache:
    """``GET /images/json`` answers kept per state of an image store, for minidockerd.

    50 images took ~10 ms of reading 200 JSON files; an unchanged store is answered from memory.
    The state is what changes when any image or name does, whoever changes it (the daemon, a
    direct-mode ``minidocker load`` or ``rmi``, a build): repositories.json and the files in
    imagedb/ are replaced by rename (atomic.write_json), which gives the file a new inode and the
    directory a new mtime; image configs and layers are content-addressed and never change. An
    mtime moves in ticks of the kernel's coarse clock (a few ms), so a change in the tick the
    state was read in leaves it as it was: a state younger than ``SETTLE_NS`` is not kept (it is
    read again next time), as git does with a "racily clean" index entry. Each answer is a new
    list; its dicts are shared, not to be changed. Thread-safe for the daemon's handler threads
    (one dict, GIL-atomic steps; a race costs a reading at most).
    """

    SETTLE_NS = 50_000_000
    SIZE = 32   # answers kept (one per combination of all, digests, filters): then all are dropped

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.store = ImageStore(root)
        self._answers: dict[tuple, list[dict]] = {}

    def summaries(self, all_images: bool = False, filters: dict[str, list[str]] | None = None,
                  digests: bool = False) -> list[dict]:
        """:func:`image_summaries` of the store, read again only when the store changed."""
        import json

        state = self._state()
        key = (state, all_images, digests, json.dumps(filters or {}, sort_keys=True))
        found = self._answers.get(key) if state is not None else None
        if found is None:
            found = image_summaries(self.store, all_images=all_images, filters=filters, digests=digests)
            if state is not None and state == self._state() and self._settled(state):
                if len(self._answers) >= self.SIZE:
                    self._answers.clear()
                self._answers[key] = found
        return list(found)

    def _state(self) -> tuple | None:
        """repositories.json's (inode, mtime, size) and imagedb/'s (inode, mtime); None: no store yet."""
        try:
            refs = os.stat(self.store.root / "repositories.json")
            imagedb = os.stat(self.store.root / "imagedb")
        except FileNotFoundError:
            return None
        return refs.st_ino, refs.st_mtime_ns, refs.st_size, imagedb.st_ino, imagedb.st_mtime_ns

    def _settled(self, state: tuple) -> bool:
        """Is the state's newest mtime older than a clock tick, so any later change moves it?"""
        import time

        return time.time_ns() - max(state[1], state[4]) > self.SETTLE_NS


def image_details(store: ImageStore, image_id: str) -> dict:
    """``GET /images/{name}/json``: Docker's image inspect, from image/inspect.py plus what clients read."""
    from minidocker.image.inspect import inspect_image

    details = inspect_image(store, image_id)
    record = store.record(image_id)
    doc = store.load_image(image_id).document
    details.update({
        "Created": details["Created"] or _GO_ZERO_TIME,   # the docker CLI parses it: "" is an error
        "Parent": record.get("parent", ""), "Comment": (doc.get("history") or [{}])[-1].get("comment", ""),
        "Container": "", "ContainerConfig": doc.get("container_config") or {}, "DockerVersion": "",
        "Variant": doc.get("variant", ""), "VirtualSize": details["Size"],
        "Metadata": {"LastTagTime": _GO_ZERO_TIME},
    })
    lowers = details["GraphDriver"]["Data"]["LowerDirs"]   # Docker's Data is a map of strings
    details["GraphDriver"] = {"Name": "overlay2", "Data": {"LowerDir": ":".join(lowers)}}
    return details


_GO_ZERO_TIME = "0001-01-01T00:00:00Z"   # how dockerd writes a time it does not have


def _is_intermediate(store: ImageStore, summary: dict) -> bool:
    """An untagged image that is some image's parent (a build's step): ``docker images -a`` only."""
    return any(store.record(i).get("parent") == summary["Id"] for i in store.refs().values())


def _label_matches(labels: dict, wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)


def unix_seconds(created: str | None) -> int:
    """An RFC 3339 ``created`` as Unix seconds (0 when absent or unreadable)."""
    import calendar
    import time

    if not created:
        return 0
    try:
        return calendar.timegm(time.strptime(created[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return 0
