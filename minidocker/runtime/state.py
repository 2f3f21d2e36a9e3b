"""A container's state on disk, and the ``state`` verb. Like ``runc state``.

Every container of a runtime root has a directory, ``ROOT/ID``::

    ROOT/ID/state.json   this State: id, init PID *and its start time*, bundle, cgroup, hooks
    ROOT/ID/exec.fifo    exists from create until start (see minidocker.runtime.create)

``state.json`` is written atomically (temp, fsync, rename), so any process reading it
at any time sees a whole file. The status in it is only the last one written: every
reader recomputes it from the kernel (:meth:`State.refresh`): init gone, or a zombie,
or its PID now someone else's (the start time differs) means ``stopped``; the fifo
still there means ``created``. A PID is never signalled without that check.

    load(root, id) -> State            NotFound if there is none
    state(root, id) -> dict            what ``runc state`` prints (the spec's state)
    list_states(root) -> [State]       ``runc list``
    validate_id(id)                    InvalidArgument for '', '/', '..' ...

See: https://github.com/opencontainers/runtime-spec/blob/main/runtime.md#state
"""

from __future__ import annotations

import os

from minidocker.atomic import read_json, write_json
from minidocker.errors import InvalidArgument, NotFound
from minidocker.linux.procfs import is_alive
from minidocker.record import Record
from minidocker.runtime.status import Status

__all__ = ["FIFO", "STATE_FILE", "State", "container_dir", "default_root", "list_states", "load", "state",
           "validate_id"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

STATE_FILE = "state.json"
FIFO = "exec.fifo"
OCI_VERSION = "1.0.2"

# runc's rule (libcontainer/factory_linux.go, Go's ASCII \w): letters, digits, '_', '+', '-', '.';
# never '.' or '..'.
_ID_PUNCTUATION = frozenset("_+.-")


def default_root() -> str:
    """``/run/minidocker/runtime``, moved by ``MINIDOCKER_ROOT`` like the other state roots.

    ``minidocker.paths.run_root()`` decides it, without pathlib (3 ms of imports at each
    runtime command's start); a test checks it agrees with ``state_roots().run / "runtime"``.
    """
    from minidocker.paths import run_root

    return os.path.join(run_root(), "runtime")


def validate_id(container_id: str) -> str:
    """Return ``container_id`` if it can name a directory under the root; else raise InvalidArgument."""
    if (not isinstance(container_id, str) or not container_id or container_id in (".", "..")
            or not all((c.isascii() and c.isalnum()) or c in _ID_PUNCTUATION for c in container_id)):
        raise InvalidArgument(f"invalid container id {container_id!r}",
                              hint="use letters, digits, '_', '+', '-' and '.' (not '/' nor '..')")
    return container_id


def container_dir(root: str | os.PathLike[str], container_id: str) -> str:
    return os.path.join(root, validate_id(container_id))


class State(Record):
    """What the runtime remembers of one container (``ROOT/ID/state.json``).

    ``start_time`` is field 22 of /proc/PID/stat for ``pid`` (see linux/procfs.py);
    ``creator`` is (pid, start time) of the ``create`` process, so that a container
    whose creator died half-way reads as stopped, not "creating" for ever.
    """

    FIELDS = ("id", "status", "pid", "start_time", "bundle", "rootfs", "created", "annotations", "cgroup",
              "hooks", "creator")

    def __init__(self, id: str, status: Status = Status.CREATING, pid: int | None = None,
                 start_time: int | None = None, bundle: str = "", rootfs: str = "", created: str = "",
                 annotations: dict[str, str] | None = None, cgroup: str | None = None,
                 hooks: dict[str, list[dict[str, Any]]] | None = None,
                 creator: tuple[int, int | None] | None = None) -> None:
        self.id = id
        self.status = Status(status)
        self.pid = pid
        self.start_time = start_time
        self.bundle = bundle
        self.rootfs = rootfs
        self.created = created
        self.annotations = annotations or {}
        self.cgroup = cgroup
        self.hooks = hooks or {}  # only those run after create: poststart, poststop
        self.creator = creator

    def to_json(self) -> dict[str, Any]:
        data = {"ociVersion": OCI_VERSION, "id": self.id, "status": self.status.value, "pid": self.pid,
                "init_process_start": self.start_time, "bundle": self.bundle, "rootfs": self.rootfs,
                "created": self.created, "annotations": self.annotations, "cgroupsPath": self.cgroup,
                "hooks": self.hooks, "creator": list(self.creator) if self.creator else None}
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        creator = data.get("creator")
        return cls(data["id"], data.get("status", "creating"), data.get("pid"),
                   data.get("init_process_start"), data.get("bundle", ""), data.get("rootfs", ""),
                   data.get("created", ""), data.get("annotations"), data.get("cgroupsPath"),
                   data.get("hooks"), tuple(creator) if creator else None)  # type: ignore[arg-type]

    def to_oci(self) -> dict[str, Any]:
        """The state as the runtime spec and ``runc state`` show it (pid 0 once stopped)."""
        data = {"ociVersion": OCI_VERSION, "id": self.id, "pid": self.pid or 0, "status": self.status.value,
                "bundle": self.bundle, "rootfs": self.rootfs, "created": self.created, "owner": ""}
        if self.status is Status.STOPPED:
            data["pid"] = 0
        if self.annotations:
            data["annotations"] = self.annotations
        return data

    def save(self, root: str | os.PathLike[str], durable: bool = True) -> None:
        write_json(os.path.join(root, self.id, STATE_FILE), self.to_json(), durable=durable, indent=None)

    def refresh(self, root: str | os.PathLike[str]) -> State:
        """Recompute ``status`` from the kernel: the only status anyone should act on."""
        if self.pid is None:
            creator_alive = self.creator is not None and is_alive(*self.creator)
            self.status = Status.CREATING if creator_alive else Status.STOPPED
        elif not is_alive(self.pid, self.start_time):
            self.status = Status.STOPPED
        elif os.path.exists(os.path.join(root, self.id, FIFO)):
            self.status = Status.CREATED
        elif self.status is not Status.PAUSED:
            self.status = Status.RUNNING
        return self

    def config_hooks(self, name: str) -> list[dict[str, Any]]:
        return list(self.hooks.get(name, []))


def load(root: str | os.PathLike[str], container_id: str) -> State:
    """The container's state, refreshed from the kernel. Raises NotFound."""
    path = os.path.join(container_dir(root, container_id), STATE_FILE)
    try:
        data = read_json(path)
    except FileNotFoundError:
        raise NotFound(f"container {container_id} does not exist") from None
    except ValueError as err:
        raise NotFound(f"container {container_id} has an unreadable state file {path}: {err}") from None
    return State.from_json(data).refresh(root)


def state(root: str | os.PathLike[str], container_id: str) -> dict[str, Any]:
    """The spec's state of a container (ociVersion, id, status, pid, bundle, annotations). Like
    ``runc state``."""
    return load(root, container_id).to_oci()


def list_states(root: str | os.PathLike[str]) -> list[State]:
    """Every container under ``root``, refreshed, oldest first. Like ``runc list``."""
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    states = []
    for name in names:
        try:
            states.append(load(root, name))
        except (NotFound, InvalidArgument):
            continue  # a directory being created or deleted, or not ours
    return sorted(states, key=lambda s: (s.created, s.id))
