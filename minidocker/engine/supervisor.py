"""The supervisor: one single-threaded process, parent of every container a daemon runs. Chapter 13.

Docker gives each container a shim (containerd-shim, ~2.6 MB here); Podman a conmon
(C). A Python process per container would cost ~8 MB each, so minidockerd has one
shared supervisor instead, started by the daemon (fork + exec of this module, in its
own session) and outliving it::

    minidockerd (threads: HTTP)  --unix socket, JSON lines-->  supervisor (one thread, epoll)
                                                                 ├── container A: stdio pipes or pty
                                                                 └── container B

It is the one place where containers are set up (``ContainerProcess.create``: fork,
namespaces), because it has a single thread; the daemon's threads never fork
(namespaces are per thread: unshare(2), setns(2)). It is a child subreaper
(prctl(2)), so a container's processes stay its children. For each container it:

- holds stdin (a pipe or the pty master), reads stdout and stderr, writes them to the
  json-file log (engine/logfile.py) and to the attached clients, framed as the
  Engine API's attach stream (8-byte headers) unless there is a tty;
- reaps PID 1, reads the OOM count, writes ``exit.json`` beside the container's record
  and tells the daemon (an ``exit`` event on every subscribed connection).

The daemon may die and come back (``kill -9``): containers keep running and logging,
and the new daemon reconnects (``list``) and folds the ``exit.json`` of those that
ended meanwhile into their records. Requests, one JSON line each, answered by one::

    {"op":"create","id":..,"config":path,"tty":b,"stdin":b,"log":path|null,"max_size":n,"max_files":n,
     "exit_file":path}                                     -> {"pid": N}
    {"op":"start","id":..}                                 -> {"started_at": ns} | {"error","exit_code"}
    {"op":"create",...,"start":true}                       -> {"pid","started_at"}
                                                              | {"pid","start_error","exit_code"}
    {"op":"kill","id":..,"signal":N}                       -> {}
    {"op":"attach","id":..,"stdin":b,"stdout":b,"stderr":b} + the client's socket (SCM_RIGHTS) -> {}
    {"op":"resize","id":..,"h":N,"w":N}                    -> {}
    {"op":"pause","id":..} / {"op":"resume","id":..}       -> {}   the cgroup freezer (runtime/pause.py)
    {"op":"exec","id":..,"container":..,"cmd":[..],"tty":b,...} + the client's socket -> {"pid": N}
    {"op":"exec_resize","id":..,"h":N,"w":N}               -> {}   an exec's pty (docker exec -t)
    {"op":"list"}                                          -> {"containers": {id: {"pid","started_at"}}}
    {"op":"subscribe"}                                     -> then {"event":"exit","id",...} lines
    {"op":"forget","id":..} / {"op":"shutdown"}            -> {}
    {"op":"create",...,"network":{"lib","run","network","publish","exposed","name","hostname","ip"}}
                                                           -> {"pid": N, "endpoint": {...}}

A container on a bridge network is wired here too (``create`` with ``network``): the
address is allocated (engine/networks.attach) before the runtime creates the container
(its hosts and resolv.conf must exist to be bound), the veth goes into its namespace
(``wire``: setns(2) to open a netlink socket there) before ``start``, and at the exit the
endpoint and its DNAT rules are removed at once (``detach``), whether or not a daemon
listens. Why here and not in the daemon: entering a namespace and the detached fork that
deletes the rules are safe only in a single-threaded process.

See: prctl(2) PR_SET_CHILD_SUBREAPER, epoll(7), unix(7) SCM_RIGHTS, pipe(7).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import struct
import sys
import time

__all__ = ["main", "Supervisor"]

_FRAME = struct.Struct(">BxxxI")
_MAX_CLIENT_BUFFER = 8 << 20   # an attached client further behind than this is dropped, never waited for
_STREAMS = {1: "stdout", 2: "stderr"}


class _Attacher:
    def __init__(self, sock: socket.socket, stdin: bool, stdout: bool, stderr: bool) -> None:
        self.sock, self.stdin, self.streams = sock, stdin, {1: stdout, 2: stderr}
        self.buffer = bytearray()
        self.closing = False
        self.reading = True   # for stdin, and to see the client's EOF (a half-close, or gone)
        sock.setblocking(False)


class _Container:
    def __init__(self, cid: str, proc, tty: bool) -> None:
        self.id, self.proc, self.tty = cid, proc, tty
        self.outputs: dict[int, int] = {}   # fd -> stream number (1, 2); the pty master is 1
        self.stdin_fd: int | None = None
        self.stdin_buffer = bytearray()
        self.stdin_eof = False
        self.log = None
        self.attachers: list[_Attacher] = []
        self.started_at: int | None = None
        self.exit_file = ""
        self.exited = False
        self.kind = "container"   # or "exec": a process run in a container (docker exec)
        self.pid: int | None = None
        self.exit_code: int | None = None
        self.config = ""   # the container's config.json: docker exec gets its security from it
        self.network_lib = ""   # the state root (lib) of its bridge endpoint, detached at its exit


class Supervisor:
    """The event loop: control socket, container outputs, attached clients, SIGCHLD."""

    def __init__(self, socket_path: str) -> None:
        from minidocker.linux import set_child_subreaper

        set_child_subreaper()
        self.path = socket_path
        self.sel = selectors.DefaultSelector()
        self.containers: dict[str, _Container] = {}
        self.execs: dict[str, _Container] = {}
        self.by_stage1: dict[int, _Container] = {}
        self.subscribers: list[socket.socket] = []
        self.running = True
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)
        signal.set_wakeup_fd(self._wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            # only "shutdown" ends it: containers must not die with a session
            signal.signal(sig, signal.SIG_IGN)
        self.sel.register(self._wake_r, selectors.EVENT_READ, ("wake", None))
        self._serving: socket.socket | None = None  # the control connection being answered
        self._creating: set[int] = set()             # our ends of the pipes of the container being created
        self._child_closes: set[int] = set()
        # A container's stage-1 child is a fork of this process that never execs: without this it
        # would keep a copy of every pipe and socket held here (another container's stdin
        # write end: that container would never read EOF). See fork(2) "file descriptors".
        self._pid = os.getpid()
        os.register_at_fork(after_in_child=self._close_in_child)
        try:
            os.unlink(socket_path)
        except FileNotFoundError:
            pass
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.listener.bind(socket_path)
        finally:
            os.umask(old)
        self.listener.listen(64)
        self.sel.register(self.listener, selectors.EVENT_READ, ("listen", None))

    def _held(self) -> set[int]:
        """Every fd of ours a container's stage-1 child must not keep (taken just before its fork)."""
        held = set(self.sel.get_map())
        for container in self.containers.values():
            held.update(container.outputs)
            if container.stdin_fd is not None:
                held.add(container.stdin_fd)
        if self._serving is not None:
            held.add(self._serving.fileno())
        held.add(self._wake_w)
        held.update(self._creating)
        open_now = set()
        for fd in held:
            try:
                os.fstat(fd)
                open_now.add(fd)
            except OSError:
                print(f"supervisor: fd {fd} is held but closed", file=sys.stderr, flush=True)
        return open_now

    def _close_in_child(self) -> None:
        # Only in our own child: its later forks (stage-1 forks init) have reused these numbers.
        if os.getppid() != self._pid:
            return
        self._pid = -1
        signal.set_wakeup_fd(-1)
        for fd in self._child_closes:
            try:
                os.close(fd)
            except OSError:
                pass

    # -- the loop ---------------------------------------------------------------------------------

    def serve(self) -> None:
        while self.running:
            for key, mask in self.sel.select(timeout=5):
                kind, obj = key.data
                try:
                    if kind == "wake":
                        self._drain_wake()
                    elif kind == "listen":
                        self._accept()
                    elif kind == "out":
                        self._read_output(obj, key.fd)
                    elif kind == "stdin":
                        self._flush_stdin(obj)
                    elif kind == "attacher":
                        self._attacher_ready(obj, key.fileobj, mask)
                    elif kind == "subscriber":
                        self._subscriber_ready(key.fileobj)
                except Exception as err:  # noqa: BLE001 - one container's trouble must not end the others
                    print(f"supervisor: {kind}: {err!r}", file=sys.stderr, flush=True)
            self._reap()
        self.listener.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    # -- control requests -------------------------------------------------------------------------

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(5)
        self._serving = conn
        try:
            data, fds = b"", []
            while not data.endswith(b"\n"):
                chunk, got, _, _ = socket.recv_fds(conn, 1 << 20, 4)
                if not chunk:
                    break
                data += chunk
                fds += got
            request = json.loads(data or b"{}")
            reply = self._handle(request, conn, fds)
        except Exception as err:  # noqa: BLE001 - answered, not fatal
            from minidocker.errors import ContainerError

            reply = {"error": str(err), "kind": type(err).__name__,
                     "exit_code": err.exit_code if isinstance(err, ContainerError) else 125}
            fds = [f for f in locals().get("fds", [])]
            for fd in fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._serving = None
        if reply is None:
            return  # kept (subscribe)
        try:
            conn.sendall(json.dumps(reply).encode() + b"\n")
        except OSError:
            pass
        conn.close()

    def _handle(self, request: dict, conn: socket.socket, fds: list[int]) -> dict | None:
        op = request.get("op")
        if op == "create":
            # the attachers waiting for the start (docker run's): one socket per entry of "attach"
            attachers = [(socket.socket(fileno=fd), entry)
                         for entry, fd in zip(request.get("attach") or [], fds)]
            for fd in fds[len(attachers):]:
                os.close(fd)
            try:
                reply = self._create(request)
            except BaseException:
                for sock, _ in attachers:
                    sock.close()
                raise
            container = self.containers[request["id"]]
            for sock, entry in attachers:
                self._attach(container, sock, bool(entry.get("stdin")), bool(entry.get("stdout", True)),
                             bool(entry.get("stderr", True)), bytes.fromhex(entry.get("early") or ""))
            if request.get("start"):  # create, attach and start in one request
                started = self._start(container)
                if "error" in started:
                    reply.update({"start_error": started["error"], "exit_code": started["exit_code"]})
                else:
                    reply.update(started)
            return reply
        if op == "list":
            return {"containers": {c.id: {"pid": c.proc.pid, "started_at": c.started_at}
                                   for c in self.containers.values() if not c.exited}}
        if op == "subscribe":
            conn.settimeout(1)
            self.subscribers.append(conn)
            conn.sendall(b'{"subscribed":true}\n')
            self.sel.register(conn, selectors.EVENT_READ, ("subscriber", None))
            return None
        if op == "shutdown":
            self.running = False
            return {}
        if op == "exec":
            return self._exec(request, fds)
        if op == "exec_resize":
            ex = self.execs.get(request.get("id", ""))
            if ex is None:
                return {"error": f"no such exec instance: {request.get('id')}", "kind": "NotFound",
                        "exit_code": 125}
            if ex.tty and ex.outputs:
                _set_window_size(next(iter(ex.outputs)), int(request["h"]), int(request["w"]))
            return {}
        if op == "exec_status":
            ex = self.execs.get(request.get("id", ""))
            if ex is None:
                return {"error": f"no such exec instance: {request.get('id')}", "kind": "NotFound",
                        "exit_code": 125}
            return {"running": not ex.exited, "exit_code": ex.exit_code, "pid": ex.pid}
        container = self.containers.get(request.get("id", ""))
        if container is None:
            for fd in fds:
                os.close(fd)
            return {"error": f"no such container: {request.get('id')}", "kind": "NotFound", "exit_code": 125}
        if op == "start":
            return self._start(container)
        if op == "kill":
            container.proc.kill(int(request.get("signal", signal.SIGKILL)))
            return {}
        if op == "attach":
            if not fds:
                return {"error": "attach without a socket", "kind": "InvalidArgument", "exit_code": 125}
            sock = socket.socket(fileno=fds[0])
            for fd in fds[1:]:
                os.close(fd)
            self._attach(container, sock, bool(request.get("stdin")), bool(request.get("stdout", True)),
                         bool(request.get("stderr", True)), bytes.fromhex(request.get("early") or ""))
            return {}
        if op == "resize":
            if container.tty and container.outputs:
                import fcntl
                import termios

                master = next(iter(container.outputs))
                fcntl.ioctl(master, termios.TIOCSWINSZ,
                            struct.pack("HHHH", int(request["h"]), int(request["w"]), 0, 0))
            return {}
        if op in ("pause", "resume"):
            from minidocker.runtime import pause, resume

            (pause if op == "pause" else resume)(container.proc.root, container.proc.id)
            return {}
        if op == "forget":   # an exited container's entry (a new start's live one stays)
            if container.exited:
                self.containers.pop(container.id, None)
            return {}
        return {"error": f"unknown op {op!r}", "kind": "InvalidArgument", "exit_code": 125}

    def _create(self, request: dict) -> dict:
        from minidocker.atomic import read_json
        from minidocker.engine.logfile import LogWriter
        from minidocker.runtime import ContainerProcess
        from minidocker.runtime.run import empty_stdin

        cid = request["id"]
        if cid in self.containers and not self.containers[cid].exited:
            raise RuntimeError(f"container {cid} is already supervised")
        spec = read_json(request["config"])
        tty = bool(spec["process"].get("terminal"))
        mine: list[int] = []
        theirs: list[int] = []
        container = _Container(cid, None, tty)
        container.exit_file = request["exit_file"]
        container.config = request["config"]
        network = request.get("network")
        endpoint = None
        try:
            if request.get("stdin") and not tty:
                r, w = os.pipe()
                theirs.append(r)
                mine.append(w)
                container.stdin_fd = w
                os.set_blocking(w, False)
            else:
                theirs.append(empty_stdin())   # never the host's /dev/null (runtime/run.py)
            if tty:
                null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
                theirs += [null, null]
            else:
                for stream in (1, 2):
                    r, w = os.pipe()
                    theirs.append(w)
                    mine.append(r)
                    container.outputs[r] = stream
            directory = os.path.dirname(request["config"])
            if network:   # before the runtime: the spec binds the hosts, hostname, resolv.conf it writes
                endpoint = _attach_network(cid, network, directory)
                container.network_lib = network["lib"]
            try:  # the runtime's state under the same ID (minidocker runtime list shows it), this bundle
                proc = ContainerProcess(spec, stdio=(theirs[0], theirs[1], theirs[2]), container_id=cid,
                                        bundle=directory)
            except TypeError:  # a runtime without the lifecycle's IDs
                proc = ContainerProcess(spec, stdio=(theirs[0], theirs[1], theirs[2]))
            container.proc = proc
            self._creating = set(mine)
            self._child_closes = self._held()  # before the runtime opens its handshake pipes
            try:
                proc.create()
            finally:
                self._creating = set()
            if endpoint is not None:
                try:
                    endpoint["mac"] = _wire_network(endpoint, cid, proc.pid)
                except BaseException:
                    proc.destroy()
                    raise
        except BaseException:
            if endpoint is not None:
                _detach_network(network["lib"], cid, wait=True)
            for fd in {*mine, *theirs}:
                try:
                    os.close(fd)
                except OSError:
                    pass
            raise
        for fd in set(theirs):
            os.close(fd)
        if tty:
            master = proc._master  # the pty master init sent back (runtime/console.py)
            proc._master = None     # ours now: the supervisor relays it, not ContainerProcess.wait
            os.set_blocking(master, False)
            container.outputs[master] = 1
            container.stdin_fd = master if request.get("stdin") else None
        for fd in container.outputs:
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, ("out", container))
        if request.get("log"):
            container.log = LogWriter(request["log"], request.get("max_size"),
                                      int(request.get("max_files") or 1))
        self.containers[cid] = container
        self.by_stage1[_reaped_pid(proc)] = container
        return {"pid": proc.pid, "endpoint": _public(endpoint)}

    def _exec(self, request: dict, fds: list[int]) -> dict:
        """Run a process in a running container (docker exec); its stdio like a container's, attached
        to ``fds[0]``."""
        from minidocker.runtime.exec import exec_in
        from minidocker.runtime.run import empty_stdin

        container = self.containers.get(request.get("container", ""))
        if container is None or container.exited:
            for fd in fds:
                os.close(fd)
            return {"error": f"Container {request.get('container')} is not running", "kind": "Conflict",
                    "exit_code": 125}
        tty = bool(request.get("tty"))
        ex = _Container(request["id"], None, tty)
        ex.kind = "exec"
        mine: list[int] = []
        theirs: list[int] = []
        console = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) if tty else None
        if console is not None:  # exec_in opens a pty in the container's devpts and sends us its master
            mine.append(console[0].fileno())
            theirs += [empty_stdin(), os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)]
            theirs.append(theirs[-1])
        elif request.get("stdin"):
            r, w = os.pipe()
            theirs.append(r)
            mine.append(w)
            ex.stdin_fd = w
            os.set_blocking(w, False)
        else:
            theirs.append(empty_stdin())   # never the host's /dev/null (runtime/run.py)
        for stream in (1, 2) if console is None else ():
            r, w = os.pipe()
            theirs.append(w)
            mine.append(r)
            ex.outputs[r] = stream
        saved = [os.dup(fd) for fd in (0, 1, 2)]
        self._creating = set(mine)
        self._child_closes = self._held() | set(saved)
        try:
            for target, fd in enumerate(theirs):
                os.dup2(fd, target)  # exec_in gives the process our stdio: for a moment, its pipes
            ex.pid = exec_in(container.proc.pid, request["cmd"], env=request.get("env"),
                             cwd=request.get("cwd") or "/", user=request.get("user"), detach=True,
                             spec=_exec_spec(container, request),
                             console_socket=console[1] if console is not None else None)
            if console is not None:
                console[1].close()
                console[0].settimeout(5)
                master = _receive_fd(console[0])
                ex.outputs[master] = 1
                ex.stdin_fd = master if request.get("stdin") else None
        except BaseException:
            for fd in mine if console is None else ():
                os.close(fd)
            for fd in fds:
                os.close(fd)
            raise
        finally:
            for target, fd in enumerate(saved):
                os.dup2(fd, target)
                os.close(fd)
            for fd in set(theirs):
                os.close(fd)
            if console is not None:
                console[0].close()
                console[1].close()
            self._creating = set()
        for fd in ex.outputs:
            os.set_blocking(fd, False)
            self.sel.register(fd, selectors.EVENT_READ, ("out", ex))
        self.execs[ex.id] = ex
        self.by_stage1[ex.pid] = ex  # our child once its parent has gone (we are a subreaper)
        if fds:
            sock = socket.socket(fileno=fds[0])
            self._attach(ex, sock, bool(request.get("stdin")), True, True)
        return {"pid": ex.pid}

    def _start(self, container: _Container) -> dict:
        from minidocker.errors import ContainerError

        try:
            container.proc.start()
        except ContainerError as err:
            self.by_stage1.pop(_reaped_pid(container.proc), None)
            status = container.proc._status
            self._finish(container, status, error=str(err), exit_code=err.exit_code)
            return {"error": str(err), "kind": "ContainerError", "exit_code": err.exit_code}
        container.started_at = time.time_ns()
        return {"started_at": container.started_at}

    # -- data -------------------------------------------------------------------------------------

    def _read_output(self, container: _Container, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: the pty's other side is gone
        if not data:
            self._close_output(container, fd)
            return
        self._deliver(container, container.outputs[fd], data)

    def _deliver(self, container: _Container, stream: int, data: bytes) -> None:
        if container.log is not None:
            container.log.write(_STREAMS[stream], data)
        chunk = data if container.tty else _FRAME.pack(stream, len(data)) + data
        for attacher in list(container.attachers):
            if attacher.streams.get(stream) and not attacher.closing:
                attacher.buffer += chunk
                self._send_attacher(container, attacher)

    def _close_output(self, container: _Container, fd: int) -> None:
        if fd in container.outputs:
            self.sel.unregister(fd)
            del container.outputs[fd]
            if fd == container.stdin_fd:
                container.stdin_fd = None
            os.close(fd)

    def _attach(self, container: _Container, sock: socket.socket, stdin: bool, stdout: bool, stderr: bool,
                early: bytes = b"") -> None:
        attacher = _Attacher(sock, stdin and container.stdin_fd is not None, stdout, stderr)
        container.attachers.append(attacher)
        if early and attacher.stdin:
            container.stdin_buffer += early
            self._flush_stdin(container)
        if container.exited:
            attacher.closing = True
            self._send_attacher(container, attacher)
            return
        self.sel.register(sock, selectors.EVENT_READ, ("attacher", (container, attacher)))

    def _attacher_ready(self, pair, sock, mask) -> None:
        container, attacher = pair
        if mask & selectors.EVENT_WRITE:
            self._send_attacher(container, attacher)
        if mask & selectors.EVENT_READ:
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if data and attacher.stdin and container.stdin_fd is not None:
                container.stdin_buffer += data
                self._flush_stdin(container)
            elif not data:
                # EOF: a half-close (no more stdin) or a client gone; output goes on until a write fails
                attacher.reading = False
                if attacher.stdin and not container.tty:
                    container.stdin_eof = True
                    self._flush_stdin(container)
                self._update_attacher(container, attacher)

    def _update_attacher(self, container: _Container, attacher: _Attacher) -> None:
        events = ((selectors.EVENT_READ if attacher.reading else 0)
                  | (selectors.EVENT_WRITE if attacher.buffer else 0))
        try:
            if events:
                self.sel.modify(attacher.sock, events, ("attacher", (container, attacher)))
            else:
                self.sel.unregister(attacher.sock)
        except KeyError:
            if events:
                self.sel.register(attacher.sock, events, ("attacher", (container, attacher)))
        except ValueError:
            pass
        if attacher.closing and not attacher.buffer:
            self._drop_attacher(container, attacher)

    def _send_attacher(self, container: _Container, attacher: _Attacher) -> None:
        try:
            while attacher.buffer:
                sent = attacher.sock.send(attacher.buffer)
                del attacher.buffer[:sent]
        except BlockingIOError:
            if len(attacher.buffer) > _MAX_CLIENT_BUFFER:
                self._drop_attacher(container, attacher)
                return
        except OSError:
            self._drop_attacher(container, attacher)
            return
        self._update_attacher(container, attacher)

    def _drop_attacher(self, container: _Container, attacher: _Attacher) -> None:
        if attacher in container.attachers:
            container.attachers.remove(attacher)
        try:
            self.sel.unregister(attacher.sock)
        except (KeyError, ValueError):
            pass
        attacher.sock.close()

    def _flush_stdin(self, container: _Container) -> None:
        fd = container.stdin_fd
        if fd is None:
            container.stdin_buffer.clear()
            return
        try:
            while container.stdin_buffer:
                n = os.write(fd, container.stdin_buffer)
                del container.stdin_buffer[:n]
        except BlockingIOError:
            pass
        except OSError:
            container.stdin_buffer.clear()
        registered = fd in self.sel.get_map() and self.sel.get_key(fd).data[0] == "stdin"
        if container.stdin_buffer and not registered and not container.tty:
            self.sel.register(fd, selectors.EVENT_WRITE, ("stdin", container))
        elif not container.stdin_buffer:
            if registered:
                self.sel.unregister(fd)
            if container.stdin_eof and not container.tty:
                os.close(fd)
                container.stdin_fd = None

    def _subscriber_ready(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(4096)
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(sock)
            if sock in self.subscribers:
                self.subscribers.remove(sock)
            sock.close()

    def _publish(self, event: dict) -> None:
        line = json.dumps(event).encode() + b"\n"
        for sock in list(self.subscribers):
            try:
                sock.sendall(line)
            except OSError:
                self.subscribers.remove(sock)
                try:
                    self.sel.unregister(sock)
                except (KeyError, ValueError):
                    pass
                sock.close()

    # -- exits ------------------------------------------------------------------------------------

    def _reap(self) -> None:
        from minidocker.runtime import ExitStatus

        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            container = self.by_stage1.pop(pid, None)
            if container is not None:
                oom = container.proc._oom_killed() if container.proc is not None else False
                self._finish(container, ExitStatus.from_wait_status(status, oom_killed=oom))

    def _finish(self, container: _Container, status, error: str = "", exit_code: int | None = None) -> None:
        from minidocker.atomic import write_json

        for fd in list(container.outputs):
            while True:  # what the container wrote before it ended
                try:
                    data = os.read(fd, 65536)
                except (BlockingIOError, OSError):
                    break
                if not data:
                    break
                self._deliver(container, container.outputs[fd], data)
            self._close_output(container, fd)
        if container.stdin_fd is not None:
            try:
                self.sel.unregister(container.stdin_fd)
            except (KeyError, ValueError):
                pass
            os.close(container.stdin_fd)
            container.stdin_fd = None
        if container.log is not None:
            container.log.close()
            container.log = None
        container.exited = True
        for attacher in list(container.attachers):
            attacher.closing = True
            attacher.reading = False
            self._send_attacher(container, attacher)
        code = exit_code if exit_code is not None else (status.exit_code if status is not None else 125)
        container.exit_code = code
        if container.kind == "exec":
            self._publish({"event": "exec-exit", "id": container.id, "exit_code": code})
            return
        proc = container.proc
        if status is not None:
            proc._status = status
        proc.destroy()  # the cgroup goes
        if container.network_lib:
            try:   # the address and the DNAT rules go now (the veth went with the namespace)
                _detach_network(container.network_lib, container.id, wait=False)
            except Exception as err:  # noqa: BLE001 - the daemon's reconcile tries again
                print(f"supervisor: failed to detach {container.id[:12]}: {err!r}", file=sys.stderr,
                      flush=True)
            container.network_lib = ""
        result = {"id": container.id, "exit_code": code, "oom_killed": bool(status and status.oom_killed),
                  "finished_at": time.time_ns(), "error": error}
        try:
            # No fsync: the file bridges a daemon that is down (kill -9, live restore), not a power cut
            # (after one, reconcile finds neither it nor this supervisor: exited, 137). 1-8 ms per exit here.
            write_json(container.exit_file, result, durable=False)
        except OSError as err:
            print(f"supervisor: failed to write {container.exit_file}: {err}", file=sys.stderr, flush=True)
        self._publish({"event": "exit", **result})


def _reaped_pid(proc) -> int:
    """The child whose exit is the container's: the stage-1 process (it mirrors PID 1's status),
    or PID 1 itself when the runtime lets stage 1 go and PID 1 becomes our child (subreaper)."""
    return getattr(proc, "_stage1", None) or proc.pid


def _roots(lib: str, run: str | None = None):
    """The daemon's state roots (its --root may be anywhere: they come with the request)."""
    from pathlib import Path

    from minidocker.paths import StateRoots

    return StateRoots(lib=Path(lib), run=Path(run) if run else Path(lib).parent / "run")


def _attach_network(cid: str, network: dict, directory: str) -> dict:
    """The container's address (and host ports) on its bridge network; the name files in ``directory``.

    Its owner is this process (engine/networks.py reclaims an endpoint whose owner died): the
    container dies with us too (the runtime's parent-death signal)."""
    from pathlib import Path

    from minidocker.engine import networks
    from minidocker.network.ports import parse_expose

    exposed = sorted({parse_expose(p) for p in network.get("exposed") or []})
    plan = networks.plan_network(network["network"], list(network.get("publish") or []), exposed)
    plan.ip = network.get("ip") or None
    plan.mac = network.get("mac") or None
    plan.aliases = list(network.get("aliases") or [])
    return networks.attach(_roots(network["lib"], network.get("run")), cid, network["name"],
                           network["hostname"], plan, Path(directory))


def _wire_network(endpoint: dict, cid: str, pid: int) -> str:
    """The veth into the created container's namespace; its MAC address there (for inspect)."""
    from minidocker.engine import networks
    from minidocker.network.netlink import open_route_socket

    networks.wire(endpoint, cid, pid)
    with open_route_socket(pid) as nl:
        return nl.mac_address(endpoint["ifname"])


def _detach_network(lib: str, cid: str, wait: bool) -> list[str]:
    """Forget the endpoints, delete the DNAT rules (``wait`` False: in a detached process, off the
    exit's path)."""
    from minidocker.engine import networks

    return networks.detach(_roots(lib), cid, delete_veth=wait)


def _public(endpoint: dict | None) -> dict | None:
    """What the daemon keeps of an endpoint (inspect's NetworkSettings): no owner, no rule handles."""
    if endpoint is None:
        return None
    return {k: v for k, v in endpoint.items() if k not in ("owner", "rules", "directory", "bridge_index")}


def main(argv: list[str] | None = None) -> int:
    """``python -m minidocker.engine.supervisor SOCKET``: what the daemon execs (in a new session)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m minidocker.engine.supervisor SOCKET", file=sys.stderr)
        return 2
    Supervisor(argv[0]).serve()
    return 0



def _receive_fd(sock: socket.socket) -> int:
    """The pty master the exec's process sent (runtime/exec.py, console_socket)."""
    _, fds, _, _ = socket.recv_fds(sock, 16, 1)
    if not fds:
        raise ConnectionError("the exec's process sent no terminal")
    return fds[0]


def _set_window_size(fd: int, height: int, width: int) -> None:
    """TIOCSWINSZ on a pty master: the process sees the client's terminal size. See: ioctl_tty(2)."""
    import fcntl
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def _exec_spec(container: _Container, request: dict) -> dict:
    """What ``docker exec`` runs with: the container's capabilities and seccomp filter, as ``runc exec``
    gives them (chapter 11), as the exec's user if it names one."""
    from minidocker.atomic import read_json

    spec = read_json(container.config)
    process = dict(spec["process"])
    if request.get("user"):
        process["user"] = request["user"]
    return {**spec, "process": process}


if __name__ == "__main__":
    sys.exit(main())

