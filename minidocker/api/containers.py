"""Container endpoints. Handlers named after the Engine API's operation ids; the engine does the work.

::

    GET    /containers/json               ContainerList
    POST   /containers/create             ContainerCreate        201 {"Id","Warnings"}
    GET    /containers/{id}/json          ContainerInspect
    POST   /containers/{id}/start         ContainerStart         204, 304 if running
    POST   /containers/{id}/stop          ContainerStop          204, 304 if not running
    POST   /containers/{id}/restart       ContainerRestart       204
    POST   /containers/{id}/kill          ContainerKill          204, 409 if not running
    POST   /containers/{id}/wait          ContainerWait          200 headers at once, the body at the exit
    POST   /containers/{id}/attach        ContainerAttach        101, then the raw stream
    POST   /containers/{id}/resize        ContainerResize
    POST   /containers/{id}/pause         ContainerPause         204; 409 if not running or paused
    POST   /containers/{id}/unpause       ContainerUnpause       204; 409 if not paused
    POST   /containers/{id}/rename        ContainerRename        204; 409 if the name is taken
    GET    /containers/{id}/top           ContainerTop           {"Titles","Processes"}; 409 if not running
    GET    /containers/{id}/stats         ContainerStats         one document, or one a second (stream)
    GET    /containers/{id}/logs          ContainerLogs          chunked frames (raw with a tty)
    DELETE /containers/{id}               ContainerDelete        204, 409 if running and not forced
    POST   /containers/prune              ContainerPrune

See: the Docker Engine API reference, "Container".
"""

from __future__ import annotations

import json
import re
import struct
import time

from minidocker.api.errors import NotModified
from minidocker.api.filters import parse_filters
from minidocker.api.server import Reply, Request
from minidocker.engine.containers import NotModifiedError, network_aliases, parse_signal
from minidocker.errors import InvalidArgument

__all__ = ["ROUTES", "api_state", "container_inspect_json", "container_summary_json"]

_FRAME = struct.Struct(">BxxxI")


def _service(request: Request):
    return request.daemon.containers


def _rfc3339(ns: int | None) -> str:
    if not ns:
        return "0001-01-01T00:00:00Z"
    from minidocker.engine.logfile import rfc3339nano

    return rfc3339nano(ns)


def _ago(seconds: float) -> str:
    """Docker's humanized durations: 'Less than a second', '3 seconds', 'About a minute', '5 minutes' ..."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    return f"{hours // 24} days"


def api_state(c) -> str:
    """Docker's State.Status: the record's status, ``paused`` for a running one whose cgroup is frozen."""
    return "paused" if c.status == "running" and getattr(c, "paused", None) else c.status


def _status_text(c) -> str:
    now = time.time_ns()
    if c.status == "running":
        paused = " (Paused)" if api_state(c) == "paused" else ""
        return f"Up {_ago((now - (c.started_at or now)) / 1e9)}{paused}"
    if c.status == "exited":
        return f"Exited ({c.exit_code or 0}) {_ago((now - (c.finished_at or now)) / 1e9)} ago"
    if c.status == "restarting":
        return f"Restarting ({c.exit_code or 0}) {_ago((now - (c.finished_at or now)) / 1e9)} ago"
    return {"created": "Created", "removing": "Removal In Progress"}.get(c.status, c.status)


def container_summary_json(c, networks: dict | None = None, mounts: list | None = None) -> dict:
    """A row of ``GET /containers/json``; ``networks``: :func:`network_settings_json`'s;
    ``mounts``: inspect's."""
    config, host = c.config or {}, c.host_config or {}
    settings = networks or {"Ports": {}, "Networks": {}}
    return {"Id": c.id, "Names": [f"/{c.name}"], "Image": config.get("Image", c.image),
            "ImageID": c.image_id or "", "Command": " ".join(c.command), "Created": int(c.created),
            "Ports": _port_list(settings["Ports"]), "Labels": config.get("Labels") or {},
            "State": api_state(c), "Status": _status_text(c),
            "HostConfig": {"NetworkMode": host.get("NetworkMode") or "default"},
            "NetworkSettings": {"Networks": settings["Networks"]},
            "Mounts": [{k: m[k] for k in ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW",
                                          "Propagation") if k in m} for m in mounts or []]}


def _port_list(ports: dict) -> list[dict]:
    """NetworkSettings.Ports as ps's rows: {"IP","PrivatePort","PublicPort","Type"} ({"PrivatePort","Type"}
    for an exposed port that is not published)."""
    rows = []
    for key, bindings in ports.items():
        port, _, proto = key.partition("/")
        if not bindings:
            rows.append({"PrivatePort": int(port), "Type": proto})
        for b in bindings or []:
            rows.append({"IP": b["HostIp"], "PrivatePort": int(port), "PublicPort": int(b["HostPort"]),
                         "Type": proto})
    return rows


def network_settings_json(c, endpoints: dict, names: list[str], exposed=()) -> dict:
    """Docker's NetworkSettings: ``Networks`` per network, the default bridge's address at the top too,
    ``Ports`` of a running container (published ones with their host address and port, exposed ones null).

    ``endpoints``: the live endpoints by network (engine/containers.py); ``names``: the networks it is on.
    """
    import hashlib

    running = c.status == "running"
    networks, ports, top = {}, {}, {}
    for name in names if not endpoints else list(endpoints):
        ep = endpoints.get(name) or {}
        user = name not in ("bridge", "host", "none")
        # dockerd 20.10: the aliases as created (or connected with), and its short ID once on a user network
        aliases = ep.get("aliases", []) if ep else _configured_aliases(c, name)
        aliases = [*aliases, c.id[:12]] if user and ep else aliases
        networks[name] = {
            "IPAMConfig": {"IPv4Address": ep["requested_ip"]} if ep.get("requested_ip") else None,
            "Links": None, "Aliases": aliases or None,
            "MacAddress": ep.get("mac", ""), "DriverOpts": None, "NetworkID": ep.get("network_id", ""),
            "EndpointID": hashlib.sha256(f"{c.id}/{name}".encode()).hexdigest() if ep else "",
            "Gateway": ep.get("gateway", ""), "IPAddress": ep.get("ip", ""),
            "IPPrefixLen": ep.get("prefixlen", 0), "IPv6Gateway": "", "GlobalIPv6Address": "",
            "GlobalIPv6PrefixLen": 0,
            "DNSNames": [c.name, c.id[:12]] if user and ep else None}
        if name == "bridge" and ep:
            top = {"Gateway": ep["gateway"], "IPAddress": ep["ip"], "IPPrefixLen": ep["prefixlen"],
                   "MacAddress": ep.get("mac", ""), "EndpointID": networks[name]["EndpointID"]}
        for p in ep.get("ports") or []:
            ports.setdefault(f"{p['container_port']}/{p['proto']}", []).append(
                {"HostIp": p["host_ip"] or "0.0.0.0", "HostPort": str(p["host_port"])})
    if running and endpoints:
        for key in exposed:
            ports.setdefault(key if "/" in key else f"{key}/tcp", None)
    return {"Bridge": "", "SandboxID": hashlib.sha256(c.id.encode()).hexdigest() if running else "",
            "SandboxKey": f"/proc/{c.pid}/ns/net" if running and c.pid else "", "Ports": ports,
            "HairpinMode": False, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "EndpointID": top.get("EndpointID", ""), "Gateway": top.get("Gateway", ""),
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "IPAddress": top.get("IPAddress", ""),
            "IPPrefixLen": top.get("IPPrefixLen", 0), "IPv6Gateway": "",
            "MacAddress": top.get("MacAddress", ""), "Networks": networks}


def _configured_aliases(c, network: str) -> list[str]:
    """The ``--network-alias`` values of a container that is not on its network now (created, exited)."""
    try:
        return network_aliases(c.config or {}, network)
    except InvalidArgument:
        return []


def container_inspect_json(c, log_path: str | None, networks: dict | None = None,
                           mounts: list | None = None) -> dict:
    config, host = dict(c.config or {}), dict(c.host_config or {})
    running = c.status == "running"
    args = list(c.command)
    return {
        "Id": c.id, "Created": _rfc3339(int(c.created * 1e9)), "Path": args[0] if args else "",
        "Args": args[1:],
        "State": {"Status": api_state(c), "Running": running, "Paused": api_state(c) == "paused",
                  "Restarting": c.status == "restarting",
                  "OOMKilled": bool(c.oom_killed), "Dead": False, "Pid": c.pid or 0 if running else 0,
                  "ExitCode": c.exit_code or 0, "Error": c.error or "", "StartedAt": _rfc3339(c.started_at),
                  "FinishedAt": _rfc3339(c.finished_at)},
        "Image": c.image_id or "", "ResolvConfPath": "", "HostnamePath": "", "HostsPath": "",
        "LogPath": log_path or "", "Name": f"/{c.name}", "RestartCount": c.restart_count or 0,
        "Driver": "overlay", "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
        "ExecIDs": None,
        "HostConfig": {"Binds": None, "NetworkMode": "default", "PortBindings": {}, "AutoRemove": False,
                       "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
                       **host, "LogConfig": host.get("LogConfig") or {"Type": "json-file", "Config": {}}},
        "Mounts": list(mounts or []),
        "Config": {"Hostname": config.get("Hostname", c.id[:12]), "Domainname": "",
                   "User": config.get("User") or "", "AttachStdin": bool(config.get("AttachStdin")),
                   "AttachStdout": bool(config.get("AttachStdout")),
                   "AttachStderr": bool(config.get("AttachStderr")), "Tty": bool(config.get("Tty")),
                   "OpenStdin": bool(config.get("OpenStdin")), "StdinOnce": bool(config.get("StdinOnce")),
                   "Env": config.get("Env") or [], "Cmd": config.get("Cmd"),
                   "Image": config.get("Image", c.image), "Volumes": config.get("Volumes"),
                   "WorkingDir": config.get("WorkingDir") or "",
                   "Entrypoint": config.get("Entrypoint"), "OnBuild": None,
                   "Labels": config.get("Labels") or {},
                   **({"ExposedPorts": config["ExposedPorts"]} if config.get("ExposedPorts") else {}),
                   **({"StopSignal": config["StopSignal"]} if config.get("StopSignal") else {}),
                   **({"MacAddress": config["MacAddress"]} if config.get("MacAddress") else {})},
        "NetworkSettings": networks or network_settings_json(c, {}, []),
    }


def container_list(request: Request) -> Reply:
    filters = parse_filters(request.arg("filters"))
    limit_text = request.arg("limit")
    try:
        limit = int(limit_text) if limit_text not in (None, "") else -1
    except ValueError:
        raise InvalidArgument(f"invalid limit {limit_text!r}: not a number") from None
    service = _service(request)
    found = service.list(all=request.flag("all") or limit > 0)
    records = None   # the networks' records, read once, if a row needs them
    rows = []
    for c in found:
        if "status" in filters and api_state(c) not in filters["status"]:
            continue
        if "name" in filters and not any(n in c.name for n in filters["name"]):
            continue
        if "id" in filters and not any(c.id.startswith(i) for i in filters["id"]):
            continue
        if "label" in filters:
            labels = (c.config or {}).get("Labels") or {}
            if not all(k in labels and (not v or labels[k] == v[0]) for k, _, *v in
                       (f.partition("=")[::2] for f in filters["label"])):
                continue
        if records is None and c.status == "running":
            records = service.network_records()
        rows.append(container_summary_json(c, _networks(service, c, records), service.mounts(c)))
    if limit > 0:
        rows = rows[:limit]
    return Reply.json(rows)


def container_create(request: Request) -> Reply:
    body = request.json()
    container = _service(request).create(body, request.arg("name"))
    return Reply.json({"Id": container.id, "Warnings": getattr(container, "warnings", [])}, 201)


def container_inspect(request: Request) -> Reply:
    service = _service(request)
    c = service.get(request.params["id"])
    return Reply.json(container_inspect_json(c, service.log_path(c), _networks(service, c),
                                             service.mounts(c)))


def _networks(service, c, records: list | None = None) -> dict:
    """The container's NetworkSettings from the engine's live endpoints (``records``: the
    networks' records)."""
    config = c.config or {}
    exposed = set(config.get("ExposedPorts") or {}) | set(((c.host_config or {}).get("PortBindings") or {}))
    return network_settings_json(c, service.endpoints(c, records), service.network_names(c), sorted(exposed))


def container_start(request: Request) -> Reply:
    try:
        _service(request).start(request.params["id"])
    except NotModifiedError:
        raise NotModified() from None
    return Reply.empty(204)


def _timeout(request: Request) -> int | None:
    text = request.arg("t")
    if text in (None, ""):
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidArgument(f"invalid value for t: {text!r} is not a number of seconds") from None


def container_stop(request: Request) -> Reply:
    try:
        _service(request).stop(request.params["id"], _timeout(request))
    except NotModifiedError:
        raise NotModified() from None
    return Reply.empty(204)


def container_restart(request: Request) -> Reply:
    service = _service(request)
    try:
        service.stop(request.params["id"], _timeout(request))
    except NotModifiedError:
        pass
    service.start(request.params["id"])
    return Reply.empty(204)


def container_kill(request: Request) -> Reply:
    sig = parse_signal(request.arg("signal"))
    _service(request).kill(request.params["id"], sig)
    return Reply.empty(204)


def container_wait(request: Request) -> None:
    """Headers at once (docker run sends start only after them), the status line at the event."""
    service = _service(request)
    condition = request.arg("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise InvalidArgument(f"invalid condition: {condition!r}")
    container = service.get(request.params["id"])  # 404 before the 200
    # Counted before the head goes out: a client may send start the moment it has the head, and
    # an exit between the two would otherwise be missed by next-exit (and the wait never end).
    seen = service.exit_count(container.id)
    out = request.stream(200, "application/json")
    code = service.wait(container.id, condition, container=container, cancelled=request.client_gone,
                        seen=seen)
    if code is None:
        return  # the client left (docker run -d): nobody to answer
    try:
        out.close(last=json.dumps({"Error": None, "StatusCode": code}).encode() + b"\n")
    except OSError:
        pass  # docker run -d drops the wait connection


def container_attach(request: Request) -> None:
    service = _service(request)
    container = service.get(request.params["id"])
    if not (request.flag("stream") or request.flag("logs")):
        raise InvalidArgument("you must choose at least one stream")
    sock, early, head = request.hijack(send=False)  # the 101 goes once the attach is registered
    stdin = request.flag("stdin")
    service.attach(container.id, sock.dup(), stdin, request.flag("stdout"), request.flag("stderr"),
                   early if stdin else b"", greeting=head)


def container_resize(request: Request) -> Reply:
    try:
        height, width = int(request.arg("h") or 0), int(request.arg("w") or 0)
    except ValueError:
        raise InvalidArgument("invalid h or w: not a number") from None
    _service(request).resize(request.params["id"], height, width)
    return Reply(200, b"", "text/plain; charset=utf-8")


def _since(text: str | None) -> int:
    if not text:
        return 0
    try:
        return int(float(text) * 1e9)   # inf (1e309) overflows, nan is a ValueError: both the client's
    except (ValueError, OverflowError):
        raise InvalidArgument(f"invalid value for since: {text!r}") from None


def container_logs(request: Request) -> None:
    """The json-file log as frames (raw with a tty); ``follow`` until the container stops."""
    from minidocker.engine.logfile import LogScan

    service = _service(request)
    container = service.get(request.params["id"])
    streams = tuple(s for s, on in (("stdout", request.flag("stdout")), ("stderr", request.flag("stderr")))
                    if on)
    if not streams:
        raise InvalidArgument("You must choose at least one stream")
    path = service.log_path(container)
    if path is None:
        raise InvalidArgument('configured logging driver does not support reading')
    tail_text = request.arg("tail") or "all"
    try:
        tail = None if tail_text == "all" else max(int(tail_text), 0)
    except ValueError:
        tail = None  # dockerd reads a bad tail as "all"
    since = _since(request.arg("since"))
    until_text = request.arg("until")
    until = _since(until_text) if until_text else None
    timestamps = request.flag("timestamps")
    tty = bool((container.config or {}).get("Tty"))
    out = request.stream(200, None)

    def send(entry) -> None:
        data = (entry.time.encode() + b" " if timestamps else b"") + entry.data
        out.write(data if tty else _FRAME.pack(1 if entry.stream == "stdout" else 2, len(data)) + data)

    scan = LogScan(path, since, until, tail, streams)
    # frames gathered into ~256 KiB chunks: one write per entry was 1M syscalls per 100 MB
    batch = bytearray()
    for entry in scan:
        data = (entry.time.encode() + b" " if timestamps else b"") + entry.data
        if not tty:
            batch += _FRAME.pack(1 if entry.stream == "stdout" else 2, len(data))
        batch += data
        if len(batch) >= 1 << 18:
            out.write(bytes(batch))
            batch.clear()
    if batch:
        out.write(bytes(batch))
    position, inode = scan.position, scan.inode
    if request.flag("follow") and container.status in ("running", "created"):
        _follow(request, service, container, path, streams, send, position, inode)
    out.close()


def _follow(request, service, container, path, streams, send, position: int, inode: int | None) -> None:
    """Read on from ``position`` as the log grows, until the container stops or the client leaves.

    The file stays open: a container removed meanwhile (docker-py's ``run`` removes it
    before it reads the stream) still has its last lines sent; a rotation is followed by
    opening the new file.
    """
    import os

    from minidocker.engine.logfile import _parse

    partial = b""
    f = open(path, "rb")
    try:
        if inode is not None and os.fstat(f.fileno()).st_ino != inode:
            position = 0  # rotated between the first read and now
        f.seek(position)
        while True:
            running = (service.exists(container.id)
                       and service.get(container.id).status in ("running", "created"))
            data = f.read()
            if not data:
                try:
                    rotated = os.stat(path).st_ino != os.fstat(f.fileno()).st_ino
                except FileNotFoundError:
                    rotated = False
                if rotated:
                    f.close()
                    f = open(path, "rb")
                    continue
                if not running:
                    return
                if request.client_gone(0.05):
                    return
                continue
            lines = (partial + data).split(b"\n")
            partial = lines.pop()
            for line in lines:
                entry = _parse(line)
                if entry is not None and entry.stream in streams:
                    send(entry)
    finally:
        f.close()


def container_delete(request: Request) -> Reply:
    _service(request).remove(request.params["id"], force=request.flag("force"), volumes=request.flag("v"))
    return Reply.empty(204)


def container_prune(request: Request) -> Reply:
    """``docker container prune``: every container that does not run, narrowed by ``until`` and ``label``."""
    filters = parse_filters(request.arg("filters"), allowed=("until", "label", "label!"))
    before = _prune_until(filters.get("until", []))

    def chosen(c) -> bool:
        labels = (c.config or {}).get("Labels") or {}
        return ((before is None or c.created < before)
                and all(_label_matches(labels, f) for f in filters.get("label", []))
                and not any(_label_matches(labels, f) for f in filters.get("label!", [])))

    gone = _service(request).prune(chosen)
    return Reply.json({"ContainersDeleted": [c.id for c in gone] or None, "SpaceReclaimed": 0})


def _label_matches(labels: dict, expression: str) -> bool:
    key, sep, value = expression.partition("=")
    return key in labels and (not sep or labels[key] == value)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}


def _prune_until(values: list[str]) -> float | None:
    """``until``: a Go duration ago (``24h``, ``1h30m``) or a Unix timestamp; the Unix time it names."""
    if not values:
        return None
    if len(values) > 1:
        raise InvalidArgument("more than one until filter specified")
    text = values[0]
    if _DURATION.fullmatch(text) or re.fullmatch(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+", text):
        return time.time() - sum(float(n) * _UNIT[u] for n, u in _DURATION.findall(text))
    try:
        return float(text)
    except ValueError:
        raise InvalidArgument(f"failed to parse value {text!r} of until: "
                              "not a duration or a timestamp") from None


def container_pause(request: Request) -> Reply:
    _service(request).pause(request.params["id"])
    return Reply.empty(204)


def container_unpause(request: Request) -> Reply:
    _service(request).unpause(request.params["id"])
    return Reply.empty(204)


def container_rename(request: Request) -> Reply:
    _service(request).rename(request.params["id"], request.arg("name") or "")
    return Reply.empty(204)


def container_top(request: Request) -> Reply:
    return Reply.json(_service(request).top(request.params["id"], request.arg("ps_args")))


STATS_INTERVAL = 1.0  # seconds between two documents of a stream, as dockerd's collector
NO_STREAM_INTERVAL = 0.5  # stream=0: the two readings docker stats --no-stream computes CPU % from


def container_stats(request: Request) -> None:
    """``docker stats``: cgroup figures shaped like dockerd's (engine/stats.api_stats).

    ``stream`` (the default, as dockerd's) sends one document a second until the container
    stops or the client leaves, each with the previous as ``precpu_stats``; ``stream=0``
    reads twice, NO_STREAM_INTERVAL apart, so that its one document has a CPU delta
    (``one-shot=1``: a single reading). A container that does not run gets zeros.
    """
    from minidocker.engine.stats import api_stats, container_cgroup, zero_stats

    service = _service(request)
    container = service.get(request.params["id"])
    stream = request.flag("stream", default=True)
    if container.status != "running":
        out = request.stream(200, "application/json")
        out.write(json.dumps(zero_stats(container.name, container.id)).encode() + b"\n")
        out.close()
        return
    group = container_cgroup(container, service.roots)
    previous = None
    if not stream and not request.flag("one-shot"):
        previous = api_stats(group, container.name, container.id)
        time.sleep(NO_STREAM_INTERVAL)
    out = request.stream(200, "application/json")
    try:
        while True:
            doc = api_stats(group, container.name, container.id, previous)
            out.write(json.dumps(doc).encode() + b"\n")
            if not stream or request.client_gone(STATS_INTERVAL):
                break
            if not service.exists(container.id) or service.get(container.id).status != "running":
                break
            previous = doc
        out.close()
    except OSError:
        pass  # the client left mid-stream


ROUTES = [
    ("GET", "/containers/json", container_list),
    ("POST", "/containers/create", container_create),
    ("POST", "/containers/prune", container_prune),
    ("GET", "/containers/{id}/json", container_inspect),
    ("POST", "/containers/{id}/start", container_start),
    ("POST", "/containers/{id}/stop", container_stop),
    ("POST", "/containers/{id}/restart", container_restart),
    ("POST", "/containers/{id}/kill", container_kill),
    ("POST", "/containers/{id}/wait", container_wait),
    ("POST", "/containers/{id}/attach", container_attach),
    ("POST", "/containers/{id}/resize", container_resize),
    ("GET", "/containers/{id}/logs", container_logs),
    ("DELETE", "/containers/{id}", container_delete),
    ("POST", "/containers/{id}/pause", container_pause),
    ("POST", "/containers/{id}/unpause", container_unpause),
    ("POST", "/containers/{id}/rename", container_rename),
    ("GET", "/containers/{id}/top", container_top),
    ("GET", "/containers/{id}/stats", container_stats),
]
