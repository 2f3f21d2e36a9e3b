"""What every cgroup driver shares: the resources, the stats, the interface. Chapter 04.

A cgroup is a directory in a special filesystem. There is no cgroup syscall: we
``mkdir`` a group, write numbers into its files to set limits, write a PID into
``cgroup.procs`` to move a process in, read files to see usage, and ``rmdir`` it
when it is empty. Children of a process start in its cgroup, so a container placed
in a group before it runs anything can never escape its limits.

    Resources        the limits, shaped like OCI ``linux.resources``
    CgroupStats      one reading of usage: memory, CPU, pids
    Cgroup           the driver interface: create, apply, add_process, stats,
                     freeze/thaw, kill, destroy (v1.py and v2.py implement it)
    CgroupError, ControllerMissing

See: cgroups(7), Documentation/admin-guide/cgroup-v2.rst.
"""

from __future__ import annotations

import errno
import os
import time

# The C half of the signal module: the same functions and numbers, without the enums that
# `import signal` builds (it imports enum: 4-10 ms at each runtime command's start, bench/README.md).
import _signal as signal

from minidocker.errors import InvalidArgument, MinidockerError
from minidocker.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

__all__ = ["Cgroup", "CgroupError", "CgroupStats", "ControllerMissing", "Resources", "read_int",
           "read_keyed", "write_value"]


class CgroupError(MinidockerError):
    """A cgroup file could not be created, written or removed."""


class ControllerMissing(CgroupError, InvalidArgument):
    """The limit needs a controller this host does not offer (checked before anything is created)."""


class _Record(Record):
    """Kept for records written before the one base: every field defaults to None."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "DEFAULTS" not in cls.__dict__:
            cls.DEFAULTS = dict.fromkeys(cls.FIELDS)


class Resources(Record):
    """The limits minidocker applies, named after OCI ``linux.resources``.

    ``memory_swap`` is memory + swap (as in Docker and OCI), -1 for unlimited swap.
    ``pids_limit`` <= 0 means no limit (runc's reading of the spec).

        memory_limit   memory.limit   bytes
        memory_swap    memory.swap    bytes, memory + swap; -1 = unlimited
        cpu_shares     cpu.shares     relative weight, v1 scale 2..262144
        cpu_quota      cpu.quota      µs per period; -1 = unlimited
        cpu_period     cpu.period     µs
        pids_limit     pids.limit     <= 0 = unlimited
        cpuset_cpus    cpu.cpus       CPUs allowed, "0-1,3" (a cpuset list, see cpuset(7))
        cpuset_mems    cpu.mems       memory nodes allowed, "0"
        devices        devices        the device allowlist, OCI rules in order (chapter 11):
                                      v1's devices.allow/deny, v2's eBPF program (devicefilter.py)
    """

    FIELDS = ("memory_limit", "memory_swap", "cpu_shares", "cpu_quota", "cpu_period", "pids_limit",
              "cpuset_cpus", "cpuset_mems", "devices")
    memory_limit: int | None
    memory_swap: int | None
    cpu_shares: int | None
    cpu_quota: int | None
    cpu_period: int | None
    pids_limit: int | None
    cpuset_cpus: str | None
    cpuset_mems: str | None
    devices: list[dict[str, Any]] | None
    DEFAULTS = dict.fromkeys(FIELDS)

    @classmethod
    def from_oci(cls, resources: Mapping[str, Any] | None) -> Resources:
        """Read ``linux.resources`` of an OCI config; raise InvalidArgument on a bad value."""
        resources = resources or {}
        memory = resources.get("memory") or {}
        cpu = resources.get("cpu") or {}
        pids = resources.get("pids") or {}
        result = cls(
            memory_limit=_int_or_none(memory, "limit", "memory.limit"),
            memory_swap=_int_or_none(memory, "swap", "memory.swap"),
            cpu_shares=_int_or_none(cpu, "shares", "cpu.shares"),
            cpu_quota=_int_or_none(cpu, "quota", "cpu.quota"),
            cpu_period=_int_or_none(cpu, "period", "cpu.period"),
            pids_limit=_int_or_none(pids, "limit", "pids.limit"),
            cpuset_cpus=_cpuset_list(cpu, "cpus"),
            cpuset_mems=_cpuset_list(cpu, "mems"),
            devices=_device_rules(resources.get("devices")),
        )
        result.validate()
        return result

    def to_oci(self) -> dict[str, Any]:
        """The ``linux.resources`` dict, with only the fields that are set."""
        pairs = {"memory": {"limit": self.memory_limit, "swap": self.memory_swap},
                 "cpu": {"shares": self.cpu_shares, "quota": self.cpu_quota, "period": self.cpu_period,
                         "cpus": self.cpuset_cpus, "mems": self.cpuset_mems},
                 "pids": {"limit": self.pids_limit}}
        out = {k: {n: v for n, v in d.items() if v is not None} for k, d in pairs.items()}
        result: dict[str, Any] = {k: v for k, v in out.items() if v}
        if self.devices is not None:
            result["devices"] = self.devices
        return result

    def validate(self) -> None:
        """Raise InvalidArgument for values no kernel accepts."""
        if self.memory_limit is not None and self.memory_limit <= 0:
            raise InvalidArgument(f"invalid memory.limit {self.memory_limit}: it must be positive")
        if self.memory_swap is not None and self.memory_swap != -1:
            if self.memory_limit is None:
                raise InvalidArgument("invalid memory.swap: it needs memory.limit",
                                      hint="set --memory together with --memory-swap")
            if self.memory_swap < self.memory_limit:
                raise InvalidArgument(f"invalid memory.swap {self.memory_swap}: it is memory + swap, so it "
                                      f"must be at least memory.limit {self.memory_limit}")
        if self.cpu_shares is not None and self.cpu_shares < 0:
            raise InvalidArgument(f"invalid cpu.shares {self.cpu_shares}: it must not be negative")
        if self.cpu_period is not None and not 1_000 <= self.cpu_period <= 1_000_000:
            raise InvalidArgument(f"invalid cpu.period {self.cpu_period}: it must be 1000..1000000 µs")
        if self.cpu_quota is not None and self.cpu_quota != -1 and self.cpu_quota < 1_000:
            raise InvalidArgument(f"invalid cpu.quota {self.cpu_quota}: it must be at least 1000 µs, "
                                  "or -1 for no limit")

    def controllers(self) -> set[str]:
        """The controllers these limits need: {'memory', 'cpu', 'pids'} or fewer."""
        needed = set()
        if self.memory_limit is not None or self.memory_swap is not None:
            needed.add("memory")
        if self.cpu_shares is not None or self.cpu_quota is not None or self.cpu_period is not None:
            needed.add("cpu")
        if self.pids_limit is not None:
            needed.add("pids")
        if self.cpuset_cpus is not None or self.cpuset_mems is not None:
            needed.add("cpuset")
        return needed


class CgroupStats(Record):
    """One reading of a cgroup's usage, the figures ``docker stats`` shows. None = not available.

        memory_current          bytes in use now (page cache included)
        memory_peak             highest memory_current seen
        memory_limit            None = unlimited
        oom_kills               processes the OOM killer killed in this group
        cpu_usage_ns            CPU time used by all its processes
        cpu_periods             CFS periods in which it had runnable tasks
        cpu_throttled_periods   periods in which it used up its quota
        cpu_throttled_ns        time spent throttled
        pids_current, pids_limit (None = unlimited)
        pids_rejected           forks refused because of the limit (pids.events "max")
        taken_at                time.monotonic() of the reading
    """

    FIELDS = ("memory_current", "memory_peak", "memory_limit", "oom_kills", "cpu_usage_ns", "cpu_periods",
              "cpu_throttled_periods", "cpu_throttled_ns", "pids_current", "pids_limit", "pids_rejected",
              "taken_at")
    memory_current: int | None
    memory_peak: int | None
    memory_limit: int | None
    oom_kills: int
    cpu_usage_ns: int | None
    cpu_periods: int | None
    cpu_throttled_periods: int | None
    cpu_throttled_ns: int | None
    pids_current: int | None
    pids_limit: int | None
    pids_rejected: int | None
    taken_at: float

    DEFAULTS = {**dict.fromkeys(FIELDS), "oom_kills": 0}

    def __post_init__(self) -> None:
        if self.taken_at is None:
            self.taken_at = time.monotonic()


class Cgroup:
    """One control group (in every hierarchy it needs), named by an OCI ``cgroupsPath``.

    ``path`` is relative to the cgroup mount, like ``/minidocker/<container-id>``.
    The usual life: ``check(resources)`` (raises before anything exists), ``create()``,
    ``apply(resources)``, ``add_process(pid)``, ... ``stats()`` ... ``destroy()``.
    """

    version: int

    def __init__(self, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise InvalidArgument(f"invalid cgroupsPath {path!r}", hint="use a path like /minidocker/<id>")
        self.path = "/" + "/".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    def available_controllers(self) -> set[str]:
        """The controllers ('memory', 'cpu', 'pids', ...) this host lets us use."""
        raise NotImplementedError

    def check(self, resources: Resources) -> None:
        """Raise ControllerMissing if a limit needs a controller the host lacks. Creates nothing."""
        missing = sorted(resources.controllers() - self.available_controllers())
        if missing:
            raise ControllerMissing(
                f"failed to apply resource limits: no {', '.join(missing)} controller in cgroup "
                f"v{self.version} on this host", hint=self.missing_hint(missing))

    def missing_hint(self, missing: list[str]) -> str:
        return "run without that limit, or on a host where the controller is enabled"

    def create(self, controllers: Iterable[str] | None = None) -> None:
        """mkdir the group (and the parents) in every hierarchy it uses."""
        raise NotImplementedError

    def apply(self, resources: Resources) -> None:
        """Write the limits into the group's files."""
        raise NotImplementedError

    def add_process(self, pid: int) -> None:
        """Move ``pid`` into the group: write it to ``cgroup.procs``. Its future children follow."""
        raise NotImplementedError

    def add_self(self) -> None:
        """Move the calling (single-threaded) process into the group; see the drivers for why."""
        raise NotImplementedError

    def procs(self) -> list[int]:
        """The PIDs in the group and its descendants."""
        raise NotImplementedError

    def stats(self) -> CgroupStats:
        """Read the current usage."""
        raise NotImplementedError

    def oom_kills(self) -> int:
        """How many processes the OOM killer killed in this group."""
        raise NotImplementedError

    def freeze(self) -> None:
        """Stop every process in the group (like ``docker pause``)."""
        raise NotImplementedError

    def thaw(self) -> None:
        """Let them run again (``docker unpause``)."""
        raise NotImplementedError

    def directories(self) -> list[str]:
        """The group's directory in each hierarchy it uses (deduplicated)."""
        raise NotImplementedError

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self.directories())

    def kill(self, timeout: float = 5.0) -> None:
        """SIGKILL every process in the group, frozen first so none can fork meanwhile.

        Another process may destroy the same group at the same time: a group that vanishes is done.
        """
        deadline = time.monotonic() + timeout
        while True:
            pids = self.procs()
            if not pids:
                return
            frozen = self._try_freeze()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if frozen:
                try:
                    self.thaw()  # SIGKILL is delivered on thaw
                except (CgroupError, OSError):
                    if self.exists():
                        raise
                    return  # another destroy (rm -f racing the container's --rm) removed the group
            if time.monotonic() > deadline:
                raise CgroupError(f"failed to kill the processes of cgroup {self.path}: {pids} still there")
            time.sleep(0.005)

    def _try_freeze(self) -> bool:
        try:
            self.freeze()
            return True
        except (CgroupError, OSError):
            return False

    def destroy(self, timeout: float = 5.0) -> None:
        """Kill everything in the group and remove its directories (children first). Idempotent.

        The kernel refuses to remove a group that holds a process or a sub-group (rmdir(2) fails
        with EBUSY), so a group whose processes are gone, the common case after an exit, goes
        with one rmdir per hierarchy: only what is refused is killed, walked and removed.
        """
        busy = [directory for directory in self.directories() if not _removed(directory)]
        if not busy:
            return
        self.kill(timeout)
        deadline = time.monotonic() + timeout
        for directory in busy:
            _remove_tree(directory, deadline)


def _removed(directory: str) -> bool:
    """rmdir a cgroup directory: True if it is gone now, False if it is busy (processes, sub-groups)."""
    try:
        os.rmdir(directory)
    except FileNotFoundError:
        pass
    except OSError as err:
        if err.errno != errno.EBUSY:
            raise CgroupError(f"failed to remove cgroup {directory}: {err.strerror}") from err
        return False
    return True


def _remove_tree(directory: str, deadline: float) -> None:
    """rmdir a cgroup and its sub-groups, deepest first; EBUSY (a process still exiting) is retried."""
    if _removed(directory):
        return
    subdirs = [os.path.join(top, d) for top, dirs, _ in os.walk(directory) for d in dirs]
    for path in sorted(subdirs, key=len, reverse=True) + [directory]:
        while True:
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError as err:
                if err.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise CgroupError(f"failed to remove cgroup {path}: {err.strerror}") from err
                time.sleep(0.002)


def write_value(path: str, value: str | int) -> None:
    """Write one value into a cgroup file, as ``echo value > path`` does (one write call)."""
    data = str(value).encode()
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as err:
        raise CgroupError(f"failed to open {path}: {err.strerror}") from err
    try:
        os.write(fd, data)
    except OSError as err:
        raise CgroupError(f"failed to write {str(value)!r} to {path}: {err.strerror}") from err
    finally:
        os.close(fd)


def read_text(path: str) -> str | None:
    """A cgroup file's contents, or None if the file does not exist (older kernel, missing controller).

    Also None when the group was removed between the open and the read (ENODEV: another
    process destroyed it, as ``rm -f`` racing a container's own ``--rm`` does).
    """
    # os.open and os.read, not open(): a cgroup file is small, and a buffered text file costs five
    # more system calls (fstat twice, ioctl, lseek twice) for each of the dozens a container reads.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            chunks = []
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
        finally:
            os.close(fd)
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno == errno.ENODEV:
            return None
        raise
    return b"".join(chunks).decode()


def read_int(path: str, unlimited_above: int | None = None) -> int | None:
    """A file holding one number ('max' and values above ``unlimited_above`` read as None)."""
    text = read_text(path)
    if text is None:
        return None
    text = text.split()[0] if text.split() else ""
    if text in ("max", "", "-1"):
        return None
    value = int(text)
    if unlimited_above is not None and value > unlimited_above:
        return None
    return value


def read_keyed(path: str) -> dict[str, int]:
    """A flat-keyed file ('oom_kill 1' per line: memory.events, cpu.stat, ...) as a dict."""
    text = read_text(path)
    result = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            result[parts[0]] = int(parts[1])
    return result


def _cpuset_list(section: Mapping[str, Any], key: str) -> str | None:
    """A cpuset list ("0-2,4") from linux.resources.cpu, or None. See cpuset(7), "List format"."""
    value = section.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not all(c.isdigit() or c in ",-" for c in value):
        raise InvalidArgument(f"invalid cpu.{key} {value!r}: expected a list like 0-2,4")
    return value


def _int_or_none(section: Mapping[str, Any], key: str, name: str) -> int | None:
    value = section.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"invalid {name} {value!r}: expected an integer")
    return value


def _device_rules(rules: Any) -> list[dict[str, Any]] | None:
    """OCI ``linux.resources.devices``: [{"allow": bool, "type": "a|c|b", "major", "minor", "access"}]."""
    if rules is None:
        return None
    if not isinstance(rules, list) or not all(isinstance(r, dict) and isinstance(r.get("allow"), bool)
                                              for r in rules):
        raise InvalidArgument(f"invalid devices {rules!r}: expected a list of rules with 'allow'")
    for rule in rules:
        if rule.get("type", "a") not in ("a", "c", "b") or not set(rule.get("access", "rwm")) <= set("rwm"):
            raise InvalidArgument(f"invalid device rule {rule!r}: type is a, c or b; access of r, w, m")
    return rules
