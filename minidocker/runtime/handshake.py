"""The conversation between the runtime (parent, on the host) and the container's processes.

Two pipes: ``to_child`` and ``to_parent``. Each message is one line,
``NAME {json}``, small enough to be written atomically (< PIPE_BUF, see pipe(7)).
A failure on the container side travels as ``ERROR {"message", "exit_code"}`` and is
raised again in the parent as :class:`~minidocker.errors.ContainerError`.

::

    parent: create (host)          stage-1 child                     init (PID 1 inside)
      | fork ─────────────────────▶ |
      |                             | unshare(CLONE_NEWUSER)   (only with a user namespace)
      | ◀──────────── USERNS_READY ─|
      | write uid_map, gid_map      |
      | ─ GO ─────────────────────▶ |
      |                             | unshare(the other namespaces)
      |                             | mount --make-rprivate /
      |                             | fork ──────────────────────────▶ | waits for the gate pipe
      | ◀──────────────── PID {pid} |                                  | to close (EOF): nothing
      | waitpid(stage 1)            | exit(0): the gate closes; init's | of init's can overtake PID
      |                             | parent is the nearest subreaper  | mounts, /dev, console
      | ◀────────────────────────────────────────── CREATE_RUNTIME ───| (only with hooks)
      | prestart, createRuntime hooks                                  |
      | ─ CREATE_RUNTIME_DONE ────────────────────────────────────────▶ |
      |                                                                 | createContainer hooks,
      |                                                                 | pivot_root, hostname, user
      | ◀─────────────────────────────────────────────────── READY ───|
      | write state.json (created); create returns                     | open(exec.fifo, O_WRONLY)
      :                                                                 : ... blocks ...
    start (any process, later)                                          :
      | open(exec.fifo, O_RDONLY) ─────────────────────────────────────▶ | the open returns
      | ◀──────────────────────────────────────────────────── "0" ─────| write(fifo, "0")
      | unlink(exec.fifo): status is running                            | execve(process.args)

A failure on the container side before READY comes back as ERROR. After READY
nothing is said on the pipes: the exec fifo is the only meeting point, and it
is a path, so ``start`` can be any later process (see :mod:`minidocker.runtime.create`).

The stage-1 child exists because unshare(CLONE_NEWPID) only applies to children:
its child is PID 1. It leaves at once, so that nothing of the runtime stays
behind per container; whoever wants init's exit status must be its parent by
then: a child subreaper (prctl(2) PR_SET_CHILD_SUBREAPER), like containerd's shim.
"""

from __future__ import annotations

import os

from minidocker.atomic import dumps, loads  # json through _json: no re, no enum (see atomic.py)
from minidocker.errors import ContainerError

__all__ = ["Channel", "Message", "ProtocolError"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Message:
    """Named messages of the handshake, in the order they are sent (plain strings: no enum to import)."""

    USERNS_READY = "USERNS_READY"  # child -> parent: map my user namespace
    GO = "GO"  # parent -> child: maps and cgroups done, create the namespaces
    PID = "PID"  # child -> parent: {"pid": host pid of init}
    CREATE_RUNTIME = "CREATE_RUNTIME"  # init -> parent: mounts done, run prestart/createRuntime hooks
    CREATE_RUNTIME_DONE = "CREATE_RUNTIME_DONE"  # parent -> init: hooks done, go on
    READY = "READY"  # init -> parent: the container is set up, waiting at the exec fifo
    ERROR = "ERROR"  # container side -> parent: {"message", "exit_code"}


_MESSAGES = {name: name for name in vars(Message) if name.isupper()}  # the one object of each name


class ProtocolError(ContainerError):
    """The other side said something unexpected or went away."""


class Channel:
    """One end of the handshake: a pipe to read from and one to write to."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd
        self._buffer = b""
        self._gate: int | None = None

    def hold_sends_until_eof(self, gate_fd: int) -> None:
        """Let the first :meth:`send` wait until ``gate_fd`` reads EOF (init's: stage 1 sends PID
        first on the same pipe, then closes the gate); until then this end may work, not speak."""
        self._gate = gate_fd

    def send(self, kind: str, /, **payload: Any) -> None:
        if self._gate is not None:
            os.read(self._gate, 1)
            os.close(self._gate)
            self._gate = None
        line = f"{kind} {dumps(payload)}\n".encode()
        os.write(self.write_fd, line)

    def send_error(self, message: str, exit_code: int = 125) -> None:
        """Report a container-side failure; the parent raises it as ContainerError."""
        self.send(Message.ERROR, message=message, exit_code=exit_code)

    def receive(self) -> tuple[str, dict[str, Any]] | None:
        """The next message, or None at end of file (every writer has closed the pipe)."""
        while b"\n" not in self._buffer:
            chunk = os.read(self.read_fd, 4096)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        name, _, body = line.decode().partition(" ")
        if name not in _MESSAGES:
            raise ProtocolError(f"unknown message {name!r} from the container")
        return _MESSAGES[name], loads(body or "{}")

    def expect(self, wanted: str) -> dict[str, Any]:
        """Wait for ``wanted`` and return its payload; raise on ERROR, EOF or any other message."""
        received = self.receive()
        if received is None:
            raise ProtocolError(f"container process exited before sending {wanted}")
        message, payload = received
        if message is Message.ERROR:
            raise ContainerError(payload.get("message", "unknown error"), payload.get("exit_code", 125))
        if message is not wanted:
            raise ProtocolError(f"expected {wanted} from the container, got {message}")
        return payload

    def expect_eof(self) -> None:
        """Wait for the pipe to close: the exec succeeded. Raise if an ERROR comes instead."""
        received = self.receive()
        if received is None:
            return
        message, payload = received
        if message is Message.ERROR:
            raise ContainerError(payload.get("message", "unknown error"), payload.get("exit_code", 125))
        raise ProtocolError(f"expected the exec to close the pipe, got {message}")

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass
