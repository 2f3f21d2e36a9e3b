"""cgroups: limit and measure what a container uses. Chapter 04. Like runc's libcontainer/cgroups.

    open_cgroup("/minidocker/<id>")    the driver for this host: CgroupV2 or CgroupV1
    detect_mode()                      "unified" (v2 only), "hybrid" (v1 + a v2 mount), "legacy"
    Resources, CgroupStats             limits (OCI linux.resources) and usage
    parse_size("64m"), cpus_to_quota(0.5)
    join_cgroups_of(pid)               move the caller into another process's groups (exec)
    list_cgroups("minidocker")         the groups under our parent (to clean up after a crash)
    remove_parent()                    rmdir the empty "minidocker" parents (system prune)

A typical life (the runtime does this for every container)::

    cg = open_cgroup("/minidocker/3f2a9c")
    cg.check(resources)        # raises ControllerMissing before anything exists
    cg.create(); cg.apply(resources); cg.add_process(pid)
    ... cg.stats() ... cg.oom_kills()
    cg.destroy()               # SIGKILL all, rmdir

See: cgroups(7).
"""

from __future__ import annotations

import os

from minidocker import lazy_attributes
from minidocker.cgroups.base import (
    Cgroup,
    CgroupError,
    CgroupStats,
    ControllerMissing,
    Resources,
    write_value,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from minidocker.cgroups.v1 import CgroupV1
    from minidocker.cgroups.v2 import CgroupV2

__all__ = [
    "CGROUP_PARENT",
    "Cgroup",
    "CgroupError",
    "CgroupStats",
    "CgroupV1",
    "CgroupV2",
    "ControllerMissing",
    "Resources",
    "cpus_to_quota",
    "detect_mode",
    "format_size",
    "join_cgroups_of",
    "list_cgroups",
    "open_cgroup",
    "parse_size",
    "remove_parent",
    "shares_to_weight",
]

# Loaded on first use (PEP 562): a host needs one driver, and `delete` needs no unit conversions
# (each module is ~0.2 ms of every runtime command's start, bench/README.md).
_LAZY = {"CgroupV1": "v1", "CgroupV2": "v2", "cpus_to_quota": "units", "format_size": "units",
         "parse_size": "units", "shares_to_weight": "units"}
__getattr__ = lazy_attributes(__name__, _LAZY)


CGROUP_ROOT = "/sys/fs/cgroup"
# Every container's group lives under this parent, as Docker's live under "docker".
CGROUP_PARENT = "minidocker"


def detect_mode(root: str = CGROUP_ROOT) -> str:
    """How cgroups are mounted here: 'unified', 'hybrid' or 'legacy'.

    ``unified``: ``root`` itself is cgroup2 (it has ``cgroup.controllers``). ``hybrid``:
    v1 hierarchies plus a cgroup2 mount at ``root/unified`` (systemd's hybrid layout,
    these course machines). ``legacy``: v1 only.
    """
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return "unified"
    if os.path.exists(os.path.join(root, "unified", "cgroup.controllers")):
        return "hybrid"
    return "legacy"


def open_cgroup(path: str, root: str = CGROUP_ROOT, mode: str | None = None) -> Cgroup:
    """The driver for ``path`` (an OCI cgroupsPath) on this host.

    v2 when the host is unified, v1 otherwise: on a hybrid host the controllers are in
    the v1 hierarchies (its v2 mount has none), which is also what runc and Docker use.
    """
    mode = mode or detect_mode(root)
    if mode == "unified":
        from minidocker.cgroups.v2 import CgroupV2

        return CgroupV2(path, root)
    from minidocker.cgroups.v1 import CgroupV1

    return CgroupV1(path, root)


def join_cgroups_of(pid: int, root: str = CGROUP_ROOT) -> None:
    """Move the calling process into every cgroup ``pid`` is in. What ``docker exec`` does.

    Reads ``/proc/<pid>/cgroup`` (``ID:CONTROLLERS:PATH`` lines; ``0::PATH`` is v2).
    """
    me = os.getpid()
    with open(f"/proc/{pid}/cgroup") as f:
        lines = f.read().splitlines()
    with open("/proc/self/cgroup") as f:
        ours = set(f.read().splitlines())   # a group we are in already: no write (rootless: none allowed)
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if path == "/" or "name=" in controllers or line in ours:
            continue
        if controllers:
            base = os.path.join(root, controllers.split(",")[0])
        else:
            base = root if detect_mode(root) == "unified" else os.path.join(root, "unified")
        procs = os.path.join(base, path.lstrip("/"), "cgroup.procs")
        if os.path.exists(procs):
            write_value(procs, me)


def list_cgroups(parent: str = CGROUP_PARENT, root: str = CGROUP_ROOT) -> list[str]:
    """Names of the groups under ``parent`` (in any hierarchy): container IDs, normally."""
    mode = detect_mode(root)
    if mode == "unified":
        bases = [root]
    else:
        from minidocker.cgroups.v1 import CgroupV1

        bases = [os.path.join(root, c) for c in CgroupV1(f"/{parent}", root).controllers]
    names: set[str] = set()
    for base in bases:
        try:
            names.update(e.name for e in os.scandir(os.path.join(base, parent)) if e.is_dir())
        except FileNotFoundError:
            continue
    return sorted(names)


def remove_parent(parent: str = CGROUP_PARENT, root: str = CGROUP_ROOT) -> list[str]:
    """Remove the ``parent`` group from every hierarchy where it is empty; return those removed.

    A group with children (a running container, maybe of another state root) stays:
    rmdir(2) of a cgroup directory fails while it has child groups.
    """
    removed = []
    candidates = [os.path.join(root, parent)]
    try:
        candidates += [os.path.join(entry.path, parent) for entry in os.scandir(root) if entry.is_dir()]
    except FileNotFoundError:
        return removed
    for path in candidates:
        try:
            os.rmdir(path)
        except OSError:
            continue  # missing, or still in use
        removed.append(path)
    return removed
