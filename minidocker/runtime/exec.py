"""Run another process in a running container. Like ``docker exec`` and ``runc exec``.

There is no "container" object in the kernel to run it in: we join the namespaces
of the container's PID 1 with setns(2), one by one, then fork, because joining a PID
namespace only applies to children. The forked process is in the container's
world: its root, its hostname, its PID numbering, its network. Before that it joins
the container's cgroups (chapter 04), so that it shares its limits and is counted
in its usage, and sees them as the root of its cgroup namespace.

    exec_in(pid, args, env, cwd) -> ExitStatus     run it and wait (we are its parent)
    exec_in(..., detach=True) -> int               its host PID; the caller's subreaper
                                                   (containerd's shim) waits for it
See: setns(2), nsenter(1), cgroups(7).
"""

from __future__ import annotations

import os

from minidocker.cgroups import join_cgroups_of
from minidocker.namespaces import NAMESPACES, enter
from minidocker.runtime.exitstatus import EXIT_ENGINE_ERROR, EXIT_NOT_FOUND, ExitStatus
from minidocker.runtime.init import exec_process, exit_like
from minidocker.runtime.spec import DEFAULT_PATH
from minidocker.security.process import (  # here: the container has no minidocker
    apply_process_security,
    seccomp_program,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

__all__ = ["exec_in"]


def exec_in(pid: int, args: Sequence[str], env: Mapping[str, str] | None = None, cwd: str = "/",
            namespaces: Sequence[str] = tuple(NAMESPACES), user: Mapping[str, Any] | None = None,
            detach: bool = False, preserve_fds: int = 0, console_socket: Any = None,
            spec: Mapping | None = None) -> Any:
    """Run ``args`` inside the namespaces of process ``pid``.

    The caller's stdin, stdout and stderr are the process's, unless ``console_socket``
    (a connected unix socket) is given: then a new pty is opened in the container's own
    devpts, its master is sent over the socket (SCM_RIGHTS, as ``runc exec
    --console-socket`` does for containerd's shim) and its slave becomes the process's
    terminal. ``user`` is an OCI ``process.user`` (uid, gid, additionalGids, umask).
    With the container's ``spec`` the process gets its user, capabilities, no_new_privs
    and seccomp filter instead, as ``runc exec`` gives them (chapter 11): without them it
    would be full root in there.
    Returns:
        its ExitStatus; with ``detach``, its host PID at once (it is not our child).
    """
    env = dict(env or [DEFAULT_PATH.split("=", 1)])
    if console_socket is not None:
        import fcntl  # noqa: F401 - here, on the host: inside the container our package is not on disk
        import termios  # noqa: F401

        from minidocker.runtime import console  # noqa: F401
    program = seccomp_program(spec) if spec is not None else None  # on the host: see security/process.py
    report = os.pipe() if detach else None
    child = os.fork()
    if child == 0:
        try:
            join_cgroups_of(pid)  # first: the cgroup namespace we enter next is rooted at its group
            enter(pid, namespaces)  # setns needs a single-threaded caller: this fork is one
            grandchild = os.fork()  # now inside the container's PID namespace
            if grandchild == 0:
                try:
                    if console_socket is not None:
                        _take_terminal(console_socket)
                    os.chdir(cwd)
                    for fd in range(3, 3 + preserve_fds):
                        os.set_inheritable(fd, True)
                    if spec is not None:
                        apply_process_security(spec, program)  # user, capabilities, no_new_privs, seccomp
                    else:
                        _set_user(user or {})
                    exec_process(list(args), env, channel=None)
                except BaseException as err:  # noqa: BLE001 - a fork must end in os._exit
                    os.write(2, f"minidocker: failed to exec in container {pid}: {err}\n".encode())
                finally:
                    os._exit(EXIT_NOT_FOUND)
            if report is not None:
                os.write(report[1], str(grandchild).encode())
                os._exit(0)
            _, status = os.waitpid(grandchild, 0)
            exit_like(status)
        except BaseException as err:  # noqa: BLE001 - a fork must end in os._exit
            os.write(2, f"minidocker: failed to enter container {pid}: {err}\n".encode())
        finally:
            os._exit(EXIT_ENGINE_ERROR)
    if report is None:
        _, status = os.waitpid(child, 0)
        return ExitStatus.from_wait_status(status)
    os.close(report[1])
    try:
        data = os.read(report[0], 32)
    finally:
        os.close(report[0])
    _, status = os.waitpid(child, 0)
    if not data:
        from minidocker.errors import ContainerError

        raise ContainerError(f"failed to exec in container {pid}: "
                             f"{ExitStatus.from_wait_status(status).describe()}")
    return int(data)


def _take_terminal(console_socket: Any) -> None:
    """A pty from the container's /dev/pts: master to the socket, slave as our terminal and stdio."""
    import fcntl
    import termios

    from minidocker.runtime import console

    master, slave, _ = console.open_pty("/dev/pts")
    console.send_fd(console_socket, master)
    os.close(master)
    console_socket.close()
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def _set_user(user: Mapping[str, Any]) -> None:
    if user.get("umask") is not None:
        os.umask(int(user["umask"]))
    if not user:
        return
    os.setgroups([int(g) for g in user.get("additionalGids", [])])
    os.setgid(int(user.get("gid", 0)))
    os.setuid(int(user.get("uid", 0)))
