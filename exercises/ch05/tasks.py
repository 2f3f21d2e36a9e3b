"""Chapter 05 exercises: layers, overlayfs and whiteouts. Fill in the four functions.

Read exercises/ch05/README.md first; grade with ``make grade CH=05`` (or ``TASK=5_2``).

    overlay_data(lowers, upper, work)   task 5.1  the option string of an overlay mount
    apply_flat(tar_stream, rootfs)      task 5.2  apply a layer tar by deleting what it whites out
    upper_to_layer(upper, out)          task 5.3  an overlay upper directory as a layer tar
    safe_member_name(name)              task 5.4  a tar member name, checked, as a relative path

See: Documentation/filesystems/overlayfs.rst, the OCI image spec's layer.md, tar(5).
"""

from __future__ import annotations

import os  # noqa: F401
import shutil  # noqa: F401
import stat  # noqa: F401
import tarfile  # noqa: F401
from collections.abc import Sequence
from pathlib import Path  # noqa: F401
from typing import BinaryIO

__all__ = ["apply_flat", "overlay_data", "safe_member_name", "upper_to_layer"]


def overlay_data(lowers: Sequence[str | os.PathLike[str]], upper: str | os.PathLike[str],
                 work: str | os.PathLike[str]) -> str:
    """The ``data`` argument of ``mount(2)`` for an overlay of ``lowers`` (top layer first).

    ``lowerdir=TOP:...:BOTTOM,upperdir=UPPER,workdir=WORK``: the kernel puts the
    leftmost lower directory on top.

    Hint: ``os.fspath`` turns a Path into a str.
    Questions: what happens if two lowers have the same file? Why must ``work`` be on
    the same filesystem as ``upper``?

    See: mount(2), Documentation/filesystems/overlayfs.rst "Multiple lower layers".
    """
    # TODO(task 5.1): build the lowerdir/upperdir/workdir string
    raise NotImplementedError("task 5.1: build the lowerdir/upperdir/workdir string")


def apply_flat(tar_stream: BinaryIO, rootfs: str | os.PathLike[str]) -> None:
    """Apply one layer tar on top of ``rootfs`` (where the lower layers are already applied).

    Regular entries are extracted (later entries replace earlier ones). ``dir/.wh.NAME``
    deletes ``dir/NAME`` (a file or a whole directory) of the lower layers;
    ``dir/.wh..wh..opq`` deletes everything the *lower* layers put in ``dir`` but keeps the
    entries of this same layer, whether they come before or after the marker in the tar.
    Markers themselves are never extracted. Member names are trusted here (task 5.4 is about
    untrusted ones).

    Hint: iterate with ``tarfile.open(fileobj=tar_stream, mode="r|")``; ``tar.extract(member,
    rootfs)`` for ordinary entries; remember which paths this layer created; apply opaque
    markers at the end.
    Questions: why can an opaque directory not simply be emptied when its marker is read?
    What does umoci write instead of an opaque marker?

    See: https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts
    """
    # TODO(task 5.2): extract entries, apply whiteouts and opaque markers
    raise NotImplementedError("task 5.2: extract entries, apply whiteouts and opaque markers")


def upper_to_layer(upper: str | os.PathLike[str], out: BinaryIO) -> None:
    """Write an overlay upper directory to ``out`` as an OCI layer tar (what ``docker commit`` does).

    Every entry is archived with a name relative to ``upper`` (no leading "/" or "./"),
    except: a character device 0:0 (an overlay whiteout) becomes an empty regular file
    ``dir/.wh.NAME``; a directory with the xattr ``trusted.overlay.opaque`` = ``b"y"`` is
    archived and followed by an empty ``dir/.wh..wh..opq``.

    Hint: ``os.walk`` (sorted), ``os.lstat``, ``stat.S_ISCHR`` and ``st_rdev == 0``;
    ``os.getxattr(path, "trusted.overlay.opaque")``; ``tar.add(path, arcname, recursive=False)``
    and ``tar.addfile(tarfile.TarInfo(name))`` for an empty marker.
    Questions: why is a deletion not just left out of the tar? Which xattrs of the upper
    directory must not travel into the layer?

    See: Documentation/filesystems/overlayfs.rst "whiteouts and opaque directories".
    """
    # TODO(task 5.3): archive the upper dir, whiteouts and opaque dirs as markers
    raise NotImplementedError("task 5.3: archive the upper dir, whiteouts and opaque dirs as markers")


def safe_member_name(name: str) -> str:
    """Check a tar member name from an untrusted layer; return it as a clean relative path.

    ``./usr/bin/`` -> ``usr/bin``; ``.`` or ``./`` -> ``""`` (the root). Raise
    ``ValueError`` with a message that says why for: an absolute name, any ``..``
    component, a component longer than 255 bytes, a name longer than 4096 bytes.

    Hint: split on "/", drop "" and "." components; measure lengths in bytes
    (``len(part.encode())``).
    Questions: why refuse ``a/../b`` although it stays inside? What else than names can
    make an extraction write outside the target (think of symlinks and hard links)?

    See: path_resolution(7), limits.h (NAME_MAX, PATH_MAX).
    """
    # TODO(task 5.4): refuse absolute, '..' and oversized names
    raise NotImplementedError("task 5.4: refuse absolute, '..' and oversized names")
