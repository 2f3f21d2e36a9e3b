"""``minidocker stats``: live resource usage of running containers, read from their cgroups. Chapter 04.

The figures are the cgroup's own files (see :class:`minidocker.cgroups.CgroupStats`);
CPU % needs two readings, like ``docker stats``: CPU time used between them divided
by the wall time between them, so 100 % is one CPU kept busy.
"""

from __future__ import annotations

import json
import os
import time

from minidocker.atomic import read_json
from minidocker.cgroups import Cgroup, CgroupStats, format_size, open_cgroup
from minidocker.engine.container import Container, find_container, list_containers
from minidocker.errors import InvalidState, NotFound
from minidocker.paths import StateRoots, state_roots

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["ContainerStats", "container_cgroup", "format_json", "format_table", "sample_stats"]


class ContainerStats:
    """A container and its usage; ``cpu_percent`` over the sampling interval."""

    def __init__(self, container: Container, stats: CgroupStats, cpu_percent: float | None) -> None:
        self.container = container
        self.stats = stats
        self.cpu_percent = cpu_percent

    def to_json(self) -> dict:
        return {"id": self.container.id, "name": self.container.name, "cpu_percent": self.cpu_percent,
                **self.stats.to_json()}


def container_cgroup(container: Container, roots: StateRoots) -> Cgroup:
    """The cgroup a container's config names (``linux.cgroupsPath``)."""
    try:
        spec = read_json(container.directory(roots) / "config.json")
        path = spec["linux"]["cgroupsPath"]
    except (FileNotFoundError, KeyError) as err:
        raise NotFound(f"no cgroup recorded for container {container.id[:12]}") from err
    return open_cgroup(path)


def sample_stats(refs: Sequence[str] = (), interval: float = 0.5,
                 roots: StateRoots | None = None) -> list[ContainerStats]:
    """Two readings ``interval`` seconds apart for each running container named (all if none)."""
    roots = roots or state_roots()
    if refs:
        containers = [find_container(roots, ref) for ref in refs]
        for c in containers:
            if c.status != "running":
                raise InvalidState(f"cannot read stats of container {c.id[:12]}: it is {c.status}")
    else:
        containers = [c for c in list_containers(roots) if c.status == "running"]
    groups = [container_cgroup(c, roots) for c in containers]
    gone = [c for c, g in zip(containers, groups) if not g.exists()]
    if gone and refs:
        raise InvalidState(f"cannot read stats of container {gone[0].id[:12]}: it has no cgroup (it has exited)")
    containers = [c for c in containers if c not in gone]
    groups = [g for g in groups if g.exists()]
    first = [g.stats() for g in groups]
    if groups and interval > 0:
        time.sleep(interval)
    result = []
    for container, group, before in zip(containers, groups, first):
        after = group.stats()
        result.append(ContainerStats(container, after, _cpu_percent(before, after)))
    return result


def _cpu_percent(before: CgroupStats, after: CgroupStats) -> float | None:
    elapsed = after.taken_at - before.taken_at
    if before.cpu_usage_ns is None or after.cpu_usage_ns is None or elapsed <= 0:
        return None
    return 100.0 * (after.cpu_usage_ns - before.cpu_usage_ns) / (elapsed * 1e9)


def _host_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def format_table(rows: Sequence[ContainerStats]) -> str:
    """``docker stats --no-stream`` columns (no network or block I/O), plus the peak and throttling."""
    lines = [f"{'CONTAINER ID':<14}{'NAME':<20}{'CPU %':>8}  {'MEM USAGE / LIMIT':<22}{'MEM %':>7}  "
             f"{'MEM PEAK':<10}{'PIDS':>5}  THROTTLED"]
    for row in rows:
        s = row.stats
        limit = s.memory_limit or _host_memory()
        used = s.memory_current or 0
        cpu = f"{row.cpu_percent:.2f}%" if row.cpu_percent is not None else "--"
        throttled = (f"{s.cpu_throttled_periods}/{s.cpu_periods} periods"
                     if s.cpu_periods else "-")
        lines.append(f"{row.container.id[:12]:<14}{row.container.name[:19]:<20}{cpu:>8}  "
                     f"{format_size(used) + ' / ' + format_size(limit):<22}{100 * used / limit:>6.2f}%  "
                     f"{format_size(s.memory_peak) if s.memory_peak is not None else '-':<10}"
                     f"{s.pids_current if s.pids_current is not None else '-':>5}  {throttled}")
    return "\n".join(lines)


def format_json(rows: Sequence[ContainerStats]) -> str:
    """One JSON object per line (``docker stats --format json`` style)."""
    return "\n".join(json.dumps(row.to_json()) for row in rows)
