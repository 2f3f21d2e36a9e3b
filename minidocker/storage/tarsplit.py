"""Keeping a layer tar without keeping it twice: the tree plus the tar's other bytes. Chapter 06.

An uncompressed layer (a ``docker save`` ``layer.tar``) is its own blob, and its sha256
is both the digest and the diff_id. Storing that blob *and* the unpacked tree writes
every byte twice. Docker keeps only the tree and a ``tar-split.json.gz``: the bytes of
the tar that are *not* file contents (headers, PAX records, padding, the final zero
blocks), in order, and where each file's contents go. ``save`` rebuilds the exact tar::

    tar stream:    [hdr a][data of a][pad][hdr b][data of b][pad]...[zeros]
    split file:    {"raw": <hdr a>} {"file": "a", "size": N} {"raw": <pad, hdr b>} ...
    layer tree:    a, b, ...  (the data, read back from the files)

``TarSplitter`` records while the extractor reads; ``JoinedTar`` rebuilds, and checks the
rebuilt bytes against the diff_id, so a changed layer file can never pass as the original.
Only contents written to a file as they are go by reference: sparse files, and anything
a later entry replaced, stay in the split (or the store keeps the blob, see store.py).
See: https://github.com/vbatts/tar-split, tar(5)
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from collections.abc import Iterator
from typing import BinaryIO

from minidocker.errors import DigestMismatch

__all__ = ["JoinedTar", "TarSplitter"]

_CHUNK = 1 << 20


class TarSplitter:
    """A reader between the tar stream and tarfile that records every byte but file contents.

    The extractor calls ``file(offset, size, name)`` for each file whose contents it wrote
    as they are; those bytes are left out of the record (tarfile may already have read a
    little past ``offset``: it reads ahead up to 10 KiB, so the cut is made afterwards).
    Records go to ``path`` as they come, gzip'd JSON lines like Docker's tar-split.json.gz,
    so memory stays small whatever the number of entries; ``close`` ends the file.
    """

    def __init__(self, source: BinaryIO, path: str | os.PathLike[str]) -> None:
        self.source = source
        self._out = gzip.open(path, "wt", compresslevel=1, encoding="ascii")  # noqa: SIM115 - see close()
        self._raw = bytearray()     # bytes kept since the last file, ending at stream offset _pos
        self._pos = 0               # stream offset of the next byte read
        self._skip_to = 0           # bytes before this offset are a file's contents: not kept

    def read(self, n: int = -1) -> bytes:
        data = self.source.read(n)
        start = self._pos
        self._pos += len(data)
        if self._pos > self._skip_to:
            self._raw += data[max(0, self._skip_to - start):]
        return data

    def file(self, offset: int, size: int, name: str) -> None:
        """The contents at ``offset`` (``size`` bytes) are in the tree as ``name``."""
        read_ahead = self._pos - offset     # bytes of the file (and maybe beyond) already kept
        keep = len(self._raw) - read_ahead
        beyond = self._raw[keep + size:] if read_ahead > size else b""
        self._write_raw(self._raw[:keep])
        self._out.write(json.dumps({"file": name, "size": size}) + "\n")
        self._raw = bytearray(beyond)
        self._skip_to = offset + size

    def drain(self) -> None:
        """Read the stream to its end (the tar's final zero blocks belong to it)."""
        while self.read(_CHUNK):
            pass

    def close(self) -> None:
        """Record what is left and close the file."""
        if not self._out.closed:
            self._write_raw(self._raw)
            self._out.close()

    def _write_raw(self, data: bytes | bytearray) -> None:
        if data:
            self._out.write(json.dumps({"raw": base64.b64encode(data).decode()}) + "\n")


class JoinedTar:
    """The exact layer tar, rebuilt from a tree and its split file, read like a file.

    ``read`` raises DigestMismatch if the rebuilt bytes do not hash to ``diff_id`` (a
    layer file changed), at the latest in the read that returns the tar's last bytes.
    """

    def __init__(self, tree: str | os.PathLike[str], split: str | os.PathLike[str], diff_id: str) -> None:
        self._args = (os.fspath(tree), split, diff_id)
        self._start()

    def _start(self) -> None:
        self._chunks = _join(*self._args)
        self._chunk = b""
        self._offset = 0
        self._position = 0

    def read(self, n: int = -1) -> bytes:
        parts, wanted = [], n if n >= 0 else 1 << 62
        while wanted > 0:
            if self._offset == len(self._chunk):
                self._chunk, self._offset = next(self._chunks, b""), 0
                if not self._chunk:
                    break
            take = min(wanted, len(self._chunk) - self._offset)
            parts.append(self._chunk[self._offset:self._offset + take])
            self._offset += take
            wanted -= take
        data = b"".join(parts)
        self._position += len(data)
        return data

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int) -> int:
        """Go to ``offset`` (a push resending a chunk): backwards, the rebuild starts again."""
        if offset < self._position:
            self.close()
            self._start()
        while self._position < offset and self.read(min(_CHUNK, offset - self._position)):
            pass
        return self._position

    def close(self) -> None:
        self._chunks.close()

    def __enter__(self) -> JoinedTar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _join(tree: str, split: str | os.PathLike[str], diff_id: str) -> Iterator[bytes]:
    """The tar's chunks; the last one is held back until the digest is checked."""
    digest = hashlib.sha256()
    held = b""
    with gzip.open(split, "rt", encoding="ascii") as records:
        for line in records:
            record = json.loads(line)
            if "raw" in record:
                chunks: Iterator[bytes] = iter((base64.b64decode(record["raw"]),))
            else:
                chunks = _file_contents(os.path.join(tree, record["file"]), record["size"])
            for chunk in chunks:
                digest.update(chunk)
                if held:
                    yield held
                held = chunk
    if "sha256:" + digest.hexdigest() != diff_id:
        raise DigestMismatch(f"failed to rebuild layer {diff_id}: the tree in {tree} has changed "
                             f"(the tar now hashes to sha256:{digest.hexdigest()})")
    if held:
        yield held


def _file_contents(path: str, size: int) -> Iterator[bytes]:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        left = size
        while left > 0:
            chunk = os.read(fd, min(_CHUNK, left))
            if not chunk:
                raise DigestMismatch(f"failed to rebuild a layer: {path} is shorter than its {size} bytes")
            left -= len(chunk)
            yield chunk
    finally:
        os.close(fd)
