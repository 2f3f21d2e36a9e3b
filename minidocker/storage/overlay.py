"""An overlay snapshot: a container's writable view of read-only image layers.

::

    rootfs/  (merged: what the container sees)
      = upper/ (the container's own changes, copy-on-write)
      + lowers (the image's layers, top first; never written)

The kernel does the merging (overlayfs); ``work/`` is its scratch directory and
must be on the same filesystem as ``upper/``. Ten containers of one image share the
lowers and each writes only to its own upper.
See: Documentation/filesystems/overlayfs.rst.
"""

from __future__ import annotations

import os
from pathlib import Path

from minidocker.linux import UmountFlag, mount, umount2
from minidocker.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Snapshot", "overlay_options"]


def overlay_options(lowers: Sequence[os.PathLike[str] | str], upper: os.PathLike[str] | str,
                    work: os.PathLike[str] | str) -> str:
    """The ``data`` string of an overlay mount; the leftmost lower is the top layer."""
    lowerdir = ":".join(os.fspath(p) for p in lowers)
    return f"lowerdir={lowerdir},upperdir={os.fspath(upper)},workdir={os.fspath(work)}"


class Snapshot(Record):
    """The directories of one container's filesystem, under ``directory``."""

    FIELDS = ("directory", "lowers")

    @property
    def upper(self) -> Path:
        return self.directory / "upper"

    @property
    def work(self) -> Path:
        return self.directory / "work"

    @property
    def rootfs(self) -> Path:
        return self.directory / "rootfs"

    @classmethod
    def create(cls, lowers: Sequence[Path], directory: Path) -> Snapshot:
        """Make the upper, work and rootfs directories (nothing is mounted yet)."""
        snapshot = cls(Path(directory), list(lowers))
        for path in (snapshot.upper, snapshot.work, snapshot.rootfs):
            path.mkdir(parents=True, exist_ok=True)
        return snapshot

    def mount(self) -> None:
        """Mount the merged view at ``rootfs``. Like ``mount -t overlay overlay -o ...``."""
        mount("overlay", self.rootfs, "overlay", 0, overlay_options(self.lowers, self.upper, self.work))

    def unmount(self) -> None:
        """Unmount ``rootfs`` if it is mounted (lazily: a process may still hold it)."""
        try:
            umount2(self.rootfs, UmountFlag.MNT_DETACH)
        except OSError:
            if os.path.ismount(self.rootfs):
                raise
        if os.path.isdir(self.directory / "lowers"):   # a remapped container's idmapped layers (chapter 11)
            from minidocker.storage.remap import unmount_lowers

            unmount_lowers(self.directory)

    def remove(self) -> None:
        """Unmount and delete the snapshot's directories: the container's changes are gone."""
        import shutil  # here: its import (bz2, lzma ...) costs 1.5 ms that no run needs

        self.unmount()
        shutil.rmtree(self.directory, ignore_errors=True)
