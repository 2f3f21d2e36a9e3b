"""A content-addressable blob store: every blob is named by the hash of its bytes. Chapter 06.

::

    blobs/sha256/<64 hex>      the bytes; the name *is* their sha256
    blobs/sha512/<128 hex>     the same for a blob named by its sha512 (OCI allows both)
    blobs/.tmp-<random>        a blob being written (renamed into place once verified)

A digest names its algorithm (``sha256:…``, ``sha512:…``): the image spec registers
these two, and a reader must refuse any other rather than guess.

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
from minidocker.image.reference import DIGEST_PATTERN

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = ["BlobStore", "BlobWriter", "HashingReader", "check_digest", "digest_of",
           "sha256_digest"]

_DIGEST = re.compile(rf"^{DIGEST_PATTERN}$")
_CHUNK = 1 << 20


def sha256_digest(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``: a blob's name. Hash the exact bytes, never re-serialised JSON."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    """``<algorithm>:<hex>`` of ``data``; ``algorithm`` is the part before the colon of a digest."""
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def check_digest(digest: str) -> str:
    """Return ``digest`` if it is ``sha256:<64 hex>`` or ``sha512:<128 hex>`` (lower case), else
    InvalidArgument."""
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidArgument(f"invalid digest {digest!r}",
                              hint="expected sha256: and 64, or sha512: and 128, lower-case hex digits")
    return digest


def _algorithm(digest: str) -> str:
    return digest.partition(":")[0]


class HashingReader:
    """A file-like reader that hashes (and optionally copies) everything read through it."""

    def __init__(self, source: BinaryIO, copy_to: BinaryIO | None = None, algorithm: str = "sha256") -> None:
        self.source = source
        self.copy_to = copy_to
        self.algorithm = algorithm
        self.hash = hashlib.new(algorithm)
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
        return f"{self.algorithm}:{self.hash.hexdigest()}"


class BlobWriter:
    """A blob being written: ``write`` bytes, then ``commit(expected)``; ``abort`` on failure.

    ``hashed=False`` when the caller hashes the very bytes it writes (a HashingReader
    copying into this writer): hashing them twice costs ~0.5 s per GiB. ``commit`` then
    takes the caller's digest as the name, so the caller must have checked it.

    A writer hashes with sha256 as it goes (an upload's digest is known only at its end);
    committing under a sha512 digest hashes the finished file once more.
    """

    def __init__(self, store: BlobStore, hashed: bool = True) -> None:
        self.store = store
        store.root.mkdir(parents=True, exist_ok=True)
        # os.urandom, not secrets: that import costs ~1.5 ms
        self.tmp = store.root / f".tmp-{os.getpid()}-{os.urandom(6).hex()}"
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
        if expected is not None and self.hash is not None and _algorithm(expected) != "sha256":
            self.file.flush()
            digest = _hash_file(self.tmp, _algorithm(check_digest(expected)))
        if (expected is not None and digest != expected) or (size is not None and size != self.size):
            self.abort()
            if expected is not None and digest != expected:
                what = f"{_algorithm(digest)} {digest}"
            else:
                what = f"size {self.size}"
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
        algorithm, _, hex_ = check_digest(digest).partition(":")
        return self.root / algorithm / hex_

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
        digest = digest_of(data, _algorithm(check_digest(expected)) if expected else "sha256")
        if expected is not None and digest != expected:
            raise DigestMismatch(f"failed to verify blob {expected}: found {digest}")
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
        found = []
        for algorithm in ("sha256", "sha512"):
            directory = self.root / algorithm
            if directory.is_dir():
                found += [f"{algorithm}:{n}" for n in os.listdir(directory)]
        return sorted(found)

    def verify(self, digest: str) -> None:
        """Re-hash a stored blob (``image inspect --verify``, tests). Raises DigestMismatch."""
        found = _hash_file(self.path(digest), _algorithm(digest))
        if found != digest:
            raise DigestMismatch(f"blob {digest} is corrupt: its content hashes to {found}")


def _hash_file(path: str | os.PathLike[str], algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return f"{algorithm}:{h.hexdigest()}"
