"""Whiteouts: how a layer says "this file of a lower layer is gone". Chapter 05.

Two encodings of the same fact, and minidocker converts between them::

    in a layer tar (OCI image spec)          in an overlay layer directory (the kernel's)
    dir/.wh.NAME   (empty regular file)  <-> dir/NAME as a character device 0:0
    dir/.wh..wh..opq                     <-> xattr trusted.overlay.opaque="y" on dir/
                                             (user.overlay.opaque for a rootless store:
                                             overlay mounted with userxattr, chapter 11)

A whiteout hides NAME of the layers *below*; an opaque directory hides everything the
lower layers had in it, while the entries of its own layer stay.
See: Documentation/filesystems/overlayfs.rst ("whiteouts and opaque directories"),
https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts
"""

from __future__ import annotations

import os
import stat

__all__ = [
    "OPAQUE_MARKER",
    "OPAQUE_XATTR",
    "USER_OPAQUE_XATTR",
    "WHITEOUT_PREFIX",
    "is_opaque",
    "is_whiteout",
    "make_whiteout",
    "set_opaque",
    "whiteout_target",
]

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
# trusted.* xattrs need CAP_SYS_ADMIN of the host; a user's store (rootless) uses the user.* name,
# which overlayfs reads when mounted with the userxattr option (Linux 5.11).
USER_OPAQUE_XATTR = "user.overlay.opaque"
_META_PREFIX = ".wh..wh."  # aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs): never content


def whiteout_target(basename: str) -> str | None:
    """For a tar entry's base name: the name it deletes, "" for the opaque marker, None otherwise.

    ``.wh.foo`` -> "foo"; ``.wh..wh..opq`` -> ""; ``.wh..wh.plnk`` -> None (ignored);
    ``foo`` -> None.
    """
    if basename == OPAQUE_MARKER:
        return ""
    if basename.startswith(_META_PREFIX) or not basename.startswith(WHITEOUT_PREFIX):
        return None
    return basename[len(WHITEOUT_PREFIX):] or None


def is_whiteout(st: os.stat_result) -> bool:
    """Is this (lstat) result an overlay whiteout, a character device 0:0? See: mknod(2)."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def make_whiteout(path: str | os.PathLike[str]) -> None:
    """Create an overlay whiteout at ``path``: ``mknod path c 0 0``. See: mknod(2)."""
    os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def set_opaque(directory: str | os.PathLike[str]) -> None:
    """Mark ``directory`` opaque for overlayfs: lower layers' entries in it are hidden. See: setxattr(2)."""
    name = OPAQUE_XATTR if os.geteuid() == 0 else USER_OPAQUE_XATTR
    os.setxattr(directory, name, b"y", follow_symlinks=False)


def is_opaque(directory: str | os.PathLike[str]) -> bool:
    """Does ``directory`` carry ``trusted.overlay.opaque=y`` (or ``user.overlay.opaque=y``, rootless)?
    See: getxattr(2)."""
    for name in (OPAQUE_XATTR, USER_OPAQUE_XATTR):
        try:
            if os.getxattr(directory, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            pass
    return False
