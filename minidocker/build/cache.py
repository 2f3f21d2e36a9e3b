"""The build cache, keyed as Docker's legacy builder keys it. Chapter 08.

::

    key = cache_key(parent_id, container_config)   sha256 of the parent image + the step's config
    cache.get(key) / cache.put(key, image_id)      lib/images/buildcache/<key hex> -> an image ID
    file_hash(path, "app/main.c")                  Docker's content checksum of one file
    source_hash([...])                             ``file:<hex>``, ``dir:<hex>``, ``multi:<hex>``

Docker's legacy builder looks, before each step, for an image whose parent is the
current image and whose ``container_config`` equals the one the step would create
(image/cache/compare.go). That config holds the step itself: the RUN command, or
``#(nop) ENV A=1``, or ``#(nop) COPY file:<checksum> in /dst``. So the key is the parent
plus the instruction text, and for COPY/ADD the checksum of what is copied: each file's
name, mode, owner, size, type and link target (its mtime left out, as tarsum v1 leaves it
out), then its bytes. A changed file changes the checksum, so that step and every step
after it (their parent changed) miss the cache.
See: moby/moby builder/dockerfile/copy.go and builder/remotecontext/filehash.go, pkg/tarsum.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

from minidocker.atomic import write_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["BuildCache", "cache_key", "dir_hash", "file_hash", "source_hash"]

_TYPEFLAGS = {stat.S_IFREG: "0", stat.S_IFLNK: "2", stat.S_IFCHR: "3", stat.S_IFBLK: "4", stat.S_IFDIR: "5",
              stat.S_IFIFO: "6"}


def cache_key(parent: str, container_config: Mapping[str, Any]) -> str:
    """The cache key of a step: its parent image ID and the config it would run with."""
    text = json.dumps([parent, container_config], sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _tar_header(name: str, st: os.stat_result, link: str, uid: int, gid: int, image: bool) -> bytes:
    """tarsum v1's header fields of one entry: every tar header field but mtime, in order.

    A context file is hashed from the header the docker CLI sent (permission bits, no user
    names); a file of an image (``COPY --from``) from dockerd's own header of the file, which has
    the file-type bits in its mode and the names of the owners (looked up on the host).
    """
    kind = stat.S_IFMT(st.st_mode)
    size = st.st_size if kind == stat.S_IFREG else 0
    mode = (kind | stat.S_IMODE(st.st_mode)) if image else stat.S_IMODE(st.st_mode)
    uname, gname = (_user_name(uid), _group_name(gid)) if image else ("", "")
    fields = [("name", name + "/" if kind == stat.S_IFDIR and not name.endswith("/") else name),
              ("mode", str(mode)), ("uid", str(uid)), ("gid", str(gid)), ("size", str(size)),
              ("typeflag", _TYPEFLAGS.get(kind, "0")), ("linkname", link), ("uname", uname), ("gname", gname),
              ("devmajor", "0"), ("devminor", "0")]
    return "".join(k + v for k, v in fields).encode("utf-8", "surrogateescape")


def _user_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


def _group_name(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return ""


def file_hash(path: str | os.PathLike[str], name: str, uid: int = 0, gid: int = 0,
              image: bool = False) -> str:
    """The hex checksum of one entry (not followed if a symlink), named ``name`` in its source.

    Context files are hashed as owned by 0:0: the docker CLI sends them so. ``image``: a file
    of an image's filesystem (``COPY --from``), hashed as dockerd hashes those.
    """
    st = os.lstat(path)
    link = os.readlink(path) if stat.S_ISLNK(st.st_mode) else ""
    digest = hashlib.sha256(_tar_header(name, st, link, uid, gid, image))
    if stat.S_ISREG(st.st_mode) and st.st_size:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


def dir_hash(entry_hashes: list[str]) -> str:
    """A directory's checksum: sha256 of its entries' checksums, sorted, joined by commas."""
    return hashlib.sha256(",".join(sorted(entry_hashes)).encode()).hexdigest()


def source_hash(hashes: list[str]) -> str:
    """The checksum COPY/ADD writes in its history: one source's, or ``multi:`` of several."""
    if len(hashes) == 1:
        return hashes[0]
    return "multi:" + hashlib.sha256(",".join(hashes).encode()).hexdigest()


class BuildCache:
    """The cache's index in the image store: one small file per key, holding an image ID.

    An entry whose image was removed (``rmi``) is a miss, and is dropped.
    """

    def __init__(self, images_root: str | os.PathLike[str]) -> None:
        self.directory = Path(images_root) / "buildcache"

    def get(self, key: str, exists: Any = None) -> str | None:
        path = self.directory / key.removeprefix("sha256:")
        try:
            image_id = path.read_text().strip()
        except FileNotFoundError:
            return None
        if exists is not None and not exists(image_id):
            path.unlink(missing_ok=True)
            return None
        return image_id

    def put(self, key: str, image_id: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_bytes(self.directory / key.removeprefix("sha256:"), image_id.encode() + b"\n", durable=False)
