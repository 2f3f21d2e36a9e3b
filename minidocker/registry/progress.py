"""Pull and push progress like Docker's: bars redrawn in place on a terminal, lines otherwise. Chapter 07.

On a tty (one line per layer, rewritten with ANSI cursor moves, at most 10 times a second)::

    latest: Pulling from demo/app
    3f1e7c2a9b10: Downloading [=============>                                     ]  12.6MB/46.1MB
    9c0d1e2f3a4b: Pull complete
    Digest: sha256:...

Not on a tty (a log, a pipe, a notebook): each status change once, no bars.
``JsonProgress`` writes the Engine API's JSON lines instead (``POST /images/create``, ``/push``)::

    {"status": "Downloading", "id": "3f1e7c2a9b10",
     "progressDetail": {"current": 12600000, "total": 46100000},
     "progress": "[=====>    ]  12.6MB/46.1MB"}

Thread-safe: layers report from their download threads.
See: console_codes(4) (ESC [ n A: cursor up, ESC [ 2 K: erase line).
"""

from __future__ import annotations

import sys
import threading
import time

from minidocker.sizes import human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TextIO

__all__ = ["JsonProgress", "Progress", "human_size", "progress_bar"]

_BAR = 50


def progress_bar(current: int, total: int) -> str:
    """``[=====>     ]  12.6MB/46.1MB``: the bar Docker draws for a download or upload."""
    if total <= 0:
        return human_size(current)
    filled = min(_BAR, _BAR * current // total)
    arrow = ">" if filled < _BAR else "="
    bar = "=" * max(0, filled - 1) + arrow if filled else ""
    return f"[{bar:<{_BAR}}] {human_size(current):>8}/{human_size(total)}"


class Progress:
    """Where pull and push report: ``line(text)`` for whole lines, ``update(id, status, ...)`` per layer.

    Args:
        stream: where to write (default: stdout).
        tty: draw bars (default: ``stream.isatty()``).
        quiet: write nothing.
    """

    def __init__(self, stream: TextIO | None = None, tty: bool | None = None, quiet: bool = False) -> None:
        self.stream = None if quiet else sys.stdout if stream is None else stream
        self.tty = bool(tty if tty is not None else getattr(self.stream, "isatty", lambda: False)())
        self.lines: list[str] = []   # every line() text, for callers and tests
        self._lock = threading.Lock()
        self._order: list[str] = []
        self._text: dict[str, str] = {}
        self._status: dict[str, str] = {}
        self._drawn = 0
        self._last = 0.0

    def line(self, text: str) -> None:
        """A line of its own; on a tty the layer block above it stays as it is."""
        with self._lock:
            if self.tty and self._order:
                self._draw()
                self._order, self._text, self._status, self._drawn = [], {}, {}, 0
            self.lines.append(text)
            self._write(text + "\n")

    def update(self, ident: str, status: str, current: int | None = None, total: int | None = None) -> None:
        """Layer ``ident`` is at ``status`` (with a bar when current/total are given)."""
        with self._lock:
            changed = self._status.get(ident) != status
            self._status[ident] = status
            if ident not in self._text:
                self._order.append(ident)
            text = f"{ident}: {status}"
            if current is not None and total is not None:
                text += " " + progress_bar(current, total)
            self._text[ident] = text
            if not self.tty:
                if changed:
                    self._write(f"{ident}: {status}\n")
                return
            now = time.monotonic()
            if changed or now - self._last >= 0.1:
                self._last = now
                self._draw()

    def _draw(self) -> None:
        up = f"\x1b[{self._drawn}A" if self._drawn else ""
        lines = "".join(f"\x1b[2K{self._text[i]}\n" for i in self._order)
        self._drawn = len(self._order)
        self._write(up + lines)

    def _write(self, text: str) -> None:
        if self.stream is not None:
            self.stream.write(text)
            self.stream.flush()


class JsonProgress(Progress):
    """Progress as the Engine API streams it: one JSON object per line, flushed per message.

    What the docker CLI renders (engine-api.md §11): ``{"status": ..., "id": ...}`` per layer,
    ``progressDetail`` and ``progress`` while bytes move, plain ``{"status": ...}`` lines.
    """

    def __init__(self, write) -> None:
        super().__init__(tty=False)
        self.stream = None
        self.write_line = write   # a callable taking one str (a line, newline included)

    def line(self, text: str) -> None:
        import json

        with self._lock:
            self.lines.append(text)
            self.write_line(json.dumps({"status": text}) + "\n")

    def update(self, ident: str, status: str, current: int | None = None, total: int | None = None) -> None:
        import json

        message: dict = {"status": status, "id": ident, "progressDetail": {}}
        if current is not None and total is not None:
            message["progressDetail"] = {"current": current, "total": total}
            message["progress"] = progress_bar(current, total)
        with self._lock:
            self.write_line(json.dumps(message) + "\n")
