"""Chapter 05 exercises: layers, overlayfs and whiteouts. Fill in the four functions.

Read exercises/ch05/README.md first; grade with ``make grade CH=05`` (or ``TASK=5_2``).

    mount_overlay(layers, container_dir) task 5.1  your container's root: an overlay of the image's layers
    apply_flat(tar_stream, rootfs)      task 5.2  apply a layer tar by deleting what it whites out
    upper_to_layer(upper, out)          task 5.3  an overlay upper directory as a layer tar
    unpack_for_overlay(tar, directory)  task 5.4  a layer tar as an overlay lower (0:0 whiteouts, xattrs)

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

from minidocker.linux import mount  # noqa: F401 - for task 5.1

__all__ = ["apply_flat", "mount_overlay", "unpack_for_overlay", "upper_to_layer"]


def mount_overlay(layers: Sequence[str | os.PathLike[str]], container_dir: str | os.PathLike[str]) -> str:
    """Mount your container's root filesystem: an overlay of an image's ``layers`` (top first); return it.

    Stage 6.5 calls it in the container's own mount namespace. Make ``upper`` (the container's
    writable layer), ``work`` (overlayfs's scratch space) and ``merged`` in ``container_dir``, and
    mount ``overlay`` on ``merged`` with ``lowerdir=TOP:...:BOTTOM,upperdir=...,workdir=...``.
    Return the path of ``merged``. The options must fit in one page (``mount(2)`` copies at most
    4096 bytes of them): an image may have a hundred layers under long paths. When they would
    not fit, do what Docker's overlay2 driver does: give each layer a short name, a symlink
    ``container_dir/l/N`` to it, and mount with paths relative to ``container_dir``
    (``lowerdir=l/0:l/1:...,upperdir=upper,workdir=work``), having changed the working
    directory there for the ``mount`` call, and back afterwards.

    Hint: ``minidocker.linux.mount("overlay", merged, "overlay", 0, data)``; ``os.sysconf("SC_PAGE_SIZE")``;
    ``os.symlink``; ``os.open(".", os.O_RDONLY)`` + ``os.chdir`` ... ``os.fchdir`` to come back.
    Questions: what does the kernel answer when the options are cut at 4096 bytes? What does a
    file deleted in the container leave in ``upper``? Why must ``work`` be on the same filesystem
    as ``upper``?

    See: mount(2), Documentation/filesystems/overlayfs.rst "Multiple lower layers",
    https://docs.docker.com/engine/storage/drivers/overlayfs-driver/ ("the l directory").
    """
    # TODO(task 5.1): mkdir upper, work, merged; mount overlay (short names under l/ when too long)
    raise NotImplementedError("task 5.1: mount the overlay of the layers, return merged")


def apply_flat(tar_stream: BinaryIO, rootfs: str | os.PathLike[str]) -> None:
    """Apply one layer tar on top of ``rootfs`` (where the lower layers are already applied).

    Regular entries are extracted (later entries replace earlier ones). ``dir/.wh.NAME``
    deletes ``dir/NAME`` (a file or a whole directory) of the lower layers;
    ``dir/.wh..wh..opq`` deletes everything the *lower* layers put in ``dir`` but keeps the
    entries of this same layer, whether they come before or after the marker in the tar.
    Markers themselves are never extracted. Member names are trusted here (task 5.4 refuses
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


def unpack_for_overlay(tar_stream: BinaryIO, directory: str | os.PathLike[str]) -> None:
    """Unpack one layer tar into its own (empty) ``directory``, ready to be an overlay lower directory.

    What an image store does once per layer, so that ``mount_overlay`` (task 5.1) can stack the
    layers: ordinary entries are extracted as they are; the layer's deletion markers become what
    overlayfs itself reads: ``dir/.wh.NAME`` becomes a character device 0:0 named ``dir/NAME`` (a
    whiteout), ``dir/.wh..wh..opq`` becomes the xattr ``trusted.overlay.opaque`` = ``b"y"`` on
    ``dir`` (an opaque directory; create ``dir`` if the tar has not yet). Markers themselves are
    never extracted. A member whose name is absolute or has a ``..`` component is refused with
    ``ValueError`` before it is written: a layer comes from a stranger.

    Hint: ``tarfile.open(fileobj=tar_stream, mode="r|")``, ``tar.extract(member, directory,
    set_attrs=True, numeric_owner=True)``; ``os.mknod(path, stat.S_IFCHR, os.makedev(0, 0))``;
    ``os.setxattr(path, "trusted.overlay.opaque", b"y")``.
    Questions: why can a whiteout not stay a ``.wh.`` file for overlayfs? Why do the opaque xattr's
    name and the 0:0 device need root? What does ``apply_flat`` (task 5.2) do differently, and
    when would a runtime want that instead?

    See: Documentation/filesystems/overlayfs.rst "whiteouts and opaque directories",
    https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts
    """
    # TODO(task 5.4): extract; .wh.NAME -> a 0:0 device, .wh..wh..opq -> the opaque xattr; refuse '..'
    raise NotImplementedError("task 5.4: unpack the layer with overlay's whiteouts and opaque xattrs")
