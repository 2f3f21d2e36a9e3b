"""The one way a later chapter's exercise gets an earlier chapter's code: :func:`previous`.

Chapter 03's ``run_isolated`` needs chapter 01's ``run_capture``. It asks for it with
``previous("ch01").run_capture``, which returns **your** ``exercises/ch01/tasks.py``,
unless you opted in to continue from the reference solution:

- ``MINIDOCKER_CHECKPOINT=ch02`` in the environment: chapters 01 and 02 (up to and
  including the one named) come from ``solutions/``; ``all`` means every chapter;
- or the same word on the first line of the file ``exercises/.checkpoint``
  (``echo ch02 > exercises/.checkpoint``; git ignores it). The environment wins.

Call ``previous()`` early (at import time or before forking), never in a child that
has just called ``unshare(CLONE_NEWPID)``: a first import can start a process, which
would become that namespace's PID 1.

Nothing else in ``exercises/`` imports ``solutions/``: the reference is loaded only
when you ask for it. ``make grade`` prints which chapters it took from where.
See exercises/README.md, "Stuck?".
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from types import ModuleType

__all__ = ["CHECKPOINT_FILE", "ENV_VAR", "describe", "previous", "previous_stage", "uses_reference"]

ENV_VAR = "MINIDOCKER_CHECKPOINT"
CHECKPOINT_FILE = Path(__file__).resolve().parent / ".checkpoint"
_CHAPTER = re.compile(r"^ch(\d\d)$")


def _chapter_number(chapter: str) -> int:
    match = _CHAPTER.match(chapter)
    if match is None:
        raise ValueError(f"invalid chapter {chapter!r}: expected 'ch' and two digits, like 'ch01'")
    return int(match.group(1))


def _setting() -> tuple[str, str] | None:
    """(value, where it came from) of the opt-in, or None."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value:
        return value, f"${ENV_VAR}"
    if CHECKPOINT_FILE.is_file():
        lines = CHECKPOINT_FILE.read_text().split()
        if lines:
            return lines[0], str(CHECKPOINT_FILE)
    return None


def uses_reference(chapter: str) -> bool:
    """Whether ``previous(chapter)`` returns the reference solution rather than your code."""
    number = _chapter_number(chapter)
    setting = _setting()
    if setting is None:
        return False
    value, where = setting
    if value.lower() in ("all", "solutions"):
        return True
    try:
        return number <= _chapter_number(value)
    except ValueError:
        raise ValueError(f"invalid checkpoint {value!r} in {where}: expected 'all' or a chapter like 'ch02'") from None


def previous(chapter: str) -> ModuleType:
    """The tasks module of an earlier chapter: yours (``exercises.chNN.tasks``) or, if you opted in, the reference.

    >>> previous("ch01").run_capture(["true"])   # doctest: +SKIP
    (0, b'')
    """
    package = "solutions" if uses_reference(chapter) else "exercises"
    return importlib.import_module(f"{package}.{chapter}.tasks")


def previous_stage(chapter: str) -> ModuleType:
    """The runtime of your own (``exercises/mydocker``) as it stands after ``chapter``: your module, or the
    reference (``solutions.mydocker.tasks``) if you opted in up to that chapter.

    >>> previous_stage("ch03").container(["true"], rootfs)   # doctest: +SKIP
    (0, b'')
    """
    package = "solutions" if uses_reference(chapter) else "exercises"
    return importlib.import_module(f"{package}.mydocker.tasks")


def describe() -> str:
    """One line for humans: where earlier chapters come from."""
    setting = _setting()
    if setting is None:
        return "previous(): your own code for every chapter (no checkpoint)"
    value, where = setting
    return f"previous(): reference solutions up to {value} (from {where}), your code after"
