"""A container's record on disk: the engine's view of it.

Layout (``tree /var/lib/minidocker/containers``)::

    containers/<id>/container.json   this record (id, name, image, status, pid, exit code)
    containers/<id>/config.json      the OCI config handed to the runtime
    containers/<id>/upper, work      the overlay snapshot's writable part
    containers/<id>/rootfs           where the snapshot is mounted while it runs
    containers/.names/<name>         the claim on a name: "<id> <pid> <start time>" (claim_name)

Every PID a record keeps goes with its start time (linux/procfs.py): ``pid`` and
``start_time`` name the container's PID 1, ``owner`` the process that runs it (a
foreground ``minidocker run``). When the owner died without cleaning up (``kill -9``),
the next command that reads the record finishes its work: see engine/remove.py, reconcile.
A long-lived reader (minidockerd) reads records through a :class:`RecordCache`, which
parses one again only when its file changed.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from pathlib import Path

from minidocker.atomic import read_json, write_json
from minidocker.errors import Conflict, CorruptState, InvalidArgument, NotFound
from minidocker.linux import procfs
from minidocker.paths import StateRoots
from minidocker.record import Record

__all__ = ["BrokenRecord", "Container", "RecordCache", "claim_name", "claim_random_name", "find_container",
           "list_containers", "new_container_id", "random_name", "release_name"]

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")  # Docker's rule for container names
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
    FIELDS = ("id", "name", "image", "command", "created", "status", "pid", "start_time", "exit_code",
              "image_id", "oom_killed", "owner", "auto_remove",
              "config", "host_config", "started_at", "finished_at", "error", "supervised", "restart_count",
              "manually_stopped", "paused")
    DEFAULTS = {"status": "created", "pid": None, "exit_code": None,
                "start_time": None,   # of ``pid``, in clock ticks since boot (linux/procfs.py)
                "image_id": None,     # the image's ID (sha256 of its config): rmi and commit follow it
                "oom_killed": None,   # the OOM killer killed one of its processes (chapter 04)
                "owner": None,        # [pid, start time] of the process running it
                "auto_remove": None,  # --rm: the record goes when the container exits
                # Chapter 13, containers of minidockerd: the Engine API's Config and HostConfig as
                # created, start and finish times (ns), the last start error; supervised: its PID 1
                # is the supervisor's (engine/supervisor.py).
                "config": None, "host_config": None, "started_at": None, "finished_at": None, "error": None,
                "supervised": None,
                "restart_count": None,      # restarts by its policy since the last docker start
                "manually_stopped": None,   # docker stop/kill: no restart by policy (unless-stopped)
                "paused": None}             # docker pause: running, its cgroup frozen (State.Paused)

    @classmethod
    def new(cls, name: str | None, image: str, command: list[str], image_id: str | None = None) -> Container:
        return cls(new_container_id(), name or random_name(), image, command, time.time(), image_id=image_id)

    @classmethod
    def for_run(cls, roots: StateRoots, name: str | None, image: str, command: list[str],
                image_id: str | None = None, auto_remove: bool = False) -> Container:
        """The record of a foreground ``run``: its ``--name`` claimed (claim_name), owned by this
        process (if it dies, the next reader reconciles: engine/remove.py), ``--rm`` remembered."""
        container = cls.new(name, image, command, image_id)
        me = os.getpid()
        container.owner, container.auto_remove = [me, procfs.start_time(me)], auto_remove or None
        if name is not None:
            claim_name(roots, name, container.id)
        else:   # a random name is claimed too: a later --name of it sees it without reading every record
            container.name = claim_random_name(roots, container.id)
        return container

    def directory(self, roots: StateRoots) -> Path:
        return roots.containers / self.id

    def save(self, roots: StateRoots, durable: bool = True) -> None:
        """Write the record atomically; ``durable=False`` skips the fsync (see atomic.write_bytes).

        Only a new record ('created') makes its directory: later, a missing directory means
        ``rm -f`` removed the container meanwhile, and saving does not bring it back.
        A running record without its PID's start time gets it here, while the PID is ours.
        """
        if self.status == "running" and self.pid is not None and self.start_time is None:
            self.start_time = procfs.start_time(self.pid)
        directory = self.directory(roots)
        if self.status == "created":
            directory.mkdir(parents=True, exist_ok=True)
        try:
            write_json(directory / self.FILE, self.to_json(), durable=durable)
        except FileNotFoundError:
            if self.status == "created":
                raise

    @classmethod
    def load(cls, roots: StateRoots, container_id: str) -> Container:
        """The record, refreshed; one whose owner died is reconciled first (NotFound if that removed it).

        Raises:
            FileNotFoundError: no record (being created or removed).
            BrokenRecord: the record is not a container's JSON.
        """
        return cls.read(roots, container_id).checked(roots)

    @classmethod
    def read(cls, roots: StateRoots, container_id: str) -> Container:
        """The record as it was written, not refreshed (what :class:`RecordCache` keeps); see :meth:`load`."""
        path = roots.containers / container_id / cls.FILE
        try:
            return cls.from_json(read_json(path))
        except (ValueError, TypeError, AttributeError) as err:  # not JSON, or not an object with our fields
            cause = str(err).split(f"{path}: ", 1)[-1]  # CorruptState names the file already
            raise BrokenRecord(f"failed to read container record {path}: {cause}", path=path) from None

    def checked(self, roots: StateRoots) -> Container:
        """This record as far as /proc confirms it (:meth:`refresh`), reconciled if its owner died.

        Raises:
            NotFound: the reconciliation removed it (``--rm``).
        """
        if self.refresh():
            from minidocker.engine.remove import reconcile

            if not reconcile(self, roots):
                raise NotFound(f"no such container: {self.id}")
        return self

    def refresh(self) -> bool:
        """Believe the record only as far as /proc confirms it; True if its owner died mid-run.

        A 'running' container whose PID 1 is gone (or is another process now) is 'exited'.
        A 'created' or 'running' one whose owner is gone needs :func:`engine.remove.reconcile`.
        A supervised one (minidockerd's) is left to the daemon, which reads the exit status
        the supervisor wrote (engine/containers.py: reconcile).
        """
        if self.supervised:
            return False
        orphaned = (self.status in ("created", "running") and self.owner is not None
                    and not procfs.is_alive(self.owner[0], self.owner[1]))
        if self.status == "running" and not self.is_running():
            self.status = "exited"
            self.pid = None
        return orphaned

    def is_running(self) -> bool:
        """Running, and its PID 1 is still the process the record names (pid and start time)."""
        return (self.status == "running" and self.pid is not None
                and procfs.is_alive(self.pid, self.start_time))


def claim_name(roots: StateRoots, name: str, container_id: str, record_named=None) -> None:
    """Take ``name`` for ``container_id``, atomically; Conflict if another container has it.

    Checking the records and then writing one (check-then-act) lets two concurrent runs
    take one name. Here the check and the claim happen under one lock (flock(2) on
    ``containers/.names/.lock``), and the claim is a file: ``<id> <pid> <start time>``.
    It holds while the container's directory exists, or while the claiming process is
    alive (it has not written the record yet). A claim that holds neither is stale.
    A name without a claim file may still be a record's (written before random names were claimed too):
    ``record_named(name)`` gives that record's ID when the caller knows the names
    already (minidockerd keeps them), instead of reading every record.
    """
    if not _NAME.match(name) or len(name) > 255:
        raise InvalidArgument(f"invalid container name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
    names = roots.containers / ".names"
    names.mkdir(parents=True, exist_ok=True)
    fd = os.open(names / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        holder = _claim_holder(roots, names / name)
        if holder is None and record_named is not None:
            holder = record_named(name)
        elif holder is None:  # records written before every name was claimed
            holder = next((c.id for c in list_containers(roots) if c.name == name), None)
        if holder is not None and holder != container_id:
            raise Conflict(f'the container name "/{name}" is already in use by container "{holder}"',
                           hint=f"remove it with 'minidocker rm {name}' or choose another --name")
        me = os.getpid()
        write_json(names / name, f"{container_id} {me} {procfs.start_time(me)}", durable=False)
    finally:
        os.close(fd)  # releases the lock


def claim_random_name(roots: StateRoots, container_id: str, record_named=None) -> str:
    """A free Docker-style random name, claimed for ``container_id`` (claim_name); Conflict if none is found.

    After 40 taken ones (324 names in all) a 4-hex suffix makes it almost surely free.
    """
    for attempt in range(50):
        candidate = random_name() if attempt < 40 else f"{random_name()}_{os.urandom(2).hex()}"
        try:
            claim_name(roots, candidate, container_id, record_named=record_named)
            return candidate
        except Conflict:
            continue
    raise Conflict("failed to find a free container name")


def release_name(containers: Path, name: str, container_id: str) -> None:
    """Drop ``container_id``'s claim on ``name`` (its record is gone); someone else's stays.

    ``containers`` is the directory of the records (``StateRoots.containers``).
    """
    path = containers / ".names" / name
    try:
        if read_json(path).split()[0] == container_id:
            path.unlink()
    except (OSError, ValueError, IndexError, AttributeError):
        pass


def _claim_holder(roots: StateRoots, path: Path) -> str | None:
    """The container ID a claim file names, if the claim still holds (see claim_name)."""
    try:
        container_id, pid, started = read_json(path).split()
    except (FileNotFoundError, ValueError, AttributeError):
        return None
    if (roots.containers / container_id).is_dir():
        return container_id
    if started != "None" and procfs.is_alive(int(pid), int(started)):
        return container_id
    return None


class BrokenRecord(CorruptState):
    """A container record that cannot be read (edited by hand, a disk error): nothing is guessed."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message, hint=f"remove {path.parent} by hand, or run 'minidocker system prune'")
        self.path = path


def list_containers(roots: StateRoots, broken: list[BrokenRecord] | None = None) -> list[Container]:
    """Every container with a record, oldest first.

    A record that cannot be read raises BrokenRecord, unless ``broken`` collects it (prune).
    """
    if not roots.containers.is_dir():
        return []
    found = []
    for entry in os.scandir(roots.containers):
        if entry.name.startswith("."):
            continue  # being deleted (engine/remove.py: delete_later)
        try:
            found.append(Container.load(roots, entry.name))
        except (FileNotFoundError, NotFound):
            continue  # a directory being created or removed, or reconciled away
        except BrokenRecord as err:
            if broken is None:
                raise
            broken.append(err)
    return sorted(found, key=lambda c: c.created)


def find_container(roots: StateRoots, ref: str, records: RecordCache | None = None) -> Container:
    """A container by full ID, unique ID prefix, or name (with or without a leading '/').

    ``records``: the cache to read them through (minidockerd's), else every record is read now.
    """
    if not ref:
        raise InvalidArgument("container name or ID is empty")
    name = ref.lstrip("/")
    containers = list_containers(roots) if records is None else records.list()
    for c in containers:
        if c.id == ref or c.name == name:
            return c
    matches = [c for c in containers if c.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise Conflict(f"multiple containers match the ID prefix {ref!r}")
    raise NotFound(f"no such container: {ref}")


class RecordCache:
    """Container records parsed once, for a process that reads them again and again: minidockerd.

    ``docker ps`` with 100 containers parsed 100 records of ~18 KB (about 9 ms of the 10 ms
    the answer took), and each create read every record to check a name. Here a record is
    parsed again only when its file changed, whoever changed it (the daemon, a direct-mode
    command, a reconciliation): a record is replaced by rename (atomic.write_json), so a
    changed one has a new (inode, mtime, size), which one stat(2) reads. (An inode number can
    be reused, but a stale hit needs two rewrites in one timestamp tick, to the same size.)
    What the records do not say, /proc, is checked at every read (:meth:`Container.checked`),
    as :meth:`Container.load` does. Each read hands out a copy: a caller may set attributes
    of it (and save it or not); nested values (config, host_config) are shared, not to be
    changed in place. Thread-safe for the daemon's handler threads (one dict, GIL-atomic
    steps; a race costs a parse at most).
    """

    def __init__(self, roots: StateRoots) -> None:
        self.roots = roots
        self._directory = os.fspath(roots.containers)   # a str: a Path per record was 40 % of a listing
        self._parsed: dict[str, tuple[tuple[int, int, int], Container]] = {}   # id -> (stat key, record)

    def load(self, container_id: str) -> Container:
        """:meth:`Container.load`, through the cache. Raises as it does."""
        return _copy(self._read(container_id)).checked(self.roots)

    def list(self) -> list[Container]:
        """:func:`list_containers` (oldest first), through the cache; removed records are forgotten."""
        found = []
        for record in self._scan():
            try:
                found.append(_copy(record).checked(self.roots))
            except NotFound:
                continue  # reconciled away
        return sorted(found, key=lambda c: c.created)

    def named(self, name: str) -> str | None:
        """The ID of the record called ``name`` (claim_name's ``record_named``), or None.

        Only the records cached under ``name``, and new ones, are read (a stat each at 50
        containers was 4x the time): a record's name changes only by the daemon's rename,
        which claims the new name with a claim file first, and claim_name looks there before
        it asks here. A broken record holds no name (prune removes it; a create must not fail).
        """
        for container_id in self._ids():
            cached = self._parsed.get(container_id)
            if cached is not None and cached[1].name != name:
                continue
            try:
                record = self._read(container_id)
            except (FileNotFoundError, NotADirectoryError, BrokenRecord):
                continue
            if record.name == name:
                try:
                    return _copy(record).checked(self.roots).id
                except NotFound:
                    continue
        return None

    def _scan(self) -> list[Container]:
        """Every record as written (not refreshed, not copied).

        Raises:
            BrokenRecord: a record is not a container's JSON.
        """
        found = []
        for container_id in self._ids():
            try:
                found.append(self._read(container_id))
            except (FileNotFoundError, NotADirectoryError):
                continue  # a directory being created or removed
        return found

    def _ids(self) -> list[str]:
        """The IDs of the records there are now; the cache forgets the others."""
        try:
            ids = [e.name for e in os.scandir(self._directory) if not e.name.startswith(".")]
        except FileNotFoundError:
            ids = []
        for gone in self._parsed.keys() - set(ids):
            self._parsed.pop(gone, None)
        return ids

    def _read(self, container_id: str) -> Container:
        """The parsed record, not refreshed: the cached one if its file did not change."""
        # stat before the read: a rewrite in between leaves an older key with newer content, parsed again
        st = os.stat(f"{self._directory}/{container_id}/{Container.FILE}")
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = self._parsed.get(container_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        container = Container.read(self.roots, container_id)
        self._parsed[container_id] = (key, container)
        return container


def _copy(container: Container) -> Container:
    """A shallow copy (its own attributes); 4x faster than copy.copy, 50 of them per listing."""
    fresh = Container.__new__(Container)
    fresh.__dict__.update(container.__dict__)
    return fresh
