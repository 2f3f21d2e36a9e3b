"""The cgroup v2 driver: one tree, controllers enabled per subtree. Chapter 04.

cgroup v2 (the default on current distributions) has a single hierarchy. A group's
controllers are the ones its parent lists in ``cgroup.subtree_control``, so before a
container's group can have ``memory.max``, every ancestor must enable ``+memory``
for its children::

    /sys/fs/cgroup/cgroup.subtree_control             += "+memory +cpu +pids"
    /sys/fs/cgroup/minidocker/cgroup.subtree_control  += "+memory +cpu +pids"
    /sys/fs/cgroup/minidocker/<id>/memory.max          = 67108864

A group that has processes cannot enable controllers for children (the "no internal
process" rule; the root is exempt): that is why containers live in leaves under an
empty ``minidocker`` parent. Files used, with the kernel that brought them:

    core     cgroup.procs, cgroup.subtree_control, cgroup.events (4.5), cgroup.freeze (5.2),
             cgroup.kill (5.14)
    memory   memory.max, memory.swap.max (4.12 with swap accounting), memory.current,
             memory.peak (5.19), memory.events (``oom_kill`` since 4.13)
    cpu      cpu.max "QUOTA PERIOD", cpu.weight 1..10000, cpu.stat (usage_usec; throttling
             counters only with the cpu controller)
    pids     pids.max, pids.current, pids.events
    devices  no files: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE, 4.15), see devicefilter.py

See: Documentation/admin-guide/cgroup-v2.rst.
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
from minidocker.cgroups.units import CFS_PERIOD_US, shares_to_weight

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["DEFAULT_CONTROLLERS", "CgroupV2"]

# What a container's group gets when the host offers it (for limits and for stats).
DEFAULT_CONTROLLERS = ("cpu", "memory", "pids")


class CgroupV2(Cgroup):
    """A group of the unified hierarchy mounted at ``root``: ``<root>/<path>``."""

    version = 2

    def __init__(self, path: str, root: str = "/sys/fs/cgroup") -> None:
        super().__init__(path)
        self.root = root
        self._available: set[str] | None = None

    def available_controllers(self) -> set[str]:
        if self._available is None:
            self._available = set((read_text(os.path.join(self.root, "cgroup.controllers")) or "").split())
        return self._available

    def missing_hint(self, missing: list[str]) -> str:
        return (f"{self.root}/cgroup.controllers does not list {missing[0]}: on a hybrid host the v1 "
                "hierarchy holds it; otherwise boot with the controller enabled")

    @property
    def dir(self) -> str:
        return os.path.join(self.root, self.path.lstrip("/"))

    def directories(self) -> list[str]:
        return [self.dir]

    def create(self, controllers: Iterable[str] | None = None) -> None:
        """mkdir each level, enabling the controllers for the level below on the way down."""
        wanted = set(DEFAULT_CONTROLLERS if controllers is None else controllers)
        wanted &= self.available_controllers()
        current = self.root
        for part in self.path.strip("/").split("/"):
            if wanted:
                self._enable(current, wanted)
            current = os.path.join(current, part)
            try:
                os.mkdir(current)
            except FileExistsError:
                pass
            except OSError as err:
                raise CgroupError(f"failed to create cgroup {current}: {err.strerror}") from err

    def _enable(self, directory: str, controllers: set[str]) -> None:
        path = os.path.join(directory, "cgroup.subtree_control")
        enabled = set((read_text(path) or "").split())
        missing = sorted(controllers - enabled)
        if missing:
            # EBUSY here is the no-internal-process rule: `directory` has processes of its own.
            write_value(path, " ".join(f"+{c}" for c in missing))

    def apply(self, resources: Resources) -> None:
        self.check(resources)
        r, d = resources, self.dir
        if r.memory_limit is not None:
            write_value(os.path.join(d, "memory.max"), r.memory_limit)
        swap = os.path.join(d, "memory.swap.max")
        if r.memory_swap is not None and os.path.exists(swap):
            # OCI's swap is memory + swap; v2 limits swap alone.
            write_value(swap, "max" if r.memory_swap == -1 else r.memory_swap - (r.memory_limit or 0))
        if r.cpu_quota is not None or r.cpu_period is not None:
            quota = "max" if r.cpu_quota in (None, -1) else r.cpu_quota
            write_value(os.path.join(d, "cpu.max"), f"{quota} {r.cpu_period or CFS_PERIOD_US}")
        if r.cpu_shares:
            write_value(os.path.join(d, "cpu.weight"), shares_to_weight(r.cpu_shares))
        if r.pids_limit is not None:
            write_value(os.path.join(d, "pids.max"), r.pids_limit if r.pids_limit > 0 else "max")
        if r.cpuset_cpus is not None or r.cpuset_mems is not None:
            self.create({"cpuset"})  # enables +cpuset on every level down to ours (Linux 5.0)
            if r.cpuset_cpus is not None:
                write_value(os.path.join(d, "cpuset.cpus"), r.cpuset_cpus)
            if r.cpuset_mems is not None:
                write_value(os.path.join(d, "cpuset.mems"), r.cpuset_mems)
        if r.devices is not None:
            # v2 has no device files: an eBPF program attached to the group (chapter 11)
            from minidocker.cgroups.devicefilter import attach_device_filter

            try:
                attach_device_filter(d, r.devices)
            except OSError as err:
                raise CgroupError(f"failed to apply the device rules to cgroup {d}: {err}") from err

    def add_process(self, pid: int) -> None:
        write_value(os.path.join(self.dir, "cgroup.procs"), pid)

    def add_self(self) -> None:
        # cgroup.threads would be the cheap path, but only in threaded subtrees.
        write_value(os.path.join(self.dir, "cgroup.procs"), 0)

    def procs(self) -> list[int]:
        pids: set[int] = set()
        for top, _, files in os.walk(self.dir):
            if "cgroup.procs" in files:
                pids.update(int(p) for p in (read_text(os.path.join(top, "cgroup.procs")) or "").split())
        return sorted(pids)

    def oom_kills(self) -> int:
        return read_keyed(os.path.join(self.dir, "memory.events")).get("oom_kill", 0)

    def stats(self) -> CgroupStats:
        d = self.dir
        cpu = read_keyed(os.path.join(d, "cpu.stat"))
        usage = cpu.get("usage_usec")
        throttled = cpu.get("throttled_usec")
        return CgroupStats(
            memory_current=read_int(os.path.join(d, "memory.current")),
            memory_peak=read_int(os.path.join(d, "memory.peak")),
            memory_limit=read_int(os.path.join(d, "memory.max")),
            oom_kills=self.oom_kills(),
            cpu_usage_ns=usage * 1000 if usage is not None else None,
            cpu_periods=cpu.get("nr_periods"),
            cpu_throttled_periods=cpu.get("nr_throttled"),
            cpu_throttled_ns=throttled * 1000 if throttled is not None else None,
            pids_current=read_int(os.path.join(d, "pids.current")),
            pids_limit=read_int(os.path.join(d, "pids.max")),
            pids_rejected=read_keyed(os.path.join(d, "pids.events")).get("max"),
        )

    def freeze(self) -> None:
        self._set_frozen(1)

    def thaw(self) -> None:
        self._set_frozen(0)

    def _set_frozen(self, value: int, timeout: float = 2.0) -> None:
        write_value(os.path.join(self.dir, "cgroup.freeze"), value)
        deadline = time.monotonic() + timeout
        while read_keyed(os.path.join(self.dir, "cgroup.events")).get("frozen", value) != value:
            if time.monotonic() > deadline:
                raise CgroupError(f"failed to {'freeze' if value else 'thaw'} cgroup {self.dir}: timed out")
            time.sleep(0.001)

    def kill(self, timeout: float = 5.0) -> None:
        """Write ``cgroup.kill`` (5.14+): the kernel SIGKILLs the whole subtree, no fork race."""
        kill_file = os.path.join(self.dir, "cgroup.kill")
        if not os.path.exists(kill_file):
            super().kill(timeout)
            return
        deadline = time.monotonic() + timeout
        while self.procs():
            write_value(kill_file, 1)
            if time.monotonic() > deadline:
                raise CgroupError(f"failed to kill the processes of cgroup {self.dir}: {self.procs()} "
                                  "still there")
            time.sleep(0.002)
