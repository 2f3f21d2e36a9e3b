"""Exec endpoints: ``docker exec``. Handlers named after the Engine API's operation ids.

::

    POST /containers/{id}/exec     ContainerExec   201 {"Id"}; 409 if the container is not running
    POST /exec/{id}/start          ExecStart       101 + the stream (8-byte frames), or 200 when Detach
    POST /exec/{id}/resize         ExecResize      200
    GET  /exec/{id}/json           ExecInspect     {"ID","Running","ExitCode",...}

See: the Docker Engine API reference, "Exec".
"""

from __future__ import annotations

from minidocker.api.server import Reply, Request

__all__ = ["ROUTES"]


def container_exec(request: Request) -> Reply:
    ex = request.daemon.containers.exec_create(request.params["id"], request.json())
    return Reply.json({"Id": ex.id}, 201)


def exec_start(request: Request) -> Reply | None:
    service = request.daemon.containers
    body = request.json(required=False) or {}
    ex = service.exec_get(request.params["id"])
    if body.get("Detach"):
        service.exec_start(ex.id)
        return Reply(200, b"", "application/json")
    sock, early, head = request.hijack(send=False)
    service.exec_start(ex.id, sock.dup(), early, greeting=head)
    return None


def exec_resize(request: Request) -> Reply:
    from minidocker.errors import InvalidArgument

    try:
        height, width = int(request.arg("h") or 0), int(request.arg("w") or 0)
    except ValueError:
        raise InvalidArgument("invalid h or w: not a number") from None
    request.daemon.containers.exec_resize(request.params["id"], height, width)
    return Reply(200, b"", "text/plain; charset=utf-8")


def exec_inspect(request: Request) -> Reply:
    ex = request.daemon.containers.exec_get(request.params["id"])
    return Reply.json({
        "ID": ex.id, "Running": ex.running,
        "ExitCode": ex.exit_code,  # null until it has exited, as dockerd's
        "ProcessConfig": {"tty": ex.tty, "entrypoint": ex.cmd[0], "arguments": ex.cmd[1:],
                          "privileged": False,
                          **({"user": f"{ex.user['uid']}:{ex.user['gid']}"} if ex.user else {})},
        "OpenStdin": ex.stdin, "OpenStderr": True, "OpenStdout": True, "CanRemove": False,
        "ContainerID": ex.container_id, "DetachKeys": "", "Pid": ex.pid or 0})


ROUTES = [
    ("POST", "/containers/{id}/exec", container_exec),
    ("POST", "/exec/{id}/start", exec_start),
    ("POST", "/exec/{id}/resize", exec_resize),
    ("GET", "/exec/{id}/json", exec_inspect),
]
