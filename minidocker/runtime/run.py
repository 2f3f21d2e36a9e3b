"""Run an OCI config: the runtime's parent side. Like ``runc run``.

::

    proc = ContainerProcess(spec)      # nothing happens yet
    proc.create()                      # fork; namespaces, rootfs; init waits for START
    proc.start()                       # init execs the command
    status = proc.wait()               # ExitStatus; relays the terminal if there is one

or all at once: ``run(spec)``. ``create`` takes a callback that runs while the
container is stopped before its first instruction: that is where a later chapter
wires its network. Its cgroup (chapter 04) is made here, from ``linux.cgroupsPath``
and ``linux.resources``, before the fork, and the stage-1 child is moved into it
before it creates its namespaces: no instruction of the container runs unlimited.
It is destroyed (every process killed, the directories removed) with the container.
The handshake with the container side is drawn in :mod:`minidocker.runtime.handshake`.
"""

from __future__ import annotations

import os
import signal
import sys
from contextlib import contextmanager

from minidocker.cgroups import CGROUP_PARENT, Cgroup, Resources, open_cgroup
from minidocker.errors import ContainerError
from minidocker.linux import CloneFlag
from minidocker.namespaces import clone_flags, write_id_maps
from minidocker.runtime.exitstatus import ExitStatus
from minidocker.runtime.handshake import Channel, Message
from minidocker.runtime.init import stage1
from minidocker.runtime.spec import validate

__all__ = ["ContainerProcess", "Stdio", "create_cgroup", "run"]

TYPE_CHECKING = False  # typing costs 3 ms of start-up; annotations are strings here anyway
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any

# Signals the runtime passes on to the container (docker run's --sig-proxy).
PROXIED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                   signal.SIGUSR1, signal.SIGUSR2)

Stdio = tuple[int, int, int]


class ContainerProcess:
    """One container's processes, seen from the runtime on the host."""

    def __init__(self, spec: Mapping[str, Any], stdio: Stdio = (0, 1, 2)) -> None:
        validate(spec)
        self.spec = spec
        self.stdio = stdio
        self.pid: int | None = None  # host PID of the container's PID 1
        self._stage1: int | None = None
        self._channel: Channel | None = None
        self._master: int | None = None
        self._status: ExitStatus | None = None
        self.cgroup: Cgroup | None = None
        self._pending: list[int] = []  # signals received before PID 1 existed

    def create(self, before_namespaces: Callable[[int], None] | None = None) -> int:
        """Fork the container's processes and set everything up up to the exec.

        Args:
            before_namespaces: called with the stage-1 child's PID before it creates
                its namespaces (and after its user namespace is mapped). The child has
                already joined the container's cgroup by then (``_join_cgroup``).
        Returns:
            the host PID of the container's PID 1.
        Raises:
            ContainerError: the container side failed; nothing is left running.
            CgroupError: the limits could not be applied (ControllerMissing: before anything exists).
        """
        self.cgroup = create_cgroup(self.spec)
        try:
            return self._create(before_namespaces)
        except BaseException:
            self.destroy()
            raise

    def _create(self, before_namespaces: Callable[[int], None] | None) -> int:
        to_child = os.pipe()
        to_parent = os.pipe()
        terminal = bool(self.spec["process"].get("terminal"))
        parent_sock, child_sock = _console_sockets() if terminal else (None, None)
        pid = os.fork()
        if pid == 0:
            try:
                os.close(to_child[1])
                os.close(to_parent[0])
                if parent_sock is not None:
                    parent_sock.close()
                for target, fd in enumerate(self.stdio):
                    if fd != target:
                        os.dup2(fd, target)
                child_channel = Channel(to_child[0], to_parent[1])
                if self.cgroup is not None:
                    _join_cgroup(self.cgroup, child_channel)
                stage1(self.spec, child_channel, child_sock)
            finally:
                os._exit(125)
        self._stage1 = pid
        os.close(to_child[0])
        os.close(to_parent[1])
        if child_sock is not None:
            child_sock.close()
        self._channel = channel = Channel(to_parent[0], to_child[1])
        try:
            self._configure_user_namespace(channel, pid)
            if before_namespaces is not None:
                before_namespaces(pid)
            channel.send(Message.GO)
            self.pid = channel.expect(Message.PID)["pid"]
            self._deliver_pending()
            if parent_sock is not None:
                from minidocker.runtime import console  # only -t needs it: tty, select, termios ...

                self._master = console.receive_fd(parent_sock)
            channel.expect(Message.READY)
        except BaseException:
            self.destroy()
            raise
        finally:
            if parent_sock is not None:
                parent_sock.close()
        return self.pid

    def start(self) -> None:
        """Let init exec the command; raise ContainerError (126, 127 ...) if that fails."""
        assert self._channel is not None, "create() first"
        channel, self._channel = self._channel, None
        try:
            channel.send(Message.START)
            channel.expect_eof()
        except ContainerError:
            self.wait()  # reap it; the error is the story
            raise
        finally:
            channel.close()

    def wait(self) -> ExitStatus:
        """Wait for the container to exit, passing signals on and relaying its terminal."""
        if self._status is not None:
            return self._status
        assert self._stage1 is not None
        try:
            if self._master is not None:
                self._relay_terminal()
            _, status = os.waitpid(self._stage1, 0)
        finally:
            if self._master is not None:
                os.close(self._master)
                self._master = None
        self._status = ExitStatus.from_wait_status(status, oom_killed=self._oom_killed())
        return self._status

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the container's PID 1. Like ``docker kill``."""
        if self.pid is not None and self._status is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def destroy(self) -> None:
        """Kill whatever was started and reap it. Safe to call at any point."""
        if self._stage1 is not None and self._status is None:
            for pid in (self.pid, self._stage1):
                if pid is not None:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            try:
                _, status = os.waitpid(self._stage1, 0)
                self._status = ExitStatus.from_wait_status(status)
            except ChildProcessError:
                pass
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if self.cgroup is not None:
            self.cgroup.destroy()  # kills whatever is left in it (nothing, normally), then rmdir
            self.cgroup = None

    def _oom_killed(self) -> bool:
        """Did the OOM killer kill a process of this container (memory.events / memory.oom_control)?"""
        return self.cgroup is not None and self.cgroup.oom_kills() > 0

    @contextmanager
    def forwarding_signals(self) -> Iterator[None]:
        """Pass SIGINT, SIGTERM ... we receive on to the container, like docker run's --sig-proxy.

        A signal that arrives before PID 1 exists is kept and sent once it does, so
        that no signal kills the runtime half-way and leaves mounts behind.
        """
        previous = {sig: signal.signal(sig, self._forward) for sig in PROXIED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _configure_user_namespace(self, channel: Channel, pid: int) -> None:
        linux = self.spec.get("linux", {})
        if clone_flags(linux.get("namespaces", [])) & CloneFlag.CLONE_NEWUSER:
            channel.expect(Message.USERNS_READY)
            write_id_maps(pid, linux.get("uidMappings", []), linux.get("gidMappings", []))

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


def _join_cgroup(cgroup: Cgroup, channel: Channel) -> None:
    """In the stage-1 child, first thing after the fork: move into the container's group.

    Before any namespace, before PID 1 exists: nothing of the container ever runs
    outside its limits, and everything it forks inherits the group. The child moves
    itself (``add_self``) rather than the parent moving it by PID: on v1 that skips the
    kernel's global threadgroup lock and its RCU grace period (0.4 ms instead of ~10).
    """
    try:
        cgroup.add_self()
    except Exception as err:  # noqa: BLE001 - reported to the parent, then exit
        channel.send_error(f"failed to join cgroup {cgroup.path}: {err}")
        os._exit(125)


def create_cgroup(spec: Mapping[str, Any]) -> Cgroup | None:
    """The container's cgroup, created with its limits applied; None if the config asks for none.

    A config with ``linux.resources`` but no ``linux.cgroupsPath`` gets a group under
    ``/minidocker`` with a random name. Checked before anything is created: a missing
    controller raises ControllerMissing with nothing left behind.
    """
    linux = spec.get("linux", {})
    resources = Resources.from_oci(linux.get("resources"))
    path = linux.get("cgroupsPath")
    if path is None and not resources.controllers():
        return None
    cgroup = open_cgroup(path or f"/{CGROUP_PARENT}/{os.urandom(8).hex()}")
    cgroup.check(resources)
    try:
        cgroup.create()
        cgroup.apply(resources)
    except BaseException:
        cgroup.destroy()
        raise
    return cgroup


def run(spec: Mapping[str, Any], stdio: Stdio = (0, 1, 2),
        before_namespaces: Callable[[int], None] | None = None,
        on_started: Callable[[int], None] | None = None,
        before_start: Callable[[int], None] | None = None) -> ExitStatus:
    """Create, start and wait for a container. Like ``runc run``.

    ``before_start`` gets the host PID of PID 1 after create, before the command runs:
    its namespaces exist (that is where the network is wired, like a CNI/OCI
    ``createRuntime`` hook). ``on_started`` gets it once the command runs (to record state).
    """
    proc = ContainerProcess(spec, stdio)
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
