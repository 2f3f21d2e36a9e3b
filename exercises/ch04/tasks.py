"""Chapter 04 exercises: resource limits with cgroups.

Read exercises/ch04/README.md first. Each function keeps its signature and docstring;
replace the ``raise NotImplementedError`` with your code, then grade::

    make grade CH=04              # every task
    make grade CH=04 TASK=4_3     # one task

    create_cgroup(name, memory, pids)                 task 4.1  your container's cgroup with limits, v1 or v2
    remove_cgroup(directories)                        task 4.2  ... and its teardown: kill what is left, rmdir
    create_limited_group(root, name, version, memory) task 4.3  mkdir the group, write its memory limit
    oom_report(directory, version)                    task 4.4  read why the OOM killer struck

Never move your notebook kernel or pytest into a group: the tests move only children
they fork. See: cgroups(7), Documentation/admin-guide/cgroup-v2.rst.
"""

from __future__ import annotations

import errno  # noqa: F401
import os  # noqa: F401
import signal  # noqa: F401
import time  # noqa: F401
from collections.abc import Sequence

__all__ = ["create_cgroup", "create_limited_group", "oom_report", "remove_cgroup"]


def create_cgroup(name: str, memory: int | None = None, pids: int | None = None) -> list[str]:
    """Create the cgroup of your runtime's container ``name`` with these limits; return its directories.

    Stage 4.5 calls it before the container starts, writes the container's PID into each
    directory's ``cgroup.procs``, and hands the list to ``remove_cgroup`` (task 4.2) at the end.
    Find out *at run time* how this machine mounts cgroups, from ``/proc/self/mountinfo``:

    - cgroup v2 (a ``cgroup2`` mount whose ``cgroup.controllers`` lists ``memory`` and ``pids``):
      one directory, ``V2ROOT/name``; first write ``+memory`` and ``+pids`` into
      ``V2ROOT/cgroup.subtree_control`` unless it lists them; limits in ``memory.max``,
      ``memory.swap.max`` ("0": no swap, when the file exists) and ``pids.max``.
    - cgroup v1 or hybrid (the controllers are bound to ``cgroup`` mounts, one per controller,
      named in the mount's super options): two directories, ``MEMORY/name`` then ``PIDS/name``;
      limits in ``memory.limit_in_bytes``, then ``memory.memsw.limit_in_bytes`` (the same value:
      no swap, when the file exists), and ``pids.max``.

    A limit that is None is not written; the groups are created anyway (they count and kill
    the container's processes). Write each file once. If anything fails, remove the groups
    created so far, then raise.

    Hint: in a mountinfo line the mount point is the 5th field and, after " - ", come the
    filesystem type, the source and the super options (``rw,memory``); notebook 04, sections 4.1
    and 4.2 (``minidocker.doctor.cgroup_layout()`` reads the same lines). ``os.mkdir``, ``os.rmdir``.
    Questions: why does the hybrid layout's ``cgroup2`` mount list no controllers? What does
    the kernel answer when you write ``-5`` to ``pids.max``? Why limit swap as well?

    See: cgroups(7), proc(5) "/proc/pid/mountinfo", Documentation/admin-guide/cgroup-v2.rst
    "Controlling Controllers", Documentation/admin-guide/cgroup-v1/memory.rst.
    """
    # TODO(task 4.1): cgroup mounts from mountinfo; v2: enable, mkdir, write; v1: a group per controller
    raise NotImplementedError("task 4.1: create the groups with their limit files, v1 or v2")


def remove_cgroup(directories: Sequence[str], timeout: float = 5.0) -> None:
    """Tear down your container's cgroups (what ``create_cgroup`` returned): kill what is left, rmdir.

    Every process still in a group is killed: on v2 by writing ``1`` to ``cgroup.kill`` when
    the kernel has that file (5.14 and later); otherwise, and on v1, by sending SIGKILL to each
    PID of ``cgroup.procs``, again and again, because a process may fork while you kill. When
    ``cgroup.procs`` is empty, ``rmdir`` the directory; the kernel may still answer EBUSY for a
    moment after the last process died: retry until ``timeout`` seconds have passed, then raise.
    A directory that does not exist (any more) is fine.

    Hint: ``os.kill(pid, signal.SIGKILL)`` (a PID may have exited meanwhile:
    ``ProcessLookupError``), ``os.rmdir``, ``time.monotonic``, ``time.sleep(0.01)``.
    Questions: why is ``rm -r`` of a cgroup directory refused, and ``rmdir`` not? Why can a
    group that shows no PID in ``cgroup.procs`` still be busy? What does ``cgroup.kill`` do that
    a loop over ``cgroup.procs`` cannot?

    See: cgroups(7), Documentation/admin-guide/cgroup-v2.rst "cgroup.kill", "Removing cgroups".
    """
    # TODO(task 4.2): cgroup.kill or SIGKILL each PID; rmdir, retried while EBUSY
    raise NotImplementedError("task 4.2: kill what is left, then rmdir each group")


def create_limited_group(root: str, name: str, version: int, memory: int) -> str:
    """Create the cgroup ``name`` at the top of the hierarchy under ``root`` with a memory limit.

    Return the group's directory (the one whose ``cgroup.procs`` a PID is written to).
    v1: the memory hierarchy is ``root/memory``, the group ``root/memory/name``, the
    limit goes into ``memory.limit_in_bytes``. v2: the group is ``root/name``, and
    before creating it, ``+memory`` must be written to ``root/cgroup.subtree_control``
    unless that file already lists ``memory``; the limit goes into ``memory.max``.
    Write each file with one ``write`` (a file object flushed once is fine).

    Hint: ``os.mkdir``; ``open(path, "w")``. The kernel creates the files of a new group.
    Questions: what does the kernel answer if you write "+memory" to a group that has
    processes of its own (v2)? Why is the write of ``memory.max`` allowed to be lower
    than what the group already uses?

    See: cgroups(7); cgroup-v2.rst "Enabling and Disabling", "no internal process".
    """
    # TODO(task 4.3): mkdir the group and write its limit
    raise NotImplementedError("task 4.3: mkdir the group and write its limit")


def oom_report(directory: str, version: int) -> dict[str, int | None]:
    """What the group's memory files say about OOM kills: ``{"oom_kills", "limit", "peak"}``.

    v1: ``oom_kill N`` is a line of ``memory.oom_control``; the limit is
    ``memory.limit_in_bytes``; the peak ``memory.max_usage_in_bytes``. v2: ``oom_kill N``
    is a line of ``memory.events``; the limit ``memory.max`` ("max" means None); the peak
    ``memory.peak`` (None if the kernel, before 5.19, has no such file). Values are ints.

    Hint: each line of the events files is ``KEY VALUE``.
    Questions: ``memory.events`` also has ``oom`` and ``max``: how do they differ from
    ``oom_kill``? Why can ``oom_kill`` be 1 while the container's PID 1 exited with 0?

    See: cgroup-v2.rst "memory.events"; cgroup-v1/memory.rst "oom_control".
    """
    # TODO(task 4.4): read the OOM counter, the limit and the peak
    raise NotImplementedError("task 4.4: read the OOM counter, the limit and the peak")
