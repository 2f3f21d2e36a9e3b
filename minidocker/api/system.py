"""System endpoints: ``/_ping``, ``/version``, ``/info``, ``/events``. Handlers named after operation ids.

::

    HEAD|GET /_ping     200 "OK" (HEAD: empty) and Api-Version, which the CLI negotiates with
    GET /version        SystemVersion: docker-py requires ApiVersion
    GET /info           SystemInfo: what docker info prints
    GET /events         SystemEvents: chunked JSON, one event per chunk, until ``until`` or the client leaves
    GET /system/df      SystemDataUsage: images, containers, volumes, build cache and their sizes

See: the Docker Engine API reference, "System".
"""

from __future__ import annotations

import json

from minidocker.api.filters import parse_filters
from minidocker.api.server import Reply, Request
from minidocker.engine.system import rfc3339
from minidocker.errors import InvalidArgument

__all__ = ["ROUTES", "event_json", "system_data_usage", "system_events", "system_info", "system_ping",
           "system_version"]

_PING_HEADERS = (("Cache-Control", "no-cache, no-store, must-revalidate"), ("Pragma", "no-cache"))


def system_ping(request: Request) -> Reply:
    body = b"" if request.method == "HEAD" else b"OK"  # dockerd's HEAD answer says Content-Length: 0
    return Reply(200, body, "text/plain; charset=utf-8", _PING_HEADERS)


def system_version(request: Request) -> Reply:
    from minidocker.engine.system import system_version as version

    v = version()
    details = {"ApiVersion": v.api_version, "Arch": v.arch, "GitCommit": "",
               "GoVersion": f"python{v.python_version}", "KernelVersion": v.kernel_version,
               "MinAPIVersion": v.min_api_version, "Os": v.os, "BuildTime": "", "Experimental": "false"}
    return Reply.json({
        "Platform": {"Name": "minidocker"},
        "Components": [{"Name": "Engine", "Version": v.version, "Details": details},
                       {"Name": "minidocker-runtime", "Version": v.runtime_version,
                        "Details": {"GitCommit": ""}}],
        "Version": v.version, "ApiVersion": v.api_version, "MinAPIVersion": v.min_api_version,
        "GitCommit": "", "GoVersion": f"python{v.python_version}", "Os": v.os, "Arch": v.arch,
        "KernelVersion": v.kernel_version, "BuildTime": "",
    })


def system_info(request: Request) -> Reply:
    from minidocker.engine.system import system_info as info

    daemon = request.daemon
    i = info(daemon.roots, daemon.config, daemon.events.listeners)
    return Reply.json({
        "ID": i.id, "Containers": i.containers, "ContainersRunning": i.running, "ContainersPaused": i.paused,
        "ContainersStopped": i.stopped, "Images": i.images, "Driver": i.driver,
        "DriverStatus": [["Backing Filesystem", "overlay upper and work under the state root"]],
        "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "none"], "Authorization": None,
                    "Log": ["json-file", "none"]},
        "MemoryLimit": i.memory_limit, "SwapLimit": i.swap_limit, "KernelMemory": False,
        "KernelMemoryTCP": False,
        "CpuCfsPeriod": True, "CpuCfsQuota": True, "CPUShares": True, "CPUSet": False, "PidsLimit": True,
        "IPv4Forwarding": not any("IPv4 forwarding" in w for w in i.warnings),
        "BridgeNfIptables": False, "BridgeNfIp6tables": False, "Debug": i.debug, "NFd": i.fds,
        "OomKillDisable": False, "NGoroutines": i.threads, "SystemTime": rfc3339(i.system_time),
        "LoggingDriver": i.logging_driver, "CgroupDriver": i.cgroup_driver, "CgroupVersion": i.cgroup_version,
        "NEventsListener": i.event_listeners, "KernelVersion": i.kernel_version,
        "OperatingSystem": i.operating_system, "OSVersion": i.os_version, "OSType": "linux",
        "Architecture": i.architecture, "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {
            "AllowNondistributableArtifactsCIDRs": [], "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": ["127.0.0.0/8"],
            "IndexConfigs": {
                "docker.io": {"Name": "docker.io", "Mirrors": i.registry_mirrors, "Secure": True,
                              "Official": True},
                **{r: {"Name": r, "Mirrors": [], "Secure": False, "Official": False}
                   for r in i.insecure_registries},
            },
            "Mirrors": i.registry_mirrors,
        },
        "NCPU": i.ncpu, "MemTotal": i.mem_total, "GenericResources": None, "DockerRootDir": i.root_dir,
        "HttpProxy": "", "HttpsProxy": "", "NoProxy": "", "Name": i.name, "Labels": [],
        "ExperimentalBuild": False,
        "ServerVersion": i.server_version, "Runtimes": {"minidocker": {"path": "minidocker-runtime"}},
        "DefaultRuntime": "minidocker",
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": False,
                  "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": i.live_restore, "Isolation": "", "InitBinary": "",
        "ContainerdCommit": {"ID": "", "Expected": ""}, "RuncCommit": {"ID": "", "Expected": ""},
        "InitCommit": {"ID": "", "Expected": ""}, "SecurityOptions": ["name=seccomp,profile=default"],
        "Warnings": i.warnings,
    })


def event_json(event) -> dict:
    """An event as dockerd writes it: the old ``status/id/from`` for containers and images, then the
    new shape."""
    data = {}
    if event.type in ("container", "image"):
        data = {"status": event.action, "id": event.actor_id}
        if "image" in event.attributes:
            data["from"] = event.attributes["image"]
    data.update({"Type": event.type, "Action": event.action,
                 "Actor": {"ID": event.actor_id, "Attributes": event.attributes},
                 "scope": "local", "time": event.time_nano // 10**9, "timeNano": event.time_nano})
    return data


def _timestamp(request: Request, name: str) -> float | None:
    """``since``/``until``: Unix seconds with an optional fraction, as the CLI sends them."""
    text = request.arg(name)
    if not text:
        return None
    try:
        value = float(text)
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(text)   # nan, 1e309: not a time
        return value
    except ValueError:
        raise InvalidArgument(f"invalid value for {name}: {text!r} is not a Unix timestamp") from None


def system_events(request: Request) -> None:
    """Stream events as chunks until ``until`` passes or the client closes its side."""
    since, until = _timestamp(request, "since"), _timestamp(request, "until")
    filters = parse_filters(request.arg("filters"))
    with request.daemon.events.subscribe(since=since, until=until, filters=filters) as sub:
        out = request.stream(200, "application/json")
        for event in sub.events(timeout=0.5):
            if event is None:
                if request.client_gone():
                    return
                continue
            out.write(json.dumps(event_json(event), separators=(",", ":")).encode() + b"\n")
        out.close()


def system_data_usage(request: Request) -> Reply:
    """``docker system df [-v]``: the CLI adds up and prints what this lists (engine/usage.py)."""
    from minidocker.api.containers import container_summary_json
    from minidocker.engine.usage import disk_usage

    usage = disk_usage(request.daemon.roots)
    containers = [{**container_summary_json(c), "SizeRw": size_rw, "SizeRootFs": size_root_fs}
                  for c, size_rw, size_root_fs in usage.containers]
    volumes = [{**v.inspect(), "UsageData": {"Size": size, "RefCount": refs}}
               for v, size, refs in usage.volumes]
    return Reply.json({"LayersSize": usage.layers_size, "Images": usage.images, "Containers": containers,
                       "Volumes": volumes, "BuildCache": None, "BuilderSize": 0})


ROUTES = [
    ("HEAD", "/_ping", system_ping),
    ("GET", "/_ping", system_ping),
    ("GET", "/version", system_version),
    ("GET", "/info", system_info),
    ("GET", "/events", system_events),
    ("GET", "/system/df", system_data_usage),
]
