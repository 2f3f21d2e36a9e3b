"""Chapter 12 exercises: an OCI runtime. Reference solutions.

    can(status, verb)                      task 12.1  the lifecycle's truth table
    apply_run_flags(spec, ...)             task 12.2  docker run flags -> config.json fields
    wait_at_fifo(path)                     task 12.3  the container side of create: wait at a fifo
    release(path, pid)                     task 12.4  the start side: release it, without hanging

See: https://github.com/opencontainers/runtime-spec/blob/main/runtime.md, fifo(7).
"""

from __future__ import annotations

import os
import select
import time
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
    table = {
        "start": ("created",),
        "kill": ("created", "running", "paused"),
        "delete": ("stopped", "created"),
        "pause": ("running",),
        "resume": ("paused",),
    }
    if verb not in table:
        raise ValueError(f"unknown verb {verb!r}")
    if status not in ("creating", "created", "running", "paused", "stopped"):
        raise ValueError(f"unknown status {status!r}")
    return status in table[verb]


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
    process = spec.setdefault("process", {})
    if hostname is not None:
        spec["hostname"] = hostname
    current = list(process.get("env", []))
    for item in env:
        key, sep, _ = item.partition("=")
        if not sep or not key:
            raise ValueError(f"invalid environment variable {item!r}: expected KEY=VALUE")
        current = [e for e in current if e.partition("=")[0] != key] + [item]
    process["env"] = current
    if workdir is not None:
        if not workdir.startswith("/"):
            raise ValueError(f"invalid working directory {workdir!r}: it must be absolute")
        process["cwd"] = workdir
    if user is not None:
        uid, _, gid = user.partition(":")
        process.setdefault("user", {})["uid"] = int(uid)
        process["user"]["gid"] = int(gid) if gid else 0
    if read_only:
        spec.setdefault("root", {})["readonly"] = True
    if memory is not None:
        spec.setdefault("linux", {}).setdefault("resources", {}).setdefault("memory", {})["limit"] = memory
    return spec


def wait_at_fifo(path: str) -> None:
    """The container side of ``create``: block until ``start`` opens the fifo, then write one byte.

    Open ``path`` (a fifo made with os.mkfifo) for writing: open(2) blocks until a
    reader opens it. Write b"0" (proof we got past the open) and close it.
    See: fifo(7), open(2).
    """
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)


def release(path: str, pid: int, timeout: float = 5.0) -> None:
    """The ``start`` side: open the fifo without blocking, wait for the byte, unlink the fifo.

    Open ``path`` with O_RDONLY | O_NONBLOCK (a blocking open would wait for ever if
    the container died), poll(2) for it to be readable in steps of 0.1 s, checking
    with os.kill(pid, 0) that the waiting process still exists; read the byte, close,
    unlink ``path``. Raise ProcessLookupError if ``pid`` is gone, TimeoutError after
    ``timeout`` seconds.
    See: fifo(7), poll(2), minidocker/runtime/start.py.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    deadline = time.monotonic() + timeout
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            if poller.poll(100):
                try:
                    if os.read(fd, 1):
                        break
                except BlockingIOError:
                    continue
            os.kill(pid, 0)  # ProcessLookupError if it is gone
            if time.monotonic() > deadline:
                raise TimeoutError(f"nobody waits at {path}")
    finally:
        os.close(fd)
    os.unlink(path)
