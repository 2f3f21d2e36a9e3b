"""A runtime of your own: the thread of the course. Reference solutions.

One file that grows with the course, one stage per chapter, each stage built on the one before::

    container(argv, rootfs, hostname, prepare)          task 3.6  namespaces, pivot_root, /proc, PID 1
    run_limited(argv, rootfs, memory, pids, ...)         task 4.5  ... inside a cgroup with limits
    run_image(argv, layers, memory, pids, hostname)      task 6.5  ... on an image's layers (overlayfs)
    run_networked(argv, layers, address, publish, ...)   task 9.4  ... on a bridge, with NAT and ports

By chapter 06 ``run_image(["sh"], [top, ..., busybox])`` is a small Docker: its own hostname and
PID 1, its own mounts, limits, and copy-on-write layers. Stuck at a stage? Continue from the
reference of that stage: ``MINIDOCKER_CHECKPOINT=ch03`` makes ``previous_stage("ch03")`` the
reference (exercises/README.md, "A runtime of your own"). Grade with
``make grade CH=mydocker`` or ``pytest exercises/mydocker -m task4_5``.

See: exercises/mydocker/README.md.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from minidocker.cgroups import parse_size
from minidocker.forked import call_in_child
from minidocker.linux import MountFlag, mount
from minidocker.network.netlink import open_route_socket
from solutions.ch02.tasks import make_dev, pivot_into
from solutions.ch03.tasks import enter_namespaces
from solutions.ch04.tasks import create_cgroup, remove_cgroup
from solutions.ch05.tasks import mount_overlay
from solutions.ch09.tasks import plug_in, publish_ports

__all__ = ["container", "run_image", "run_limited", "run_networked"]

_GROUPS = itertools.count()
PROC_FLAGS = MountFlag.MS_NOSUID | MountFlag.MS_NODEV | MountFlag.MS_NOEXEC
BRIDGE, GATEWAY, SUBNET, NFT_TABLE = "mdmy0", "10.99.0.1", "10.99.0.0/24", "mydocker"


def container(argv: Sequence[str], rootfs: str, hostname: str = "mydocker",
              prepare: Callable[[str], str] | None = None) -> tuple[int, bytes]:
    """Run ``argv`` in a container of your own; return (exit code, what it wrote on stdout).

    Stage 03 of the runtime you grow through the course (after chapters 02 and 03): in a forked
    child, enter new UTS, PID, mount and IPC namespaces with every mount private and the hostname
    set (your ``enter_namespaces``, task 3.1), call ``prepare(rootfs)`` if given (later stages join
    a cgroup or mount layers there; it returns the directory to use as the root), then fork PID 1.
    PID 1 sends its stdout to a file opened before the fork, pivots into the root (bind it onto
    itself, ``pivot_root(".", ".")``, detach the old root), mounts a fresh ``/proc`` and a minimal
    ``/dev`` and execs ``argv`` with ``PATH=/bin:/usr/bin:/sbin:/usr/sbin``. The exit code follows
    Docker: the command's code, 128 + N when signal N killed it, 127 when the program does not exist.

    Hint: ``minidocker.forked.call_in_child`` for the first child; ``minidocker.linux``:
    ``mount``, ``MountFlag``, ``pivot_root``, ``umount2``; your chapters' pieces through
    ``previous("ch03").enter_namespaces`` (task 3.1), ``previous("ch02").pivot_into`` (task 2.2,
    the pivot) and ``previous("ch02").make_dev`` (task 2.3, the ``/dev``), looked up before the fork.
    ``tempfile.TemporaryFile()`` survives the pivot as an open file descriptor.
    Questions: why does PID 1 need its own fork? Why is ``/proc`` mounted after the pivot and not
    before? What would ``ps`` show without the new ``/proc``?

    See: unshare(2), pid_namespaces(7), pivot_root(2), proc(5).
    """
    env = {"PATH": "/bin:/usr/bin:/sbin:/usr/sbin", "HOME": "/root", "HOSTNAME": hostname}
    with tempfile.TemporaryFile() as out:

        def first_child() -> int:
            enter_namespaces(hostname)       # task 3.1: UTS, PID, mount, IPC; private mounts; hostname
            root = prepare(rootfs) if prepare is not None else rootfs
            pid = os.fork()
            if pid == 0:  # PID 1 of the new PID namespace
                try:
                    os.dup2(out.fileno(), 1)
                    pivot_into(root)
                    mount("proc", "/proc", "proc", PROC_FLAGS)
                    make_dev("/dev")
                    os.execvpe(argv[0], list(argv), env)
                except PermissionError:
                    os._exit(126)
                finally:
                    os._exit(127)
            _, status = os.waitpid(pid, 0)
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code

        code = call_in_child(first_child, timeout=120)
        out.seek(0)
        return code, out.read()


def run_limited(argv: Sequence[str], rootfs: str, memory: str | int | None = None, pids: int | None = None,
                hostname: str = "mydocker", prepare: Callable[[str], str] | None = None) -> tuple[int, bytes]:
    """Run ``argv`` in your container (stage 03) inside a new cgroup with these limits.

    Stage 04. ``memory`` ("32m", or bytes) and ``pids`` (a number) become a cgroup's limit files,
    on a v2 host (one tree; enable ``+memory +pids`` in the parent's ``cgroup.subtree_control``
    first; ``memory.max``, ``memory.swap.max`` 0, ``pids.max``) or on a v1 or hybrid host (a group
    in the ``memory`` and in the ``pids`` hierarchy; ``memory.limit_in_bytes``, and
    ``memory.memsw.limit_in_bytes`` when it exists, ``pids.max``). The container's first child
    joins the group itself, through the ``prepare`` hook of ``container``, before it forks PID 1, so
    nothing of the container runs unlimited; ``prepare``, if given here, runs after that. When the
    container has ended, every group is removed (whatever is left in it killed): nothing is left.
    Without any limit (both None) there is no cgroup at all.

    Hint: your ``create_cgroup`` (task 4.1) and ``remove_cgroup`` (task 4.2) through
    ``previous("ch04")``; ``minidocker.cgroups.parse_size("32m")`` reads Docker's sizes; continue
    from your stage 03 with ``previous_stage("ch03").container``
    (``from exercises.checkpoint import previous, previous_stage``).
    Questions: why must the child join before it forks PID 1? Why is ``rmdir`` the way to delete a
    group, and when does it fail?

    See: cgroups(7), Documentation/admin-guide/cgroup-v2.rst, Documentation/admin-guide/cgroup-v1/memory.rst.
    """
    name = f"mydocker-{os.getpid()}-{next(_GROUPS)}"
    groups = [] if memory is None and pids is None else create_cgroup(   # task 4.1
        name, None if memory is None else parse_size(str(memory)), pids)
    try:
        def join_then_prepare(root: str) -> str:
            for group in groups:
                Path(group, "cgroup.procs").write_text(str(os.getpid()))
            return prepare(root) if prepare is not None else root

        return container(argv, rootfs, hostname, join_then_prepare)
    finally:
        remove_cgroup(groups)    # task 4.2


def run_image(argv: Sequence[str], layers: Sequence[str], memory: str | int | None = None,
              pids: int | None = None, hostname: str = "mydocker",
              prepare: Callable[[str], str] | None = None) -> tuple[int, bytes]:
    """Run ``argv`` on an image's layers (``layers``: directories, top first) with its own writable layer.

    Stage 06. A temporary directory holds the container's ``upper``, ``work`` and ``merged``
    directories; overlayfs mounts ``lowerdir=TOP:...:BOTTOM,upperdir=...,workdir=...`` on
    ``merged`` *inside the container's mount namespace* (through ``prepare``, so the host never
    sees the mount), and the container pivots into ``merged``; ``prepare``, if given, runs after the
    mount. The limits work as in stage 04.
    Afterwards the temporary directory is removed; the layers are never written to.

    Hint: your ``mount_overlay`` of task 5.1 (``previous("ch05").mount_overlay``) makes the
    directories and the mount and returns ``merged``; continue from your stage 04 with
    ``previous_stage("ch04").run_limited``.
    Questions: where does a file the container writes end up? What does a deleted lower file leave
    in ``upper``? Why must ``work`` be on the same filesystem as ``upper``?

    See: Documentation/filesystems/overlayfs.rst, mount(2).
    """
    work = Path(tempfile.mkdtemp(prefix="mydocker-"))

    def mount_layers(_root: str) -> str:
        root = mount_overlay(layers, work)   # task 5.1, in the container's mount namespace only
        return prepare(root) if prepare is not None else root

    try:
        return run_limited(argv, str(work / "merged"), memory, pids, hostname, mount_layers)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_networked(argv: Sequence[str], layers: Sequence[str], address: str = "10.99.0.2",
                  publish: Sequence[tuple[int, int]] = (), memory: str | int | None = None,
                  pids: int | None = None, hostname: str = "mydocker") -> tuple[int, bytes]:
    """Run ``argv`` on an image's layers (stage 06) with its own network: a veth on a bridge, NAT, ports.

    Stage 09. Before the container: a bridge ``mdmy0`` with ``10.99.0.1/24`` (the gateway), IPv4
    forwarding on, and an nft table ``mydocker`` with a masquerade for ``10.99.0.0/24`` leaving
    through another interface and, for each ``(host_port, container_port)`` of ``publish``, a DNAT
    of TCP to ``address:container_port`` in the ``prerouting`` and ``output`` hooks (``fib daddr
    type local``). In the container's first child (through ``prepare``): open a netlink socket (it
    stays in the caller's network namespace), ``unshare(CLONE_NEWNET)``, create through that socket
    the veth pair ``mdmyh<N>`` (on the bridge) and ``eth0`` (in your own, new, namespace), then give
    ``eth0`` ``address/24``, bring it and ``lo`` up and add the default route via the gateway.
    Afterwards the table and the bridge are deleted (the veth dies with the container's namespace).

    Hint: your pieces of chapter 09 through ``previous("ch09")``: ``publish_ports`` (task 9.3) makes
    the table before the container starts, ``plug_in`` (task 9.1) is the ``prepare``; the bridge:
    ``minidocker.network.netlink.open_route_socket`` (``create_bridge``, ``add_address``,
    ``delete_link``); continue from your stage 06 with ``previous_stage("ch06").run_image``. Never
    fork in ``prepare``: the first process forked after ``unshare(CLONE_NEWPID)`` becomes PID 1.
    The tests run you in a network sandbox.
    Questions: why must the table and the bridge exist before the container starts, and the veth
    only once the container's namespace does? What deletes the veth, and when?

    See: veth(4), rtnetlink(7), nft(8), network_namespaces(7).
    """
    host_end = f"mdmyh{os.getpid() % 10000}{next(_GROUPS)}"
    with open_route_socket() as nl:
        nl.add_address(nl.create_bridge(BRIDGE), GATEWAY, 24)
    try:
        ports = [(host, address, inside) for host, inside in publish]
        publish_ports(NFT_TABLE, BRIDGE, SUBNET, ports)    # task 9.3

        def plug(root: str) -> str:
            plug_in(BRIDGE, host_end, address, GATEWAY)    # task 9.1: no fork in here
            return root

        return run_image(argv, layers, memory, pids, hostname, plug)
    finally:
        subprocess.run(["nft", "delete", "table", "ip", NFT_TABLE], capture_output=True)
        with open_route_socket() as nl:
            nl.delete_link(BRIDGE)
