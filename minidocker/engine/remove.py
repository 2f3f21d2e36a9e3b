"""Removing containers and everything they leave: ``rm``, ``system prune`` and the reconciling
of a container whose ``run`` was killed (``kill -9``) before it could clean up."""

from __future__ import annotations

import os
from pathlib import Path

# The C half of the signal module: the numbers, without the enums `import signal` builds.
import _signal as signal

from minidocker.engine.container import BrokenRecord, Container, find_container, list_containers, release_name
from minidocker.errors import InvalidState
from minidocker.linux import procfs
from minidocker.paths import StateRoots, state_roots
from minidocker.storage import Snapshot

__all__ = ["delete_later", "prune", "reconcile", "remove_container", "unmount_leftovers"]

_HIDDEN_PREFIX = ".removing-"


def remove_container(ref: str, force: bool = False, roots: StateRoots | None = None) -> Container:
    """Delete a stopped container's record and filesystem. Like ``docker rm [-f]``.

    Racing the container's own ``--rm`` (or another ``rm``) is not an error: whoever
    renames the directory first removes it, and the container is gone either way.
    """
    roots = roots or state_roots()
    container = find_container(roots, ref)
    if container.status == "running":
        if not force:
            raise InvalidState(f"cannot remove container {container.id[:12]}: it is running",
                               hint="stop it first, or use rm -f")
        _kill(container)  # its runtime process reaps it and records the exit
    directory = container.directory(roots)
    _destroy_cgroup(directory)
    Snapshot(directory, []).unmount()
    delete_later(directory)
    return container


def reconcile(container: Container, roots: StateRoots) -> bool:
    """Finish the work of a ``run`` that died (``kill -9``): unmount, remove the cgroup, record.

    Called by Container.load when the record's owner is gone (linux/procfs.py), so the next
    command that reads the state cleans up; its network endpoints are reclaimed by the
    network store the same way. Several commands may do it at once: each step is idempotent.
    Returns False if the record was removed (``--rm``), True if it is kept as 'exited'.
    """
    _kill(container)  # a PID 1 that outlived its owner (no PDEATHSIG): the cgroup would not empty
    directory = container.directory(roots)
    _destroy_cgroup(directory)
    Snapshot(directory, []).unmount()
    if container.exit_code is None and container.start_time is not None:
        container.exit_code = 128 + signal.SIGKILL  # it had started: PDEATHSIG killed it with its owner
    container.status, container.pid, container.owner = "exited", None, None
    if container.auto_remove:
        delete_later(directory)
        return False
    if directory.is_dir():
        container.save(roots)
    return True


def _kill(container: Container) -> None:
    """SIGKILL the container's PID 1 if it is still the process the record names."""
    if container.pid is not None and procfs.is_alive(container.pid, container.start_time):
        try:
            os.kill(container.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it exited since we looked


def _destroy_cgroup(directory: Path) -> None:
    """Kill what is left in the container's cgroup and remove it (after a crash of its runtime)."""
    from minidocker.atomic import read_json
    from minidocker.cgroups import open_cgroup

    try:
        path = read_json(directory / "config.json")["linux"]["cgroupsPath"]
    except (FileNotFoundError, KeyError, ValueError):
        return
    open_cgroup(path).destroy()


def delete_later(directory: Path) -> bool:
    """Make a directory disappear now and delete its files in a detached process.

    Deleting a container's files (its upper directory can be large) is work nobody
    waits for: Docker does it in the background too. The rename is atomic, so the
    container is gone for every reader at once; a double fork leaves the deletion to
    a grandchild that init adopts, so the caller is not left with a zombie to reap.
    See: rename(2), fork(2).

    Returns False if the directory was gone already (someone else removed it first).
    The container's name is free again at once (engine/container.py, claim_name).
    """
    hidden = directory.with_name(_HIDDEN_PREFIX + directory.name)
    try:
        os.rename(directory, hidden)
    except FileNotFoundError:
        return False  # another rm, or the container's own --rm, was first
    _release_name(hidden, directory)
    child = os.fork()
    if child == 0:
        try:
            if os.fork() == 0:
                try:
                    import shutil

                    shutil.rmtree(hidden, ignore_errors=True)
                    if os.geteuid() != 0 and hidden.exists():   # rootless: files of subordinate ids
                        from minidocker.security.rootless import remove_tree

                        remove_tree(hidden)
                finally:
                    os._exit(0)
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    return True


def _release_name(hidden: Path, directory: Path) -> None:
    from minidocker.atomic import read_json

    try:
        name = read_json(hidden / Container.FILE)["name"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    release_name(directory.parent, name, directory.name)


def unmount_leftovers(roots: StateRoots, keep: tuple[str, ...] = ()) -> list[str]:
    """Unmount what is still mounted under the state roots (after a crash), deepest first.

    Mounts under a path in ``keep`` (running containers) are left alone.
    """
    prefixes = tuple(os.fspath(p) + "/" for p in (roots.lib, roots.run))
    from minidocker.mountinfo import read_mountinfo

    mounted = [m.mount_point for m in read_mountinfo()
               if m.mount_point.startswith(prefixes) and not m.mount_point.startswith(keep)]
    from minidocker.linux import UmountFlag, umount2

    for mount_point in sorted(mounted, key=len, reverse=True):
        umount2(mount_point, UmountFlag.MNT_DETACH)
    return mounted


def prune(roots: StateRoots | None = None) -> list[str]:
    """Remove stopped containers, idle networks, leftovers (mounts, empty cgroup parents).

    Like ``docker system prune``.
    """
    roots = roots or state_roots()
    broken: list[BrokenRecord] = []
    containers = list_containers(roots, broken=broken)
    running = tuple(os.fspath(c.directory(roots)) + "/" for c in containers if c.status == "running")
    removed = [f"unmounted {m}" for m in unmount_leftovers(roots, keep=running)]
    import shutil

    for leftover in roots.containers.glob(_HIDDEN_PREFIX + "*"):  # a deletion that was interrupted
        shutil.rmtree(leftover, ignore_errors=True)
        removed.append(f"deleted {leftover.name}")
    for record in broken:
        shutil.rmtree(record.path.parent, ignore_errors=True)
        removed.append(f"deleted broken record {record.path.parent.name}")
    for container in containers:
        if container.status != "running":
            remove_container(container.id, roots=roots)
            removed.append(f"deleted container {container.id}")
    if (roots.lib / "networks").is_dir():
        from minidocker.engine.networks import prune_networks

        removed += prune_networks(roots)
    from minidocker.cgroups import remove_parent

    removed += [f"removed cgroup {path}" for path in remove_parent()]
    return removed
