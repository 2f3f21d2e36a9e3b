"""The states of an OCI container and what each allows. Like runc's state machine.

::

    create ──▶ creating ──▶ created ──start──▶ running ──(init exits)──▶ stopped ──delete──▶ (gone)
                               │                  │  ▲                      ▲
                               │               pause resume                 │
                               │                  ▼  │                      │
                               │                 paused ───(kill -9)────────┤
                               └──────────────(kill, delete)────────────────┘

``creating``, ``created``, ``running`` and ``stopped`` are the runtime spec's values;
``paused`` is runc's addition (a frozen cgroup). A state is never stored as the truth:
:func:`minidocker.runtime.state.load` recomputes it from the kernel each time (is the
init process alive, is the exec fifo still there), so a container whose init died is
``stopped`` for every reader at once.
See: https://github.com/opencontainers/runtime-spec/blob/main/runtime.md#state
"""

from __future__ import annotations

import enum

__all__ = ["Status"]


class Status(str, enum.Enum):
    """An OCI ``status`` value; the ``can_*`` methods are the lifecycle's truth table."""

    CREATING = "creating"
    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"

    def __str__(self) -> str:
        return self.value

    def can_start(self) -> bool:
        """Only a created container runs its process, once (runtime.md "start")."""
        return self is Status.CREATED

    def can_kill(self) -> bool:
        """A signal needs a live init: created, running or paused (queued until resume)."""
        return self in (Status.CREATED, Status.RUNNING, Status.PAUSED)

    def can_delete(self) -> bool:
        """Without --force: stopped, or created and never started (as runc allows)."""
        return self in (Status.STOPPED, Status.CREATED)

    def can_pause(self) -> bool:
        return self is Status.RUNNING

    def can_resume(self) -> bool:
        return self is Status.PAUSED
