"""Chapter 04 reference solutions: resource limits with cgroups.

Same functions, signatures and docstrings as ``exercises/ch04/tasks.py``.

    parse_size(text)                                  task 4.1  "64m" -> 67108864, like docker run -m
    limit_files(version, memory, cpus, pids)          task 4.2  which file gets which value, v1 or v2
    create_limited_group(root, name, version, memory) task 4.3  mkdir the group, write its memory limit
    oom_report(directory, version)                    task 4.4  read why the OOM killer struck

Never move your notebook kernel or pytest into a group: the tests move only children
they fork. See: cgroups(7), Documentation/admin-guide/cgroup-v2.rst.
"""

from __future__ import annotations

import os  # noqa: F401

__all__ = ["UNITS", "create_limited_group", "limit_files", "oom_report", "parse_size"]

# Docker's size units are binary: 1k = 1024 bytes.
UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """Bytes in a Docker size string, like ``docker run --memory``: "64m" -> 67108864.

    Accept a whole or decimal number, optional spaces around it, and an optional unit
    k, m, g or t in either case, optionally followed by "b" ("64mb", "1.5g", "512k",
    "100"). Raise ``ValueError`` naming the text for anything else ("64q", "-1", "",
    "m", "1..5g").

    Hint: ``str.strip``, ``str.lower``, ``str.isdigit``; ``UNITS``.
    Questions: why do limits in the kernel files always come out as a multiple of the
    page size (4096) when you read them back? What does Docker do with ``--memory 1``?

    See: docker run --memory; memory.limit_in_bytes in cgroup-v1/memory.rst.
    """
    text = text.strip().lower()
    text = text[:-1] if text.endswith("b") else text
    unit = text[-1] if text and text[-1] in "kmgt" else ""
    number = text[:len(text) - len(unit)].strip()
    whole, dot, fraction = number.partition(".")
    if not (whole.isascii() and whole.isdigit()) or (dot and not (fraction.isascii() and fraction.isdigit())):
        raise ValueError(f"invalid size {text!r}")
    return int(float(number) * UNITS[unit])


def limit_files(version: int, memory: int, cpus: float, pids: int) -> dict[str, str]:
    """The files a runtime writes for ``--memory``, ``--cpus`` and ``--pids-limit``, and what.

    Keys are paths relative to the cgroup mount, for a group named ``GROUP``:
    cgroup v1 has one hierarchy per controller, so the key names it
    (``"memory/GROUP/memory.limit_in_bytes"``); v2 has one tree (``"GROUP/memory.max"``).
    Values are the exact strings to write. ``cpus`` becomes a CFS quota per period of
    100000 µs: v1 writes the period and the quota into ``cpu.cfs_period_us`` and
    ``cpu.cfs_quota_us``; v2 writes ``"QUOTA PERIOD"`` into ``cpu.max``. Raise
    ``ValueError`` for a version other than 1 or 2.

    Hint: the table in notebook 04, section 4.2. ``round(cpus * 100000)``.
    Questions: why must a v1 runtime write the period before the quota when it lowers
    the period? Which of these files does the kernel round?

    See: Documentation/scheduler/sched-bwc.rst; cgroup-v2.rst "cpu.max", "memory.max".
    """
    quota, period = round(cpus * 100_000), 100_000
    if version == 1:
        return {"memory/GROUP/memory.limit_in_bytes": str(memory),
                "cpu/GROUP/cpu.cfs_period_us": str(period),
                "cpu/GROUP/cpu.cfs_quota_us": str(quota),
                "pids/GROUP/pids.max": str(pids)}
    if version == 2:
        return {"GROUP/memory.max": str(memory), "GROUP/cpu.max": f"{quota} {period}", "GROUP/pids.max": str(pids)}
    raise ValueError(f"unknown cgroup version {version!r}")


def create_limited_group(root: str, name: str, version: int, memory: int) -> str:
    """Create the cgroup ``name`` at the top of the hierarchy under ``root`` with a memory limit.

    Return the group's directory (the one whose ``cgroup.procs`` a PID is written to).
    v1: the memory hierarchy is ``root/memory``, the group ``root/memory/name``, the
    limit goes into ``memory.limit_in_bytes``. v2: the group is ``root/name``, and
    before creating it, ``+memory`` must be written to ``root/cgroup.subtree_control``
    unless that file already lists ``memory``; the limit goes into ``memory.max``.
    Write each file with one ``write`` (a file object flushed once is fine).

    Hint: ``os.mkdir``; ``open(path, "w")``. The kernel creates the files of a new group.
    Questions: what does the kernel answer if you write "+memory" to a group that has
    processes of its own (v2)? Why is the write of ``memory.max`` allowed to be lower
    than what the group already uses?

    See: cgroups(7); cgroup-v2.rst "Enabling and Disabling", "no internal process".
    """
    if version == 1:
        directory = os.path.join(root, "memory", name)
        os.mkdir(directory)
        limit_file = "memory.limit_in_bytes"
    elif version == 2:
        control = os.path.join(root, "cgroup.subtree_control")
        with open(control) as f:
            enabled = f.read().split()
        if "memory" not in enabled:
            with open(control, "w") as f:
                f.write("+memory")
        directory = os.path.join(root, name)
        os.mkdir(directory)
        limit_file = "memory.max"
    else:
        raise ValueError(f"unknown cgroup version {version!r}")
    with open(os.path.join(directory, limit_file), "w") as f:
        f.write(str(memory))
    return directory


def oom_report(directory: str, version: int) -> dict[str, int | None]:
    """What the group's memory files say about OOM kills: ``{"oom_kills", "limit", "peak"}``.

    v1: ``oom_kill N`` is a line of ``memory.oom_control``; the limit is
    ``memory.limit_in_bytes``; the peak ``memory.max_usage_in_bytes``. v2: ``oom_kill N``
    is a line of ``memory.events``; the limit ``memory.max`` ("max" means None); the peak
    ``memory.peak`` (None if the kernel, before 5.19, has no such file). Values are ints.

    Hint: each line of the events files is ``KEY VALUE``.
    Questions: ``memory.events`` also has ``oom`` and ``max``: how do they differ from
    ``oom_kill``? Why can ``oom_kill`` be 1 while the container's PID 1 exited with 0?

    See: cgroup-v2.rst "memory.events"; cgroup-v1/memory.rst "oom_control".
    """
    def read(name: str) -> str | None:
        try:
            with open(os.path.join(directory, name)) as f:
                return f.read()
        except FileNotFoundError:
            return None

    def number(text: str | None) -> int | None:
        text = (text or "").strip()
        return None if text in ("", "max") else int(text)

    events = read("memory.oom_control" if version == 1 else "memory.events") or ""
    kills = dict(line.split() for line in events.splitlines() if len(line.split()) == 2).get("oom_kill", "0")
    if version == 1:
        return {"oom_kills": int(kills), "limit": number(read("memory.limit_in_bytes")),
                "peak": number(read("memory.max_usage_in_bytes"))}
    return {"oom_kills": int(kills), "limit": number(read("memory.max")), "peak": number(read("memory.peak"))}
