"""``run``'s resource flags -> OCI ``linux.resources``, checked the way Docker checks them. Chapter 04.

    --memory 64m          memory.limit  67108864        (at least 6 MiB, like Docker)
    --memory-swap 128m    memory.swap   134217728       (memory + swap; -1 = unlimited swap;
                                                         unset = twice --memory, Docker's default)
    --cpus 0.5            cpu.quota 50000, cpu.period 100000   (at most the host's CPU count)
    --cpu-shares 512      cpu.shares    512              (relative weight; v2 gets cpu.weight)
    --cpu-period/--cpu-quota   the raw CFS pair (not together with --cpus)
    --pids-limit 50       pids.limit    50               (-1 = unlimited)

The runtime applies them (see :func:`minidocker.runtime.run.create_cgroup`): the
engine only translates and validates, as dockerd does before it calls runc.
"""

from __future__ import annotations

import os

from minidocker.cgroups import Resources, cpus_to_quota, parse_size
from minidocker.errors import InvalidArgument
from minidocker.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["MIN_MEMORY", "ResourceFlags", "host_cpu_count", "resources_from_flags"]

MIN_MEMORY = 6 << 20  # Docker's "Minimum memory limit allowed is 6MB"


class ResourceFlags(Record):
    """The resource flags as typed by the user: strings (or numbers), checked by resources_from_flags."""

    FIELDS = ("memory", "memory_swap", "cpus", "cpu_shares", "cpu_period", "cpu_quota", "pids_limit")
    DEFAULTS = dict.fromkeys(FIELDS)

    def __post_init__(self) -> None:
        self.cpus = _number("--cpus", self.cpus, float)
        self.cpu_shares = _number("--cpu-shares", self.cpu_shares, int)
        self.cpu_period = _number("--cpu-period", self.cpu_period, int)
        self.cpu_quota = _number("--cpu-quota", self.cpu_quota, int)
        self.pids_limit = _number("--pids-limit", self.pids_limit, int)



def _number(flag: str, value: str | float | None, kind: type) -> float | int | None:
    """``"0.5"`` -> 0.5 for ``--cpus``; a clear error naming the flag otherwise."""
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    try:
        return kind(str(value).strip())
    except ValueError:
        what = "a number" if kind is float else "an integer"
        raise InvalidArgument(f"invalid {flag} {value!r}: not {what}") from None


def host_cpu_count() -> int:
    """CPUs this process may run on (what Docker's ``--cpus`` range is based on)."""
    return len(os.sched_getaffinity(0))


def resources_from_flags(flags: ResourceFlags, cpu_count: int | None = None) -> dict[str, Any]:
    """The OCI ``linux.resources`` dict for these flags (empty when none is given).

    Raises:
        InvalidArgument: a value naming the flag and the problem; nothing has been created.
    """
    memory = _memory(flags.memory)
    swap = _memory_swap(flags.memory_swap, memory)
    quota, period = _cpu(flags, cpu_count or host_cpu_count())
    if flags.cpu_shares is not None and flags.cpu_shares < 0:
        raise InvalidArgument(f"invalid --cpu-shares {flags.cpu_shares}: it must not be negative")
    if flags.cpu_shares is not None and 0 < flags.cpu_shares < 2:
        raise InvalidArgument(f"invalid --cpu-shares {flags.cpu_shares}: the smallest weight is 2")
    pids = flags.pids_limit
    if pids is not None and (pids == 0 or pids < -1):
        raise InvalidArgument(f"invalid --pids-limit {pids}: it must be positive, or -1 for unlimited")
    resources = Resources(memory_limit=memory, memory_swap=swap, cpu_shares=flags.cpu_shares or None,
                          cpu_quota=quota, cpu_period=period, pids_limit=pids)
    resources.validate()
    return resources.to_oci()


def _memory(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = parse_size(text)
    except InvalidArgument as err:
        raise InvalidArgument(f"invalid --memory {text!r}: not a size", hint=err.hint) from None
    if value < MIN_MEMORY:
        raise InvalidArgument(f"invalid --memory {text!r}: the minimum memory limit is 6MiB",
                              hint="a container needs a few MiB to start at all; try --memory 64m")
    return value


def _memory_swap(text: str | None, memory: int | None) -> int | None:
    if text is None:
        return memory * 2 if memory is not None else None  # Docker: as much swap as memory
    if text.strip() == "-1":
        value = -1
    else:
        try:
            value = parse_size(text)
        except InvalidArgument as err:
            raise InvalidArgument(f"invalid --memory-swap {text!r}: not a size, nor -1",
                                  hint=err.hint) from None
    if memory is None:
        raise InvalidArgument("invalid --memory-swap: it needs --memory",
                              hint="--memory-swap is memory + swap: set --memory too")
    if value != -1 and value < memory:
        raise InvalidArgument(f"invalid --memory-swap {text!r}: it is memory + swap, so it must be at "
                              f"least --memory ({memory} bytes)", hint="use -1 for unlimited swap")
    return value


def _cpu(flags: ResourceFlags, cpu_count: int) -> tuple[int | None, int | None]:
    if flags.cpus is not None:
        if flags.cpu_period is not None or flags.cpu_quota is not None:
            raise InvalidArgument("conflicting options: --cpus and --cpu-period/--cpu-quota cannot both be "
                                  "set")
        if not 0 < flags.cpus <= cpu_count:
            raise InvalidArgument(f"invalid --cpus {flags.cpus:g}: the range is 0.01 to {cpu_count:.2f}, as "
                                  f"there {'is' if cpu_count == 1 else 'are'} only {cpu_count} "
                                  f"CPU{'' if cpu_count == 1 else 's'} available")
        quota, period = cpus_to_quota(flags.cpus)
        return quota, period
    if flags.cpu_period is not None and not 1_000 <= flags.cpu_period <= 1_000_000:
        raise InvalidArgument(f"invalid --cpu-period {flags.cpu_period}: it must be 1000..1000000 µs")
    if flags.cpu_quota is not None and flags.cpu_quota != -1 and flags.cpu_quota < 1_000:
        raise InvalidArgument(f"invalid --cpu-quota {flags.cpu_quota}: it must be at least 1000 µs, or -1")
    return flags.cpu_quota, flags.cpu_period
