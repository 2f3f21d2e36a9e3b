"""Sizes and CPU amounts as ``docker run`` reads them. Chapter 04.

``--memory 64m`` is 64 MiB (Docker's sizes are binary: k = 1024), ``512k``,
``1g``, ``1.5g`` and plain bytes work too; ``b`` and a trailing ``b``/``ib`` are
accepted (``64mb``, ``64MiB``) as Docker's ``units.RAMInBytes`` accepts them.
``--cpus 0.5`` becomes a CFS quota of 50 000 µs per 100 000 µs period.

    parse_size("64m") -> 67108864
    format_size(67108864) -> "64MiB"
    cpus_to_quota(0.5) -> (50000, 100000)
    shares_to_weight(1024) -> 39          v1 cpu.shares -> v2 cpu.weight
"""

from __future__ import annotations

from minidocker.errors import InvalidArgument
from minidocker.sizes import binary_size

__all__ = ["CFS_PERIOD_US", "MIN_CFS_QUOTA_US", "cpus_to_quota", "format_size", "parse_size",
           "shares_to_weight"]

# The kernel's defaults and bounds (kernel/sched/core.c): period 100 ms, quota >= 1 ms.
CFS_PERIOD_US = 100_000
MIN_CFS_QUOTA_US = 1_000

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text: str) -> int:
    """Bytes in a Docker size string: ``"64m"`` -> 67108864. Like docker's ``RAMInBytes``.

    Raises:
        InvalidArgument: not a size ("64q", "-1", "", "m").
    """
    # docker/go-units reads ``^(\d+(\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$``; so do we, without `re`
    # (importing it costs start-up time on every `run`).
    rest = text.strip().lower() if isinstance(text, str) else ""
    rest = rest.removesuffix("b")
    if len(rest) >= 2 and rest[-1] == "i" and rest[-2] in "kmgtp":
        rest = rest[:-1]  # KiB, MiB ...: the same binary units
    unit = rest[-1] if rest and rest[-1] in "kmgtp" else ""
    number = rest[:len(rest) - len(unit)].removesuffix(" ")
    whole, dot, fraction = number.partition(".")
    if not _digits(whole) or (dot and not _digits(fraction)):
        raise InvalidArgument(f"invalid size {text!r}",
                              hint="use a number with an optional unit b, k, m, g, t or p: 64m, 1g, 512k")
    return int(float(number) * _UNITS[unit])


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def format_size(size: int | None) -> str:
    """A limit or a usage for people, in binary units like ``docker stats``: 67108864 -> '64MiB'."""
    return "unlimited" if size is None else binary_size(size)


def cpus_to_quota(cpus: float, period_us: int = CFS_PERIOD_US) -> tuple[int, int]:
    """``--cpus`` as a CFS (quota, period) pair in µs: 0.5 -> (50000, 100000).

    This is what Docker does with ``NanoCPUs``: a fixed 100 ms period and a quota of
    ``cpus`` periods, so the group may run ``cpus`` CPUs' worth of time per period.
    See: sched-bwc (Documentation/scheduler/sched-bwc.rst).
    """
    if cpus <= 0:
        raise InvalidArgument(f"invalid --cpus {cpus:g}: it must be greater than 0")
    quota = round(cpus * period_us)
    if quota < MIN_CFS_QUOTA_US:
        raise InvalidArgument(f"invalid --cpus {cpus:g}: the smallest quota is {MIN_CFS_QUOTA_US} µs per "
                              f"{period_us} µs period",
                              hint=f"use at least {MIN_CFS_QUOTA_US / period_us:g}")
    return quota, period_us


def shares_to_weight(shares: int) -> int:
    """cgroup v1 ``cpu.shares`` (2..262144, default 1024) as v2 ``cpu.weight`` (1..10000, default 100).

    The linear map runc and crun use; 1024 maps to 39, not 100, which is why a v2
    host running Docker's default shares gives containers less weight than the
    host's own services. See: runc libcontainer/cgroups/utils.go ConvertCPUSharesToCgroupV2Value.
    """
    if shares == 0:
        return 0
    return 1 + ((shares - 2) * 9999) // 262142
