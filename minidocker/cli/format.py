"""Tables the way docker prints them: sizes, "2 hours ago", truncated IDs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from minidocker.sizes import human_size as _human_size

__all__ = ["history_rows", "human_size", "image_rows", "since"]


def human_size(size: float) -> str:
    """Docker's sizes in tables (``docker images``, ``history``): 4.26MB, three significant digits."""
    return _human_size(size, 3)


def since(created: str | None, now: float | None = None) -> str:
    """``2024-05-01T10:00:00Z`` -> "3 weeks ago" (roughly as docker rounds)."""
    if not created:
        return "N/A"
    import calendar

    try:
        then = calendar.timegm(time.strptime(created[:19], "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return "N/A"
    seconds = max(0, (now or time.time()) - then)
    for unit, length in (("year", 365 * 86400), ("month", 30 * 86400), ("week", 7 * 86400), ("day", 86400),
                         ("hour", 3600), ("minute", 60)):
        if seconds >= 2 * length or (unit in ("hour", "minute") and seconds >= length):
            count = int(seconds // length)
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "Less than a second ago" if seconds < 1 else f"{int(seconds)} seconds ago"


def image_rows(images: Sequence[Any], quiet: bool = False, no_trunc: bool = False) -> list[str]:
    """``docker images`` output for a list of Image."""
    def ident(image: Any) -> str:
        return image.id if no_trunc else image.short_id

    if quiet:
        return list(dict.fromkeys(ident(i) for i in images))
    rows = [f"{'REPOSITORY':<32}{'TAG':<16}{'IMAGE ID':<16}{'CREATED':<24}SIZE"]
    for i in images:
        rows.append(f"{i.name:<32}{i.tag:<16}{ident(i):<16}{since(i.document.get('created')):<24}"
                    f"{human_size(i.size)}")
    return rows


def history_rows(entries: Sequence[dict[str, Any]], no_trunc: bool = False) -> list[str]:
    """``docker history`` output: newest first, IMAGE, CREATED, CREATED BY, SIZE, COMMENT."""
    rows = [f"{'IMAGE':<16}{'CREATED':<24}{'CREATED BY':<48}{'SIZE':<10}COMMENT"]
    for e in entries:
        created_by = e.get("created_by", "")
        if not no_trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        rows.append(f"{e['image']:<16}{since(e.get('created')):<24}{created_by:<48}"
                    f"{human_size(e['size']):<10}{e.get('comment', '')}")
    return rows
