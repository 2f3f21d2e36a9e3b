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

__all__ = ["Status"]


class _Values(type):
    """What ``enum.Enum`` would give Status, without importing enum (4-10 ms at each runtime
    command's start, bench/README.md): ``Status("running") is Status.RUNNING``, ``list(Status)``
    in the order below, ``.name`` and ``.value``."""

    _members: tuple[Status, ...]

    def __call__(cls, value: str) -> Status:  # type: ignore[override]
        for member in cls._members:
            if member == value:
                return member
        raise ValueError(f"{value!r} is not a valid Status")

    def __iter__(cls):  # noqa: ANN204
        return iter(cls._members)

    def __len__(cls) -> int:
        return len(cls._members)


class Status(str, metaclass=_Values):
    """An OCI ``status`` value (a str); the ``can_*`` methods are the lifecycle's truth table."""

    CREATING: Status
    CREATED: Status
    RUNNING: Status
    PAUSED: Status
    STOPPED: Status
    name: str

    @property
    def value(self) -> str:
        return str.__str__(self)

    def __str__(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return f"<Status.{self.name}: {str.__repr__(self)}>"

    def __reduce__(self):  # noqa: ANN204 - pickles (forked children, multiprocessing) as Status(value)
        return Status, (self.value,)

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


def _members(*names: str) -> tuple[Status, ...]:
    members = []
    for name in names:
        member = str.__new__(Status, name.lower())
        member.name = name
        setattr(Status, name, member)
        members.append(member)
    return tuple(members)


Status._members = _members("CREATING", "CREATED", "RUNNING", "PAUSED", "STOPPED")
