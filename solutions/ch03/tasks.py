"""Chapter 03 reference solutions: namespaces.

Same functions, signatures and docstrings as ``exercises/ch03/tasks.py``::

    namespaces_of(pid)                   task 3.1  /proc/PID/ns -> {name: inode}
    namespace_diff(pid_a, pid_b)         task 3.2  the namespaces two processes do not share
    run_isolated(argv, hostname)         task 3.3  own hostname, PID 1 (uses run_capture, task 1.3)
    map_ids(pid, uid_ranges, gid_ranges) task 3.4  uid_map and gid_map of a user namespace
    join_namespace(pid, name)            task 3.5  setns into another process's namespace

See: namespaces(7), pid_namespaces(7), user_namespaces(7), setns(2).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from minidocker.forked import call_in_child
from minidocker.linux import CloneFlag, sethostname, setns, unshare
from solutions.ch01.tasks import run_capture

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
    found = {}
    for name in os.listdir(f"/proc/{pid}/ns"):
        try:
            link = os.readlink(f"/proc/{pid}/ns/{name}")
        except FileNotFoundError:
            continue  # pid_for_children of a PID namespace that has no PID 1 yet
        found[name] = int(link.split("[", 1)[1].rstrip("]"))
    return found


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
    a, b = namespaces_of(pid_a), namespaces_of(pid_b)
    return {name for name in a.keys() | b.keys() if a.get(name) != b.get(name)}


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

    def inside() -> tuple[int, bytes]:
        unshare(CloneFlag.CLONE_NEWUTS | CloneFlag.CLONE_NEWPID)
        sethostname(hostname)
        return run_capture(argv)

    return call_in_child(inside)


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
    texts = {}
    for name, ranges in (("uid_map", uid_ranges), ("gid_map", gid_ranges)):
        lines = []
        for inside, outside, count in ranges:
            if min(inside, outside) < 0 or count < 1:
                raise ValueError(f"failed to write {name} of {pid}: invalid range {(inside, outside, count)}")
            lines.append(f"{inside} {outside} {count}\n")
        texts[name] = "".join(lines)
    for name, text in texts.items():  # one write each: the kernel accepts no second one
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(text)


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
    flag = NAMESPACE_FLAGS[name]
    fd = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, flag)
    finally:
        os.close(fd)
