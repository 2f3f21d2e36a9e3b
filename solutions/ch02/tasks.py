"""Chapter 02 reference solutions: filesystem isolation.

Same functions, signatures and docstrings as ``exercises/ch02/tasks.py``::

    parse_mountinfo(text)          task 2.1  /proc/self/mountinfo -> MountInfo records
    pivot_into(rootfs)             task 2.2  make a directory the root mount, drop the host's
    make_dev(dev)                  task 2.3  a minimal /dev on a fresh tmpfs
    secure_join(root, path)        task 2.4  resolve a path inside a rootfs, symlinks clamped

See: proc(5) "/proc/pid/mountinfo", mount_namespaces(7), pivot_root(2), mknod(2).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from minidocker.linux import MountFlag, UmountFlag, mount, pivot_root, umount2

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

_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


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
    records = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        dash = fields.index("-")
        tags = {f.split(":", 1)[0] for f in fields[6:dash]}
        records.append(MountInfo(
            mount_id=int(fields[0]),
            parent_id=int(fields[1]),
            root=_unescape(fields[3]),
            mount_point=_unescape(fields[4]),
            options=tuple(fields[5].split(",")),
            propagation=_propagation(tags),
            fs_type=_unescape(fields[dash + 1]),
            source=_unescape(fields[dash + 2]),
        ))
    return records


def _propagation(tags: set[str]) -> str:
    if "shared" in tags and "master" in tags:
        return "shared,slave"
    if "shared" in tags:
        return "shared"
    if "master" in tags:
        return "slave"
    if "unbindable" in tags:
        return "unbindable"
    return "private"


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
    mount(None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE)
    mount(rootfs, rootfs, None, MountFlag.MS_BIND | MountFlag.MS_REC)
    os.chdir(rootfs)
    pivot_root(".", ".")
    umount2(".", UmountFlag.MNT_DETACH)
    os.chdir("/")


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
    mount("tmpfs", dev, "tmpfs", MountFlag.MS_NOSUID, "mode=755,size=65536k")
    for name, (major, minor) in DEVICES.items():
        node = os.path.join(dev, name)
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
        os.chmod(node, 0o666)  # mknod applies the umask
    for name, target in DEV_LINKS.items():
        os.symlink(target, os.path.join(dev, name))


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
    root = Path(root)
    todo = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    hops = 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = root.joinpath(*done, part)
        if not candidate.is_symlink():
            done.append(part)
            continue
        hops += 1
        if hops > 40:
            raise OSError(errno.ELOOP, f"failed to resolve {path!r} in {root}: too many symlinks")
        target = os.readlink(candidate)
        if target.startswith("/"):
            done = []
        todo = [p for p in target.split("/") if p not in ("", ".")] + todo
    return root.joinpath(*done)
