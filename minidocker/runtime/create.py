"""``create``: set a container up to the last instruction before its process. Like ``runc create``.

After ``create`` the container exists: its namespaces, cgroup, mounts and root
filesystem are made, and its init (PID 1) waits; the user's process has not run a
single instruction. The create command itself then exits.

How init waits (runc's exec fifo): ``create`` makes a named pipe ``ROOT/ID/exec.fifo``
and init opens it for writing. Opening a fifo blocks until someone opens the other
end (fifo(7)), so init sleeps in open(2), holding nothing but its own setup. ``start``
is any later process: it opens the fifo for reading, which releases init, reads the
one byte init writes back (proof that it got past the open), and unlinks the fifo;
init execs. A path, unlike a pipe inherited from ``create``, can be opened by a
process that did not exist when the container was created, and its existence is
the ``created`` status.

Who waits for the exit status: the stage-1 child (which made the namespaces) leaves
as soon as init exists, so init's parent becomes the nearest child subreaper above
``create`` (prctl(2) PR_SET_CHILD_SUBREAPER: containerd's shim, or ``minidocker run``
itself), or the host's PID 1. No process of the runtime stays per container.

    create(root, id, bundle) -> State     load ``bundle/config.json`` and create
    create(root, id, spec=dict)           the same from a spec in memory (the engine's)
    create_cgroup(spec, id) -> Cgroup     the container's cgroup, limits applied

Every failure leaves nothing: no state directory, cgroup, process or mount (the
mounts live in the container's mount namespace and go with its last process).
"""

from __future__ import annotations

import gc
import os
import time

# The C half of the signal module: the same functions and numbers, without the enums that
# `import signal` builds (it imports enum: 4-10 ms at each runtime command's start, bench/README.md).
import _signal as signal

from minidocker.errors import Conflict, InvalidArgument
from minidocker.linux.procfs import start_time
from minidocker.runtime.exitstatus import EXIT_ENGINE_ERROR
from minidocker.runtime.hooks import run_hooks
from minidocker.runtime.state import FIFO, State, container_dir
from minidocker.runtime.status import Status

# The rest (cgroups, namespaces, ctypes, the container side) is imported by create_container
# when it runs: `import minidocker.runtime` stays cheap for `start`, `state`, `kill` ...

__all__ = ["console_connection", "create", "create_cgroup"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Mapping
    from typing import Any

    from minidocker.cgroups import Cgroup

Stdio = tuple[int, int, int]


def create(root: str, container_id: str, bundle: str | None = None, *, spec: dict[str, Any] | None = None,
           stdio: Stdio = (0, 1, 2), pid_file: str | None = None,
           console_socket: str | socket.socket | None = None, no_pivot: bool = False, preserve_fds: int = 0,
           kill_with_parent: bool = False,
           before_namespaces: Callable[[int], None] | None = None) -> State:
    """Create container ``container_id`` under ``root``; return its state (``created``).

    Args:
        bundle: the bundle directory (default: the current one); ``config.json`` is read
            from it unless ``spec`` is given.
        stdio: fds that become the container's 0, 1, 2 (the caller's by default, as runc).
        pid_file: where to write init's host PID (atomically).
        console_socket: for ``process.terminal``: a unix socket (path, or a connected
            socket) that receives the pty master (SCM_RIGHTS), like runc's.
        preserve_fds: pass fds 3 .. 3+N-1 on to the container's process.
        kill_with_parent: init gets SIGKILL when its parent (a subreaper) dies: for a
            foreground ``run``.
        before_namespaces: called with the stage-1 PID before it creates the namespaces.
    Raises:
        InvalidArgument: a bad ID or config (nothing was created).
        Conflict: the ID is in use.
        ContainerError: the container side failed (126/127 for the command); nothing is left.
    """
    container, _ = create_container(root, container_id, bundle, spec=spec, stdio=stdio, pid_file=pid_file,
                                    console_socket=console_socket, no_pivot=no_pivot,
                                    preserve_fds=preserve_fds, kill_with_parent=kill_with_parent,
                                    before_namespaces=before_namespaces)
    return container


def create_container(root: str, container_id: str, bundle: str | None = None, *,
                     spec: dict[str, Any] | None = None, stdio: Stdio = (0, 1, 2),
                     pid_file: str | None = None, console_socket: str | socket.socket | None = None,
                     no_pivot: bool = False, preserve_fds: int = 0, kill_with_parent: bool = False,
                     before_namespaces: Callable[[int], None] | None = None) -> tuple[State, Cgroup | None]:
    """:func:`create`, also returning the cgroup object (the in-process runtime reads OOM kills from it)."""
    from minidocker.runtime.bundle import check_config, load_config

    directory = container_dir(root, container_id)
    bundle = os.path.abspath(bundle or os.getcwd())
    if spec is None:
        spec = load_config(bundle)
    else:
        check_config(spec, bundle)
    if preserve_fds < 0:
        raise InvalidArgument(f"invalid --preserve-fds {preserve_fds}: it must be 0 or more")
    program = _seccomp_program(spec, container_id)
    os.makedirs(root, mode=0o711, exist_ok=True)
    try:
        os.mkdir(directory, 0o711)
    except FileExistsError:
        raise Conflict(f"failed to create container {container_id}: the ID is in use",
                       hint=f"delete it first ('delete {container_id}') or choose another ID") from None
    me = os.getpid()
    container = State(container_id, Status.CREATING, bundle=bundle, rootfs=spec["root"]["path"],
                      created=_now(), annotations=dict(spec.get("annotations", {})),
                      hooks={k: v for k, v in spec.get("hooks", {}).items()
                             if k in ("poststart", "poststop")},
                      creator=(me, start_time(me)))
    cgroup = None
    sock = None
    try:
        _make_fifo(os.path.join(directory, FIFO), spec)
        container.save(root, durable=False)  # /run is a tmpfs: a state file is worthless after a reboot
        cgroup = create_cgroup(spec, container_id)
        container.cgroup = cgroup.path if cgroup is not None else None
        sock = console_connection(console_socket) if spec["process"].get("terminal") else None
        _fork_container(root, container, spec, cgroup, stdio, sock,
                        {"kill_with_parent": kill_with_parent, "preserve_fds": preserve_fds,
                         "no_pivot": no_pivot, "bundle": bundle, "seccomp_program": program,
                         "runtime_hooks": bool(spec.get("hooks", {}).get("prestart")
                                               or spec.get("hooks", {}).get("createRuntime"))},
                        before_namespaces)
        if pid_file:
            _write_pid_file(pid_file, container.pid)  # type: ignore[arg-type]
        container.status = Status.CREATED
        container.save(root, durable=False)
    except BaseException:
        if container.pid is not None:
            _kill(container.pid)
            _reap(container.pid)  # ours if we are a subreaper (minidocker run), else no-op
        if cgroup is not None:
            cgroup.destroy()
        import shutil  # only on failure: 1-3 ms of imports

        shutil.rmtree(directory, ignore_errors=True)
        raise
    finally:
        if sock is not None and isinstance(console_socket, str):
            sock.close()  # ours; a socket object passed in is the caller's to close
    return container, cgroup


def create_cgroup(spec: Mapping[str, Any], container_id: str | None = None) -> Cgroup | None:
    """The container's cgroup, created with its limits applied.

    ``linux.cgroupsPath`` if the config has one, else ``/minidocker/<id>`` (so that
    ``kill --all``, ``ps`` and ``pause`` always have a group to work on). Checked
    before anything is created: a missing controller raises ControllerMissing with
    nothing left behind. Without an ID and without limits: None (no group).
    """
    from minidocker.cgroups import CGROUP_PARENT, Resources, open_cgroup

    linux = spec.get("linux", {})
    resources = Resources.from_oci(linux.get("resources"))
    if resources.devices is not None:
        resources.devices = with_runtime_devices(resources.devices)
    path = linux.get("cgroupsPath")
    if path is None and (container_id is None or os.geteuid() != 0) and not resources.controllers():
        return None   # rootless without a path: no group, as runc when cgroups are not delegated
    if path and ":" in path:
        raise InvalidArgument(f"invalid cgroupsPath {path!r}: "
                              "systemd's slice:prefix:name form is not supported",
                              hint="use a path like /minidocker/<id> (no --systemd-cgroup)")
    cgroup = open_cgroup(path or f"/{CGROUP_PARENT}/{container_id or os.urandom(8).hex()}")
    cgroup.check(resources)
    try:
        cgroup.create()
        cgroup.apply(resources)
    except BaseException:
        cgroup.destroy()
        raise
    return cgroup


def with_runtime_devices(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The config's device rules, then the devices a container always gets, as runc appends them.

    runc appends its allowed devices (null, zero, full, tty, random, urandom, console, ptmx,
    pts, mknod of any node) after the config's rules: a config that denies all ("a", as
    ``runc spec`` and umoci write) still gets a working /dev and terminal (libcontainer/specconv).
    A rule the config already allows after its last deny is left out: Docker's config holds
    them all, and each would be one more write to devices.allow for nothing.
    """
    from minidocker.security.devices import DEFAULT_DEVICE_RULES

    last_deny = max((i for i, rule in enumerate(rules) if not rule.get("allow")), default=-1)
    allowed = rules[last_deny + 1:]
    return [*rules, *(rule for rule in DEFAULT_DEVICE_RULES[1:] if rule not in allowed)]


def _seccomp_program(spec: Mapping[str, Any], container_id: str) -> bytes | None:
    """The filter init will load, compiled here, before the fork (see security/process.py)."""
    from minidocker.security.process import seccomp_program

    try:
        return seccomp_program(spec)
    except ValueError as err:
        raise InvalidArgument(f"failed to create container {container_id}: {err}") from None


def _fork_container(root: str, container: State, spec: dict[str, Any], cgroup: Cgroup | None, stdio: Stdio,
                    sock: socket.socket | None, options: dict[str, Any],
                    before_namespaces: Callable[[int], None] | None) -> None:
    """Fork stage 1 and talk it (then init) through to READY; fills ``container.pid``."""
    from minidocker.linux import CloneFlag
    from minidocker.namespaces import clone_flags, write_id_maps
    from minidocker.runtime.handshake import Channel, Message
    from minidocker.runtime.init import stage1

    fifo_fd = os.open(os.path.join(root, container.id, FIFO), os.O_PATH | os.O_CLOEXEC)
    to_child = os.pipe()
    to_parent = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            # Stage 1 and init live for milliseconds, then exec: a collection would only walk (and so
            # copy, page by page) the parent's objects, which fork shares copy-on-write. See gc.freeze().
            gc.disable()
            os.close(to_child[1])
            os.close(to_parent[0])
            for target, fd in enumerate(stdio):
                if fd != target:
                    os.dup2(fd, target)
            child_channel = Channel(to_child[0], to_parent[1])
            if cgroup is not None:
                _join_cgroup(cgroup, child_channel)
            stage1(spec, child_channel, sock, fifo_fd, options)
        finally:
            os._exit(EXIT_ENGINE_ERROR)
    os.close(fifo_fd)
    os.close(to_child[0])
    os.close(to_parent[1])
    channel = Channel(to_parent[0], to_child[1])
    try:
        linux = spec.get("linux", {})
        if clone_flags(linux.get("namespaces", [])) & CloneFlag.CLONE_NEWUSER:
            channel.expect(Message.USERNS_READY)
            write_id_maps(pid, linux.get("uidMappings", []), linux.get("gidMappings", []))
        if before_namespaces is not None:
            before_namespaces(pid)
        channel.send(Message.GO)
        container.pid = channel.expect(Message.PID)["pid"]
        container.start_time = start_time(container.pid)
        container.save(root, durable=False)  # from here a `delete --force` finds init, should we die
        if options["runtime_hooks"]:
            channel.expect(Message.CREATE_RUNTIME)
            hooks = spec.get("hooks", {})
            oci = container.to_oci()
            run_hooks("prestart", hooks.get("prestart", []), oci)
            run_hooks("createRuntime", hooks.get("createRuntime", []), oci)
            channel.send(Message.CREATE_RUNTIME_DONE)
        channel.expect(Message.READY)
        # Stage 1 has exited by now or is exiting (it leaves right after PID); reaped after READY, not
        # before: its exit (a forked interpreter's address space torn down, ~1 ms) overlaps init's mounts.
        # Either way init is reparented before create returns, so before `start` can release it.
        _reap(pid)
    except BaseException:
        _kill(pid)
        _reap(pid)
        raise
    finally:
        channel.close()


def _join_cgroup(cgroup: Cgroup, channel: Any) -> None:
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
        os._exit(EXIT_ENGINE_ERROR)


def _make_fifo(path: str, spec: Mapping[str, Any]) -> None:
    """The exec fifo, writable by the container's root (also when it is mapped to another host uid)."""
    os.mkfifo(path, 0o622)
    os.chmod(path, 0o622)  # mkfifo applies the umask
    linux = spec.get("linux", {})
    uid = next((m["hostID"] for m in linux.get("uidMappings", []) if m.get("containerID") == 0), 0)
    gid = next((m["hostID"] for m in linux.get("gidMappings", []) if m.get("containerID") == 0), 0)
    if uid or gid:
        os.chown(path, uid, gid)


def console_connection(console_socket: str | socket.socket | None) -> socket.socket | None:
    """The socket init sends the pty master to: the caller's, or a connection to the path given."""
    if console_socket is None or not isinstance(console_socket, str):
        return console_socket
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(console_socket)
    except OSError as err:
        sock.close()
        raise InvalidArgument(f"failed to connect to the console socket {console_socket}: "
                              f"{err.strerror or err}") from None
    return sock


def _write_pid_file(path: str, pid: int) -> None:
    from minidocker.atomic import write_bytes

    write_bytes(os.path.abspath(path), str(pid).encode(), durable=False)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _now() -> str:
    """RFC 3339 with nanoseconds, as runc's ``created``."""
    now = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // 10**9)) + f".{now % 10**9:09d}Z"
