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
    """What the engine remembers of a container. ``status`` is Docker's: created, running, exited."""

    FILE = "container.json"
    FIELDS = ("id", "name", "image", "command", "created", "status", "pid", "exit_code", "image_id", "oom_killed")
    DEFAULTS = {"status": "created", "pid": None, "exit_code": None,
                "image_id": None,     # the image's ID (sha256 of its config): rmi and commit follow it
                "oom_killed": None}   # the OOM killer killed one of its processes (chapter 04)

    @classmethod
    def new(cls, name: str | None, image: str, command: list[str], image_id: str | None = None) -> Container:
        return cls(new_container_id(), name or random_name(), image, command, time.time(), image_id=image_id)

    def directory(self, roots: StateRoots) -> Path:
        return roots.containers / self.id

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
        """A 'running' container whose PID 1 is gone (the CLI was killed) is 'exited'."""
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
