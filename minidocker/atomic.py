"""The one way minidocker writes state files: write a temp file, fsync, rename.

A reader never sees half a file: rename(2) replaces the old name atomically, and
the fsync before it makes sure the new content is on disk first.
See rename(2), fsync(2).

JSON without ``import json``: the ``json`` package imports ``re`` (and ``re`` imports
``enum``, ``functools``, ``collections``), 4-10 ms at the start of every command that
reads a state file, ``minidocker-runc start`` among them. The parser and the encoder
it uses are C code in CPython's ``_json``; :func:`loads` and :func:`dumps` call them
directly and give the same results as ``json.loads`` and ``json.dumps(obj, indent=...)``.
Errors still come from the ``json`` package (``json.JSONDecodeError``, a ValueError),
imported then.
"""

from __future__ import annotations

import _thread   # get_ident without importing threading (start-up time)
import os

__all__ = ["dumps", "loads", "read_json", "write_bytes", "write_json"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

try:
    import _json
except ImportError:  # not CPython: the json package's own Python code
    _json = None  # type: ignore[assignment]


def write_bytes(path: str | os.PathLike[str], data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically.

    ``durable=False`` skips the fsync (0.3-1 ms, more on a busy disk): the rename is
    still atomic for every reader while the machine runs, but after a power cut the
    new name may hold an empty file. For files that are worthless after a reboot
    anyway: a ``--rm`` container's record, the OCI config rewritten at each start.
    """
    path = os.fspath(path)
    directory, name = os.path.split(path)
    # The thread too: two threads of one daemon may replace the same file at once (each its own tmp).
    tmp = os.path.join(directory, f".{name}.tmp-{os.getpid()}-{_thread.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def write_json(path: str | os.PathLike[str], obj: Any, durable: bool = True, indent: int | None = 2) -> None:
    """Replace ``path`` with ``obj`` as JSON (indented, unless ``indent=None``), atomically.

    See :func:`write_bytes`.
    """
    write_bytes(path, (dumps(obj, indent=indent) + "\n").encode(), durable=durable)


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file written by :func:`write_json`.

    Raises:
        CorruptState: the file is not JSON (the message names it); OSError as ``open`` raises.
    """
    with open(path, "rb") as f:
        data = f.read()
    try:
        return loads(data)
    except ValueError as err:
        from minidocker.errors import CorruptState

        raise CorruptState(f"failed to read {os.fspath(path)}: not valid JSON ({err})") from None


# ---- JSON through _json -------------------------------------------------------------------------


class _Options:
    """What _json's scanner reads from a json.JSONDecoder: json.loads' defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


_WHITESPACE = " \t\n\r"
_scan = _json.make_scanner(_Options()) if _json is not None else None


def loads(data: str | bytes) -> Any:
    """``json.loads``, for UTF-8 text (a file minidocker or a peer wrote)."""
    text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    if _scan is None or text.startswith("\ufeff"):
        return _json_module().loads(data)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except Exception:  # noqa: BLE001 - StopIteration, or SystemError: _json raises its errors only
        end = -1       # once json.decoder is imported (it looks the class up in sys.modules)
    if end < 0 or text[end:].strip(_WHITESPACE):
        return _json_module().loads(text)  # raises the json package's own error message
    return value


def dumps(obj: Any, indent: int | None = None) -> str:
    """``json.dumps(obj)`` (compact, with ``", "`` and ``": "``), or ``json.dumps(obj, indent=N)``."""
    if _json is None:
        return _json_module().dumps(obj, indent=indent)
    if indent is None:
        return _compact(obj)
    return "".join(_indented(obj, " " * indent, "\n"))


def _default(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_encoder = (_json.make_encoder(None, _default, _json.encode_basestring_ascii, None, ": ", ", ",
                               False, False, True)
            if _json is not None else None)


def _key(key: Any) -> str:
    """A dict key as json.dumps writes it: str as is; True, False, None, numbers as their JSON text."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (bool, int, float)):
        return _compact(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _compact(obj: Any) -> str:
    return "".join(_encoder(obj, 0))  # type: ignore[misc]


def _indented(obj: Any, step: str, newline: str) -> Any:
    """json.dumps(indent=...)'s layout: one item per line, ``": "`` after keys, ``[]``/``{}`` when empty."""
    if isinstance(obj, dict) and obj:
        inner = newline + step
        yield "{"
        first = True
        for key, value in obj.items():
            yield inner if first else "," + inner
            first = False
            yield _compact(_key(key)) + ": "
            yield from _indented(value, step, inner)
        yield newline + "}"
    elif isinstance(obj, (list, tuple)) and obj:
        inner = newline + step
        yield "["
        for i, value in enumerate(obj):
            yield inner if i == 0 else "," + inner
            yield from _indented(value, step, inner)
        yield newline + "]"
    else:
        yield _compact(obj)


def _json_module():  # noqa: ANN202 - the json package, imported only when needed
    import json

    return json
