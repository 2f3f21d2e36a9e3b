"""Chapter 02 exercises: filesystem isolation. Fill in the four functions.

Read exercises/ch02/README.md first. Each function keeps its signature and docstring;
replace the ``raise NotImplementedError`` with your code, then grade::

    make grade CH=02              # every task
    make grade CH=02 TASK=2_2     # one task

    parse_mountinfo(text)          task 2.1  /proc/self/mountinfo -> MountInfo records
    pivot_into(rootfs)             task 2.2  make a directory the root mount, drop the host's
    make_dev(dev)                  task 2.3  a minimal /dev on a fresh tmpfs
    secure_join(root, path)        task 2.4  resolve a path inside a rootfs, symlinks clamped

Tasks 2.2 and 2.3 change mounts: the tests run them in a forked child with its own
mount namespace. Try them the same way (``minidocker.forked.call_in_child``), never
in your notebook kernel.
See: proc(5) "/proc/pid/mountinfo", mount_namespaces(7), pivot_root(2), mknod(2).
"""

from __future__ import annotations

import errno  # noqa: F401 - for task 2.4
import os
import re  # noqa: F401 - for task 2.1
import stat  # noqa: F401 - for task 2.3
from dataclasses import dataclass
from pathlib import Path

from minidocker.linux import MountFlag, UmountFlag, mount, pivot_root, umount2  # noqa: F401

__all__ = ["DEVICES", "DEV_LINKS", "MountInfo", "make_dev", "parse_mountinfo", "pivot_into", "secure_join"]


@dataclass(frozen=True)
class MountInfo:
    """One line of /proc/PID/mountinfo. What ``findmnt`` shows, one mount per record.

    ``propagation`` is one of "private", "shared", "slave", "shared,slave" or
    "unbindable" (from the optional fields ``shared:N``, ``master:N``, ``unbindable``).
    ``options`` are the per-mount options (field 6), e.g. ("rw", "nosuid", "relatime").
    """

    mount_id: int
    parent_id: int
    root: str
    mount_point: str
    options: tuple[str, ...]
    propagation: str
    fs_type: str
    source: str


# The minimal /dev of an OCI container: name -> (major, minor), mode 0666.
DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9), "tty": (5, 0)}
DEV_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
             "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}


def parse_mountinfo(text: str) -> list[MountInfo]:
    """Parse the text of /proc/PID/mountinfo into one MountInfo per line, in order.

    Each line reads ``36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw``:
    mount id, parent id, major:minor, root, mount point, mount options, zero or more
    optional fields, a lone "-", then fs type, source and superblock options. The
    kernel escapes space, tab, newline and backslash in paths as ``\\040``-style octal.

    Hint: ``str.split()`` and ``list.index("-")``; ``int(digits, 8)``.
    Questions: why can you not take the fs type from a fixed column? What does a
    mount point with a space in its name look like in the file? Which optional
    field makes a mount a slave, and can a mount be shared and a slave at once?

    See: proc(5) "/proc/pid/mountinfo", mount_namespaces(7) "Shared subtrees".
    """
    # TODO(task 2.1): one MountInfo per line
    raise NotImplementedError("task 2.1: one MountInfo per line")



def pivot_into(rootfs: str) -> None:
    """Make ``rootfs`` the root mount of this mount namespace and detach the host's root.

    What a container runtime does before exec'ing the container's command (runc's
    ``pivotRoot``). The caller is already in its own mount namespace (a forked child
    that called ``unshare(CLONE_NEWNS)``): never call this in your notebook kernel.
    Four steps: make every mount private (recursively), bind-mount ``rootfs`` onto
    itself, ``pivot_root(".", ".")`` from inside it, lazily unmount the old root
    stacked on ".". Afterwards "/" is ``rootfs``, the working directory is "/", and
    no path leads back to the host, not even the chroot escape.

    Hint: ``minidocker.linux``: ``mount``, ``pivot_root``, ``umount2``, ``MountFlag``
    (MS_REC, MS_PRIVATE, MS_BIND), ``UmountFlag.MNT_DETACH`` (not minidocker.rootfs:
    that is the answer).
    Questions: pivot_root fails with EINVAL on a systemd host unless you do step one;
    why? Why must the new root be a mount point? After ``pivot_root(".", ".")``, which
    mount is on top at "/"?

    See: pivot_root(2) "NOTES", mount_namespaces(7), mount(2) "MS_BIND".
    """
    # TODO(task 2.2): private, bind, pivot_root('.', '.'), detach
    raise NotImplementedError("task 2.2: private, bind, pivot_root('.', '.'), detach")


def make_dev(dev: str) -> None:
    """Mount a fresh tmpfs on the directory ``dev`` and fill it like a container's /dev.

    Docker never shows a container the host's /dev (the disks are there). It mounts
    a tmpfs (``nosuid``, ``mode=755``) and creates the devices of ``DEVICES``
    (character devices, mode 0666 exactly) and the symlinks of ``DEV_LINKS``.
    The caller has its own mount namespace, as for task 2.2.

    Hint: ``minidocker.linux.mount`` with fstype "tmpfs" and ``MountFlag.MS_NOSUID``;
    ``os.mknod(path, mode | stat.S_IFCHR, os.makedev(major, minor))``; ``os.symlink``.
    Questions: why is your null 0644 when you asked mknod for 0666? Why ``nosuid``
    here, and why not ``nodev``? Where does ``/dev/fd/3`` lead once /proc is mounted?

    See: mknod(2), tmpfs(5), the OCI runtime spec "Default Devices".
    """
    # TODO(task 2.3): tmpfs, device nodes, symlinks
    raise NotImplementedError("task 2.3: tmpfs, device nodes, symlinks")


def secure_join(root: str | os.PathLike[str], path: str) -> Path:
    """Join ``path`` to ``root`` as if ``root`` were "/", following symlinks but never leaving ``root``.

    Before mounting /proc into an image's rootfs, a runtime must find where
    "/proc" really is: the image may make it a symlink to "/etc" (meaning *its*
    /etc) or to "../../../../etc", and a naive ``os.path.join`` would then mount over
    the host's /etc. Resolve one component at a time: ".." never goes above
    ``root``, an absolute symlink target restarts at ``root``, a relative one
    continues from the link's directory. Components that do not exist are kept as
    they are. More than 40 symlinks: ``OSError(errno.ELOOP, ...)``.

    Hint: ``os.path.islink``, ``os.readlink``; a list of resolved components and a
    list of components still to do. (runc's ``securejoin`` does exactly this.)
    Questions: why is ``os.path.realpath(root + path)`` wrong here? What does ".." in
    the middle of a symlink target mean? How do you notice a symlink loop?

    Raises:
        OSError: ELOOP, too many symlinks.
    See: path_resolution(7), symlink(7).
    """
    # TODO(task 2.4): resolve component by component inside root
    raise NotImplementedError("task 2.4: resolve component by component inside root")
