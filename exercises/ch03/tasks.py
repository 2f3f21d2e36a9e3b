"""Chapter 03 exercises: namespaces. Fill in the five functions.

Read exercises/ch03/README.md first. Each function keeps its signature and docstring;
replace the ``raise NotImplementedError`` with your code, then grade::

    make grade CH=03              # every task
    make grade CH=03 TASK=3_5     # one task

    enter_namespaces(hostname)           task 3.1  your runtime's namespaces, private mounts, hostname
    run_as_init(argv)                    task 3.2  PID 1 of your container: signals passed on, orphans reaped
    run_isolated(argv, hostname)         task 3.3  own hostname, PID 1 (uses run_capture, task 1.3)
    map_ids(pid, uid_ranges, gid_ranges) task 3.4  uid_map and gid_map of a user namespace
    join_namespace(pid, name)            task 3.5  setns into another process's namespace

Task 3.3 reuses chapter 01: ``previous("ch01").run_capture`` is *your* run_capture,
or the reference one if you opted in (MINIDOCKER_CHECKPOINT=ch01; see
exercises/checkpoint.py). Never unshare or setns in your notebook kernel: fork first.
See: namespaces(7), pid_namespaces(7), user_namespaces(7), setns(2).
"""

from __future__ import annotations

import os  # noqa: F401
import signal
from collections.abc import Sequence

from exercises.checkpoint import previous  # noqa: F401 - for task 3.3
from minidocker.forked import call_in_child  # noqa: F401 - for task 3.3
from minidocker.linux import CloneFlag, MountFlag, mount, sethostname, setns, unshare  # noqa: F401

__all__ = ["FORWARDED_SIGNALS", "NAMESPACE_FLAGS", "enter_namespaces", "join_namespace", "map_ids",
           "run_as_init", "run_isolated"]

# The file in /proc/PID/ns -> the flag that creates (unshare) or checks (setns) that type.
NAMESPACE_FLAGS = {
    "cgroup": CloneFlag.CLONE_NEWCGROUP,
    "ipc": CloneFlag.CLONE_NEWIPC,
    "mnt": CloneFlag.CLONE_NEWNS,
    "net": CloneFlag.CLONE_NEWNET,
    "pid": CloneFlag.CLONE_NEWPID,
    "user": CloneFlag.CLONE_NEWUSER,
    "uts": CloneFlag.CLONE_NEWUTS,
}


def enter_namespaces(hostname: str) -> None:
    """Put the calling process into the new namespaces of your runtime's container, and name it.

    The first half of your runtime's container (stage 3.6 calls it): in the forked child that
    will become the container's parent, ``unshare`` new UTS, PID, mount and IPC namespaces in
    one call, then make every mount of the new mount namespace private, recursively from ``/``
    (so nothing the container mounts later appears on the host), then set the hostname. The
    caller's next fork is PID 1 of the new PID namespace. The network, user and cgroup
    namespaces stay the caller's (stage 9.4 adds a network of its own).

    Hint: ``minidocker.linux``: ``unshare``, ``CloneFlag`` (or ``NAMESPACE_FLAGS`` of this
    module), ``mount(None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE)``, ``sethostname``.
    Questions: why does the caller keep its own PID, and what does ``/proc/self/ns/pid_for_children``
    show now? What would a mount made after ``unshare(CLONE_NEWNS)`` do on a host whose ``/`` is
    shared (systemd's default) without the private step?

    See: unshare(2), mount_namespaces(7) "Shared subtrees", uts_namespaces(7), ipc_namespaces(7).
    """
    # TODO(task 3.1): unshare UTS, PID, mount and IPC; make / recursively private; sethostname
    raise NotImplementedError("task 3.1: unshare the container's namespaces, private mounts, hostname")


# Signals an init passes on to the command, as tini does by default (SIGCHLD is its own).
FORWARDED_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM,
                     signal.SIGUSR1, signal.SIGUSR2)


def run_as_init(argv: Sequence[str]) -> int:
    """Be PID 1 of your container, as ``docker run --init`` (tini) is: start ``argv``, pass on signals, reap.

    Call it as PID 1 of a PID namespace (the tests do). First install a handler for each of
    ``FORWARDED_SIGNALS`` that sends the same signal to the command's process; then fork and exec
    ``argv`` (searching the PATH; exit 127 in the child if the program does not exist), with those
    signals blocked around the fork, so that one arriving before you know the child's PID waits
    instead of being lost (the child puts the default actions back and unblocks them); then reap:
    ``waitpid(-1, 0)`` in a loop, so that the orphans the kernel re-parents to PID 1 never stay
    zombies, until the command's own process has exited. Return its exit code the Docker way:
    the code it exited with, 128 + N when signal N killed it.

    Hint: ``signal.signal(signum, handler)``, ``signal.pthread_sigmask(signal.SIG_BLOCK, ...)``,
    ``os.kill``, ``os.fork``, ``os.execvp``, ``os.waitpid(-1, 0)``, ``os.waitstatus_to_exitcode``;
    chapter 01's ``run_forwarding`` (task 1.4) is a close relative.
    Questions: why is a signal sent to PID 1 from inside the namespace ignored unless PID 1 has
    a handler? Why install the handlers *before* the fork? What happens to the other processes
    of the namespace when your init returns and PID 1 exits?

    See: pid_namespaces(7) "The namespace init process", waitpid(2), signal(7),
    https://github.com/krallin/tini.
    """
    # TODO(task 3.2): handlers that forward signals; fork + exec argv; reap with waitpid(-1) until argv exits
    raise NotImplementedError("task 3.2: forward signals, start argv, reap every child until it exits")


def run_isolated(argv: Sequence[str], hostname: str) -> tuple[int, bytes]:
    """Run a program with its own hostname as PID 1 of a new PID namespace; return (exit code, stdout).

    A first ``docker run --hostname``: in a forked child, ``unshare`` new UTS and
    PID namespaces, set the hostname, then start the program with your
    ``run_capture`` (task 1.3), whose fork makes it PID 1. The caller's hostname and
    namespaces stay as they were.

    Hint: ``minidocker.forked.call_in_child``; ``minidocker.linux``: ``unshare``,
    ``CloneFlag``, ``sethostname``; earlier chapters come through the loader:
    ``from exercises.checkpoint import previous`` then ``previous("ch01").run_capture``,
    looked up *before* you unshare: importing a module may start a process
    (``ctypes.util.find_library`` runs ldconfig), and the first process started in a
    new PID namespace becomes its PID 1; once that one exits, fork fails with ENOMEM.
    Questions: why does the process that called ``unshare(CLONE_NEWPID)`` keep its
    PID? What happens to the namespace's other processes when PID 1 exits? Why does
    ``ps`` inside still show the host's processes?

    See: pid_namespaces(7), uts_namespaces(7), unshare(2).
    """
    # TODO(task 3.3): fork, unshare UTS and PID, sethostname, run_capture
    raise NotImplementedError("task 3.3: fork, unshare UTS and PID, sethostname, run_capture")


def map_ids(
    pid: int,
    uid_ranges: Sequence[tuple[int, int, int]],
    gid_ranges: Sequence[tuple[int, int, int]],
) -> None:
    """Write the uid and gid maps of the user namespace process ``pid`` is in.

    Like ``docker run --userns-remap`` (and rootless Docker's newuidmap). Each range is
    (first id inside, first id outside, count): ``(0, 100000, 65536)`` makes root in
    the container uid 100000 on the host. Until the maps are written, the process is
    uid 65534 ("nobody"). Each file accepts exactly one write, holding every line.

    Hint: open ``/proc/PID/uid_map`` and ``/proc/PID/gid_map`` for writing; lines
    "inside outside count".
    Questions: what does the kernel answer to a second write? Why does the parent
    (outside) write the map, not the process itself? When must "deny" be written to
    /proc/PID/setgroups first?

    Raises:
        ValueError: a range with a negative id or a count below 1 (then nothing is written).
    See: user_namespaces(7) "User and group ID mappings: uid_map and gid_map".
    """
    # TODO(task 3.4): write uid_map and gid_map, one write each
    raise NotImplementedError("task 3.4: write uid_map and gid_map, one write each")


def join_namespace(pid: int, name: str) -> None:
    """Move the calling process into namespace ``name`` ("uts", "mnt", "net" ...) of process ``pid``.

    The heart of ``docker exec`` and ``nsenter --target PID --uts``. Open
    /proc/PID/ns/NAME and hand the descriptor to setns(2) with the matching flag, so
    the kernel checks the type; close it afterwards. Call this in a forked child:
    ``setns`` into a mount namespace fails in a multithreaded process.

    Hint: ``minidocker.linux.setns``, ``NAMESPACE_FLAGS`` of this module; ``os.open`` /
    ``os.close`` (in ``finally``).
    Questions: after joining a PID namespace, why does ``os.getpid()`` not change?
    Why does runc open every namespace file *before* joining the first one?

    Raises:
        KeyError: ``name`` is not a namespace type of NAMESPACE_FLAGS.
    See: setns(2), nsenter(1).
    """
    # TODO(task 3.5): open /proc/PID/ns/NAME, setns, close
    raise NotImplementedError("task 3.5: open /proc/PID/ns/NAME, setns, close")
