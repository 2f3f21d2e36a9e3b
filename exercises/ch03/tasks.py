"""Chapter 03 exercises: namespaces. Fill in the five functions.

Read exercises/ch03/README.md first. Each function keeps its signature and docstring;
replace the ``raise NotImplementedError`` with your code, then grade::

    make grade CH=03              # every task
    make grade CH=03 TASK=3_5     # one task

    namespaces_of(pid)                   task 3.1  /proc/PID/ns -> {name: inode}
    namespace_diff(pid_a, pid_b)         task 3.2  the namespaces two processes do not share
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
from collections.abc import Sequence

from exercises.checkpoint import previous  # noqa: F401 - for task 3.3
from minidocker.forked import call_in_child  # noqa: F401 - for task 3.3
from minidocker.linux import CloneFlag, sethostname, setns, unshare  # noqa: F401

__all__ = ["NAMESPACE_FLAGS", "join_namespace", "map_ids", "namespace_diff", "namespaces_of", "run_isolated"]

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


def namespaces_of(pid: int | str = "self") -> dict[str, int]:
    """The namespaces of process ``pid``: every entry of /proc/PID/ns -> its inode number.

    Like ``lsns -p PID``. Each entry is a magic link that reads ``uts:[4026531838]``;
    two processes share a namespace exactly when the numbers are equal. Keep every
    entry the kernel lists, including ``pid_for_children`` and ``time_for_children``,
    except one that cannot be read because it does not exist (yet): leave it out.

    Hint: ``os.listdir``, ``os.readlink``.
    Questions: why does ``pid_for_children`` exist at all? Why does reading it fail
    with ENOENT after ``unshare(CLONE_NEWPID)``, until the first fork? ``os.stat(link).st_ino``
    gives the same number: why?

    See: namespaces(7) "The /proc/[pid]/ns/ directory".
    """
    # TODO(task 3.1): read the links of /proc/PID/ns
    raise NotImplementedError("task 3.1: read the links of /proc/PID/ns")


def namespace_diff(pid_a: int | str, pid_b: int | str) -> set[str]:
    """The names (as in /proc/PID/ns) of the namespaces that ``pid_a`` and ``pid_b`` do not share.

    A container differs from the host in (nearly) all of them; ``docker exec`` joins
    them all; ``docker run --network host`` shares "net". A name only one of them
    has counts as different.

    Hint: your ``namespaces_of`` (task 3.1), twice.
    Questions: a process that called ``unshare(CLONE_NEWPID)`` and has not forked yet:
    which entry differs from its parent's, and which does not?

    See: namespaces(7).
    """
    # TODO(task 3.2): compare two namespaces_of results
    raise NotImplementedError("task 3.2: compare two namespaces_of results")


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
