"""What a container changed: its upper directory read against the image's layers. Chapter 05.

::

    changes(upper, lowers)   [Change("/tmp", MODIFIED), Change("/tmp/new", ADDED),
                              Change("/etc/motd", DELETED)]         like ``docker diff``

Everything a container wrote is in its overlay upper directory, so the walk reads only
that (never the merged view, never the whole image):

- a character device 0:0 is a whiteout: the lower file is DELETED;
- an entry that some lower layer has too is MODIFIED; a directory only when its size,
  mode or mtime differ (overlayfs copies a directory up just to create a child in it);
- anything else is ADDED, and the parent of an addition or deletion is MODIFIED.

The rules are Docker's for its overlay2 driver (``archive.OverlayChanges``).
See: Documentation/filesystems/overlayfs.rst, docker-container-diff(1).
"""

from __future__ import annotations

import os
import stat

from minidocker.record import Record
from minidocker.storage.whiteout import is_whiteout

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["ADDED", "DELETED", "MODIFIED", "Change", "changes"]

MODIFIED, ADDED, DELETED = 0, 1, 2   # the Engine API's Kind values
_LETTER = {MODIFIED: "C", ADDED: "A", DELETED: "D"}


class Change(Record):
    """One changed path (absolute, as the container sees it) and its kind: 0 modified, 1 added, 2 deleted."""

    FIELDS = ("path", "kind")

    def __init__(self, path: str, kind: int) -> None:
        self.path, self.kind = path, kind

    def __str__(self) -> str:
        return f"{_LETTER[self.kind]} {self.path}"


def changes(upper: str | os.PathLike[str], lowers: Sequence[str | os.PathLike[str]]) -> list[Change]:
    """The changes recorded in ``upper`` against ``lowers`` (any order), sorted by path."""
    found: dict[str, int] = {}
    changed_dirs: set[str] = set()
    upper = os.fspath(upper)
    lowers = [os.fspath(p) for p in lowers]
    for path, st in _walk(upper, ""):
        if is_whiteout(st):
            kind = DELETED
        else:
            kind = ADDED
            below = _lower_stat(lowers, path)
            if below is not None:
                if stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(below.st_mode) and _same_dir(st, below):
                    continue  # copied up only to hold a child (the child marks it below)
                kind = MODIFIED
        if stat.S_ISDIR(st.st_mode):
            changed_dirs.add(path)
        if kind in (ADDED, DELETED):
            parent = os.path.dirname(path)
            if parent != "/" and parent not in changed_dirs:
                found[parent] = MODIFIED
                changed_dirs.add(parent)
        found[path] = kind
    return [Change(path, kind) for path, kind in sorted(found.items())]


def _walk(root: str, rel: str):
    """(container path, lstat) below ``root`` + ``rel`` (``""`` or ``/tmp``), parents first; nothing is
    followed."""
    with os.scandir(root + rel) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            path = f"{rel}/{entry.name}"
            st = entry.stat(follow_symlinks=False)
            yield path, st
            if stat.S_ISDIR(st.st_mode):
                yield from _walk(root, path)


def _lower_stat(lowers: list[str], path: str) -> os.stat_result | None:
    for lower in lowers:
        try:
            return os.lstat(lower + path)
        except (FileNotFoundError, NotADirectoryError):
            continue
    return None


def _same_dir(a: os.stat_result, b: os.stat_result) -> bool:
    """Docker's test for "only copied up": same size, mode and mtime (to the second, as tar keeps it)."""
    return a.st_size == b.st_size and a.st_mode == b.st_mode and int(a.st_mtime) == int(b.st_mtime)
