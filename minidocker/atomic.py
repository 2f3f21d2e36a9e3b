"""The one way minidocker writes state files: write a temp file, fsync, rename.

A reader never sees half a file: rename(2) replaces the old name atomically, and
the fsync before it makes sure the new content is on disk first.
See rename(2), fsync(2).
"""

from __future__ import annotations

import _thread   # get_ident without importing threading (start-up time)
import json
import os
from pathlib import Path

__all__ = ["read_json", "write_bytes", "write_json"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def write_bytes(path: str | os.PathLike[str], data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically.

    ``durable=False`` skips the fsync (0.3-1 ms, more on a busy disk): the rename is
    still atomic for every reader while the machine runs, but after a power cut the
    new name may hold an empty file. For files that are worthless after a reboot
    anyway: a ``--rm`` container's record, the OCI config rewritten at each start.
    """
    path = Path(path)
    # The thread too: two threads of one daemon may replace the same file at once (each its own tmp).
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{_thread.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def write_json(path: str | os.PathLike[str], obj: Any, durable: bool = True) -> None:
    """Replace ``path`` with ``obj`` as indented JSON, atomically (see :func:`write_bytes`)."""
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode(), durable=durable)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file written by :func:`write_json`.

    Raises:
        CorruptState: the file is not JSON (the message names it); OSError as ``open`` raises.
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        return json.loads(data)
    except ValueError as err:
        from minidocker.errors import CorruptState

        raise CorruptState(f"failed to read {os.fspath(path)}: not valid JSON ({err})") from None
