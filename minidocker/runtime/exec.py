"""Run another process in a running container. Like ``docker exec`` and ``runc exec``.

There is no "container" object in the kernel to run it in: we join the namespaces
of the container's PID 1 with setns(2), one by one, then fork, because joining a PID
namespace only applies to children. The forked process is in the container's
world: its root, its hostname, its PID numbering, its network. Before that it joins
the container's cgroups (chapter 04), so that it shares its limits and is counted
in its usage, and sees them as the root of its cgroup namespace.
See: setns(2), nsenter(1), cgroups(7).
"""

from __future__ import annotations

import os

from minidocker.cgroups import join_cgroups_of
from minidocker.namespaces import NAMESPACES, enter
from minidocker.runtime.exitstatus import ExitStatus
from minidocker.runtime.init import exec_process, exit_like
from minidocker.security.process import apply_process_security  # here: the container has no minidocker

TYPE_CHECKING = False  # importing typing/collections.abc costs ms of start-up; annotations are strings
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["exec_in"]


def exec_in(pid: int, args: Sequence[str], env: Mapping[str, str] | None = None, cwd: str = "/",
            namespaces: Sequence[str] = tuple(NAMESPACES), spec: Mapping | None = None) -> ExitStatus:
    """Run ``args`` inside the namespaces of process ``pid`` and wait for it.

    The caller's stdin, stdout and stderr are the process's. With the container's ``spec``
    it also gets the container's user, capabilities, no_new_privs and seccomp filter, as
    ``runc exec`` gives them (chapter 11): without them it would be full root in there.
    """
    env = dict(env or {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"})
    child = os.fork()
    if child == 0:
        try:
            join_cgroups_of(pid)  # first: the cgroup namespace we enter next is rooted at its group
            enter(pid, namespaces)  # setns needs a single-threaded caller: this fork is one
            grandchild = os.fork()  # now inside the container's PID namespace
            if grandchild == 0:
                try:
                    os.chdir(cwd)
                    if spec is not None:
                        apply_process_security(spec)
                    exec_process(list(args), env, channel=None)
                finally:
                    os._exit(127)
            _, status = os.waitpid(grandchild, 0)
            exit_like(status)
        except BaseException as err:  # noqa: BLE001 - a fork must end in os._exit
            os.write(2, f"minidocker: failed to enter container {pid}: {err}\n".encode())
        finally:
            os._exit(125)
    _, status = os.waitpid(child, 0)
    return ExitStatus.from_wait_status(status)
