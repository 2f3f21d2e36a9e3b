"""Directories into layer tars: the way back from files to a layer. Chapter 05.

::

    write_tree_tar(rootfs, out)        every file of a tree (``docker export``, ``import``)
    write_layer_tar(upper, out)        an overlay upper directory as an image layer
                                       (``docker commit``): whiteouts 0:0 -> .wh.NAME,
                                       opaque directories -> .wh..wh..opq

Entries are written in sorted order with numeric owners and no user names, so the
same tree gives the same bytes, hence the same diff_id.
See: tar(5), Documentation/filesystems/overlayfs.rst.
"""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO

from minidocker.storage.whiteout import OPAQUE_MARKER, WHITEOUT_PREFIX, is_opaque, is_whiteout

__all__ = ["write_layer_tar", "write_tree_tar"]

_SKIP_XATTRS = ("trusted.overlay.", "user.overlay.", "security.selinux")


def write_tree_tar(root: str | os.PathLike[str], out: BinaryIO) -> None:
    """Write every entry under ``root`` as a tar to ``out``, whiteouts included as they are."""
    _write(Path(root), out, convert_whiteouts=False)


def write_layer_tar(upper: str | os.PathLike[str], out: BinaryIO) -> None:
    """Write an overlay upper directory as an OCI layer tar (whiteouts in tar form)."""
    _write(Path(upper), out, convert_whiteouts=True)


def _write(root: Path, out: BinaryIO, convert_whiteouts: bool) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        inodes: dict[tuple[int, int], str] = {}
        for rel, st in _walk(root):
            path = root / rel if rel else root
            if convert_whiteouts and is_whiteout(st):
                parent, _, name = rel.rpartition("/")
                tar.addfile(_marker(f"{parent}/{WHITEOUT_PREFIX}{name}" if parent else WHITEOUT_PREFIX + name, st))
                continue
            info = _info(path, rel, st, inodes)
            if info is None:
                continue
            if info.isreg():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
            if convert_whiteouts and stat.S_ISDIR(st.st_mode) and rel and is_opaque(path):
                tar.addfile(_marker(f"{rel}/{OPAQUE_MARKER}", st))


def _walk(root: Path, rel: str = ""):
    """(relative path, lstat) for root and everything below, parents first, names sorted."""
    path = root / rel if rel else root
    st = os.lstat(path)
    yield rel, st
    if stat.S_ISDIR(st.st_mode):
        for name in sorted(os.listdir(path)):
            yield from _walk(root, f"{rel}/{name}" if rel else name)


def _info(path: Path, rel: str, st: os.stat_result, inodes: dict[tuple[int, int], str]) -> tarfile.TarInfo | None:
    info = tarfile.TarInfo(rel + "/" if stat.S_ISDIR(st.st_mode) and rel else (rel or "./"))
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    info.mtime = st.st_mtime
    mode = st.st_mode
    key = (st.st_dev, st.st_ino)
    if stat.S_ISREG(mode) and st.st_nlink > 1 and key in inodes:
        info.type, info.linkname = tarfile.LNKTYPE, inodes[key]
    elif stat.S_ISREG(mode):
        info.type, info.size = tarfile.REGTYPE, st.st_size
        if st.st_nlink > 1:
            inodes[key] = rel
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    else:
        return None  # sockets are not archived (tar(1) skips them too)
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        names = []
    for name in names:
        if not name.startswith(_SKIP_XATTRS):
            value = os.getxattr(path, name, follow_symlinks=False)
            info.pax_headers[f"SCHILY.xattr.{name}"] = value.decode("utf-8", "surrogateescape")
    return info


def _marker(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.REGTYPE, 0o644, st.st_mtime
    return info
