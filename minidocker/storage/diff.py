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


def write_tree_tar(root: str | os.PathLike[str], out: BinaryIO, name: str | None = None,
                   root_entry: bool = True, whole_seconds: bool = False) -> None:
    """Write every entry under ``root`` as a tar to ``out``, whiteouts included as they are.

    ``name``: what ``root`` itself is called in the tar (``docker cp``'s rebase: ``tmp``
    gives ``tmp/``, ``tmp/a`` ...); without it, ``./`` and names relative to ``root``.
    ``root`` may be a file or a symlink then (archived as itself, never followed).
    ``root_entry=False`` leaves out the ``./`` entry (``docker export`` has none);
    ``whole_seconds``: mtimes in whole seconds, so no entry needs a PAX header (as dockerd's
    ``export`` and ``cp`` tars; it halves the cost of the headers).
    """
    _write(Path(root), out, convert_whiteouts=False, name=name, root_entry=root_entry,
           whole_seconds=whole_seconds)


def write_layer_tar(upper: str | os.PathLike[str], out: BinaryIO) -> None:
    """Write an overlay upper directory as an OCI layer tar (whiteouts in tar form)."""
    _write(Path(upper), out, convert_whiteouts=True)


def _write(root: Path, out: BinaryIO, convert_whiteouts: bool, name: str | None = None,
           root_entry: bool = True, whole_seconds: bool = False) -> None:
    parent_fd = os.open(root.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            inodes: dict[tuple[int, int], str] = {}
            for rel, st, dir_fd, base in _walk(parent_fd, root.name or ".", ""):
                if not rel and not root_entry:
                    continue
                shown = _rebased(name, rel)
                if convert_whiteouts and is_whiteout(st):
                    parent, _, leaf = shown.rpartition("/")
                    marker = f"{parent}/{WHITEOUT_PREFIX}{leaf}" if parent else WHITEOUT_PREFIX + leaf
                    tar.addfile(_marker(marker, st))
                    continue
                info = _info(dir_fd, base, shown, st, inodes)
                if info is not None and whole_seconds:
                    info.mtime = int(st.st_mtime)
                if info is None:
                    continue
                if info.isreg():
                    with _open_file(dir_fd, base, st) as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
                if convert_whiteouts and stat.S_ISDIR(st.st_mode) and rel and is_opaque(_at(dir_fd, base)):
                    tar.addfile(_marker(f"{shown}/{OPAQUE_MARKER}", st))
    finally:
        os.close(parent_fd)


def _rebased(name: str | None, rel: str) -> str:
    if name is None:
        return rel
    if not rel:
        return name
    return f"{name.rstrip('/')}/{rel}"


def _at(dir_fd: int, name: str) -> str:
    """A path to ``name`` in the open directory ``dir_fd``: only its last component is looked up again."""
    return f"/proc/self/fd/{dir_fd}/{name}"


def _walk(dir_fd: int, name: str, rel: str):
    """(relative path, lstat, directory fd, name in it) for an entry and everything below it.

    Parents first, names sorted. Directories are opened with O_NOFOLLOW relative to their
    parent's descriptor: a symlink swapped in for a directory (a running container can do
    that while it is archived) is an error, never a way out of the tree. See: openat(2).
    """
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    yield rel, st, dir_fd, name
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            for child in sorted(os.listdir(fd)):
                yield from _walk(fd, child, f"{rel}/{child}" if rel else child)
        finally:
            os.close(fd)


def _open_file(dir_fd: int, name: str, st: os.stat_result) -> BinaryIO:
    """The regular file ``name``, opened without following a symlink put there since the lstat."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    if (os.fstat(fd).st_ino, os.fstat(fd).st_dev) != (st.st_ino, st.st_dev):
        os.close(fd)
        raise OSError(f"failed to archive {name!r}: it was replaced while being read")
    return os.fdopen(fd, "rb")


def _info(dir_fd: int, name: str, rel: str, st: os.stat_result,
          inodes: dict[tuple[int, int], str]) -> tarfile.TarInfo | None:
    info = tarfile.TarInfo(rel + "/" if stat.S_ISDIR(st.st_mode) and rel and not rel.endswith("/")
                           else (rel or "./"))
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
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dir_fd)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    else:
        return None  # sockets are not archived (tar(1) skips them too)
    path = _at(dir_fd, name)
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        names = []
    for xattr in names:
        if not xattr.startswith(_SKIP_XATTRS):
            value = os.getxattr(path, xattr, follow_symlinks=False)
            info.pax_headers[f"SCHILY.xattr.{xattr}"] = value.decode("utf-8", "surrogateescape")
    return info


def _marker(name: str, st: os.stat_result) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.REGTYPE, 0o644, st.st_mtime
    return info
