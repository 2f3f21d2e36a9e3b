"""``delete``: remove a stopped (or, with force, any) container. Like ``runc delete``.

What a container holds on the host: its state directory, its cgroup, and its
processes. Mounts are not on the list: they live in the container's mount
namespace and the kernel drops them with its last process. ``--force`` kills
every process first (SIGKILL, frozen cgroup: none can fork meanwhile). The
``poststop`` hooks run last.
"""

from __future__ import annotations

import os
import time

# The C half of the signal module: the same functions and numbers, without the enums that
# `import signal` builds (it imports enum: 4-10 ms at each runtime command's start, bench/README.md).
import _signal as signal

from minidocker.errors import ContainerError, InvalidState, NotFound
from minidocker.linux.procfs import is_alive
from minidocker.runtime.hooks import run_hooks
from minidocker.runtime.kill import signal_init
from minidocker.runtime.state import container_dir, load
from minidocker.runtime.status import Status

__all__ = ["delete"]


def delete(root: str, container_id: str, force: bool = False, timeout: float = 10.0) -> None:
    """Delete the container: processes (with ``force``), cgroup, state, then poststop hooks.

    Raises:
        NotFound: no such container.
        InvalidState: it is running or paused and ``force`` is not set.
    """
    directory = container_dir(root, container_id)
    try:
        container = load(root, container_id)
    except NotFound:
        raise NotFound(f"container {container_id} does not exist") from None
    if not force and not container.status.can_delete():
        raise InvalidState(f"cannot delete container {container_id}: it is {container.status}",
                           hint="stop it first (kill), or use delete --force")
    cgroup = None
    if container.cgroup:
        from minidocker.cgroups import open_cgroup

        cgroup = open_cgroup(container.cgroup)
    if container.status is not Status.STOPPED:
        signal_init(container, signal.SIGKILL)
        if cgroup is not None:
            if container.status is Status.PAUSED:
                cgroup.thaw()  # a frozen process cannot die: SIGKILL is delivered on thaw
            cgroup.kill(timeout)
        deadline = time.monotonic() + timeout
        while is_alive(container.pid, container.start_time):  # type: ignore[arg-type]
            if time.monotonic() > deadline:
                raise ContainerError(f"failed to delete container {container_id}: its init did not die")
            time.sleep(0.002)
    if cgroup is not None:
        cgroup.destroy(timeout)
    _remove_state_dir(directory)
    container.status = Status.STOPPED
    run_hooks("poststop", container.config_hooks("poststop"), container.to_oci())


def _remove_state_dir(directory: str) -> None:
    """Remove ROOT/ID: it holds only our files (state.json, exec.fifo, a temp file), no subdirectories."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass
    os.rmdir(directory)
