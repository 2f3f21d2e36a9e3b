"""Reading a layer blob on a second thread while the caller unpacks it. Chapter 06.

Loading a layer does five things to every byte: read it, hash it (the blob digest),
write it to the blob store, decompress it, hash the tar (the diff_id); then the tar
is extracted. The first five need no Python objects per byte: ``read``, ``write``,
``hashlib`` and ``zlib``/``zstandard`` release the GIL on big buffers. So a thread
does them and hands the tar to the extractor in chunks, and two cores work at once::

    pump thread:   blob --read--> sha256 (digest) --> blobs/.tmp-... (the stored blob)
                              \\--> decompress --> sha256 (diff_id) --> queue
    caller:        queue --read()--> tarfile --> apply_layer --> layers/<diff_id>/

The queue is bounded (``_DEPTH`` chunks), so memory stays small whatever the layer
size. The caller reads ``BlobPump`` like a file; at the end ``finish`` waits for the
thread and re-raises its error, and ``stop`` ends it early when extraction fails (calling
``abort``, if given: a download's, in case the thread waits on the network).
Nothing here decides what is kept: the store checks the digests, then renames.
See: https://docs.python.org/3/library/hashlib.html (GIL release), threading(3)
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from minidocker.image.blobs import HashingReader
from minidocker.image.compression import NONE, decompress_reader

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = ["BlobPump"]

_CHUNK = 1 << 20      # read and queue 1 MiB at a time
_DEPTH = 8            # at most 8 chunks wait in the queue


class BlobPump:
    """The uncompressed tar of a layer blob, read, hashed, stored and decompressed by a thread.

    ``blob`` hashes (and copies to ``copy_to``) the blob as read; ``tar`` hashes the
    uncompressed stream (the same reader when the blob is not compressed). Their
    ``digest`` and ``size`` are final after ``finish``.
    """

    def __init__(self, source: BinaryIO, compression: str, copy_to: BinaryIO | None = None,
                 abort: Callable[[], None] | None = None, algorithm: str = "sha256") -> None:
        self.blob = HashingReader(source, copy_to=copy_to, algorithm=algorithm)
        if compression == NONE:
            self.tar = self.blob
        else:   # the tar's diff_id is always sha256
            self.tar = HashingReader(decompress_reader(self.blob, compression))
        self._queue: queue.Queue[bytes] = queue.Queue(_DEPTH)
        self._chunk = b""            # the chunk read() is serving, from _offset on
        self._offset = 0
        self._stopped = False
        self._error: BaseException | None = None
        self._abort_source = abort
        self._thread = threading.Thread(target=self._run, name="blob-pump", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """The thread: move the tar into the queue, chunk by chunk; b"" marks the end (or an error)."""
        try:
            while not self._stopped:
                chunk = self.tar.read(_CHUNK)
                self._queue.put(chunk)
                if not chunk:
                    return
        except BaseException as err:  # noqa: BLE001 - re-raised in the reading thread
            self._error = err
            self._queue.put(b"")

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes of the tar, fewer only at its end: what tarfile calls."""
        parts, wanted = [], n if n >= 0 else 1 << 62
        while wanted > 0:
            if self._offset == len(self._chunk):
                self._chunk, self._offset = self._queue.get(), 0
                if not self._chunk:
                    self._queue.put(b"")          # later reads see the end too
                    if self._error is not None:
                        raise self._error
                    break
            take = min(wanted, len(self._chunk) - self._offset)
            whole = take == len(self._chunk)
            parts.append(self._chunk if whole else self._chunk[self._offset:self._offset + take])
            self._offset += take
            wanted -= take
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def drain(self) -> None:
        """Read the tar to its end: its trailing zero blocks count for the diff_id too."""
        while self.read(_CHUNK):
            pass

    def finish(self) -> None:
        """Drain, wait for the thread, read what follows the tar in the blob; re-raises the
        thread's error."""
        self.drain()
        self._thread.join()
        self.blob.drain()

    def stop(self) -> None:
        """End the thread early (extraction failed); it stops after its current chunk."""
        self._stopped = True
        if self._abort_source is not None and self._thread.is_alive():
            self._abort_source()   # it may be waiting for the network: Ctrl-C must not wait with it
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)   # make room, so that its put() returns
            except queue.Empty:
                pass
        self._thread.join()
