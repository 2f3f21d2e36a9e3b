"""Run an OCI config in this process: create, start, wait, delete. Like ``runc run``.

::

    proc = ContainerProcess(spec)      # nothing happens yet
    proc.create()                      # the lifecycle's create: init waits at the exec fifo
    proc.start()                       # the lifecycle's start: init execs the command
    status = proc.wait()               # ExitStatus; relays the terminal if there is one
    proc.destroy()                     # the lifecycle's delete --force

or all at once: ``run(spec)``. These are the same verbs a separate process uses
(:mod:`minidocker.runtime.create` ...), on a state directory under a runtime root,
plus what only the caller of ``create`` can do: wait for the exit status. For that
this process is a child subreaper while it creates (prctl(2)
PR_SET_CHILD_SUBREAPER): when the stage-1 child leaves, init becomes *our* child
and ``waitpid`` works, as it does for containerd's shim. The cgroup (chapter 04)
is made before the fork, from ``linux.cgroupsPath`` and ``linux.resources``; the
stage-1 child joins it before it creates its namespaces.
"""

from __future__ import annotations

import os
import sys

# The C half of the signal module: the same functions and numbers, without the enums that
# `import signal` builds (it imports enum: 4-10 ms at each runtime command's start, bench/README.md).
import _signal as signal

from minidocker.runtime.create import create_container
from minidocker.runtime.delete import delete
from minidocker.runtime.exitstatus import ExitStatus
from minidocker.runtime.start import start
from minidocker.runtime.state import default_root

__all__ = ["ContainerProcess", "Stdio", "empty_stdin", "run"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Mapping
    from typing import Any

    from minidocker.cgroups import Cgroup

# Signals the runtime passes on to the container (docker run's --sig-proxy).
PROXIED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                   signal.SIGUSR1, signal.SIGUSR2)

Stdio = tuple[int, int, int]


class ContainerProcess:
    """One container run by this process, from create to delete.

    Args:
        spec: the OCI config (``root.path`` absolute).
        stdio: the container's 0, 1, 2.
        root: the runtime root of its state directory (default: ``/run/minidocker/runtime``).
        container_id: its ID there (default: a random one).
        bundle: the directory recorded as its bundle (default: the current one).
        pipe_output: give the container pipes as its stdout and stderr, and copy what
            comes out of them to ``stdio[1]`` and ``stdio[2]`` while :meth:`wait` waits
            (as Docker's shim does), instead of handing it those fds themselves: a
            container's root may ``fchmod`` or ``ioctl`` any fd it holds, and the caller's
            are its terminal or its files. Ignored with ``process.terminal`` (a pty then).
        pipe_input: the same for stdin (``docker run -i``): a pipe, fed from ``stdio[0]``
            while the container runs and closed at its end-of-file. Only with ``pipe_output``.
    """

    def __init__(self, spec: Mapping[str, Any], stdio: Stdio = (0, 1, 2), root: str | None = None,
                 container_id: str | None = None, bundle: str | None = None, pipe_output: bool = False,
                 pipe_input: bool = False) -> None:
        self.spec = spec
        self.stdio = stdio
        self.pipe_output = pipe_output and not spec["process"].get("terminal")
        self.pipe_input = pipe_input and self.pipe_output
        self._pipes: list[tuple[int, int]] = []  # (read end, caller's fd) of each piped output
        self._stdin_pipe: int | None = None  # the write end of the container's stdin, with pipe_input
        self.root = root or default_root()
        self.id = container_id or os.urandom(16).hex()
        self.bundle = bundle
        self.pid: int | None = None  # host PID of the container's PID 1
        self.cgroup: Cgroup | None = None
        self._created = False
        self._master: int | None = None
        self._status: ExitStatus | None = None
        self._pending: list[int] = []  # signals received before PID 1 existed

    def create(self, before_namespaces: Callable[[int], None] | None = None) -> int:
        """Create the container (see :func:`minidocker.runtime.create.create`); return init's host PID.

        Raises:
            ContainerError: the container side failed; nothing is left running.
            CgroupError: the limits could not be applied (ControllerMissing: before anything exists).
        """
        from minidocker.linux import is_child_subreaper, set_child_subreaper

        parent_sock, child_sock = _console_sockets() if self.spec["process"].get("terminal") else (None, None)
        was_subreaper = is_child_subreaper()
        if not was_subreaper:
            set_child_subreaper(True)
        stdio, write_ends = self.stdio, []
        if self.pipe_output:
            for target in (1, 2):
                read_end, write_end = os.pipe2(os.O_CLOEXEC)
                self._pipes.append((read_end, self.stdio[target]))
                write_ends.append(write_end)
            stdin = self.stdio[0]
            if self.pipe_input:
                stdin, self._stdin_pipe = os.pipe2(os.O_CLOEXEC)
                os.set_blocking(self._stdin_pipe, False)  # a container that reads nothing never blocks us
                write_ends.append(stdin)  # closed below like the others: the container holds its own copy
            stdio = (stdin, *write_ends[:2])  # type: ignore[assignment]
        try:
            state, self.cgroup = create_container(
                self.root, self.id, self.bundle, spec=dict(self.spec), stdio=stdio,
                console_socket=child_sock, kill_with_parent=True, before_namespaces=before_namespaces)
            self._created = True
            self.pid = state.pid
            self._deliver_pending()
            if parent_sock is not None:
                from minidocker.runtime import console  # only -t needs it: tty, select, termios ...

                self._master = console.receive_fd(parent_sock)
        except BaseException:
            self.destroy()
            raise
        finally:
            if not was_subreaper:
                # init is our child now; later orphans of this process's other children are not ours to reap
                set_child_subreaper(False)
            for sock in (parent_sock, child_sock):
                if sock is not None:
                    sock.close()
            for fd in write_ends:
                os.close(fd)  # init has its own: EOF once every process of the container closed them
        return self.pid  # type: ignore[return-value]

    def start(self) -> None:
        """Release init: it execs the command."""
        assert self._created, "create() first"
        start(self.root, self.id)

    def wait(self) -> ExitStatus:
        """Wait for the container's init to exit, passing signals on and relaying its terminal."""
        if self._status is not None:
            return self._status
        assert self.pid is not None
        try:
            if self._master is not None:
                self._relay_terminal()
            elif self._pipes:
                self._relay_output()
            _, status = os.waitpid(self.pid, 0)
        finally:
            if self._master is not None:
                os.close(self._master)
                self._master = None
            self._close_pipes()
        self._status = ExitStatus.from_wait_status(status, oom_killed=self._oom_killed())
        return self._status

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the container's PID 1 (our child: its PID cannot be reused before we reap it)."""
        if self.pid is not None and self._status is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def destroy(self) -> None:
        """Kill whatever was started, reap it, delete the container. Safe to call at any point."""
        if self.pid is not None and self._status is None:
            self.kill(signal.SIGKILL)
            try:
                _, status = os.waitpid(self.pid, 0)
                self._status = ExitStatus.from_wait_status(status)
            except ChildProcessError:
                pass
        if self._created:
            self._created = False
            delete(self.root, self.id, force=True)
        self._close_pipes()
        self.cgroup = None

    def _relay_output(self) -> None:
        """Copy the container's stdout and stderr pipes to the caller's fds until init has exited.

        Until both pipes are at end-of-file (every process of the container closed them),
        or init has exited (a pidfd is readable then, poll(2)): a process that outlives
        init outside its PID namespace (``--pid host``) could hold a pipe for ever. What
        is in the pipes then is still copied.
        """
        import select

        pidfd = os.pidfd_open(self.pid)  # our child: its PID cannot be reused before we reap it
        try:
            open_pipes = dict(self._pipes)
            poller = select.poll()
            for fd in (*open_pipes, pidfd):
                poller.register(fd, select.POLLIN)
            stdin = (_StdinFeed(self.stdio[0], self._stdin_pipe, poller, self._close_stdin_pipe)
                     if self._stdin_pipe is not None else None)
            exited = False
            while open_pipes and not exited:
                for fd, events in poller.poll():
                    if fd == pidfd:
                        exited = True
                    elif fd in open_pipes:
                        if not _copy_once(fd, open_pipes[fd]):
                            poller.unregister(fd)
                            del open_pipes[fd]
                    elif stdin is not None:
                        stdin.ready(fd, events)
            for fd, target in open_pipes.items():  # init is gone: what is left, without blocking
                os.set_blocking(fd, False)
                try:
                    while _copy_once(fd, target):
                        pass
                except BlockingIOError:
                    pass
        finally:
            os.close(pidfd)

    def _close_pipes(self) -> None:
        while self._pipes:
            os.close(self._pipes.pop()[0])
        self._close_stdin_pipe()

    def _close_stdin_pipe(self) -> None:
        if self._stdin_pipe is not None:
            os.close(self._stdin_pipe)
            self._stdin_pipe = None

    def _oom_killed(self) -> bool:
        """Did the OOM killer kill a process of this container (memory.events / memory.oom_control)?"""
        return self.cgroup is not None and self.cgroup.oom_kills() > 0

    def forwarding_signals(self) -> _Forwarding:
        """Pass SIGINT, SIGTERM ... we receive on to the container, like docker run's --sig-proxy.

        A context manager (``with proc.forwarding_signals(): ...``). A signal that arrives
        before PID 1 exists is kept and sent once it does, so that no signal kills the
        runtime half-way and leaves mounts behind.
        """
        return _Forwarding(self._forward)

    def _forward(self, signum: int, _frame: object) -> None:
        if self.pid is None:
            self._pending.append(signum)
        else:
            self.kill(signum)

    def _deliver_pending(self) -> None:
        while self._pending:
            self.kill(self._pending.pop(0))

    def _relay_terminal(self) -> None:
        from minidocker.runtime import console

        assert self._master is not None
        console.copy_window_size(self.stdio[1], self._master)
        previous = signal.signal(signal.SIGWINCH,
                                 lambda *_: console.copy_window_size(self.stdio[1], self._master))
        try:
            with console.raw_terminal(self.stdio[0]):
                console.relay(self._master, self.stdio[0], self.stdio[1])
        finally:
            signal.signal(signal.SIGWINCH, previous)


class _Forwarding:
    """The handlers of :meth:`ContainerProcess.forwarding_signals`, restored on exit (no contextlib: 1 ms)."""

    def __init__(self, handler: Callable[[int, object], None]) -> None:
        self._handler = handler
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        self._previous = {sig: signal.signal(sig, self._handler) for sig in PROXIED_SIGNALS}

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class _StdinFeed:
    """Feeds the container's stdin pipe (non-blocking) from the caller's stdin, inside the relay's poll loop.

    Reads a chunk when the caller's stdin is readable, then waits for the pipe to take it
    (POLLOUT) before it reads more; the caller's end-of-file closes the pipe (the container
    sees EOF). A container that closed its stdin gets nothing more: the rest is not read.
    """

    def __init__(self, source: int, pipe: int, poller: Any, close: Callable[[], None]) -> None:
        import select

        self._source, self._pipe, self._poller, self._select, self._close = (
            source, pipe, poller, select, close)
        self._pending = b""
        poller.register(source, select.POLLIN)

    def ready(self, fd: int, events: int) -> None:
        if fd == self._source:
            try:
                data = os.read(self._source, 65536)
            except OSError:
                data = b""  # a closed or unreadable stdin: end-of-file
            self._poller.unregister(self._source)
            if not data:
                self._finish()
                return
            self._pending = data
            self._poller.register(self._pipe, self._select.POLLOUT)
        elif fd == self._pipe:
            try:
                self._pending = self._pending[os.write(self._pipe, self._pending):]
            except BlockingIOError:
                return
            except OSError:  # EPIPE: the container closed its stdin
                self._poller.unregister(self._pipe)
                self._finish()
                return
            if not self._pending:
                self._poller.unregister(self._pipe)
                self._poller.register(self._source, self._select.POLLIN)

    def _finish(self) -> None:
        self._close()  # the owner's: it must not close the same number twice (fds are reused)


def _copy_once(source: int, target: int) -> bool:
    """Copy one read's worth from ``source`` to ``target``; False at end-of-file.

    A target that cannot be written (a closed stdout: EPIPE, EBADF) drops the output, as
    ``docker run`` does when its own stdout goes away, so the container never blocks on a
    full pipe.
    """
    data = os.read(source, 65536)
    if not data:
        return False
    view = memoryview(data)
    try:
        while view:
            try:
                view = view[os.write(target, view):]
            except BlockingIOError:  # a target someone set O_NONBLOCK (a shared terminal): wait, not drop
                import select

                select.select([], [target], [])
    except OSError:
        pass
    return True


def empty_stdin() -> int:
    """A stdin that reads end-of-file at once: a pipe whose write end is already closed.

    Never the host's /dev/null: a container's root holds CAP_FOWNER, and ``fchmod(0, 0)``
    on an inherited /dev/null changes the host's device node (chapter 11's syscall sweep
    did exactly that). A pipe belongs to nobody else. Docker's containers get a pipe from
    the shim too. See pipe(7), fchmod(2).
    """
    read_end, write_end = os.pipe()
    os.close(write_end)
    return read_end


def run(spec: Mapping[str, Any], stdio: Stdio = (0, 1, 2),
        before_namespaces: Callable[[int], None] | None = None,
        on_started: Callable[[int], None] | None = None,
        before_start: Callable[[int], None] | None = None, *, root: str | None = None,
        container_id: str | None = None, bundle: str | None = None, pipe_output: bool = False,
        pipe_input: bool = False) -> ExitStatus:
    """Create, start, wait for and delete a container. Like ``runc run``.

    ``before_start`` gets the host PID of PID 1 after create, before the command runs:
    its namespaces exist (that is where the network is wired, like a CNI/OCI
    ``createRuntime`` hook). ``on_started`` gets it once the command runs (to record state).
    ``pipe_output``: see :class:`ContainerProcess`.
    """
    proc = ContainerProcess(spec, stdio, root=root, container_id=container_id, bundle=bundle,
                            pipe_output=pipe_output, pipe_input=pipe_input)
    try:
        with proc.forwarding_signals():
            proc.create(before_namespaces)
            if before_start is not None:
                before_start(proc.pid)  # type: ignore[arg-type]
            proc.start()
            if on_started is not None:
                on_started(proc.pid)  # type: ignore[arg-type]
            return proc.wait()
    finally:
        proc.destroy()
        sys.stdout.flush()


def _console_sockets() -> tuple[socket.socket, socket.socket]:
    """The pair over which init sends the pty's master (imported only for -t: 1.7 ms)."""
    import socket

    return socket.socketpair(socket.AF_UNIX)
