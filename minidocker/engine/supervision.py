"""The daemon's side of the supervisor (engine/supervisor.py): start it, ask it, hear its events.

::

    sup = SupervisorClient(run_dir / "supervisor.sock", on_event)
    sup.ensure_running()                 # exec one in its own session if none answers
    sup.request({"op": "list"})          # one JSON line out, one back; fds ride along (SCM_RIGHTS)
    sup.subscribe()                      # a thread reads exit events and calls on_event(event)

The supervisor is started by exec (``python -m minidocker.engine.supervisor``), never by
a bare fork of the daemon: the daemon has many threads, and a forked copy of one of
them would start life with every lock another thread held. ``start_new_session``
puts it out of the daemon's process group and session, so a ``kill -9`` of the
daemon, or a Ctrl-C in its terminal, does not reach the containers.
See: fork(2) "multithreaded", setsid(2), unix(7).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time

from minidocker.errors import Conflict, ContainerError, InvalidArgument, MinidockerError, NotFound

__all__ = ["SupervisorClient", "SupervisorError"]

log = logging.getLogger("minidockerd")


class SupervisorError(MinidockerError):
    """The supervisor did not answer, or answered with an error of its own."""


_KINDS = {"NotFound": NotFound, "InvalidArgument": InvalidArgument, "Conflict": Conflict}


class SupervisorClient:
    def __init__(self, path: str, on_event=None, log_path: str | None = None) -> None:
        self.path, self.on_event, self.log_path = str(path), on_event, log_path
        self._lock = threading.Lock()
        self.pid: int | None = None
        self._subscribed = False

    def answers(self) -> bool:
        try:
            return "containers" in self.request({"op": "list"}, timeout=2)
        except (OSError, SupervisorError):
            return False

    def ensure_running(self) -> bool:
        """Start a supervisor unless one answers; True if a new one was started."""
        with self._lock:
            if self.answers():
                return False
            logfile = open(self.log_path or os.devnull, "ab")
            env = {k: v for k, v in os.environ.items()}
            proc = subprocess.Popen([sys.executable, "-m", "minidocker.engine.supervisor", self.path],
                                    stdin=subprocess.DEVNULL, stdout=logfile, stderr=logfile,
                                    start_new_session=True, close_fds=True, env=env,
                                    cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
            logfile.close()
            self.pid = proc.pid
            deadline = time.monotonic() + 10
            while not self.answers():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SupervisorError(f"failed to start the supervisor: exit status {proc.returncode}")
                time.sleep(0.01)
            # Nobody waits for it (it outlives us): a thread reaps it if it ends while we live.
            threading.Thread(target=proc.wait, daemon=True).start()
            return True

    def request(self, request: dict, fds: tuple[int, ...] = (), timeout: float = 60) -> dict:
        """Send one request, return its answer; an ``error`` answer is raised as the error it names."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(self.path)
            except OSError as err:
                raise SupervisorError(f"failed to reach the supervisor at {self.path}: "
                                      f"{err.strerror}") from None
            data = json.dumps(request).encode() + b"\n"
            if fds:
                socket.send_fds(sock, [data], list(fds))
            else:
                sock.sendall(data)
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                answer += chunk
        if not answer:
            raise SupervisorError(f"the supervisor closed the connection during {request.get('op')}")
        reply = json.loads(answer)
        if "error" in reply and reply["error"] and request.get("op") != "list":
            kind = reply.get("kind")
            if kind == "ContainerError":
                raise ContainerError(reply["error"], exit_code=int(reply.get("exit_code") or 125))
            raise _KINDS.get(kind, SupervisorError)(reply["error"])
        return reply

    def subscribe(self, on_lost=None) -> None:
        """Read exit events in a thread; ``on_lost()`` when the supervisor goes away."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.path)
        sock.sendall(b'{"op":"subscribe"}\n')
        reader = sock.makefile("rb")
        first = reader.readline()
        if b"subscribed" not in first:
            raise SupervisorError("the supervisor refused the subscription")

        def read() -> None:
            try:
                for line in reader:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    if self.on_event is not None:
                        try:
                            self.on_event(event)
                        except Exception:  # noqa: BLE001 - the reader must go on
                            log.exception("failed to handle the supervisor's event %s", event)
            finally:
                sock.close()
                log.warning("lost the connection to the supervisor")
                if on_lost is not None:
                    on_lost()

        threading.Thread(target=read, name="supervisor-events", daemon=True).start()
