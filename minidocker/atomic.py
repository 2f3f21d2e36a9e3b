"""The one way minidocker writes state files: write a temp file, fsync, rename.

A reader never sees half a file: rename(2) replaces the old name atomically, and
the fsync before it makes sure the new content is on disk first.
See rename(2), fsync(2).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["read_json", "write_bytes", "write_json"]

TYPE_CHECKING = False  # typing costs 3 ms of start-up; annotations are strings here anyway
if TYPE_CHECKING:
    from typing import Any


def write_bytes(path: str | os.PathLike[str], data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Replace ``path`` with ``obj`` as indented JSON, atomically."""
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file written by :func:`write_json`."""
    with open(path, "rb") as f:
        return json.loads(f.read())
