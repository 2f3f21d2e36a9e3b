"""Container logs in Docker's json-file format: one JSON object per line, rotated by size.

::

    <container dir>/<id>-json.log      one entry a line:
        {"log":"hi\\n","stream":"stdout","time":"2026-12-01T22:30:01.123456789Z"}
    <id>-json.log.1, .2 ...            older files, with ``max-file`` > 1 (``--log-opt``)

    writer = LogWriter(path, max_size=10 << 20, max_files=3)   # the supervisor's side
    writer.write("stdout", b"partial line")                    # a line is one entry, split at \\n
    for entry in read_entries(path, since=..., tail=10):       # the daemon's side (docker logs)
        entry.stream, entry.time, entry.data

A line longer than 16 KiB is cut into entries of 16 KiB, as dockerd does; a partial
line waits in the writer until its newline (or a flush at exit).
See: https://docs.docker.com/config/containers/logging/json-file/
"""

from __future__ import annotations

import json
import os
import time

from minidocker.errors import InvalidArgument
from minidocker.record import Record

__all__ = ["LogEntry", "LogScan", "LogWriter", "log_files", "parse_log_opts", "parse_size", "read_entries",
           "rfc3339nano"]

MAX_LINE = 16 * 1024


def rfc3339nano(ns: int | None = None) -> str:
    """Docker's timestamps: RFC 3339 with nine fractional digits, UTC."""
    ns = time.time_ns() if ns is None else ns
    seconds, fraction = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


def parse_rfc3339nano(text: str) -> int:
    """Nanoseconds since the epoch of a ``rfc3339nano`` string."""
    import calendar

    head, _, rest = text.partition(".")
    fraction = rest.rstrip("Z")
    seconds = calendar.timegm(time.strptime(head.rstrip("Z"), "%Y-%m-%dT%H:%M:%S"))
    return seconds * 10**9 + int((fraction or "0").ljust(9, "0")[:9])


def parse_size(text: str) -> int:
    """``10m``, ``512k``, ``1g``, ``100`` (bytes) as docker's --log-opt max-size reads them."""
    units = {"": 1, "b": 1, "k": 1024, "kb": 1024, "m": 1024**2, "mb": 1024**2, "g": 1024**3, "gb": 1024**3}
    value = text.strip().lower()
    number = value.rstrip("kmgb")
    unit = value[len(number):]
    try:
        size = int(float(number) * units[unit])
    except (ValueError, KeyError):
        raise InvalidArgument(f"invalid max-size {text!r}",
                              hint="use a size such as 10m, 512k or 1g") from None
    if size <= 0:
        raise InvalidArgument(f"invalid max-size {text!r}: it must be positive")
    return size


def parse_log_opts(opts: dict[str, str]) -> tuple[int | None, int]:
    """(max_size in bytes or None, max_files) from ``--log-opt`` values; unknown options refused."""
    unknown = sorted(set(opts) - {"max-size", "max-file"})
    if unknown:
        raise InvalidArgument(f"unknown log opt '{unknown[0]}' for json-file log driver")
    max_size = parse_size(opts["max-size"]) if opts.get("max-size") else None
    try:
        max_files = int(opts.get("max-file") or 1)
    except ValueError:
        raise InvalidArgument(f"invalid max-file {opts.get('max-file')!r}: not a number") from None
    if max_files < 1:
        raise InvalidArgument(f"invalid max-file {max_files}: it must be at least 1")
    if max_files > 1 and max_size is None:
        raise InvalidArgument("max-file cannot be set without max-size", hint="add --log-opt max-size=10m")
    return max_size, max_files


class LogWriter:
    """Appends entries to ``path``; past ``max_size`` bytes, rotates to ``.1`` ... ``.{max_files-1}``."""

    def __init__(self, path: str, max_size: int | None = None, max_files: int = 1) -> None:
        self.path, self.max_size, self.max_files = path, max_size, max_files
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = os.fstat(self.fd).st_size
        self._partial: dict[str, bytes] = {}

    def write(self, stream: str, data: bytes) -> None:
        """Buffer ``data`` of ``stream`` (stdout/stderr); write every complete line as one entry."""
        data = self._partial.pop(stream, b"") + data
        lines = data.split(b"\n")
        last = lines.pop()
        for line in lines:
            self._entry(stream, line + b"\n")
        while len(last) >= MAX_LINE:
            self._entry(stream, last[:MAX_LINE])
            last = last[MAX_LINE:]
        if last:
            self._partial[stream] = last

    def flush(self) -> None:
        """Write what waits for a newline (the container exited)."""
        for stream in list(self._partial):
            self._entry(stream, self._partial.pop(stream))

    def _entry(self, stream: str, payload: bytes) -> None:
        entry = {"log": payload.decode("utf-8", "replace"), "stream": stream, "time": rfc3339nano()}
        line = json.dumps(entry, separators=(",", ":")).encode() + b"\n"
        if self.max_size is not None and self.size + len(line) > self.max_size and self.size > 0:
            self._rotate()
        os.write(self.fd, line)
        self.size += len(line)

    def _rotate(self) -> None:
        os.close(self.fd)
        if self.max_files > 1:
            for n in range(self.max_files - 1, 1, -1):
                older = f"{self.path}.{n - 1}"
                if os.path.exists(older):
                    os.replace(older, f"{self.path}.{n}")
            os.replace(self.path, f"{self.path}.1")
        else:
            os.truncate(self.path, 0)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        self.size = 0

    def close(self) -> None:
        self.flush()
        os.close(self.fd)


class LogEntry(Record):
    FIELDS = ("stream", "time", "data")

    def __init__(self, stream: str, time: str, data: bytes) -> None:
        self.stream, self.time, self.data = stream, time, data


def log_files(path: str) -> list[str]:
    """The rotated files oldest first, then ``path`` itself (those that exist)."""
    rotated = []
    n = 1
    while os.path.exists(f"{path}.{n}"):
        rotated.append(f"{path}.{n}")
        n += 1
    return [*reversed(rotated), *([path] if os.path.exists(path) else [])]


_HEAD, _STREAM, _TIME = b'{"log":"', b'","stream":"', b'","time":"'


def _parse(line: bytes) -> LogEntry | None:
    """One line of the file (with or without its newline) as an entry; None for a damaged line.

    The writer's own form (``{"log":"...","stream":"...","time":"..."}``, ASCII) is cut apart
    without a JSON parser when its text has no escape but the final ``\\n``: ~4x faster, which
    is what ``docker logs`` of a 100 MB log spends its time on. Anything else goes to json.loads.
    """
    line = line.rstrip(b"\n")
    if line.startswith(_HEAD) and line.endswith(b'"}'):
        cut = line.rfind(_STREAM)
        stream, sep, stamp = line[cut + len(_STREAM):-2].partition(_TIME)
        text = line[len(_HEAD):cut]
        if cut > 0 and sep and b'"' not in stamp:
            if text.endswith(b"\\n") and b"\\" not in text[:-2]:
                return LogEntry(stream.decode(), stamp.decode(), text[:-2] + b"\n")
            if b"\\" not in text:
                return LogEntry(stream.decode(), stamp.decode(), text)
    try:
        doc = json.loads(line)
        return LogEntry(doc["stream"], doc["time"], doc["log"].encode())
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # a line being written, or damaged: skipped as docker does


class LogScan:
    """The entries of a log and its rotations, filtered, read in blocks (a 100 MB log is never in memory).

    ``for entry in LogScan(path, since_ns, until_ns, tail, streams)``; once iterated,
    ``position`` (the end of the last complete line of ``path``) and ``inode`` say where a
    ``follow`` goes on. ``tail``: only the last N entries (after filtering).
    """

    BLOCK = 4 << 20

    def __init__(self, path: str, since_ns: int = 0, until_ns: int | None = None, tail: int | None = None,
                 streams: tuple[str, ...] = ("stdout", "stderr")) -> None:
        self.path, self.since_ns, self.until_ns = path, since_ns, until_ns
        self.tail, self.streams = tail, streams
        self.position, self.inode = 0, None

    def __iter__(self):
        if self.tail is None:
            yield from self._entries()
        elif self.tail > 0:
            from collections import deque

            yield from deque(self._entries(), maxlen=self.tail)
        else:
            for _ in self._entries():
                pass  # nothing to send, but position and inode are wanted

    def _entries(self):
        since, until, streams = self.since_ns, self.until_ns, self.streams
        for name in log_files(self.path):
            with open(name, "rb") as f:
                current = name == self.path
                if current:
                    self.inode = os.fstat(f.fileno()).st_ino
                rest = b""
                while block := f.read(self.BLOCK):
                    block = rest + block
                    cut = block.rfind(b"\n") + 1
                    rest = block[cut:]   # a line being written: follow reads it
                    if current:
                        self.position += cut
                    for line in block[:cut].split(b"\n")[:-1]:
                        entry = _parse(line)
                        if entry is None or entry.stream not in streams:
                            continue
                        if since or until is not None:
                            stamp = parse_rfc3339nano(entry.time)
                            if stamp < since or (until is not None and stamp > until):
                                continue
                        yield entry


def read_entries(path: str, since_ns: int = 0, until_ns: int | None = None, tail: int | None = None,
                 streams: tuple[str, ...] = ("stdout", "stderr")) -> list[LogEntry]:
    """The entries of ``path`` and its rotations, filtered; ``tail``: only the last N (after filtering)."""
    return read_log(path, since_ns, until_ns, tail, streams)[0]


def read_log(path: str, since_ns: int = 0, until_ns: int | None = None, tail: int | None = None,
             streams: tuple[str, ...] = ("stdout", "stderr")) -> tuple[list[LogEntry], int, int | None]:
    """:func:`read_entries`, plus where ``path`` was read up to and its inode: where ``follow`` goes on."""
    scan = LogScan(path, since_ns, until_ns, tail, streams)
    entries = list(scan)
    return entries, scan.position, scan.inode
