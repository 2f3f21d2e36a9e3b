"""The environment doctor: can this machine run minidocker's containers? Chapter 00.

Each check returns a :class:`Check`: what was looked at, what was found, and how to
fix it. ``minidocker doctor`` prints them all; the test suite asks for single
features with :func:`feature` to skip (or, in CI, fail) tests that need them.

Checks read files (/proc, /sys, ELF headers, symlinks) rather than run programs, so the
whole report takes a few milliseconds; the only subprocess is ``iptables -V`` when the
iptables symlink does not say which backend it is. Importing this module imports
nothing beyond the standard library's cheap modules.

    run_checks(cached=True) -> list[Check]   every check, in the order the course needs them
    feature(id) -> Check                     one check by id, cached ("root", "overlay", ...)
    format_report(checks) -> str             one line per check, a fix under each problem
    cgroup_layout(mountinfo) -> CgroupLayout v1 / v2 / hybrid and the controllers on each side
    read_mountinfo(path) -> list[Mount]      /proc/self/mountinfo, parsed

See: proc(5) (/proc/self/mountinfo, /proc/self/status), cgroups(7), user_namespaces(7),
capabilities(7), overlayfs in the kernel's Documentation/filesystems/overlayfs.rst.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from functools import cache
from pathlib import Path

from minidocker.mountinfo import Mount, parse_mountinfo
from minidocker.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "CgroupLayout",
    "Check",
    "Mount",
    "parse_mountinfo",
    "cgroup_layout",
    "container_hints",
    "feature",
    "format_report",
    "is_static_elf",
    "read_mountinfo",
    "run_checks",
]

CAP_SYS_ADMIN = 21  # capabilities(7); bit 21 of CapEff in /proc/self/status
MIN_KERNEL = (5, 0)  # pidfd_open(2) is 5.3, cgroup.kill 5.14; 4.x misses too much of the course
PYTHON_RANGE = ((3, 10), (3, 13))  # tested interpreters, inclusive


class Check(Record):
    """One finding. ``required`` checks must pass for containers to run at all."""

    FIELDS = ("id", "name", "ok", "detail", "fix", "required")
    DEFAULTS = {"fix": "", "required": True}


# --- reading the machine --------------------------------------------------------------


def read_mountinfo(path: str | os.PathLike[str] = "/proc/self/mountinfo") -> list[Mount]:
    """Parse a mountinfo file (linux/procfs.py reads every mount table minidocker looks at).

    See proc(5), "/proc/[pid]/mountinfo".
    """
    return parse_mountinfo(Path(path).read_text())


def mount_of(path: str | os.PathLike[str], mounts: list[Mount]) -> Mount | None:
    """The mount that holds ``path``: the longest mount point above it, the last one if stacked."""
    target = os.path.realpath(path)
    best: Mount | None = None
    for m in mounts:
        mp = m.mount_point
        inside = target == mp or target.startswith(mp.rstrip("/") + "/")
        if inside and (best is None or len(mp) >= len(best.mount_point)):
            best = m
    return best


def _read(path: str | os.PathLike[str]) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _existing_ancestor(path: Path) -> Path:
    # os.path.exists, unlike Path.exists on 3.11, answers False instead of raising EACCES.
    while not os.path.exists(path) and path != path.parent:
        path = path.parent
    return path


class CgroupLayout(Record):
    """How cgroups are mounted: "unified" (v2), "legacy" (v1), "hybrid" or "none".

    The modes are named as :func:`minidocker.cgroups.detect_mode` names them (systemd's words).
    """

    FIELDS = ("mode", "v1_controllers", "v2_path", "v2_controllers", "v1_paths")
    DEFAULTS = {"v1_controllers": (), "v2_path": None, "v2_controllers": (), "v1_paths": {}}

    def describe(self) -> str:
        """'hybrid: v1 cpu, memory, pids; v2 at /sys/fs/cgroup/unified: hugetlb'."""
        parts = []
        if self.v1_controllers:
            parts.append("v1 " + ", ".join(self.v1_controllers))
        if self.v2_path is not None:
            parts.append(f"v2 at {self.v2_path}: " + (" ".join(self.v2_controllers) or "no controllers"))
        return f"{self.mode}: " + ("; ".join(parts) or "no cgroup filesystem mounted")


def cgroup_layout(mounts: list[Mount] | None = None, cgroup_root: str = "/sys/fs/cgroup") -> CgroupLayout:
    """Detect the cgroup mode from the mount table and list the controllers on each side.

    unified (v2): ``cgroup_root`` itself is cgroup2. legacy (v1): a tmpfs with one
    ``cgroup`` mount per controller below it. Hybrid: v1 controllers plus a cgroup2 mount
    (usually ``unified/``) that holds only the controllers v1 did not take. The v2
    controllers are read from ``cgroup.controllers`` of the cgroup2 mount.
    See cgroups(7).
    """
    mounts = read_mountinfo() if mounts is None else mounts
    under = [m for m in mounts if m.mount_point == cgroup_root or m.mount_point.startswith(cgroup_root + "/")]
    v1_paths: dict[str, str] = {}
    v2_path = None
    for m in under:
        if m.fstype == "cgroup2":
            v2_path = m.mount_point if v2_path is None or m.mount_point == cgroup_root else v2_path
        elif m.fstype == "cgroup":
            for opt in m.super_options:
                generic = ("rw", "ro", "xattr", "noprefix", "clone_children", "cpuset_v2_mode")
                if opt not in generic and "=" not in opt:
                    v1_paths[opt] = m.mount_point
    v2_controllers: tuple[str, ...] = ()
    if v2_path is not None:
        v2_controllers = tuple((_read(Path(v2_path) / "cgroup.controllers") or "").split())
    if v2_path == cgroup_root:
        mode = "unified"
    elif v1_paths and v2_path:
        mode = "hybrid"
    elif v1_paths:
        mode = "legacy"
    elif v2_path:
        mode = "unified"  # a cgroup2 mount somewhere below the root, nothing on v1
    else:
        mode = "none"
    return CgroupLayout(mode, tuple(sorted(v1_paths)), v2_path, v2_controllers, v1_paths)


def is_static_elf(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is an ELF executable without a PT_INTERP (dynamic loader) header.

    A static binary runs in an empty root filesystem; a dynamic one needs ld.so and libc
    there too. See elf(5).
    """
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF":
            return False
        is64, order = head[4] == 2, "little" if head[5] == 1 else "big"
        if is64:
            phoff, phentsize, phnum = (int.from_bytes(head[32:40], order), int.from_bytes(head[54:56], order),
                                       int.from_bytes(head[56:58], order))
        else:
            phoff, phentsize, phnum = (int.from_bytes(head[28:32], order), int.from_bytes(head[42:44], order),
                                       int.from_bytes(head[44:46], order))
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    pt_interp = 3
    return all(int.from_bytes(table[i:i + 4], order) != pt_interp for i in range(0, len(table), phentsize))


def container_hints(root: str | os.PathLike[str] = "/", root_fstype: str | None = None) -> list[str]:
    """Signs that we run inside a container, strongest first; empty on a plain host or VM.

    ``root`` lets the tests point at a seeded directory instead of the real ``/``.
    """
    root = Path(root)
    hints = []
    if root_fstype == "overlay":
        hints.append("/ is an overlay (a container's root filesystem)")
    if (root / "run/.containerenv").exists():
        hints.append("/run/.containerenv exists (podman)")
    cgroup = _read(root / "proc/1/cgroup") or ""
    markers = ("docker", "kubepods", "containerd", "libpod", "lxc", "buildkit")
    for line in cgroup.splitlines():
        path = line.split(":", 2)[-1]
        if any(m in path for m in markers):
            hints.append(f"PID 1 is in cgroup {path}")
            break
    if (root / ".dockerenv").exists():
        hints.append("/.dockerenv exists (docker)")
    return hints


# --- the checks -------------------------------------------------------------------------


def _python() -> Check:
    v = sys.version_info[:2]
    shown = ".".join(map(str, sys.version_info[:3]))
    low, high = PYTHON_RANGE
    if v < low:
        return Check("python", "python version", False, f"python {shown} is older than 3.10",
                     "use python 3.10 to 3.13: make setup PYTHON_SYSTEM=/usr/bin/python3.11")
    if v > high:
        return Check("python", "python version", False, f"python {shown} is newer than the tested 3.13",
                     "probably fine; if something breaks, use python 3.10 to 3.13", required=False)
    return Check("python", "python version", True, f"python {shown} ({sys.executable})")


def _kernel() -> Check:
    release = os.uname().release
    found = tuple(int(n) for n in re.findall(r"\d+", release)[:2])
    ok = found >= MIN_KERNEL
    return Check("kernel", "kernel version", ok, f"linux {release}" + ("" if ok else ", older than 5.0"),
                 "boot a kernel >= 5.0 (Debian 12 ships 6.1): pidfds, clone3 and cgroup v2 features need it")


def _root() -> Check:
    euid = os.geteuid()
    return Check("root", "root", euid == 0, f"running as uid {euid}",
                 "run as root (sudo): namespaces, mounts and cgroups need it")


def _cap_sys_admin() -> Check:
    status = _read("/proc/self/status") or ""
    found = re.search(r"^CapEff:\s*([0-9a-fA-F]+)", status, re.M)
    eff = int(found.group(1), 16) if found else 0
    ok = bool(eff >> CAP_SYS_ADMIN & 1)
    return Check("cap_sys_admin", "CAP_SYS_ADMIN", ok,
                 f"CapEff {eff:#x}: CAP_SYS_ADMIN (bit 21) {'set' if ok else 'missing'}",
                 "run as root; in a container: docker run --privileged (or --cap-add SYS_ADMIN "
                 "--security-opt seccomp=unconfined --security-opt apparmor=unconfined)")


def _userns() -> Check:
    if not os.path.exists("/proc/self/ns/user"):
        return Check("userns", "user namespaces", False, "kernel built without CONFIG_USER_NS",
                     "use a kernel with user namespaces", required=False)
    max_ns = _read("/proc/sys/user/max_user_namespaces")
    if max_ns == "0":
        return Check("userns", "user namespaces", False, "user.max_user_namespaces is 0",
                     "sysctl -w user.max_user_namespaces=15000", required=False)
    return Check("userns", "user namespaces", True, f"user.max_user_namespaces = {max_ns}", required=False)


def _userns_unprivileged() -> Check:
    """Settings that block user namespaces for non-root users only (rootless containers)."""
    blockers, fixes, seen = [], [], []
    clone = _read("/proc/sys/kernel/unprivileged_userns_clone")  # Debian/Ubuntu kernel patch
    if clone is not None:
        seen.append(f"kernel.unprivileged_userns_clone = {clone}")
        if clone == "0":
            blockers.append("kernel.unprivileged_userns_clone is 0")
            fixes.append("sysctl -w kernel.unprivileged_userns_clone=1")
    apparmor = _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")  # Ubuntu 23.10+
    if apparmor is not None:
        seen.append(f"kernel.apparmor_restrict_unprivileged_userns = {apparmor}")
        if apparmor == "1":
            blockers.append("AppArmor restricts unprivileged user namespaces")
            fixes.append("sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or an AppArmor profile "
                         "with 'userns,' for the program)")
    detail = "; ".join(blockers) if blockers else ("; ".join(seen) or "no distribution restriction found")
    return Check("userns_unprivileged", "unprivileged user namespaces", not blockers,
                 detail + " (root is not affected, rootless containers are)", "; ".join(fixes),
                 required=False)


def _netns() -> Check:
    ok = os.path.exists("/proc/self/ns/net")
    return Check("netns", "network namespaces", ok, "/proc/self/ns/net " + ("exists" if ok else "is missing"),
                 "use a kernel with CONFIG_NET_NS")


def _overlay() -> Check:
    listed = "overlay" in (_read("/proc/filesystems") or "").split()
    if listed:
        return Check("overlay", "overlayfs", True, "listed in /proc/filesystems")
    module = Path(f"/lib/modules/{os.uname().release}/kernel/fs/overlayfs")
    if module.is_dir():  # loads itself on the first mount -t overlay
        return Check("overlay", "overlayfs", True, f"module in {module}, loaded on first mount")
    return Check("overlay", "overlayfs", False, "not in /proc/filesystems and no module found",
                 "modprobe overlay, or use a kernel with CONFIG_OVERLAY_FS")


def _overlay_upper() -> Check:
    """Overlay on overlay: an overlay's upper and work dirs cannot live on an overlay (EINVAL)."""
    from minidocker.paths import state_roots  # cheap: os and pathlib only

    mounts = read_mountinfo()
    lib = _existing_ancestor(state_roots().lib)
    where, root = mount_of(lib, mounts), mount_of("/", mounts)
    root_type = root.fstype if root else "unknown"
    lib_type = where.fstype if where else "unknown"
    ok = lib_type != "overlay"
    detail = f"/ is {root_type}; container layers go to {lib} on {lib_type}"
    if ok and root_type == "overlay":
        detail += " (/ is an overlay but the state root is not: fine)"
    return Check("overlay_upper", "overlay upper dirs on a real filesystem", ok, detail,
                 f"/ is an overlay (a container?): upper dirs there fail with EINVAL. Mount a tmpfs or a "
                 f"volume for the state: mount -t tmpfs tmpfs {lib} or MINIDOCKER_ROOT=/dev/shm/minidocker")


def _cgroup_mode() -> Check:
    layout = cgroup_layout()
    needed = {"memory", "pids", "cpu"}
    have = set(layout.v1_controllers) | set(layout.v2_controllers)
    missing = sorted(needed - have)
    ok = layout.mode != "none" and not missing
    fix = ("mount cgroups: mount -t cgroup2 none /sys/fs/cgroup" if layout.mode == "none" else
           f"enable the {', '.join(missing)} controller(s): on v2, echo +memory +pids +cpu > "
           "/sys/fs/cgroup/cgroup.subtree_control; in a container, run with --cgroupns=host --privileged")
    return Check("cgroup_mode", "cgroup mode", ok, layout.describe() + (f"; missing {', '.join(missing)}"
                                                                          if missing else ""),
                 fix, required=False)


def _cgroup_v1() -> Check:
    layout = cgroup_layout()
    found = [c for c in ("memory", "cpu", "pids") if c in layout.v1_paths]
    return Check("cgroup_v1", "cgroup v1 controllers", bool(found),
                 f"v1 hierarchies: {', '.join(found) or 'none'}", "a pure v2 host uses the v2 driver",
                 required=False)


def _cgroup_v2() -> Check:
    layout = cgroup_layout()
    if layout.v2_path is None:
        return Check("cgroup_v2", "cgroup v2", False, "no cgroup2 mount found",
                     "mount -t cgroup2 none /sys/fs/cgroup", required=False)
    controllers = " ".join(layout.v2_controllers) or "no controllers"
    return Check("cgroup_v2", "cgroup v2", True, f"{layout.v2_path}: {controllers}", required=False)


def _firewall() -> Check:
    """Which backend iptables drives: nf_tables or legacy. Never runs iptables-legacy."""
    nft = shutil.which("nft")
    iptables = shutil.which("iptables")
    backend = None
    if iptables:
        target = os.path.basename(os.path.realpath(iptables))
        if "nft" in target:
            backend = "nf_tables"
        elif "legacy" in target:
            backend = "legacy"
        else:  # an unusual install: ask the binary itself; -V touches no table
            import subprocess

            out = subprocess.run([iptables, "-V"], capture_output=True, text=True, timeout=5).stdout
            backend = "nf_tables" if "nf_tables" in out else "legacy" if "legacy" in out else None
    # /proc/net/ip_tables_names exists once the legacy ip_tables module is loaded; it lists its tables.
    legacy_tables = (_read("/proc/net/ip_tables_names") or "").split()
    parts = [f"iptables -> {backend or 'unknown backend'}" if iptables else "no iptables",
             f"nft {'at ' + nft if nft else 'missing'}"]
    if legacy_tables:
        parts.append(f"legacy tables present: {' '.join(legacy_tables)}")
    # nft is preferred; our own iptables chains (network/nat_iptables.py) are the fallback.
    parts.append(f"minidocker uses {'nft' if nft else 'iptables' if iptables else 'nothing: no NAT, no -p'}")
    ok = (nft is not None or iptables is not None) and not legacy_tables
    return Check("firewall", "firewall backend", ok, "; ".join(parts),
                 "apt-get install nftables iptables; "
                 "update-alternatives --set iptables /usr/sbin/iptables-nft "
                 "(never run iptables-legacy on an nf_tables host)", required=False)


def _container() -> Check:
    mounts = read_mountinfo()
    root = mount_of("/", mounts)
    hints = container_hints("/", root.fstype if root else None)
    strong = [h for h in hints if not h.startswith("/.dockerenv")]
    if strong:
        return Check("container", "inside a container", False, "; ".join(hints),
                     "run minidocker on a VM or host; in docker: --privileged --cgroupns=host, state on a "
                     "volume or tmpfs (not on the overlay root)", required=False)
    if hints:
        return Check("container", "inside a container", True,
                     f"{hints[0]}, but / is {root.fstype if root else 'unknown'} and PID 1's cgroups name no "
                     "container: a VM or host built from a container image", required=False)
    return Check("container", "inside a container", True, "no sign of a container: a host or VM",
                 required=False)


def _busybox() -> Check:
    from minidocker.image.busybox import BUSYBOX_CANDIDATES

    for path in BUSYBOX_CANDIDATES:
        if os.path.exists(path):
            static = is_static_elf(path)
            return Check("busybox", "static busybox", static,
                         f"{path} is {'statically' if static else 'dynamically'} linked",
                         "apt-get install busybox-static (the dynamic busybox cannot run in an empty rootfs)")
    return Check("busybox", "static busybox", False, "no busybox found", "apt-get install busybox-static")


def _runc() -> Check:
    path = shutil.which("runc")
    return Check("runc", "runc", path is not None, path or "not installed", "apt-get install runc",
                 required=False)


def _docker() -> Check:
    """dockerd and the docker client installed: the tests start a private dockerd (tests/dockerd.py)."""
    daemon, client = shutil.which("dockerd"), shutil.which("docker")
    ok = daemon is not None and client is not None
    missing = "dockerd" if daemon is None else "docker"
    detail = f"{daemon} and {client}" if ok else f"{missing} is not installed"
    return Check("docker", "dockerd", ok, detail,
                 "apt-get install docker.io (optional: tests that compare with Docker)", required=False)


_CHECKS: dict[str, Callable[[], Check]] = {
    "python": _python,
    "kernel": _kernel,
    "root": _root,
    "cap_sys_admin": _cap_sys_admin,
    "container": _container,
    "userns": _userns,
    "userns_unprivileged": _userns_unprivileged,
    "netns": _netns,
    "overlay": _overlay,
    "overlay_upper": _overlay_upper,
    "cgroup_mode": _cgroup_mode,
    "cgroup_v1": _cgroup_v1,
    "cgroup_v2": _cgroup_v2,
    "busybox": _busybox,
    "firewall": _firewall,
    "runc": _runc,
    "docker": _docker,
}


def run_checks(cached: bool = True) -> list[Check]:
    """Every check, in the order the course needs them; ``cached=False`` looks again."""
    return [feature(check_id) if cached else _run(check_id) for check_id in _CHECKS]


@cache
def feature(check_id: str) -> Check:
    """The check named ``check_id``; raises KeyError for an unknown one."""
    return _run(check_id)


def _run(check_id: str) -> Check:
    check = _CHECKS[check_id]
    try:
        return check()
    except OSError as err:  # a doctor that crashes helps nobody: report what could not be read
        return Check(check_id, check_id, False, f"failed to check {check_id}: {err}",
                     "run as root (sudo), or report this as a bug")


def format_report(checks: list[Check]) -> str:
    """One line per check, a fix under each problem, a count at the end."""
    lines = []
    for c in checks:
        mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
        lines.append(f"[{mark}] {c.name}: {c.detail}")
        if not c.ok and c.fix:
            lines.append(f"       fix: {c.fix}")
    failed = sum(1 for c in checks if not c.ok and c.required)
    warned = sum(1 for c in checks if not c.ok and not c.required)
    lines.append(f"{len(checks) - failed - warned} ok, {warned} warnings, {failed} failures"
                 + (": containers can run" if not failed else ": fix the failures first"))
    return "\n".join(lines)
