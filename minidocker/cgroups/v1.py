"""The cgroup v1 driver: one hierarchy per controller. Chapter 04.

On a v1 (or hybrid) host each controller has its own tree under ``/sys/fs/cgroup``::

    /sys/fs/cgroup/memory/minidocker/<id>/memory.limit_in_bytes
    /sys/fs/cgroup/cpu/minidocker/<id>/cpu.cfs_quota_us
    /sys/fs/cgroup/pids/minidocker/<id>/pids.max

so one container is a directory in each of them, and a process is moved into each
separately. Files used, with the kernel that brought them:

    memory   memory.limit_in_bytes, memory.memsw.limit_in_bytes (swap accounting),
             memory.usage_in_bytes, memory.max_usage_in_bytes, memory.oom_control
             (its ``oom_kill`` counter since 4.13)
    cpu      cpu.cfs_period_us, cpu.cfs_quota_us (3.2), cpu.shares, cpu.stat
    cpuacct  cpuacct.usage (CPU time in ns)
    pids     pids.max, pids.current, pids.events (4.3)
    freezer  freezer.state: FROZEN / THAWED (used to kill without a fork race)

See: Documentation/admin-guide/cgroup-v1/{memory,cpuacct,pids,freezer-subsystem}.rst.
"""

from __future__ import annotations

import os
import time

from minidocker.cgroups.base import (
    Cgroup,
    CgroupError,
    CgroupStats,
    Resources,
    read_int,
    read_keyed,
    read_text,
    write_value,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["CONTROLLERS", "CgroupV1"]

# The hierarchies a container joins, in this order; the first four carry limits and stats.
CONTROLLERS = ("memory", "cpu", "cpuacct", "pids", "freezer", "devices")
# Joined only by a container that asks for it: a new cpuset group starts with no CPUs and no
# memory nodes, and a process cannot join it until both are written (ENOSPC).
_OPTIONAL = ("cpuset",)
# memory.limit_in_bytes reads 9223372036854771712 (LONG_MAX rounded to pages) when unlimited.
_UNLIMITED = 1 << 62


# (root, controller) -> the hierarchy's real path, or "" where it is not mounted: the mounts do not
# change while we run, and a daemon's supervisor would otherwise check and resolve them (an lstat
# per path component) for each container.
_HIERARCHIES: dict[tuple[str, str], str] = {}


def _hierarchy(root: str, controller: str) -> str:
    """The real path of ``controller``'s hierarchy under ``root``; "" if it is not mounted."""
    found = _HIERARCHIES.get((root, controller))
    if found is None:
        base = os.path.join(root, controller)
        found = os.path.realpath(base) if os.path.isfile(os.path.join(base, "cgroup.procs")) else ""
        _HIERARCHIES[root, controller] = found
    return found


class CgroupV1(Cgroup):
    """A group in each v1 hierarchy: ``<root>/<controller>/<path>``."""

    version = 1

    def __init__(self, path: str, root: str = "/sys/fs/cgroup",
                 controllers: Iterable[str] = CONTROLLERS) -> None:
        super().__init__(path)
        self.root = root
        self.controllers = tuple(controllers)
        self._available: set[str] | None = None

    def available_controllers(self) -> set[str]:
        if self._available is None:
            self._available = {c for c in (*self.controllers, *_OPTIONAL) if _hierarchy(self.root, c)}
        return self._available

    def missing_hint(self, missing: list[str]) -> str:
        return f"mount it: mount -t cgroup -o {missing[0]} cgroup {self.root}/{missing[0]}"

    def dir(self, controller: str) -> str:
        """This group's directory in ``controller``'s hierarchy."""
        return os.path.join(self.root, controller, self.path.lstrip("/"))

    def directories(self) -> list[str]:
        # cpu and cpuacct are often one hierarchy ("cpu,cpuacct" with symlinks): visit it once.
        seen: dict[str, str] = {}
        available = self.available_controllers()
        for c in self.controllers:
            if c in available:
                seen.setdefault(_hierarchy(self.root, c), self.dir(c))
        for c in _OPTIONAL:  # only where apply() made the group
            if c in available and os.path.isdir(self.dir(c)):
                seen.setdefault(_hierarchy(self.root, c), self.dir(c))
        return list(seen.values())

    def create(self, controllers: Iterable[str] | None = None) -> None:
        for directory in self.directories():
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as err:
                raise CgroupError(f"failed to create cgroup {directory}: {err.strerror}") from err

    def apply(self, resources: Resources) -> None:
        self.check(resources)
        self._apply_memory(resources)
        self._apply_cpu(resources)
        self._apply_cpuset(resources)
        if resources.pids_limit is not None:
            write_value(os.path.join(self.dir("pids"), "pids.max"),
                        resources.pids_limit if resources.pids_limit > 0 else "max")
        if resources.devices is not None and "devices" in self.available_controllers():
            self._apply_devices(resources.devices)

    def _apply_devices(self, rules: list) -> None:
        """The device allowlist (chapter 11): each rule a line in devices.allow or devices.deny.

        "a" in devices.deny first empties what the group inherited; "c 1:3 rwm" then lets
        /dev/null be read, written and created. See Documentation/admin-guide/cgroup-v1/devices.rst.
        """
        d = self.dir("devices")
        for rule in rules:
            kind = rule.get("type", "a")
            line = "a" if kind == "a" else (f"{kind} {_star(rule.get('major'))}:{_star(rule.get('minor'))} "
                                            f"{rule.get('access', 'rwm')}")
            write_value(os.path.join(d, "devices.allow" if rule["allow"] else "devices.deny"), line)

    def _apply_memory(self, r: Resources) -> None:
        d = self.dir("memory")
        if r.memory_limit is not None:
            write_value(os.path.join(d, "memory.limit_in_bytes"), r.memory_limit)
        memsw = os.path.join(d, "memory.memsw.limit_in_bytes")
        # Without swap accounting (swapaccount=0) the file is missing: like Docker, no swap limit then.
        if r.memory_swap is not None and os.path.exists(memsw):
            write_value(memsw, r.memory_swap)  # -1 = unlimited; must be >= limit_in_bytes, so after it

    def _apply_cpu(self, r: Resources) -> None:
        d = self.dir("cpu")
        if r.cpu_period is not None:
            write_value(os.path.join(d, "cpu.cfs_period_us"), r.cpu_period)
        if r.cpu_quota is not None:
            write_value(os.path.join(d, "cpu.cfs_quota_us"), r.cpu_quota)
        if r.cpu_shares:  # 0 means "not set", like runc
            write_value(os.path.join(d, "cpu.shares"), r.cpu_shares)

    def _apply_cpuset(self, r: Resources) -> None:
        """Make the group in the cpuset hierarchy, each new level given its parent's CPUs and nodes."""
        if r.cpuset_cpus is None and r.cpuset_mems is None:
            return
        current = os.path.join(self.root, "cpuset")
        for part in self.path.strip("/").split("/"):
            parent, current = current, os.path.join(current, part)
            os.makedirs(current, exist_ok=True)
            for name in ("cpuset.cpus", "cpuset.mems"):
                if not (read_text(os.path.join(current, name)) or "").strip():
                    inherited = (read_text(os.path.join(parent, name)) or "").strip()
                    write_value(os.path.join(current, name), inherited)
        if r.cpuset_cpus is not None:
            write_value(os.path.join(current, "cpuset.cpus"), r.cpuset_cpus)
        if r.cpuset_mems is not None:
            write_value(os.path.join(current, "cpuset.mems"), r.cpuset_mems)

    def add_process(self, pid: int) -> None:
        for directory in self.directories():
            write_value(os.path.join(directory, "cgroup.procs"), pid)

    def add_self(self) -> None:
        """Move the calling thread in by writing "0" to ``tasks``: cheap, unlike ``cgroup.procs``.

        Moving a whole process (``cgroup.procs``, or any PID but our own) takes the
        kernel's global threadgroup lock for writing, which waits for an RCU grace
        period: about 10 ms here. A thread moving itself skips that lock (kernel/cgroup/
        cgroup.c, cgroup_procs_write_start): 0.4 ms for the five hierarchies. A freshly
        forked child has one thread, so this moves the whole process; its children follow.
        """
        for directory in self.directories():
            write_value(os.path.join(directory, "tasks"), 0)

    def procs(self) -> list[int]:
        pids: set[int] = set()
        for directory in self.directories():
            for top, _, files in os.walk(directory):
                if "cgroup.procs" in files:
                    text = read_text(os.path.join(top, "cgroup.procs")) or ""
                    pids.update(int(p) for p in text.split())
        return sorted(pids)

    def oom_kills(self) -> int:
        return read_keyed(os.path.join(self.dir("memory"), "memory.oom_control")).get("oom_kill", 0)

    def stats(self) -> CgroupStats:
        mem, cpu, pids = self.dir("memory"), self.dir("cpu"), self.dir("pids")
        cpu_stat = read_keyed(os.path.join(cpu, "cpu.stat"))
        return CgroupStats(
            memory_current=read_int(os.path.join(mem, "memory.usage_in_bytes")),
            memory_peak=read_int(os.path.join(mem, "memory.max_usage_in_bytes")),
            memory_limit=read_int(os.path.join(mem, "memory.limit_in_bytes"), _UNLIMITED),
            oom_kills=self.oom_kills(),
            cpu_usage_ns=read_int(os.path.join(self.dir("cpuacct"), "cpuacct.usage")),
            cpu_periods=cpu_stat.get("nr_periods"),
            cpu_throttled_periods=cpu_stat.get("nr_throttled"),
            cpu_throttled_ns=cpu_stat.get("throttled_time"),
            pids_current=read_int(os.path.join(pids, "pids.current")),
            pids_limit=read_int(os.path.join(pids, "pids.max")),
            pids_rejected=read_keyed(os.path.join(pids, "pids.events")).get("max"),
        )

    def freeze(self) -> None:
        self._freezer("FROZEN")

    def thaw(self) -> None:
        self._freezer("THAWED")

    def _freezer(self, state: str, timeout: float = 2.0) -> None:
        path = os.path.join(self.dir("freezer"), "freezer.state")
        if not os.path.exists(path):
            raise CgroupError(f"failed to set {path} to {state}: no freezer hierarchy on this host")
        write_value(path, state)
        deadline = time.monotonic() + timeout
        while (read_text(path) or "").strip() != state:  # FREEZING while tasks are being stopped
            if time.monotonic() > deadline:
                raise CgroupError(f"failed to set {path} to {state}: still {(read_text(path) or '').strip()}")
            time.sleep(0.001)
            write_value(path, state)


def _star(number: int | None) -> str:
    return "*" if number is None or number == -1 else str(number)
