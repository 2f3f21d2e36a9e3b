"""A container's record on disk: the engine's view of it.

Layout (``tree /var/lib/minidocker/containers``)::

    containers/<id>/container.json   this record (id, name, image, status, pid, exit code)
    containers/<id>/config.json      the OCI config handed to the runtime
    containers/<id>/upper, work      the overlay snapshot's writable part
    containers/<id>/rootfs           where the snapshot is mounted while it runs
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from minidocker.atomic import read_json, write_json
from minidocker.errors import Conflict, InvalidArgument, NotFound
from minidocker.paths import StateRoots
from minidocker.record import Record

__all__ = ["Container", "find_container", "list_containers", "new_container_id", "random_name"]

TYPE_CHECKING = False  # typing costs 3 ms of start-up; annotations are strings here anyway
if TYPE_CHECKING:
    from typing import Any

_ADJECTIVES = ("brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid",
               "merry", "nifty", "proud", "quirky", "sharp", "tender", "vivid", "witty", "zen")
_NAMES = ("babbage", "curie", "dijkstra", "euler", "feynman", "hopper", "kare", "knuth", "lamport",
          "lovelace", "noether", "ritchie", "shannon", "thompson", "torvalds", "turing", "wozniak")


def new_container_id() -> str:
    """64 hex digits, like Docker's; the first 12 are the short ID.

    os.urandom, as secrets.token_hex does, without the 3 ms of importing secrets.
    """
    return os.urandom(32).hex()


def random_name() -> str:
    """A Docker-style name: ``adjective_scientist``."""
    return f"{_pick(_ADJECTIVES)}_{_pick(_NAMES)}"


def _pick(words: tuple[str, ...]) -> str:
    """A random word (the modulo bias of 2**32 % 18 is negligible for a name)."""
    return words[int.from_bytes(os.urandom(4), "little") % len(words)]


class Container(Record):
    """What the engine remembers of a container. ``status`` is Docker's: created, running, exited.

    A Record, not a dataclass: see minidocker/record.py.
    """

    FILE = "container.json"
    FIELDS = ("id", "name", "image", "command", "created", "status", "pid", "exit_code", "image_id", "oom_killed",
              "config", "host_config", "started_at", "finished_at", "error", "supervised", "restart_count",
              "manually_stopped")

    def __init__(self, id: str, name: str, image: str, command: list[str], created: float,
                 status: str = "created", pid: int | None = None, exit_code: int | None = None,
                 image_id: str | None = None, oom_killed: bool | None = None,
                 config: dict | None = None, host_config: dict | None = None, started_at: int | None = None,
                 finished_at: int | None = None, error: str | None = None, supervised: bool | None = None,
                 restart_count: int | None = None, manually_stopped: bool | None = None) -> None:
        self.id = id
        self.name = name
        self.image = image
        self.command = command
        self.created = created
        self.status = status
        self.pid = pid
        self.exit_code = exit_code
        self.image_id = image_id  # the image's ID (sha256 of its config): rmi and commit follow it
        self.oom_killed = oom_killed  # the OOM killer killed one of its processes (chapter 04)
        # Chapter 13, containers of minidockerd: the Engine API's Config and HostConfig as created,
        # start and finish times (ns), the last start error; supervised: its PID 1 is the supervisor's.
        self.config = config
        self.host_config = host_config
        self.started_at = started_at
        self.finished_at = finished_at
        self.error = error
        self.supervised = supervised
        self.restart_count = restart_count      # restarts by its policy since the last docker start
        self.manually_stopped = manually_stopped  # docker stop/kill: no restart by policy (unless-stopped)

    @classmethod
    def new(cls, name: str | None, image: str, command: list[str], image_id: str | None = None) -> Container:
        return cls(new_container_id(), name or random_name(), image, command, time.time(), image_id=image_id)

    def directory(self, roots: StateRoots) -> Path:
        return roots.containers / self.id

    def to_json(self) -> dict[str, Any]:
        data = {k: getattr(self, k) for k in self.FIELDS}
        data["command"] = list(self.command)
        return {k: v for k, v in data.items() if v is not None}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Container:
        return cls(**{k: v for k, v in data.items() if k in cls.FIELDS})

    def save(self, roots: StateRoots, durable: bool = True) -> None:
        """Write the record atomically; ``durable=False`` skips the fsync (see atomic.write_bytes)."""
        self.directory(roots).mkdir(parents=True, exist_ok=True)
        write_json(self.directory(roots) / self.FILE, self.to_json(), durable=durable)

    @classmethod
    def load(cls, roots: StateRoots, container_id: str) -> Container:
        container = cls.from_json(read_json(roots.containers / container_id / cls.FILE))
        container.refresh()
        return container

    def refresh(self) -> None:
        """A 'running' container whose PID 1 is gone (the CLI was killed) is 'exited'.

        A supervised one (minidockerd's) is left to the daemon, which reads the exit status
        the supervisor wrote (engine/containers.py: reconcile).
        """
        if self.supervised:
            return
        if self.status == "running" and (self.pid is None or not _alive(self.pid)):
            self.status = "exited"
            self.pid = None


def list_containers(roots: StateRoots) -> list[Container]:
    """Every container with a record, oldest first."""
    if not roots.containers.is_dir():
        return []
    found = []
    for entry in os.scandir(roots.containers):
        if entry.name.startswith("."):
            continue  # being deleted (engine/remove.py: delete_later)
        try:
            found.append(Container.load(roots, entry.name))
        except (FileNotFoundError, ValueError):
            continue  # a directory being created or removed
    return sorted(found, key=lambda c: c.created)


def find_container(roots: StateRoots, ref: str) -> Container:
    """A container by full ID, unique ID prefix, or name (with or without a leading '/')."""
    if not ref:
        raise InvalidArgument("container name or ID is empty")
    name = ref.lstrip("/")
    containers = list_containers(roots)
    for c in containers:
        if c.id == ref or c.name == name:
            return c
    matches = [c for c in containers if c.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise Conflict(f"multiple containers match the ID prefix {ref!r}")
    raise NotFound(f"no such container: {ref}")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (FileNotFoundError, ProcessLookupError):
        return False
