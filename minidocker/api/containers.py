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
    GET    /containers/{id}/logs          ContainerLogs          chunked frames (raw with a tty)
    DELETE /containers/{id}               ContainerDelete        204, 409 if running and not forced
    POST   /containers/prune              ContainerPrune

See: the Docker Engine API reference, "Container".
"""

from __future__ import annotations

import json
import struct
import time

from minidocker.api.errors import NotModified
from minidocker.api.filters import parse_filters
from minidocker.api.server import Reply, Request
from minidocker.engine.containers import NotModifiedError, parse_signal
from minidocker.errors import InvalidArgument

__all__ = ["ROUTES", "container_inspect_json", "container_summary_json"]

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


def _status_text(c) -> str:
    now = time.time_ns()
    if c.status == "running":
        return f"Up {_ago((now - (c.started_at or now)) / 1e9)}"
    if c.status == "exited":
        return f"Exited ({c.exit_code or 0}) {_ago((now - (c.finished_at or now)) / 1e9)} ago"
    if c.status == "restarting":
        return f"Restarting ({c.exit_code or 0}) {_ago((now - (c.finished_at or now)) / 1e9)} ago"
    return {"created": "Created", "removing": "Removal In Progress"}.get(c.status, c.status)


def container_summary_json(c) -> dict:
    config, host = c.config or {}, c.host_config or {}
    return {"Id": c.id, "Names": [f"/{c.name}"], "Image": config.get("Image", c.image),
            "ImageID": c.image_id or "", "Command": " ".join(c.command), "Created": int(c.created),
            "Ports": [], "Labels": config.get("Labels") or {}, "State": c.status, "Status": _status_text(c),
            "HostConfig": {"NetworkMode": host.get("NetworkMode") or "default"},
            "NetworkSettings": {"Networks": {}}, "Mounts": []}


def container_inspect_json(c, log_path: str | None) -> dict:
    config, host = dict(c.config or {}), dict(c.host_config or {})
    running = c.status == "running"
    args = list(c.command)
    return {
        "Id": c.id, "Created": _rfc3339(int(c.created * 1e9)), "Path": args[0] if args else "", "Args": args[1:],
        "State": {"Status": c.status, "Running": running, "Paused": False, "Restarting": c.status == "restarting",
                  "OOMKilled": bool(c.oom_killed), "Dead": False, "Pid": c.pid or 0 if running else 0,
                  "ExitCode": c.exit_code or 0, "Error": c.error or "", "StartedAt": _rfc3339(c.started_at),
                  "FinishedAt": _rfc3339(c.finished_at)},
        "Image": c.image_id or "", "ResolvConfPath": "", "HostnamePath": "", "HostsPath": "",
        "LogPath": log_path or "", "Name": f"/{c.name}", "RestartCount": c.restart_count or 0, "Driver": "overlay",
        "Platform": "linux", "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "", "ExecIDs": None,
        "HostConfig": {"Binds": None, "NetworkMode": "default", "PortBindings": {}, "AutoRemove": False,
                       "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0},
                       **host, "LogConfig": host.get("LogConfig") or {"Type": "json-file", "Config": {}}},
        "Mounts": [],
        "Config": {"Hostname": config.get("Hostname", c.id[:12]), "Domainname": "", "User": config.get("User") or "",
                   "AttachStdin": bool(config.get("AttachStdin")), "AttachStdout": bool(config.get("AttachStdout")),
                   "AttachStderr": bool(config.get("AttachStderr")), "Tty": bool(config.get("Tty")),
                   "OpenStdin": bool(config.get("OpenStdin")), "StdinOnce": bool(config.get("StdinOnce")),
                   "Env": config.get("Env") or [], "Cmd": config.get("Cmd"), "Image": config.get("Image", c.image),
                   "Volumes": config.get("Volumes"), "WorkingDir": config.get("WorkingDir") or "",
                   "Entrypoint": config.get("Entrypoint"), "OnBuild": None, "Labels": config.get("Labels") or {},
                   **({"StopSignal": config["StopSignal"]} if config.get("StopSignal") else {})},
        "NetworkSettings": {"Bridge": "", "SandboxID": "", "HairpinMode": False, "Ports": {}, "SandboxKey": "",
                            "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": "", "Networks": {}},
    }


# Container records parsed once, for listings: id -> ((inode, mtime, size) of its record, Container).
# A record is replaced by rename (atomic.write_json), so a changed record has a new inode.
_LISTED: dict[str, tuple[tuple[int, int, int], object]] = {}


def _listed(request: Request, all: bool) -> list:
    """``service.list(all)``, without parsing again the records that did not change since the last listing.

    ``docker ps`` with 100 containers parsed 100 records of ~18 KB (about 9 ms of the 10 ms
    the answer took). Only supervised containers (the daemon's) are kept: their state
    changes only through their record; a direct-mode container's must be checked against
    /proc on each read (Container.refresh), so it is loaded every time.
    """
    import os

    from minidocker.engine.container import Container
    from minidocker.errors import NotFound

    roots = request.daemon.roots
    try:
        entries = list(os.scandir(roots.containers))
    except FileNotFoundError:
        return []
    found, seen = [], set()
    for entry in entries:
        if entry.name.startswith("."):
            continue  # being deleted
        try:
            st = os.stat(os.path.join(entry.path, Container.FILE))
        except (FileNotFoundError, NotADirectoryError):
            continue
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        cached = _LISTED.get(entry.name)
        if cached is not None and cached[0] == key:
            container = cached[1]
        else:
            try:
                container = Container.load(roots, entry.name)
            except (FileNotFoundError, NotFound):
                continue
            if container.supervised:
                _LISTED[entry.name] = (key, container)
        seen.add(entry.name)
        if all or container.status == "running":
            found.append(container)
    for gone in set(_LISTED) - seen:
        _LISTED.pop(gone, None)
    return sorted(found, key=lambda c: c.created, reverse=True)


def container_list(request: Request) -> Reply:
    filters = parse_filters(request.arg("filters"))
    limit_text = request.arg("limit")
    try:
        limit = int(limit_text) if limit_text not in (None, "") else -1
    except ValueError:
        raise InvalidArgument(f"invalid limit {limit_text!r}: not a number") from None
    found = _listed(request, all=request.flag("all") or limit > 0)
    rows = []
    for c in found:
        if "status" in filters and c.status not in filters["status"]:
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
        rows.append(container_summary_json(c))
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
    return Reply.json(container_inspect_json(c, service.log_path(c)))


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
    out = request.stream(200, "application/json")
    code = service.wait(container.id, condition, container=container)
    try:
        out.write(json.dumps({"Error": None, "StatusCode": code}).encode() + b"\n")
        out.close()
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
    streams = tuple(s for s, on in (("stdout", request.flag("stdout")), ("stderr", request.flag("stderr"))) if on)
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
    batch = bytearray()   # frames gathered into ~256 KiB chunks: one write per entry was 1M syscalls per 100 MB
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
            running = service.exists(container.id) and service.get(container.id).status in ("running", "created")
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
    _service(request).remove(request.params["id"], force=request.flag("force"))
    return Reply.empty(204)


def container_prune(request: Request) -> Reply:
    gone = _service(request).prune()
    return Reply.json({"ContainersDeleted": [c.id for c in gone] or None, "SpaceReclaimed": 0})


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
]
