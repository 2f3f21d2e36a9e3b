"""The leak detector: what minidocker may create on the host, before and after a test.

A snapshot lists mounts (by mount ID: a mount stacked on an existing mount point is new
too), network links, network namespaces, our cgroups, our nft table and chains, our
``minidocker:`` rules in other tables (the accepts in dockerd's DOCKER-USER chain), live
processes and the container records under the state root. A test's leaks are what the second snapshot has and the
first had not. Everything minidocker makes on the host carries its name: bridges ``mdbr*``/``md-*``,
veths ``md*``, network namespaces ``md-*``, cgroups under a ``minidocker`` parent, the nft table
``minidocker`` (iptables chains ``MINIDOCKER*``), mounts under the state roots.

Two scopes. ``global`` (CI, where the machine runs nothing else of ours) reports every
new mount, every new md* link or netns, every new minidocker cgroup or nft table and
every new process in a nested PID namespace. ``local`` (a developer's machine, where
another test run may be going on) reports only what is under this run's state root or
descends from this process, plus md* links and namespaces and minidocker cgroups.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from minidocker.mountinfo import read_mountinfo

__all__ = ["HostSnapshot", "find_leaks", "take_snapshot"]

_CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class HostSnapshot:
    mounts: frozenset[tuple[int, str]]  # (mount ID, mount point)
    links: frozenset[str]
    netns: frozenset[str]
    cgroups: frozenset[str]
    nft_tables: frozenset[str]
    processes: frozenset[int]
    containers: frozenset[str] = frozenset()


def take_snapshot(state_root: Path | None = None) -> HostSnapshot:
    """What is on the host now; with ``state_root``, also the container records under it."""
    containers_dir = state_root / "lib" / "containers" if state_root is not None else None
    return HostSnapshot(
        mounts=frozenset((m.mount_id, m.mount_point) for m in read_mountinfo()),
        links=frozenset(os.listdir("/sys/class/net")),
        netns=frozenset(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else frozenset(),
        cgroups=frozenset(_our_cgroups()),
        nft_tables=frozenset(_our_nft_tables()),
        processes=frozenset(_pids()),
        containers=frozenset(_container_entries(containers_dir)) if containers_dir else frozenset(),
    )


def _container_entries(containers_dir: Path) -> list[str]:
    """Records, and the name claims in ``.names`` (engine/container.py): each must go with its container."""
    if not containers_dir.is_dir():
        return []
    entries = [name for name in os.listdir(containers_dir) if name != ".names"]
    names = containers_dir / ".names"
    if names.is_dir():
        entries += [f".names/{name}" for name in os.listdir(names) if name != ".lock"]
    return entries


def find_leaks(before: HostSnapshot, state_root: Path, scope: str = "local") -> list[str]:
    """What appeared since ``before`` and is still there; processes get a second to exit."""
    problems: list[str] = []
    for attempt in range(20):
        after = take_snapshot(state_root)
        problems = _compare(before, after, str(state_root), scope)
        if not problems:
            return []
        time.sleep(0.05 * (attempt + 1) if attempt < 5 else 0.1)
    return problems


def _compare(before: HostSnapshot, after: HostSnapshot, root: str, scope: str) -> list[str]:
    problems = []
    new_mounts = {point for _, point in after.mounts - before.mounts}
    if scope == "local":
        new_mounts = {m for m in new_mounts if m.startswith(root) or "minidocker" in m}
    problems += [f"mount {m}" for m in sorted(new_mounts)]
    problems += [f"network link {n}" for n in sorted(after.links - before.links) if n.startswith("md")]
    problems += [f"network namespace {n}" for n in sorted(after.netns - before.netns) if n.startswith("md")]
    new_cgroups = after.cgroups - before.cgroups
    if scope == "local":  # another session's running container has processes; a leaked group has none
        new_cgroups = {c for c in new_cgroups if not _cgroup_has_processes(c)}
    problems += [f"cgroup {c}" for c in sorted(new_cgroups)]
    problems += [f"firewall {t}" for t in sorted(after.nft_tables - before.nft_tables)]
    problems += [f"container state {root}/lib/containers/{c}" for c in sorted(after.containers - before.containers)]
    me = os.getpid()
    for pid in sorted(after.processes - before.processes):
        info = _process_info(pid)
        if info is None:
            continue
        nested, ancestors, state, cmdline = info
        if state == "Z" and me not in ancestors:
            continue  # someone else's zombie, about to be reaped
        if me in ancestors or (scope == "global" and nested):
            problems.append(f"process {pid} ({cmdline}, state {state})")
    return problems


def _our_cgroups() -> list[str]:
    found = []
    if not _CGROUP_ROOT.is_dir():
        return found
    unified = (_CGROUP_ROOT / "cgroup.controllers").exists()  # pure v2: the root is the one hierarchy
    for hierarchy in [_CGROUP_ROOT] if unified else os.scandir(_CGROUP_ROOT):
        if not unified and not hierarchy.is_dir(follow_symlinks=False):
            continue
        stack = [(os.fspath(hierarchy) if unified else hierarchy.path, 0)]
        while stack:
            path, depth = stack.pop()
            try:
                entries = list(os.scandir(path))
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name == "minidocker":  # the parent of containers' groups stays, like docker's
                        found += [e.path for e in os.scandir(entry.path) if e.is_dir(follow_symlinks=False)]
                    elif "minidocker" in entry.name:
                        found.append(entry.path)
                    elif depth < 2:
                        stack.append((entry.path, depth + 1))
    return found


def _cgroup_has_processes(path: str) -> bool:
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return bool(f.read().strip())
    except OSError:
        return False


def _our_nft_tables() -> list[str]:
    """Our nft table, our iptables chains (MINIDOCKER*, kept by iptables-nft in nft tables) and
    our tagged rules in other chains (``minidocker:net:<id>`` accepts in DOCKER-USER or FORWARD),
    from one ``nft list ruleset``."""
    nft = shutil.which("nft")
    if nft is None:
        return []
    result = subprocess.run([nft, "list", "ruleset"], capture_output=True, text=True, timeout=10)
    found, table, chain = [], "", ""
    for line in result.stdout.splitlines():
        words = line.split()
        if words[:1] == ["table"]:
            table = " ".join(words[:3])
            if "minidocker" in table.lower():
                found.append(table)
        elif "minidocker" in table.lower():
            continue  # what is inside our own table goes with it
        elif words[:1] == ["chain"]:
            chain = words[1]
            if "minidocker" in chain.lower():
                found.append(f"{table} chain {chain}")
        elif 'comment "minidocker:' in line and "minidocker" not in chain.lower():
            rule = re.sub(r"counter packets \d+ bytes \d+", "counter", line.strip())  # counts change
            found.append(f"{table} chain {chain} rule {rule}")
    if "table ip filter" in result.stdout and shutil.which("iptables-save"):
        # iptables-nft keeps the comment in an xt match that `nft list` does not print
        saved = subprocess.run(["iptables-save", "-t", "filter"], capture_output=True, text=True, timeout=10)
        found += [f"iptables filter rule {line}" for line in saved.stdout.splitlines()
                  if line.startswith("-A ") and "minidocker:" in line and "MINIDOCKER" not in line.split()[1]]
    return found


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _process_info(pid: int) -> tuple[bool, list[int], str, str] | None:
    """(in a nested PID namespace, ancestor PIDs, state letter, command line) or None if gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    nested = len(fields.get("NSpid", "").split()) > 1
    state = fields.get("State", "?").split()[0]
    ancestors = []
    ppid = int(fields.get("PPid", "0"))
    while ppid > 1 and len(ancestors) < 64:
        ancestors.append(ppid)
        try:
            text = Path(f"/proc/{ppid}/status").read_text()
        except (FileNotFoundError, ProcessLookupError):
            break
        ppid = int(next((line.split()[1] for line in text.splitlines() if line.startswith("PPid:")), "0"))
    return nested, ancestors, state, cmdline.strip()[:120]
