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

TYPE_CHECKING = False  # importing typing/collections.abc costs ms of start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["Snapshot", "overlay_options"]


def overlay_options(lowers: Sequence[os.PathLike[str] | str], upper: os.PathLike[str] | str,
                    work: os.PathLike[str] | str) -> str:
    """The ``data`` string of an overlay mount; the leftmost lower is the top layer."""
    return f"lowerdir={':'.join(os.fspath(p) for p in lowers)},upperdir={os.fspath(upper)},workdir={os.fspath(work)}"


class Snapshot:
    """The directories of one container's filesystem, under ``directory``.

    A plain class rather than a dataclass: importing dataclasses costs 7 ms, on every
    ``minidocker run`` (see bench/README.md).
    """

    def __init__(self, directory: Path, lowers: list[Path]) -> None:
        self.directory = directory
        self.lowers = lowers

    def __repr__(self) -> str:
        return f"Snapshot(directory={self.directory!r}, lowers={self.lowers!r})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return (self.directory, self.lowers) == (other.directory, other.lowers)

    __hash__ = None  # type: ignore[assignment]  # mutable, like a dataclass with eq

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

    def remove(self) -> None:
        """Unmount and delete the snapshot's directories: the container's changes are gone."""
        import shutil  # here: its import (bz2, lzma ...) costs 1.5 ms that only --rm needs

        self.unmount()
        shutil.rmtree(self.directory, ignore_errors=True)
