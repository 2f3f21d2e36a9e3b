"""``pause`` and ``resume``: freeze and thaw every process of a container. Like ``runc pause``.

The cgroup freezer stops the processes where they are (they are not signalled and
cannot notice); the ``paused`` status is written to state.json, as the kernel's
freezer state is per hierarchy. See: cgroups(7), the kernel's cgroup-v1/freezer-subsystem
and cgroup-v2 "cgroup.freeze".
"""

from __future__ import annotations

from minidocker.errors import InvalidState
from minidocker.runtime.state import State, load
from minidocker.runtime.status import Status

__all__ = ["pause", "resume"]


def pause(root: str, container_id: str) -> State:
    container = load(root, container_id)
    if not container.status.can_pause() or not container.cgroup:
        raise InvalidState(f"cannot pause container {container_id}: it is {container.status}")
    from minidocker.cgroups import open_cgroup

    open_cgroup(container.cgroup).freeze()
    container.status = Status.PAUSED
    container.save(root, durable=False)
    return container


def resume(root: str, container_id: str) -> State:
    container = load(root, container_id)
    if not container.status.can_resume() or not container.cgroup:
        raise InvalidState(f"cannot resume container {container_id}: it is {container.status}")
    from minidocker.cgroups import open_cgroup

    open_cgroup(container.cgroup).thaw()
    container.status = Status.RUNNING
    container.save(root, durable=False)
    return container
