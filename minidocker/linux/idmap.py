"""The new mount API's idmapped mounts: a mount that shows files' owners through a user namespace.

One small function per call, each raising OSError on failure (see :mod:`.syscalls`)::

    open_tree(path, flags)                        a detached copy of the mount at path. See open_tree(2).
    mount_setattr_idmap(tree_fd, userns_fd)       MOUNT_ATTR_IDMAP on it. See mount_setattr(2).
    mount_setattr_readonly(tree_fd)               MOUNT_ATTR_RDONLY on it, on every mount of the tree
    move_mount(tree_fd, target)                   attach it at target. See move_mount(2).
    idmapped_bind(source, target, userns_fd)      the three together: ``mount --bind`` with an idmap

The namespace fd comes from :func:`minidocker.namespaces.user_namespace_fd`.

An idmapped mount shows a file owned by host uid U as owned by the uid that U maps *from* in the
namespace, and writes through it go the other way: mapped as "0 100000 65536", a file of host
uid 0 appears (in the caller's namespace) as uid 100000, so a container whose root is host
100000 sees it as its own. Linux 5.12; overlayfs accepts idmapped lower layers since 5.19.
See: mount_setattr(2) "Idmapped mounts", Documentation/filesystems/idmappings.rst.
"""

from __future__ import annotations

import ctypes
import os

from minidocker.linux.syscalls import _check, _libc

__all__ = ["idmapped_bind", "move_mount", "mount_setattr_idmap", "mount_setattr_readonly", "open_tree"]

_MACHINE = os.uname().machine
# include/uapi/asm-generic/unistd.h: the same numbers on x86_64 and aarch64 (added after the split).
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _SYS_MOUNT_SETATTR = 428, 429, 442
# include/uapi/linux/mount.h
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_MOVE_MOUNT_T_EMPTY_PATH = 0x40
_MOUNT_ATTR_RDONLY = 0x00000001
_MOUNT_ATTR_IDMAP = 0x00100000
_AT_FDCWD = -100


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def open_tree(path: str | os.PathLike[str], flags: int = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC) -> int:
    """An fd for a detached clone of the mount at ``path`` (a bind mount not attached yet)."""
    result = _libc.syscall(_SYS_OPEN_TREE, _AT_FDCWD, os.fsencode(path), ctypes.c_uint(flags))
    _check(result, "open_tree", path)
    return int(result)


def mount_setattr_idmap(tree_fd: int, userns_fd: int) -> None:
    """Make the detached mount ``tree_fd`` show owners through the user namespace ``userns_fd``."""
    attr = _MountAttr(attr_set=_MOUNT_ATTR_IDMAP, userns_fd=userns_fd)
    _mount_setattr(tree_fd, attr, 0, "MOUNT_ATTR_IDMAP")


def mount_setattr_readonly(tree_fd: int) -> None:
    """Make every mount of the detached tree ``tree_fd`` read-only (``mount -o bind,ro``, recursively)."""
    _mount_setattr(tree_fd, _MountAttr(attr_set=_MOUNT_ATTR_RDONLY), AT_RECURSIVE, "MOUNT_ATTR_RDONLY")


def _mount_setattr(tree_fd: int, attr: _MountAttr, flags: int, shown: str) -> None:
    result = _libc.syscall(_SYS_MOUNT_SETATTR, tree_fd, b"", ctypes.c_uint(AT_EMPTY_PATH | flags),
                           ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)))
    _check(result, "mount_setattr", f"fd {tree_fd} {shown}")


def move_mount(tree_fd: int, target: str | os.PathLike[str] | int) -> None:
    """Attach the detached mount ``tree_fd`` at ``target``: a path, or a descriptor (O_PATH) of the place."""
    if isinstance(target, int):   # the pinned place itself: no path to resolve again
        result = _libc.syscall(_SYS_MOVE_MOUNT, tree_fd, b"", target, b"",
                               ctypes.c_uint(_MOVE_MOUNT_F_EMPTY_PATH | _MOVE_MOUNT_T_EMPTY_PATH))
    else:
        result = _libc.syscall(_SYS_MOVE_MOUNT, tree_fd, b"", _AT_FDCWD, os.fsencode(target),
                               ctypes.c_uint(_MOVE_MOUNT_F_EMPTY_PATH))
    _check(result, "move_mount", target if not isinstance(target, int) else f"fd {target}")


def idmapped_bind(source: str | os.PathLike[str], target: str | os.PathLike[str], userns_fd: int) -> None:
    """Bind ``source`` at ``target``, owners shown through ``userns_fd``."""
    fd = open_tree(source)
    try:
        mount_setattr_idmap(fd, userns_fd)
        move_mount(fd, target)
    finally:
        os.close(fd)
