"""Sizes for people, the way docker prints them (Docker's go-units package).

    human_size(12_600_000) -> "12.6MB"      decimal units; 4 significant digits (pull progress),
    human_size(4_261_000, 3) -> "4.26MB"    3 for ``docker images`` (HumanSizeWithPrecision)
    binary_size(67108864) -> "64MiB"        binary units, as ``docker stats`` (BytesSize)

The one place sizes are formatted: cli/format.py (images, history), registry/progress.py
(pull and push bars) and cgroups/units.py (limits and stats) call these.
See: https://github.com/docker/go-units (size.go).
"""

from __future__ import annotations

__all__ = ["binary_size", "human_size"]

_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB")
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(size: float, precision: int = 4) -> str:
    """Decimal units (1000), ``precision`` significant digits: 527 -> "527B", 12.6e6 -> "12.6MB"."""
    for unit in _DECIMAL:
        if size < 1000 or unit == _DECIMAL[-1]:
            return f"{size:.{precision}g}{unit}"
        size /= 1000
    raise AssertionError("unreachable")


def binary_size(size: float) -> str:
    """Binary units (1024), two decimals at most: 67108864 -> "64MiB", 1.5 GiB -> "1.5GiB"."""
    value = float(size)
    for unit in _BINARY:
        if abs(value) < 1024 or unit == _BINARY[-1]:
            return f"{value:.2f}".rstrip("0").rstrip(".") + unit if unit != "B" else f"{int(value)}B"
        value /= 1024
    raise AssertionError("unreachable")
