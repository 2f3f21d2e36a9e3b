"""A content-addressable blob store: every blob is named by the sha256 of its bytes. Chapter 06.

::

    blobs/sha256/<64 hex>      the bytes; the name *is* their sha256
    blobs/.tmp-<random>        a blob being written (renamed into place once verified)

``put`` and ``writer`` hash while writing and rename into place only when the digest
is right, so a blob file is always complete and correct, and an interrupted or
wrong download leaves nothing under its name. Like containerd's content store.
See: rename(2), https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from minidocker.errors import DigestMismatch, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = ["BlobStore", "BlobWriter", "HashingReader", "check_digest", "sha256_digest"]

_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_CHUNK = 1 << 20


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``: a blob's name. Hash the exact bytes, never re-serialised JSON."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is ``sha256:<64 lower-case hex>``, else InvalidArgument."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidArgument(f"invalid digest {digest!r}", hint="expected sha256: and 64 lower-case hex digits")
    return digest


class HashingReader:
    """A file-like reader that hashes (and optionally copies) everything read through it."""

    def __init__(self, source: BinaryIO, copy_to: BinaryIO | None = None) -> None:
        self.source = source
        self.copy_to = copy_to
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.source.read(n)
        if data:
            self.hash.update(data)
            self.size += len(data)
            if self.copy_to is not None:
                self.copy_to.write(data)
        return data

    def drain(self) -> None:
        """Read to the end (tar's trailing zero blocks count for the digest too)."""
        while self.read(_CHUNK):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class BlobWriter:
    """A blob being written: ``write`` bytes, then ``commit(expected)``; ``abort`` on failure.

    ``hashed=False`` when the caller hashes the very bytes it writes (a HashingReader
    copying into this writer): hashing them twice costs ~0.5 s per GiB. ``commit`` then
    takes the caller's digest as the name, so the caller must have checked it.
    """

    def __init__(self, store: BlobStore, hashed: bool = True) -> None:
        self.store = store
        store.root.mkdir(parents=True, exist_ok=True)
        self.tmp = store.root / f".tmp-{os.getpid()}-{os.urandom(6).hex()}"   # secrets costs ~1.5 ms to import
        self.file = open(self.tmp, "xb")
        self.hash = hashlib.sha256() if hashed else None
        self.size = 0

    def write(self, data: bytes) -> int:
        if self.hash is not None:
            self.hash.update(data)
        self.size += len(data)
        return self.file.write(data)

    @property
    def digest(self) -> str | None:
        return None if self.hash is None else "sha256:" + self.hash.hexdigest()

    def commit(self, expected: str | None = None, size: int | None = None) -> str:
        """Verify and move into place; returns the digest. Raises DigestMismatch (and aborts)."""
        if self.hash is None and expected is None:
            raise InvalidArgument("failed to commit blob: an unhashed writer needs the expected digest")
        digest = self.digest or expected
        if (expected is not None and digest != expected) or (size is not None and size != self.size):
            self.abort()
            what = f"sha256 {digest}" if expected is not None and digest != expected else f"size {self.size}"
            raise DigestMismatch(f"failed to verify blob {expected}: found {what}"
                                 + (f" (expected size {size})" if size is not None else ""))
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        final = self.store.path(digest)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.tmp, final)
        return digest

    def abort(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is not None or not self.file.closed:
            self.abort()


class BlobStore:
    """Blobs under ``root`` (``<store>/blobs``), by digest."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        check_digest(digest)
        return self.root / "sha256" / digest[7:]

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def read(self, digest: str) -> bytes:
        """The blob's bytes (not re-hashed: the name was verified when it was written)."""
        try:
            with open(self.path(digest), "rb") as f:
                return f.read()
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found in {self.root}") from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} not found in {self.root}") from None

    def size(self, digest: str) -> int:
        return self.path(digest).stat().st_size

    def put(self, data: bytes, expected: str | None = None) -> str:
        """Store ``data``; returns its digest. With ``expected``, refuse other content."""
        digest = sha256_digest(data)
        if expected is not None and digest != expected:
            raise DigestMismatch(f"failed to verify blob {expected}: found sha256 {digest}")
        if not self.exists(digest):
            with self.writer() as w:
                w.write(data)
                w.commit(digest)
        return digest

    def writer(self, hashed: bool = True) -> BlobWriter:
        return BlobWriter(self, hashed)

    def delete(self, digest: str) -> None:
        self.path(digest).unlink(missing_ok=True)

    def digests(self) -> list[str]:
        directory = self.root / "sha256"
        return sorted(f"sha256:{n}" for n in os.listdir(directory)) if directory.is_dir() else []

    def verify(self, digest: str) -> None:
        """Re-hash a stored blob (``image inspect --verify``, tests). Raises DigestMismatch."""
        h = hashlib.sha256()
        with self.open(digest) as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
        if "sha256:" + h.hexdigest() != digest:
            raise DigestMismatch(f"blob {digest} is corrupt: its content hashes to sha256:{h.hexdigest()}")
