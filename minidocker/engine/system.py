"""What the daemon says about itself and this host: ``docker version`` and ``docker info``.

::

    system_version()            VersionInfo: minidocker's version, API versions, kernel, arch
    system_info(roots, config)  SystemInfo: container and image counts, cgroup driver and version,
                                CPUs, memory, registries, the state root

The engine returns values; api/system.py gives them Docker's JSON shape.
See: docker-version(1), docker-info(1), uname(2), proc(5) /proc/meminfo.
"""

from __future__ import annotations

import os
import platform
import socket
import time

from minidocker import __version__
from minidocker.paths import StateRoots
from minidocker.record import Record

__all__ = ["API_VERSION", "MIN_API_VERSION", "SystemInfo", "VersionInfo", "daemon_id", "rfc3339",
           "system_info", "system_version"]

API_VERSION = "1.41"
MIN_API_VERSION = "1.24"


class VersionInfo(Record):
    FIELDS = ("version", "api_version", "min_api_version", "os", "arch", "kernel_version", "python_version",
              "runtime_version")

    def __init__(self, version: str, api_version: str, min_api_version: str, os: str, arch: str,
                 kernel_version: str, python_version: str, runtime_version: str) -> None:
        self.version, self.api_version, self.min_api_version = version, api_version, min_api_version
        self.os, self.arch, self.kernel_version = os, arch, kernel_version
        self.python_version, self.runtime_version = python_version, runtime_version


def _goarch(machine: str) -> str:
    """Docker names architectures as Go does: x86_64 is amd64, aarch64 is arm64."""
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def system_version() -> VersionInfo:
    """``docker version``'s server half."""
    uname = os.uname()
    return VersionInfo(__version__, API_VERSION, MIN_API_VERSION, "linux", _goarch(uname.machine),
                       uname.release, platform.python_version(), __version__)


class SystemInfo(Record):
    FIELDS = ("id", "name", "containers", "running", "paused", "stopped", "images", "driver", "cgroup_driver",
              "cgroup_version", "kernel_version", "operating_system", "os_version", "architecture", "ncpu",
              "mem_total", "root_dir", "debug", "live_restore", "logging_driver", "registry_mirrors",
              "insecure_registries", "event_listeners", "fds", "threads", "system_time", "server_version",
              "memory_limit", "swap_limit", "warnings")

    def __init__(self, **values) -> None:
        for key in self.FIELDS:
            setattr(self, key, values.get(key))


def daemon_id(roots: StateRoots) -> str:
    """This state root's engine ID, made once and kept in ``lib/engine-id`` (dockerd keeps one too)."""
    path = roots.lib / "engine-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    import uuid

    from minidocker.atomic import write_bytes

    path.parent.mkdir(parents=True, exist_ok=True)
    value = str(uuid.uuid4())
    write_bytes(path, value.encode() + b"\n")
    return value


def _os_release() -> tuple[str, str]:
    try:
        with open("/etc/os-release") as f:
            fields = dict(line.rstrip("\n").split("=", 1) for line in f if "=" in line)
    except OSError:
        return "Linux", ""
    return fields.get("PRETTY_NAME", "Linux").strip('"'), fields.get("VERSION_ID", "").strip('"')


def _mem_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def system_info(roots: StateRoots, config=None, event_listeners: int = 0) -> SystemInfo:
    """``docker info``: counts from the records, facts from the kernel. ``config``: the DaemonConfig."""
    import threading

    from minidocker.cgroups import detect_mode
    from minidocker.engine.container import list_containers
    from minidocker.image import ImageStore

    containers = list_containers(roots)
    by_status: dict[str, int] = {}
    for c in containers:
        by_status[c.status] = by_status.get(c.status, 0) + 1
    try:
        images = len({image.id for image in ImageStore(roots.images).list()})
    except OSError:
        images = 0
    mode = detect_mode()
    operating_system, os_version = _os_release()
    warnings = []
    if open("/proc/sys/net/ipv4/ip_forward").read().strip() != "1":
        warnings.append("WARNING: IPv4 forwarding is disabled")
    return SystemInfo(
        id=daemon_id(roots), name=socket.gethostname(), containers=len(containers),
        running=by_status.get("running", 0), paused=by_status.get("paused", 0),
        stopped=len(containers) - by_status.get("running", 0) - by_status.get("paused", 0),
        images=images, driver="overlay", cgroup_driver="cgroupfs",
        cgroup_version="2" if mode == "unified" else "1",
        kernel_version=os.uname().release, operating_system=operating_system, os_version=os_version,
        architecture=os.uname().machine, ncpu=os.cpu_count() or 1, mem_total=_mem_total(),
        root_dir=str(roots.lib),
        debug=bool(config and config.debug), live_restore=bool(config and config.live_restore),
        logging_driver=(config.log_driver if config else "json-file"),
        registry_mirrors=list(config.registry_mirrors) if config else [],
        insecure_registries=list(config.insecure_registries) if config else [],
        event_listeners=event_listeners, fds=len(os.listdir("/proc/self/fd")),
        threads=threading.active_count(),
        system_time=time.time(), server_version=__version__, memory_limit=True,
        swap_limit=mode == "unified" or os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"),
        warnings=warnings)


def rfc3339(seconds: float) -> str:
    """Unix seconds as the Engine API writes times: ``2026-12-01T22:15:52.000000000Z``."""
    whole = int(seconds)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((seconds - whole) * 1e9):09d}Z"
