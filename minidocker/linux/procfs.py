"""Reading a process's identity from /proc: the one owner check for every PID we keep.

A PID alone does not name a process: once it exits, the kernel hands the number to
the next process it creates. ``(pid, start time)`` does: field 22 of
``/proc/PID/stat`` is the time the process started, in clock ticks since boot, and
no two processes alive at once, or one after another, share both. Every record that
keeps a PID (a container's init, a network endpoint's owner, the runtime's state)
keeps its start time too and asks :func:`is_alive` before it signals or enters it.

    start_time(pid) -> int | None       None if it is gone or a zombie
    is_alive(pid, start_time) -> bool   the same process, still running
    open_pidfd(pid, start_time) -> fd   a handle on that process only (to signal it safely)

See: proc(5), "/proc/pid/stat" (field 22, starttime).
"""

from __future__ import annotations

__all__ = ["is_alive", "open_pidfd", "start_time"]


def start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot); None if it is gone or a zombie.

    The command name (field 2) may hold spaces and parentheses, so the fields are
    counted from the last ``)``. A zombie has exited already: nothing of it can be
    signalled or entered.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if fields[0] == b"Z" else int(fields[19])


def is_alive(pid: int, started: int | None) -> bool:
    """Is ``pid`` still the process that started at ``started`` (and not a zombie)?

    A record without a start time (``None``) cannot prove who owns the PID: it is
    taken as dead, so that a reused PID is never signalled.
    """
    return started is not None and start_time(pid) == started


def open_pidfd(pid: int, started: int | None) -> int | None:
    """A pidfd for ``pid`` if it is still the process that started at ``started``, else None.

    The check comes *after* pidfd_open(2): if the PID was reused before the open, the
    start time differs and the fd is closed; once open, the fd names that one process
    for good, so a signal sent through it (``signal.pidfd_send_signal``) can never
    reach a newcomer. Linux 5.3+.
    """
    if started is None:
        return None
    import os

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    if start_time(pid) != started:
        os.close(fd)
        return None
    return fd
