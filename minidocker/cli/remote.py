"""The minidocker CLI as minidockerd's client: the Engine API over its unix socket. Chapter 13.

When a daemon answers (``-H unix://PATH``, ``MINIDOCKER_HOST``, or the default socket
under the state roots), ``run``, ``ps``, ``rm``, ``logs``, ``start``, ``stop``,
``restart``, ``kill``, ``wait``, ``pause``, ``unpause``, ``rename``, ``top``, ``port`` and
``stats --no-stream`` go through it, with the same requests the docker CLI sends (create,
attach, wait, start for ``run``) and its output formats; without one, ``run``, ``ps``, ``rm``
and ``stats`` work directly as in the earlier chapters and the others say how to start the daemon.
The client is a small HTTP/1.1 client on a unix socket (``_Response``), plus the hijacked
attach stream read as 8-byte frames (or raw bytes with a tty).
See: the Docker Engine API reference, "Attach to a container" (stream format).
"""

from __future__ import annotations

import os
import sys

# Direct mode asks daemon_client() on every run, ps and rm: this module imports nothing more
# until a daemon answers (http.client alone costs milliseconds of start-up; bench/startup.py).
# Sockets are _socket's, the C half of `socket` (the same objects without the wrapper class):
# `import socket` imports enum, selectors and collections, 3-5 ms of every command through the
# daemon; JSON goes through atomic.loads/dumps (_json, no `re`) for the same reason.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from minidocker.cli.flags import Values

__all__ = ["Client", "daemon_client", "needs_daemon"]

API = "/v1.41"


def _socket_path() -> tuple[str, bool]:
    """(path, explicit): from MINIDOCKER_HOST (set by -H too), else the default under the state roots."""
    host = os.environ.get("MINIDOCKER_HOST")
    if host:
        return (host[len("unix://"):] if host.startswith("unix://") else host), True
    from minidocker.paths import run_root

    return os.path.join(run_root(), "minidocker.sock"), False


def _connect(path: str):
    """A connected unix stream socket (a ``_socket.socket``: connect, sendall, recv, shutdown, close)."""
    import _socket

    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def daemon_client() -> Client | None:
    """A client if a daemon answers; None without one (direct mode). An explicit host must answer."""
    path, explicit = _socket_path()
    if not explicit and not os.path.exists(path):
        return None
    try:
        probe = _connect(path)
    except OSError:
        if explicit:
            from minidocker.errors import MinidockerError

            raise MinidockerError(f"Cannot connect to the minidocker daemon at unix://{path}. "
                                  "Is minidockerd running?",
                                  hint="start it with: minidocker daemon start") from None
        return None
    return Client(path, probe)


def needs_daemon(command: str) -> Client:
    client = daemon_client()
    if client is None:
        from minidocker.errors import MinidockerError

        raise MinidockerError(f"{command} needs minidockerd, and no daemon answers",
                              hint="start it with: minidocker daemon start")
    return client


def _quote(text: object) -> str:
    """Percent-encoding of a query value (RFC 3986 unreserved kept), without urllib's import cost."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-._~")
                   else "".join(f"%{b:02X}" for b in c.encode()) for c in str(text))


def _target(path: str, query: dict | None) -> str:
    pairs = [f"{_quote(k)}={_quote(v)}" for k, v in (query or {}).items() if v is not None]
    return API + path + ("?" + "&".join(pairs) if pairs else "")


class _Response:
    """An HTTP/1.1 answer read off the daemon's socket: status, headers, body (length, chunked or to EOF).

    The client's requests need only this much of HTTP; ``http.client`` imports ``email``
    and ``ssl`` for the rest, about 25 ms of every command's start (bench/daemon.py).
    See: RFC 9112 §6 (message body length), §7.1 (chunked).
    """

    def __init__(self, sock, method: str) -> None:
        self.sock, self.buffer = sock, b""
        head = self._until(b"\r\n\r\n")
        if head is None:
            raise ConnectionError("the daemon closed the connection before answering")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip()
                        for k, _, v in (line.partition(":") for line in lines[1:])}
        self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        self.left = int(length) if length is not None and not self.chunked else None
        self.done = method == "HEAD" or self.status in (204, 304) or self.left == 0
        # Read to its end, a response with a length or chunks leaves the connection open for the
        # next request (HTTP/1.1 persistence), unless the daemon said "Connection: close".
        self.persistent = ((self.left is not None or self.chunked or self.done)
                           and self.headers.get("connection", "").lower() != "close")

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def _until(self, mark: bytes) -> bytes | None:
        while mark not in self.buffer:
            if not self._fill():
                return None
        line, self.buffer = self.buffer.split(mark, 1)
        return line

    def read1(self, size: int = 65536) -> bytes:
        """The next piece of the body as it arrives; b"" at its end."""
        if self.done:
            return b""
        if self.chunked:
            line = self._until(b"\r\n")
            chunk_size = int(line.split(b";")[0], 16) if line and line.strip() else 0
            if chunk_size == 0:
                self.done = True
                return b""
            while len(self.buffer) < chunk_size + 2:
                if not self._fill():
                    raise ConnectionError("the daemon closed the connection in the middle of a chunk")
            data, self.buffer = self.buffer[:chunk_size], self.buffer[chunk_size + 2:]
            return data
        if not self.buffer and not self._fill():
            self.done = True
            return b""
        data = self.buffer if self.left is None else self.buffer[:self.left]
        self.buffer = self.buffer[len(data):]
        if self.left is not None:
            self.left -= len(data)
            self.done = self.left <= 0
        return data

    def read(self, size: int | None = None) -> bytes:
        if size is not None:
            return self.read1(size)
        parts = []
        while True:
            data = self.read1()
            if not data:
                return b"".join(parts)
            parts.append(data)


class Client:
    """Requests to one daemon; an error status is raised as minidocker's error for it (404 NotFound ...)."""

    def __init__(self, path: str, connected=None) -> None:
        import time

        self.path = path
        self._connected = connected  # the connection daemon_client() opened to see that a daemon answers
        self._connected_at = time.monotonic()

    def _connection(self):
        """A new connection; the first request goes on the one already open (one connect fewer),
        unless it has waited so long that the daemon may have closed it (it waits 60 s for a head)."""
        import time

        conn, self._connected = self._connected, None
        if conn is not None and time.monotonic() - self._connected_at < 30:
            return conn
        if conn is not None:
            conn.close()
        return _connect(self.path)

    def open(self, method: str, path: str, query: dict | None = None, body: object = None):
        """Send one request on a new connection; (the socket, its _Response) once the head has come."""
        conn = self.send(method, path, query, body)
        return conn, self.answer(conn, method)

    def send(self, method: str, path: str, query: dict | None = None, body: object = None):
        """Send one request; the connection, for :meth:`answer` to read its head (now or later)."""
        from minidocker.atomic import dumps

        data = dumps(body).encode() if body is not None else b""
        conn = self._connection()
        try:
            conn.sendall(f"{method} {_target(path, query)} HTTP/1.1\r\nHost: minidocker\r\n"
                         f"Content-Length: {len(data)}\r\n".encode()
                         + (b"Content-Type: application/json\r\n" if data else b"") + b"\r\n" + data)
        except BaseException:
            conn.close()
            raise
        return conn

    @staticmethod
    def answer(conn, method: str) -> _Response:
        """The head of the answer on ``conn``; an error status is raised (the connection closed)."""
        try:
            response = _Response(conn, method)
        except BaseException:
            conn.close()
            raise
        if response.status >= 400:
            text = response.read()
            conn.close()
            raise _error(response.status, text)
        return response

    def call(self, method: str, path: str, query: dict | None = None,
             body: object = None) -> tuple[int, object]:
        from minidocker.atomic import loads

        conn, response = self.open(method, path, query, body)
        try:
            data = response.read()
        except BaseException:
            conn.close()
            raise
        if response.persistent and not response.buffer:
            self._keep(conn)  # the next request goes on it: one connect, and one daemon thread, fewer
        else:
            conn.close()
        return response.status, (loads(data) if data.strip() else None)

    def _keep(self, conn) -> None:
        import time

        if self._connected is not None:
            self._connected.close()
        self._connected, self._connected_at = conn, time.monotonic()

    def send_hijack(self, path: str, query: dict):
        """POST with ``Upgrade: tcp``, sent; after :meth:`upgraded` the socket is a raw stream both ways."""
        sock = self._connection()
        try:
            sock.sendall(f"POST {_target(path, query)} HTTP/1.1\r\nHost: minidocker\r\n"
                         "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n".encode())
        except BaseException:
            sock.close()
            raise
        return sock

    @staticmethod
    def upgraded(sock) -> None:
        """Read the 101 (or 200) of a hijack; an error status is raised (the socket closed)."""
        try:
            head = _read_head(sock)
            if not head.startswith((b"HTTP/1.1 101", b"HTTP/1.1 200")):
                body = head.split(b"\r\n\r\n", 1)[1]
                raise _error(int(head.split()[1]), body)
        except BaseException:
            sock.close()
            raise


def _read_head(sock) -> bytes:
    """A response head and not a byte more: what follows the head is the container's stream.

    What has arrived is peeked (MSG_PEEK leaves it queued) and only the head is taken: a few
    system calls, where reading byte by byte took one per byte (about 240). See recv(2).
    """
    import _socket

    head = b""
    while True:
        data = sock.recv(65536, _socket.MSG_PEEK)  # blocks only while nothing is queued
        if not data:
            raise ConnectionError("the daemon closed the attach connection")
        end = (head + data).find(b"\r\n\r\n")
        take = end + 4 - len(head) if end >= 0 else len(data)
        while take > 0:  # queued already: these reads do not wait
            chunk = sock.recv(take)
            head, take = head + chunk, take - len(chunk)
        if end >= 0:
            return head


def _error(status: int, body: bytes):
    from minidocker.atomic import loads
    from minidocker.errors import Conflict, InvalidArgument, MinidockerError, NotFound

    try:
        message = loads(body)["message"]
    except (ValueError, KeyError, TypeError):
        message = body.decode(errors="replace").strip() or f"status {status}"
    cls = {404: NotFound, 409: Conflict, 400: InvalidArgument}.get(status, MinidockerError)
    err = cls(message)
    if "executable file not found" in message or "no such file or directory" in message:
        err.exit_code = 127
    elif "permission denied" in message:
        err.exit_code = 126
    return err


# -- the commands -----------------------------------------------------------------------------------

def _create_body(args: Values) -> dict:
    host: dict = {"AutoRemove": bool(args.remove), "NetworkMode": args.network or "default",
                  "Init": bool(args.init), "ReadonlyRootfs": bool(args.read_only)}
    if args.memory or args.memory_swap:  # imported only when needed: cgroups, like the engine, is not light
        from minidocker.cgroups.units import parse_size
    if args.memory:
        host["Memory"] = parse_size(args.memory)
    if args.memory_swap:
        host["MemorySwap"] = -1 if str(args.memory_swap) == "-1" else parse_size(args.memory_swap)
    if args.cpus:
        host["NanoCpus"] = int(float(args.cpus) * 1e9)
    for key, value in (("CpuShares", args.cpu_shares), ("CpuPeriod", args.cpu_period),
                       ("CpuQuota", args.cpu_quota)):
        if value:
            host[key] = int(value)
    if args.pids_limit:
        host["PidsLimit"] = int(args.pids_limit)
    if getattr(args, "log_driver", None) or getattr(args, "log_opt", None):
        opts = dict(item.partition("=")[::2] for item in (args.log_opt or []))
        host["LogConfig"] = {"Type": args.log_driver or "json-file", "Config": opts}
    if getattr(args, "restart", None):
        name, _, count = args.restart.partition(":")
        host["RestartPolicy"] = {"Name": name, "MaximumRetryCount": int(count) if count.isdigit() else 0}
    config: dict = {}
    if getattr(args, "mac_address", None):
        config["MacAddress"] = args.mac_address
    if getattr(args, "network_alias", None):   # the docker CLI's key: the --network value, else "default"
        config["NetworkingConfig"] = {"EndpointsConfig": {args.network or "default":
                                                          {"Aliases": list(args.network_alias)}}}
    _network_and_mount_flags(args, config, host)
    attach = not args.detach
    return {**config, "Image": args.image, "Cmd": args.command or None,
            "Entrypoint": [args.entrypoint] if args.entrypoint is not None else None,
            "Env": _parse_env(args.env), "WorkingDir": args.workdir or "", "User": args.user or "",
            "Hostname": args.hostname or "", "Tty": bool(args.tty), "OpenStdin": bool(args.interactive),
            "StdinOnce": bool(args.interactive), "AttachStdin": bool(args.interactive) and attach,
            "AttachStdout": attach, "AttachStderr": attach, "HostConfig": host}


def _network_and_mount_flags(args: Values, config: dict, host: dict) -> None:
    """-p/-P/--expose, -v/--mount/--tmpfs/--volumes-from as the docker CLI sends them (checked here,
    as it does: a bad flag fails before any request)."""
    if not (args.publish or args.expose or args.publish_all or args.volumes or args.mounts or args.tmpfs
            or args.volumes_from):
        return   # the common run: no import of the parsers (start-up time, bench/startup.py)
    from minidocker.engine.volumes import parse_mount, parse_tmpfs, parse_volume
    from minidocker.network.ports import parse_expose, parse_publish

    exposed: dict = {}
    bindings: dict = {}
    for spec in args.publish or []:
        m = parse_publish(spec)
        key = f"{m.container_port}/{m.proto}"
        exposed[key] = {}
        bindings.setdefault(key, []).append({"HostIp": m.host_ip, "HostPort": str(m.host_port or "")})
    for spec in args.expose or []:
        port, proto = parse_expose(spec)
        exposed[f"{port}/{proto}"] = {}
    if exposed:
        config["ExposedPorts"] = exposed
    if bindings:
        host["PortBindings"] = bindings
    if args.publish_all:
        host["PublishAllPorts"] = True
    binds, volumes = [], {}
    for text in args.volumes or []:
        request = parse_volume(text)
        if request.type == "volume" and not request.source:
            volumes[request.target] = {}   # -v /path: an anonymous volume, in Config.Volumes as docker's CLI
        else:
            binds.append(text)
    if binds:
        host["Binds"] = binds
    if volumes:
        config["Volumes"] = volumes
    mounts = [_mount_json(parse_mount(text)) for text in args.mounts or []]
    if mounts:
        host["Mounts"] = mounts
    tmpfs = {}
    for text in args.tmpfs or []:
        parse_tmpfs(text)
        target, _, options = text.partition(":")
        tmpfs[target] = options
    if tmpfs:
        host["Tmpfs"] = tmpfs
    if args.volumes_from:
        host["VolumesFrom"] = list(args.volumes_from)


def _mount_json(r) -> dict:
    """A parsed ``--mount`` as the Engine API's Mount object (what the docker CLI sends)."""
    mount: dict = {"Type": r.type, **({"Source": r.source} if r.source else {}), "Target": r.target,
                   **({"ReadOnly": True} if r.readonly else {})}   # Go's omitempty, as the docker CLI
    if r.type == "bind" and (r.propagation or not r.recursive):
        mount["BindOptions"] = {**({"Propagation": r.propagation} if r.propagation else {}),
                                **({"NonRecursive": True} if not r.recursive else {})}
    if r.type == "volume" and (r.nocopy or r.labels or r.driver_options):
        mount["VolumeOptions"] = {**({"NoCopy": True} if r.nocopy else {}),
                                  **({"Labels": r.labels} if r.labels else {}),
                                  "DriverConfig": {"Options": r.driver_options} if r.driver_options else {}}
    if r.type == "tmpfs" and r.tmpfs_options:
        options = dict(o.partition("=")[::2] for o in r.tmpfs_options)
        mount["TmpfsOptions"] = {**({"SizeBytes": int(options["size"])} if "size" in options else {}),
                                 **({"Mode": int(options["mode"], 8)} if "mode" in options else {})}
    return mount


def _parse_env(items: list[str]) -> list[str]:
    """``-e`` as the engine reads it (engine/run.py: parse_env), imported (~20 ms) only when given."""
    if not items:
        return []
    from minidocker.engine.run import parse_env

    return parse_env(items)


def run(client: Client, args: Values) -> int:
    """``docker run``'s sequence: create, attach, wait (headers), start, stream, the wait's status."""
    import _socket

    from minidocker.atomic import loads

    _, created = client.call("POST", "/containers/create", {"name": args.name}, _create_body(args))
    cid = created["Id"]
    if args.detach:
        client.call("POST", f"/containers/{cid}/start")
        print(cid)
        return 0
    # attach and wait go out together, then both answers are read (one round trip for the two);
    # start only after both: the daemon has then registered the attacher and counted the exits.
    sock = client.send_hijack(f"/containers/{cid}/attach", {"stream": 1, "stdout": 1, "stderr": 1,
                                                            **({"stdin": 1} if args.interactive else {})})
    try:
        wait_conn = client.send("POST", f"/containers/{cid}/wait",
                                {"condition": "removed" if args.remove else "next-exit"})
    except BaseException:
        sock.close()
        raise
    try:
        client.upgraded(sock)
        wait = client.answer(wait_conn, "POST")
        client.call("POST", f"/containers/{cid}/start")
    except BaseException:
        sock.close()
        wait_conn.close()
        raise
    if args.interactive:
        import threading

        threading.Thread(target=_pump_stdin, args=(sock,), daemon=True).start()
    else:
        sock.shutdown(_socket.SHUT_WR)
    if args.tty and sys.stdin.isatty():
        from minidocker.runtime.console import raw_terminal

        with raw_terminal(sys.stdin.fileno()):
            _copy_stream(sock, tty=True)
    else:
        _copy_stream(sock, tty=bool(args.tty))
    sock.close()
    try:
        status = loads(wait.read())
    finally:
        wait_conn.close()
    return int(status.get("StatusCode", 125))


def _pump_stdin(sock) -> None:
    import _socket

    try:
        while True:
            data = os.read(0, 65536)
            if not data:
                break
            sock.sendall(data)
        sock.shutdown(_socket.SHUT_WR)
    except OSError:
        pass


def _copy_stream(sock, tty: bool) -> None:
    """The attach stream to our stdout/stderr: raw with a tty, else 8-byte frames (1 stdout, 2 stderr)."""
    buffer = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return
        if tty:
            os.write(1, data)
            continue
        buffer = _write_frames(buffer + data)


def _write_frames(buffer: bytes) -> bytes:
    """Write each whole frame of ``buffer`` to our stdout or stderr; return the incomplete rest.

    A frame: the stream (1 stdout, 2 stderr), three zero bytes, the payload's size (big-endian,
    4 bytes), the payload. Read with int.from_bytes, not struct: one import fewer per command.
    """
    while len(buffer) >= 8:
        stream, size = buffer[0], int.from_bytes(buffer[4:8], "big")
        if len(buffer) < 8 + size:
            break
        os.write(2 if stream == 2 else 1, buffer[8:8 + size])
        buffer = buffer[8 + size:]
    return buffer


def ps(client: Client, args: Values) -> int:
    _, rows = client.call("GET", "/containers/json", {"all": 1 if args.all else None})
    if args.quiet:
        print("\n".join(r["Id"][:12] for r in rows))
        return 0
    print(f"{'CONTAINER ID':<14}{'IMAGE':<18}{'COMMAND':<24}{'STATUS':<26}NAMES")
    for r in rows:
        command = r["Command"] if len(r["Command"]) <= 20 else r["Command"][:19] + "…"
        print(f"{r['Id'][:12]:<14}{r['Image']:<18}{chr(34) + command + chr(34):<24}{r['Status']:<26}"
              f"{r['Names'][0].lstrip('/')}")
    return 0


def _each(client: Client, refs: list[str], method: str, verb: str, query: dict | None = None) -> int:
    failed = 0
    for ref in refs:
        try:
            client.call(method, f"/containers/{_quote(ref)}{verb}", query)
            print(ref)
        except Exception as err:  # noqa: BLE001 - report each, go on, like docker
            print(f"minidocker: {err}", file=sys.stderr)
            failed = 1
    return failed


def rm(client: Client, args: Values) -> int:
    return _each(client, args.containers, "DELETE", "", {"force": 1 if args.force else None,
                                                         "v": 1 if getattr(args, "volumes", False) else None})


def start(client: Client, args: Values) -> int:
    return _each(client, args.containers, "POST", "/start")


def stop(client: Client, args: Values) -> int:
    return _each(client, args.containers, "POST", "/stop", {"t": args.time})


def restart(client: Client, args: Values) -> int:
    return _each(client, args.containers, "POST", "/restart", {"t": args.time})


def kill(client: Client, args: Values) -> int:
    return _each(client, args.containers, "POST", "/kill", {"signal": args.signal})


def wait(client: Client, args: Values) -> int:
    failed = 0
    for ref in args.containers:
        try:
            _, status = client.call("POST", f"/containers/{_quote(ref)}/wait")
            print(status["StatusCode"])
        except Exception as err:  # noqa: BLE001
            print(f"minidocker: {err}", file=sys.stderr)
            failed = 1
    return failed


def logs(client: Client, args: Values) -> int:
    _, info = client.call("GET", f"/containers/{_quote(args.container)}/json")
    conn, response = client.open("GET", f"/containers/{info['Id']}/logs", {
        "stdout": 1, "stderr": 1, "follow": 1 if args.follow else None, "tail": args.tail or "all",
        "timestamps": 1 if args.timestamps else None, "since": args.since})
    tty = bool(info["Config"].get("Tty"))
    buffer = b""
    try:
        while True:
            data = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
            if not data:
                break
            if tty:
                os.write(1, data)
                continue
            buffer = _write_frames(buffer + data)
    finally:
        conn.close()
    return 0


# -- pause, unpause, rename, top, stats --no-stream, port: thin clients, docker's output -------------

def _tabwrite(rows: list[list[str]], minwidth: int, padding: int = 3) -> str:
    """Go's text/tabwriter as the docker CLI sets it up: each column but the last as wide as its widest
    cell plus ``padding``, at least ``minwidth``. See: pkg.go.dev/text/tabwriter."""
    columns = max((len(r) for r in rows), default=0) - 1
    widths = [max([minwidth] + [len(r[i]) + padding for r in rows if i < len(r) - 1]) for i in range(columns)]
    return "\n".join("".join(cell.ljust(widths[i]) if i < len(row) - 1 else cell
                             for i, cell in enumerate(row)) for row in rows)


def _daemon_errors_exit_1(command):
    """The docker CLI's exit status for an error the daemon answered (no such container, a conflict): 1."""
    def action(client: Client, args: Values) -> int:
        from minidocker.errors import MinidockerError

        try:
            return command(client, args)
        except MinidockerError as err:
            print(f"minidocker: {err}", file=sys.stderr)
            return 1

    action.__name__, action.__doc__ = command.__name__, command.__doc__
    return action


def pause(client: Client, args: Values) -> int:
    return _each(client, args.containers, "POST", "/pause")


def unpause(client: Client, args: Values) -> int:
    return _each(client, args.containers, "POST", "/unpause")


@_daemon_errors_exit_1
def rename(client: Client, args: Values) -> int:
    client.call("POST", f"/containers/{_quote(args.container)}/rename", {"name": args.new_name})
    return 0


@_daemon_errors_exit_1
def top(client: Client, args: Values) -> int:
    """``docker top``: the Titles, then one row per process (the CLI's tabwriter: min width 20)."""
    query = {"ps_args": " ".join(args.ps_args)} if args.ps_args else None
    _, answer = client.call("GET", f"/containers/{_quote(args.container)}/top", query)
    print(_tabwrite([answer["Titles"], *answer["Processes"]], minwidth=20))
    return 0


def _join_host_port(host: str, port: str) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _natural_key(text: str) -> list:
    """The docker CLI sorts port lines "naturally": 8080 after 443 (its sortorder.NaturalLess)."""
    import re

    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", text) if part]


@_daemon_errors_exit_1
def port(client: Client, args: Values) -> int:
    """``docker port CONTAINER [PRIVATE_PORT[/PROTO]]``: ``80/tcp -> 0.0.0.0:8080`` lines, or addresses."""
    from minidocker.errors import InvalidArgument, NotFound

    _, info = client.call("GET", f"/containers/{_quote(args.container)}/json")
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    if args.private_port:
        number, _, proto = args.private_port.partition("/")
        if not number.isdigit() or int(number) > 65535:
            raise InvalidArgument(f"invalid port ({number})")
        frontends = ports.get(f"{number}/{proto or 'tcp'}")
        if not frontends:
            raise NotFound(f"No public port '{args.private_port}' published for {args.container}")
        out = [_join_host_port(f["HostIp"], f["HostPort"]) for f in frontends]
    else:
        out = [f"{private} -> {_join_host_port(f['HostIp'], f['HostPort'])}"
               for private, frontends in ports.items() for f in frontends or []]
    if out:
        print("\n".join(sorted(out, key=_natural_key)))
    return 0


def _binary_size(size: float) -> str:
    """go-units' BytesSize: "%.4g" and KiB, MiB ... (memory)."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    i = 0
    while size >= 1024 and i < len(units) - 1:
        size, i = size / 1024, i + 1
    return f"{size:.4g}{units[i]}"


def _decimal_size(size: float) -> str:
    """go-units' HumanSizeWithPrecision(size, 3): "%.3g" and kB, MB ... (network and block I/O)."""
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
    i = 0
    while size >= 1000 and i < len(units) - 1:
        size, i = size / 1000, i + 1
    return f"{size:.3g}{units[i]}"


def stats_row(doc: dict) -> list[str]:
    """One ``docker stats --no-stream`` row from an Engine API stats document, computed as the CLI does
    (CPU % from the delta to precpu_stats; memory without the inactive page cache)."""
    cpu, pre = doc.get("cpu_stats") or {}, doc.get("precpu_stats") or {}
    used, used_before = cpu.get("cpu_usage") or {}, pre.get("cpu_usage") or {}
    cpu_delta = used.get("total_usage", 0) - used_before.get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    online = cpu.get("online_cpus") or len(used.get("percpu_usage") or [])
    cpu_percent = cpu_delta / system_delta * online * 100 if system_delta > 0 and cpu_delta > 0 else 0.0
    memory = doc.get("memory_stats") or {}
    usage, details = memory.get("usage", 0), memory.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):   # cgroup v1, v2
        if key in details and details[key] < usage:
            usage -= details[key]
            break
    limit = memory.get("limit", 0)
    rx = sum(n.get("rx_bytes", 0) for n in (doc.get("networks") or {}).values())
    tx = sum(n.get("tx_bytes", 0) for n in (doc.get("networks") or {}).values())
    entries = (doc.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
    read = sum(e.get("value", 0) for e in entries if str(e.get("op", "")).lower() == "read")
    write = sum(e.get("value", 0) for e in entries if str(e.get("op", "")).lower() == "write")
    name = doc.get("name") or ""
    return [doc.get("id", "")[:12], name[1:] if len(name) > 1 else "--", f"{cpu_percent:.2f}%",
            f"{_binary_size(usage)} / {_binary_size(limit)}", f"{usage / limit * 100 if limit else 0:.2f}%",
            f"{_decimal_size(rx)} / {_decimal_size(tx)}", f"{_decimal_size(read)} / {_decimal_size(write)}",
            str((doc.get("pids_stats") or {}).get("current", 0))]


STATS_TITLES = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]


@_daemon_errors_exit_1
def stats(client: Client, args: Values) -> int:
    """``docker stats --no-stream [CONTAINER...]``: one reading of each (every running one without names)."""
    from minidocker.atomic import loads

    from minidocker.errors import InvalidArgument

    if not args.no_stream or args.format != "table":
        raise InvalidArgument("through minidockerd, stats prints one table: use --no-stream, no --format",
                              hint="docker stats streams; or stop the daemon for the direct mode's stats")
    refs = args.containers or [r["Id"] for r in client.call("GET", "/containers/json")[1]]
    rows = []
    for ref in refs:
        conn, response = client.open("GET", f"/containers/{_quote(ref)}/stats", {"stream": 0})
        try:
            rows.append(stats_row(loads(response.read())))
        finally:
            conn.close()
    print(_tabwrite([STATS_TITLES, *rows], minwidth=10))
    return 0
