"""The container side of the runtime: code that runs in the forked processes.

``stage1`` runs in the first child: it creates the namespaces and forks ``init``,
which becomes PID 1 of the new PID namespace, builds the container's root
filesystem, waits for START and execs the user's command. See the ladder diagram in
:mod:`minidocker.runtime.handshake`.

Rules for forked code (platform notes §1.2): every path ends in ``os._exit``, never
by returning or raising into the caller's stack (that would be a second copy of the
CLI, or of a notebook kernel, running on); failures are reported over the pipe.
"""

from __future__ import annotations

import errno
import fcntl
import os
import resource
import signal
import sys
import termios

from minidocker import rootfs
from minidocker.linux import CloneFlag, set_pdeathsig, sethostname, setns, unshare
from minidocker.namespaces import NAMESPACES, clone_flags
from minidocker.network import bring_up_loopback
from minidocker.runtime import pid1
from minidocker.runtime.exitstatus import EXIT_CANNOT_EXECUTE, EXIT_ENGINE_ERROR, EXIT_NOT_FOUND
from minidocker.runtime.handshake import Channel, Message
from minidocker.security.process import apply_process_security

__all__ = ["INIT_ANNOTATION", "exec_process", "exit_like", "reset_signals", "stage1"]

TYPE_CHECKING = False  # typing costs 3 ms of start-up; annotations are strings here anyway
if TYPE_CHECKING:
    import socket
    from collections.abc import Mapping
    from typing import Any, NoReturn

# Docker's --init puts tini in front of the command; we run pid1.reap_and_forward.
INIT_ANNOTATION = "org.minidocker.init"

# Python ignores SIGPIPE and SIGXFSZ at start-up; an exec'd program must not inherit
# that (``yes | head`` would never end). The others may carry our handlers.
_RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP,
                  signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCHLD)


def stage1(spec: Mapping[str, Any], channel: Channel, console_socket: socket.socket | None) -> NoReturn:
    """First child: create the namespaces, fork init, leave with init's status."""
    try:
        set_pdeathsig(signal.SIGKILL)
        os.setsid()  # out of the terminal's process group: Ctrl-C goes to the runtime, which forwards it
        namespaces = spec.get("linux", {}).get("namespaces", [])
        _join_existing(namespaces)
        flags = clone_flags(namespaces)
        if flags & CloneFlag.CLONE_NEWUSER:
            unshare(CloneFlag.CLONE_NEWUSER)
            channel.send(Message.USERNS_READY)
        channel.expect(Message.GO)
        if flags & CloneFlag.CLONE_NEWUSER:
            # Our host uid 0 is not in the map, so inside we are "nobody" until we take the
            # namespace's own root, which we may: we hold every capability in it.
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        unshare(flags & ~CloneFlag.CLONE_NEWUSER)
        if flags & CloneFlag.CLONE_NEWNS:
            rootfs.make_mounts_private()
        pid = os.fork()
        if pid == 0:
            _init(spec, channel, console_socket, flags)
        channel.send(Message.PID, pid=pid)
        channel.close()
        if console_socket is not None:
            console_socket.close()
        _, status = os.waitpid(pid, 0)
        exit_like(status)
    except BaseException as err:  # noqa: BLE001 - everything must end in os._exit
        _report(channel, f"failed to create namespaces: {err}")
    finally:
        os._exit(EXIT_ENGINE_ERROR)


def exit_like(status: int) -> NoReturn:
    """Leave with the same wait status as the process we waited for.

    An exit code is passed on; for a signal we kill ourselves with it, so that our
    parent sees "killed by SIGTERM", not "exited with 143" (util-linux unshare(1)
    --fork does the same). No core file for that: it would be ours, not theirs.
    """
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # these two cannot be caught or reset
            signal.signal(sig, signal.SIG_DFL)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)  # only reached for a signal we cannot die of
    os._exit(os.waitstatus_to_exitcode(status))


def reset_signals() -> None:
    """Give an exec'd program default signal dispositions."""
    for sig in _RESET_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)


def exec_process(args: list[str], env: Mapping[str, str], channel: Channel | None) -> NoReturn:
    """execve the command, searching PATH from ``env``; report a failure like Docker.

    Docker's wording is kept on purpose: its CLI maps "executable file not found" and
    "no such file or directory" to exit status 127, "permission denied" to 126.
    """
    reset_signals()
    try:
        os.execvpe(args[0], args, dict(env))
    except OSError as err:
        if err.errno == errno.ENOENT:
            code = EXIT_NOT_FOUND
            why = ("no such file or directory" if "/" in args[0]
                   else "executable file not found in $PATH")
        elif err.errno in (errno.EACCES, errno.EPERM, errno.ENOEXEC, errno.EISDIR):
            code = EXIT_CANNOT_EXECUTE
            why = "permission denied" if err.errno != errno.ENOEXEC else "exec format error"
        else:
            code, why = EXIT_ENGINE_ERROR, os.strerror(err.errno or 0)
        message = f"exec: {args[0]!r}: {why}".replace("'", '"')
        if channel is not None:
            _report(channel, message, code)
        else:
            os.write(2, f"minidocker: {message}\n".encode())
        os._exit(code)


def _init(spec: Mapping[str, Any], channel: Channel, console_socket: socket.socket | None,
          flags: int) -> NoReturn:
    """PID 1: build the root filesystem, wait for START, exec the command."""
    try:
        set_pdeathsig(signal.SIGKILL)
        os.setsid()  # PID 1 leads its own session, as under runc
        process = spec["process"]
        slave = _prepare_rootfs(spec, console_socket, flags)
        if spec.get("hostname") and flags & CloneFlag.CLONE_NEWUTS:
            sethostname(spec["hostname"])
        if flags & CloneFlag.CLONE_NEWNET:
            bring_up_loopback()
        _set_stdio(slave)
        _enter_cwd(process.get("cwd", "/"))
        apply_process_security(spec)  # user, capabilities, no_new_privs, seccomp last (chapter 11)
        env = dict(item.split("=", 1) for item in process.get("env", []))
        channel.send(Message.READY)
        channel.expect(Message.START)
        os.close(channel.read_fd)
        if spec.get("annotations", {}).get(INIT_ANNOTATION) == "true":
            pid1.reap_and_forward(lambda: exec_process(process["args"], env, channel),
                                  close_fds=[channel.write_fd], terminal=slave is not None)
        exec_process(process["args"], env, channel)
    except BaseException as err:  # noqa: BLE001
        _report(channel, f"failed to set up the container: {err}")
    finally:
        os._exit(EXIT_ENGINE_ERROR)


def _join_existing(namespaces: list[Mapping[str, str]]) -> None:
    """setns into namespaces given by path (``--network container:NAME`` and the like)."""
    for entry in namespaces:
        if entry.get("path"):
            fd = os.open(entry["path"], os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(fd, NAMESPACES[entry["type"]].flag)
            finally:
                os.close(fd)


def _prepare_rootfs(spec: Mapping[str, Any], console_socket: socket.socket | None, flags: int) -> int | None:
    """Mounts, devices, console, pivot_root, masked paths. Returns the pty slave fd, if any."""
    root = spec["root"]["path"]
    if not flags & CloneFlag.CLONE_NEWNS:
        raise ValueError("a container needs its own mount namespace ('mount' in linux.namespaces)")
    rootfs.bind_onto_itself(root)
    mounts = spec.get("mounts", [])
    rootfs.mount_all(root, mounts)
    if any(m["destination"] == "/dev" and m.get("type") == "tmpfs" for m in mounts):
        rootfs.create_devices(root)
    if spec.get("linux", {}).get("devices"):
        from minidocker.security.devices import create_devices

        create_devices(root, spec["linux"]["devices"])  # --privileged: the host's (chapter 11)
    slave = None
    if spec["process"].get("terminal"):
        from minidocker.runtime import console  # only -t needs it: tty, select, termios ...

        master, slave, _ = console.open_pty(rootfs.secure_join(root, "/dev/pts"))
        console_path = rootfs.secure_join(root, "/dev/console")
        console_path.touch()
        rootfs.mount(f"/proc/self/fd/{slave}", console_path, None, rootfs.MountFlag.MS_BIND)
        assert console_socket is not None
        console.send_fd(console_socket, master)
        os.close(master)
        console_socket.close()
    rootfs.pivot_into(root)
    linux = spec.get("linux", {})
    rootfs.mask_paths(linux.get("maskedPaths", []))
    rootfs.make_readonly(linux.get("readonlyPaths", []))
    if spec["root"].get("readonly"):
        rootfs.mount(None, "/", None, rootfs.MountFlag.MS_BIND | rootfs.MountFlag.MS_REMOUNT
                     | rootfs.MountFlag.MS_RDONLY | rootfs.MountFlag.MS_REC)
    return slave


def _set_stdio(slave: int | None) -> None:
    """Make the pty slave our stdin, stdout, stderr and controlling terminal.

    Without a terminal the runtime has already put the right fds at 0, 1, 2.
    See TIOCSCTTY in ioctl_tty(2).
    """
    if slave is None:
        return
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def _enter_cwd(cwd: str) -> None:
    # Docker creates a missing WORKDIR / -w directory instead of failing.
    os.makedirs(cwd, exist_ok=True)
    os.chdir(cwd)


def _report(channel: Channel, message: str, exit_code: int = EXIT_ENGINE_ERROR) -> None:
    try:
        channel.send_error(message, exit_code)
    except OSError:
        sys.stderr.write(f"minidocker: {message}\n")
