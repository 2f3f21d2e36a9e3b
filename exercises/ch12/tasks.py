"""Chapter 12 exercises: an OCI runtime. Fill in the four functions.

Read exercises/ch12/README.md first, then grade with ``make grade CH=12 [TASK=12_1]``.

    can(status, verb)                      task 12.1  the lifecycle's truth table
    apply_run_flags(spec, ...)             task 12.2  docker run flags -> config.json fields
    wait_at_fifo(path)                     task 12.3  the container side of create: wait at a fifo
    release(path, pid)                     task 12.4  the start side: release it, without hanging

See: https://github.com/opencontainers/runtime-spec/blob/main/runtime.md, fifo(7).
"""

from __future__ import annotations

import os  # noqa: F401
import select  # noqa: F401
import time  # noqa: F401
from collections.abc import Sequence
from typing import Any

__all__ = ["VERBS", "apply_run_flags", "can", "release", "wait_at_fifo"]

VERBS = ("start", "kill", "delete", "pause", "resume")


def can(status: str, verb: str) -> bool:
    """May ``verb`` (start, kill, delete, pause, resume) act on a container in ``status``?

    The statuses are the runtime spec's (creating, created, running, stopped) and runc's
    paused. start: only created; kill: created, running, paused; delete (no --force):
    stopped, or created (runc allows it); pause: running; resume: paused. Raise
    ValueError for an unknown status or verb.
    See: minidocker/runtime/status.py, runtime-spec runtime.md "Lifecycle".
    """
    # TODO(task 12.1): return whether verb may act on status (the truth table)
    raise NotImplementedError("task 12.1: return whether verb may act on status (the truth table)")


def apply_run_flags(spec: dict[str, Any], *, hostname: str | None = None, env: Sequence[str] = (),
                    workdir: str | None = None, user: str | None = None, read_only: bool = False,
                    memory: int | None = None) -> dict[str, Any]:
    """Turn ``docker run`` flags into the fields of an OCI config, in place; return ``spec``.

    ``--hostname`` -> ``hostname``; ``-e K=V`` -> appended to ``process.env`` (a later K
    replaces an earlier one); ``-w`` -> ``process.cwd``; ``-u UID[:GID]`` (numbers) ->
    ``process.user.uid`` / ``gid``; ``--read-only`` -> ``root.readonly``; ``-m BYTES`` ->
    ``linux.resources.memory.limit``. Raise ValueError for ``-e`` without '=' or a
    relative ``-w``.
    See: minidocker/engine/run.py build_spec, runtime-spec config.md.
    """
    # TODO(task 12.2): set hostname, env, cwd, user, root.readonly, memory limit
    raise NotImplementedError("task 12.2: set hostname, env, cwd, user, root.readonly, memory limit")


def wait_at_fifo(path: str) -> None:
    """The container side of ``create``: block until ``start`` opens the fifo, then write one byte.

    Open ``path`` (a fifo made with os.mkfifo) for writing: open(2) blocks until a
    reader opens it. Write b"0" (proof we got past the open) and close it.
    See: fifo(7), open(2).
    """
    # TODO(task 12.3): open the fifo for writing (it blocks), then write one byte
    raise NotImplementedError("task 12.3: open the fifo for writing (it blocks), then write one byte")


def release(path: str, pid: int, timeout: float = 5.0) -> None:
    """The ``start`` side: open the fifo without blocking, wait for the byte, unlink the fifo.

    Open ``path`` with O_RDONLY | O_NONBLOCK (a blocking open would wait for ever if
    the container died), poll(2) for it to be readable in steps of 0.1 s, checking
    with os.kill(pid, 0) that the waiting process still exists; read the byte, close,
    unlink ``path``. Raise ProcessLookupError if ``pid`` is gone, TimeoutError after
    ``timeout`` seconds.
    See: fifo(7), poll(2), minidocker/runtime/start.py.
    """
    # TODO(task 12.4): open non-blocking, poll for the byte, check pid, unlink
    raise NotImplementedError("task 12.4: open non-blocking, poll for the byte, check pid, unlink")
