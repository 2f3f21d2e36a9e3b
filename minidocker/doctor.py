"""The environment doctor: can this machine run minidocker's containers? Chapter 00.

Each check returns a :class:`Check`: what was looked at, what was found, and how to
fix it. ``minidocker doctor`` prints them all; the test suite asks for single
features with :func:`feature` to skip (or, in CI, fail) tests that need them.

    run_checks() -> list[Check]      every check, in the order the course needs them
    feature(id) -> Check             one check by id, cached ("root", "overlay", ...)
    format_report(checks) -> str
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

__all__ = ["Check", "feature", "format_report", "run_checks"]


@dataclass(frozen=True)
class Check:
    """One finding. ``required`` checks must pass for containers to run at all."""

    id: str
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def _root() -> Check:
    euid = os.geteuid()
    return Check("root", "root", euid == 0, f"running as uid {euid}",
                 "run as root (sudo): namespaces, mounts and cgroups need it")


def _userns() -> Check:
    if not os.path.exists("/proc/self/ns/user"):
        return Check("userns", "user namespaces", False, "kernel built without CONFIG_USER_NS",
                     "use a kernel with user namespaces", required=False)
    return Check("userns", "user namespaces", True, "/proc/self/ns/user exists", required=False)


def _netns() -> Check:
    ok = os.path.exists("/proc/self/ns/net")
    return Check("netns", "network namespaces", ok, "/proc/self/ns/net " + ("exists" if ok else "is missing"),
                 "use a kernel with CONFIG_NET_NS")


def _overlay() -> Check:
    with open("/proc/filesystems") as f:
        ok = any(line.split()[-1] == "overlay" for line in f if line.strip())
    return Check("overlay", "overlayfs", ok, "listed in /proc/filesystems" if ok else "not in /proc/filesystems",
                 "modprobe overlay")


def _cgroup_v1() -> Check:
    found = [c for c in ("memory", "cpu", "pids") if os.path.isdir(f"/sys/fs/cgroup/{c}")]
    return Check("cgroup_v1", "cgroup v1 controllers", bool(found),
                 f"v1 hierarchies: {', '.join(found) or 'none'}", "a pure v2 host uses the v2 driver", required=False)


def _cgroup_v2() -> Check:
    for path in ("/sys/fs/cgroup/cgroup.controllers", "/sys/fs/cgroup/unified/cgroup.controllers"):
        if os.path.exists(path):
            with open(path) as f:
                controllers = f.read().split()
            return Check("cgroup_v2", "cgroup v2", True, f"{os.path.dirname(path)}: {' '.join(controllers) or 'no controllers'}",
                         required=False)
    return Check("cgroup_v2", "cgroup v2", False, "no cgroup2 mount found", "mount -t cgroup2 none /sys/fs/cgroup",
                 required=False)


def _runc() -> Check:
    path = shutil.which("runc")
    return Check("runc", "runc", path is not None, path or "not installed", "apt-get install runc", required=False)


def _docker() -> Check:
    ok = os.path.exists("/var/run/docker.sock")
    return Check("docker", "dockerd", ok, "/var/run/docker.sock " + ("exists" if ok else "is missing"),
                 "apt-get install docker.io (optional: tests that compare with Docker)", required=False)


_CHECKS: dict[str, Callable[[], Check]] = {
    "root": _root,
    "userns": _userns,
    "netns": _netns,
    "overlay": _overlay,
    "cgroup_v1": _cgroup_v1,
    "cgroup_v2": _cgroup_v2,
    "runc": _runc,
    "docker": _docker,
}


def run_checks() -> list[Check]:
    """Every check, in the order the course needs them."""
    return [feature(check_id) for check_id in _CHECKS]


@cache
def feature(check_id: str) -> Check:
    """The check named ``check_id``; raises KeyError for an unknown one."""
    return _CHECKS[check_id]()


def format_report(checks: list[Check]) -> str:
    """One line per check, a fix under each problem."""
    lines = []
    for c in checks:
        mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
        lines.append(f"[{mark}] {c.name}: {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"       fix: {c.fix}")
    return "\n".join(lines)
