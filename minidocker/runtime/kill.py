"""``kill``: send a signal to a container's init, or to all its processes. Like ``runc kill``.

The PID comes from state.json, so it may have been reused since: the signal goes
through a pidfd opened for the recorded (PID, start time) only (linux/procfs.py),
so it can reach no other process. ``--all`` signals every process of the
container's cgroup.
See: kill(2), pidfd_open(2), pidfd_send_signal(2).
"""

from __future__ import annotations

import os

# The C half of the signal module: the same functions and numbers, without the enums that
# `import signal` builds (it imports enum: 4-10 ms at each runtime command's start, bench/README.md).
import _signal as signal

from minidocker.errors import InvalidArgument, InvalidState
from minidocker.linux.procfs import open_pidfd
from minidocker.runtime.state import State, load

__all__ = ["kill", "parse_signal", "signal_init"]


def parse_signal(text: str | int) -> int:
    """``9``, ``KILL``, ``SIGKILL``, ``kill`` -> 9. Raises InvalidArgument."""
    if isinstance(text, int) or str(text).isdigit():
        number = int(text)
        if 0 < number < signal.NSIG:
            return number
    else:
        name = str(text).upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        number = getattr(signal, name, None) if "_" not in name else None  # not SIG_DFL, SIG_BLOCK ...
        if isinstance(number, int):
            return number
    raise InvalidArgument(f"invalid signal {text!r}", hint="use a name (TERM, SIGKILL) or a number (9)")


def kill(root: str, container_id: str, sig: str | int = signal.SIGTERM, all_processes: bool = False) -> State:
    """Send ``sig`` to the container's init (``all_processes``: to every process in its cgroup).

    Raises:
        NotFound, InvalidArgument (bad signal),
        InvalidState: the container is stopped ("cannot kill container X: it is stopped").
    """
    number = parse_signal(sig)
    container = load(root, container_id)
    if not container.status.can_kill():
        raise InvalidState(f"cannot kill container {container_id}: it is {container.status}")
    if all_processes and container.cgroup:
        from minidocker.cgroups import open_cgroup

        for pid in open_cgroup(container.cgroup).procs():
            try:
                os.kill(pid, number)
            except ProcessLookupError:
                pass
    if not signal_init(container, number) and not all_processes:
        raise InvalidState(f"cannot kill container {container_id}: it is stopped")
    return container


def signal_init(container: State, number: int) -> bool:
    """Signal the container's init through a pidfd; False if it is no longer that process."""
    if container.pid is None:
        return False
    fd = open_pidfd(container.pid, container.start_time)
    if fd is None:
        return False
    try:
        signal.pidfd_send_signal(fd, number)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)
