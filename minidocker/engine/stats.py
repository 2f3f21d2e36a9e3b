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

__all__ = ["ContainerStats", "api_stats", "container_cgroup", "format_json", "format_table", "sample_stats",
           "zero_stats"]


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
        raise InvalidState(f"cannot read stats of container {gone[0].id[:12]}: it has no cgroup "
                           "(it has exited)")
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


# -- the Engine API's stats document (GET /containers/{id}/stats), chapter 13 ---------------------------

_ZERO_TIME = "0001-01-01T00:00:00Z"
_BLKIO_KEYS = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
               "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
               "io_time_recursive", "sectors_recursive")


def _zero_cpu() -> dict:
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def zero_stats(name: str, cid: str) -> dict:
    """What dockerd answers for a container that does not run: every figure at its zero value."""
    return {"read": _ZERO_TIME, "preread": _ZERO_TIME, "pids_stats": {},
            "blkio_stats": dict.fromkeys(_BLKIO_KEYS), "num_procs": 0, "storage_stats": {},
            "cpu_stats": _zero_cpu(), "precpu_stats": _zero_cpu(), "memory_stats": {}, "name": f"/{name}",
            "id": cid}


def api_stats(group: Cgroup, name: str, cid: str, previous: dict | None = None) -> dict:
    """One reading of ``group`` shaped like dockerd's StatsJSON (API 1.41), from the cgroup's files.

    cgroup v1: cpuacct.usage, .usage_percpu, .stat (USER_HZ ticks), cpu.stat, memory.usage_in_bytes,
    .max_usage_in_bytes, .failcnt, .limit_in_bytes, memory.stat, pids.*, blkio.throttle.*; cgroup
    v2: cpu.stat (µs), memory.current, .max, .stat, .events (oom as failcnt), pids.*, io.stat.
    ``system_cpu_usage`` is /proc/stat's first line in ns: ``docker stats`` computes CPU % as
    (Δ total_usage / Δ system_cpu_usage) × online_cpus × 100 against ``previous`` (``precpu_stats``).
    An unlimited memory limit is the host's memory, as dockerd reports it.
    See: the kernel's cgroup-v1 cpuacct.rst, memory.rst, blkio-controller.rst; cgroup-v2.rst; proc(5).
    """
    from minidocker.engine.logfile import rfc3339nano

    reading = _v2_reading(group) if group.version == 2 else _v1_reading(group)
    host_memory = _host_memory()
    memory = reading["memory_stats"]
    if memory.get("limit") is None or memory["limit"] > host_memory:
        memory["limit"] = host_memory
    reading["cpu_stats"]["system_cpu_usage"] = _system_cpu_ns()
    reading["cpu_stats"]["online_cpus"] = len(os.sched_getaffinity(0))
    empty = zero_stats(name, cid)
    return {"read": rfc3339nano(time.time_ns()), "preread": (previous or {}).get("read", _ZERO_TIME),
            "pids_stats": reading["pids_stats"], "blkio_stats": reading["blkio_stats"], "num_procs": 0,
            "storage_stats": {}, "cpu_stats": reading["cpu_stats"],
            "precpu_stats": (previous or {}).get("cpu_stats", empty["precpu_stats"]),
            "memory_stats": memory, "name": f"/{name}", "id": cid}


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii") as f:
            return f.read()
    except OSError:
        return None


def _number(path: str) -> int | None:
    text = (_read(path) or "").strip()
    return int(text) if text.lstrip("-").isdigit() else None


def _keyed(path: str) -> dict[str, int]:
    found = {}
    for line in (_read(path) or "").splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            found[key] = int(value)
    return found


def _pids(directory: str) -> dict:
    pids = {}
    current = _number(os.path.join(directory, "pids.current"))
    if current is not None:
        pids["current"] = current
    limit = _number(os.path.join(directory, "pids.max"))  # "max" is not a number: no limit key, as dockerd
    if limit:
        pids["limit"] = limit
    return pids


def _v1_reading(group: Cgroup) -> dict:
    acct, cpu, mem = group.dir("cpuacct"), group.dir("cpu"), group.dir("memory")  # type: ignore[attr-defined]
    ticks = 1e9 / os.sysconf("SC_CLK_TCK")
    times = _keyed(os.path.join(acct, "cpuacct.stat"))
    throttling = _keyed(os.path.join(cpu, "cpu.stat"))
    usage = {"total_usage": _number(os.path.join(acct, "cpuacct.usage")) or 0,
             "percpu_usage": [int(v) for v in (_read(os.path.join(acct, "cpuacct.usage_percpu")) or "")
                              .split()],
             "usage_in_kernelmode": int(times.get("system", 0) * ticks),
             "usage_in_usermode": int(times.get("user", 0) * ticks)}
    memory = {"usage": _number(os.path.join(mem, "memory.usage_in_bytes")) or 0,
              "max_usage": _number(os.path.join(mem, "memory.max_usage_in_bytes")) or 0,
              "stats": _keyed(os.path.join(mem, "memory.stat")),
              "failcnt": _number(os.path.join(mem, "memory.failcnt")) or 0,
              "limit": _number(os.path.join(mem, "memory.limit_in_bytes"))}
    blkio = dict.fromkeys(_BLKIO_KEYS)
    for key, name in (("io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive"),
                      ("io_serviced_recursive", "blkio.throttle.io_serviced_recursive")):
        entries = []
        blkio_dir = group.dir("blkio")  # type: ignore[attr-defined]
        for line in (_read(os.path.join(blkio_dir, name)) or "").splitlines():
            parts = line.split()
            if len(parts) == 3 and ":" in parts[0]:
                major, minor = parts[0].split(":")
                entries.append({"major": int(major), "minor": int(minor), "op": parts[1],
                                "value": int(parts[2])})
        blkio[key] = entries
    return {"cpu_stats": {"cpu_usage": usage, "throttling_data": _throttling(throttling, 1)},
            "memory_stats": memory, "pids_stats": _pids(group.dir("pids")),  # type: ignore[attr-defined]
            "blkio_stats": blkio}


def _v2_reading(group: Cgroup) -> dict:
    directory = group.dir  # type: ignore[attr-defined]
    cpu = _keyed(os.path.join(directory, "cpu.stat"))
    usage = {"total_usage": cpu.get("usage_usec", 0) * 1000,
             "usage_in_kernelmode": cpu.get("system_usec", 0) * 1000,
             "usage_in_usermode": cpu.get("user_usec", 0) * 1000}
    memory = {"usage": _number(os.path.join(directory, "memory.current")) or 0,
              "stats": _keyed(os.path.join(directory, "memory.stat")),
              "limit": _number(os.path.join(directory, "memory.max"))}
    oom = _keyed(os.path.join(directory, "memory.events")).get("oom")
    if oom:
        memory["failcnt"] = oom
    blkio = dict.fromkeys(_BLKIO_KEYS)
    served, done = [], []
    for line in (_read(os.path.join(directory, "io.stat")) or "").splitlines():
        device, *pairs = line.split()
        if ":" not in device:
            continue
        major, minor = (int(n) for n in device.split(":"))
        values = dict(p.split("=", 1) for p in pairs if "=" in p)
        for op, key, into in (("read", "rbytes", served), ("write", "wbytes", served),
                              ("read", "rios", done), ("write", "wios", done)):
            if values.get(key, "").isdigit():
                into.append({"major": major, "minor": minor, "op": op, "value": int(values[key])})
    blkio["io_service_bytes_recursive"], blkio["io_serviced_recursive"] = served, done
    return {"cpu_stats": {"cpu_usage": usage, "throttling_data": _throttling(cpu, 1000)},
            "memory_stats": memory, "pids_stats": _pids(directory), "blkio_stats": blkio}


def _throttling(cpu_stat: dict[str, int], to_ns: int) -> dict:
    time_key = "throttled_time" if to_ns == 1 else "throttled_usec"
    return {"periods": cpu_stat.get("nr_periods", 0), "throttled_periods": cpu_stat.get("nr_throttled", 0),
            "throttled_time": cpu_stat.get(time_key, 0) * to_ns}


def _system_cpu_ns() -> int:
    """The host's CPU time since boot in ns: /proc/stat's ``cpu`` line (user .. softirq), as dockerd."""
    first = (_read("/proc/stat") or "cpu 0").split("\n", 1)[0].split()
    return int(sum(int(v) for v in first[1:8]) * 1e9 / os.sysconf("SC_CLK_TCK"))
