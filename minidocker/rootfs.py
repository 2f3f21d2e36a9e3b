"""Filesystem isolation: give a process its own root directory. Chapter 02.

Two ways, as the course shows them:

    chroot_into(path)          chroot(2) only: easy, and escapable by root (see the notebook)
    pivot_into(path)           the real thing: swap the root *mount* and detach the old one

and the pieces a container's root needs, in the order a runtime applies them
(runc's ``prepareRootfs`` does the same)::

    make_mounts_private()              stop mounts propagating back to the host
    bind_onto_itself(rootfs)           pivot_root needs a mount point
    mount_all(rootfs, spec_mounts)     /proc, /dev (tmpfs), /dev/pts, /dev/shm, /sys ...
    create_devices(rootfs)             null, zero, full, random, urandom, tty + the fd links
    pivot_into(rootfs)
    mask_paths(paths)                  hide /proc/kcore & co. behind /dev/null or an empty tmpfs
    make_readonly(paths)               /proc/sys, /proc/sysrq-trigger ... read-only

Everything here runs in a process that has its own mount namespace: never in the
notebook kernel, never on the host's mount table.
See: mount_namespaces(7), pivot_root(2), chroot(2).
"""

from __future__ import annotations

import errno
import os
import stat

from minidocker.linux import MountFlag, UmountFlag, mount, pivot_root, umount2

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from pathlib import Path

__all__ = [
    "DEFAULT_MASKED_PATHS",
    "DEFAULT_READONLY_PATHS",
    "DEVICES",
    "bind_onto_itself",
    "chroot_into",
    "create_devices",
    "make_mounts_private",
    "make_readonly",
    "mask_paths",
    "mount_all",
    "mount_one",
    "parse_mount_options",
    "pivot_into",
    "secure_join",
]

# What Docker hides and makes read-only in /proc and /sys (moby oci/defaults.go).
DEFAULT_MASKED_PATHS = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
]
DEFAULT_READONLY_PATHS = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
]

# The minimal /dev of an OCI container: name -> (major, minor). See
# the runtime spec's "Default Devices" and Documentation/admin-guide/devices.txt.
DEVICES = {
    "null": (1, 3),
    "zero": (1, 5),
    "full": (1, 7),
    "random": (1, 8),
    "urandom": (1, 9),
    "tty": (5, 0),
}
_DEV_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
    "ptmx": "pts/ptmx",
}

# OCI mount options that are mount(2) flags; "rw" & co. clear the flag they name.
_FLAG_OPTIONS: Mapping[str, tuple[bool, int]] = {
    "ro": (True, MountFlag.MS_RDONLY),
    "rw": (False, MountFlag.MS_RDONLY),
    "nosuid": (True, MountFlag.MS_NOSUID),
    "suid": (False, MountFlag.MS_NOSUID),
    "nodev": (True, MountFlag.MS_NODEV),
    "dev": (False, MountFlag.MS_NODEV),
    "noexec": (True, MountFlag.MS_NOEXEC),
    "exec": (False, MountFlag.MS_NOEXEC),
    "sync": (True, MountFlag.MS_SYNCHRONOUS),
    "async": (False, MountFlag.MS_SYNCHRONOUS),
    "noatime": (True, MountFlag.MS_NOATIME),
    "atime": (False, MountFlag.MS_NOATIME),
    "nodiratime": (True, MountFlag.MS_NODIRATIME),
    "relatime": (True, MountFlag.MS_RELATIME),
    "strictatime": (True, MountFlag.MS_STRICTATIME),
    "bind": (True, MountFlag.MS_BIND),
    "rbind": (True, MountFlag.MS_BIND | MountFlag.MS_REC),
}
_PROPAGATION_OPTIONS = {
    "private": MountFlag.MS_PRIVATE,
    "rprivate": MountFlag.MS_PRIVATE | MountFlag.MS_REC,
    "slave": MountFlag.MS_SLAVE,
    "rslave": MountFlag.MS_SLAVE | MountFlag.MS_REC,
    "shared": MountFlag.MS_SHARED,
    "rshared": MountFlag.MS_SHARED | MountFlag.MS_REC,
    "unbindable": MountFlag.MS_UNBINDABLE,
    "runbindable": MountFlag.MS_UNBINDABLE | MountFlag.MS_REC,
}


def chroot_into(path: str | os.PathLike[str]) -> None:
    """Change the root directory of this process only. Like the chroot(1) command.

    Not isolation: the mount table is the host's, and a root process can climb
    out (notebook 02 shows how). Kept for the lesson; containers use pivot_into.
    See chroot(2).
    """
    os.chroot(path)
    os.chdir("/")


def make_mounts_private(propagation: str | None = None) -> None:
    """Make every mount in this mount namespace private, recursively.

    After unshare(CLONE_NEWNS) the copied mounts keep the host's propagation; on
    systemd hosts "/" is shared, so our mounts would appear on the host. The
    unshare(1) command does this silently; the raw syscall does not.

    ``propagation`` is the OCI ``linux.rootfsPropagation``. "slave"/"rslave" makes them
    slaves instead: mounts made on the host still appear inside, none made inside appears
    on the host (chapter 10's ``-v /src:/dst:rslave``). "shared"/"rshared" (Docker asks for
    it when a bind is ``rshared``) leaves the host's shared mounts peers of ours, as runc
    does: a bind of one then carries mounts both ways. Nothing else reaches the host,
    because :func:`bind_onto_itself` makes the mount holding the root private first and
    :func:`pivot_into` makes the old root a slave before it detaches it.
    See mount_namespaces(7), "Shared subtrees".
    """
    if propagation in ("shared", "rshared"):
        mount(None, "/", None, _PROPAGATION_OPTIONS[propagation])
        return
    slave = propagation in ("slave", "rslave")
    mount(None, "/", None, MountFlag.MS_REC | (MountFlag.MS_SLAVE if slave else MountFlag.MS_PRIVATE))


def bind_onto_itself(path: str | os.PathLike[str]) -> None:
    """Bind-mount ``path`` onto itself, so that it is a mount point (pivot_root needs one).

    The mount that holds ``path`` is made private first, in this namespace only (runc's
    rootfsParentMountPrivate): were it shared, the bind and everything mounted under it
    would propagate to its peers on the host, and pivot_root(2) refuses a new root whose
    parent mount is shared (EINVAL).
    """
    _make_holder_private(os.fspath(path))
    mount(os.fspath(path), path, None, MountFlag.MS_BIND | MountFlag.MS_REC)


def _make_holder_private(path: str) -> None:
    """MS_PRIVATE on the mount ``path`` is on: EINVAL means "not a mount point", so go up."""
    while True:
        try:
            mount(None, path, None, MountFlag.MS_PRIVATE)
            return
        except OSError as err:
            if err.errno != errno.EINVAL or path in ("/", ""):
                raise
            path = os.path.dirname(path)


def pivot_into(new_root: str | os.PathLike[str]) -> None:
    """Make ``new_root`` the root mount of this mount namespace and drop the old root.

    Uses the ``pivot_root(".", ".")`` trick: the old root ends up stacked on top of
    the new one at "/", and a lazy unmount detaches it, so no directory for the
    old root is needed and nothing of the host stays reachable. ``new_root`` must
    be a mount point (see :func:`bind_onto_itself`).
    See pivot_root(2), "NOTES".
    """
    old_root = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.chdir(new_root)
        pivot_root(".", ".")
        # The old root is stacked on "/". Make it a slave before detaching it: a slave sends no
        # events, and the host's mounts it may still share a peer group with (the source of a
        # shared bind) must not be unmounted with it. runc does the same, from an fd as here.
        os.fchdir(old_root)
        mount(None, ".", None, MountFlag.MS_SLAVE | MountFlag.MS_REC)
        umount2(".", UmountFlag.MNT_DETACH)
    finally:
        os.close(old_root)
    os.chdir("/")


def secure_join(root: str | os.PathLike[str], path: str) -> Path:
    """Join ``path`` to ``root`` as if ``root`` were "/", following symlinks inside it.

    A malicious image can make /proc a symlink to /etc on the host, say; a naive
    join would then mount over the host's /etc. Each component is resolved here
    with ".." and absolute symlinks clamped to ``root`` (what runc's securejoin
    does). The last component may not exist yet. A Path; :func:`join_in_root` is the same as a str.
    """
    from pathlib import Path  # only here: the container side works with str (pathlib imports re: ~3 ms)

    return Path(join_in_root(root, path))


def join_in_root(root: str | os.PathLike[str], path: str) -> str:
    """:func:`secure_join` as a str (what the runtime's container side uses)."""
    root = os.fspath(root)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > 40:
                raise OSError(errno.ELOOP, f"too many symlinks resolving {path!r} in {root}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def parse_mount_options(options: Iterable[str]) -> tuple[int, int, str | None]:
    """Split OCI mount options into (flags, propagation flags, data string).

    ``["nosuid", "noexec", "mode=755", "size=64k"]`` -> (MS_NOSUID|MS_NOEXEC, 0, "mode=755,size=64k")
    """
    flags = 0
    propagation = 0
    data: list[str] = []
    for option in options:
        if option in _FLAG_OPTIONS:
            is_set, flag = _FLAG_OPTIONS[option]
            flags = flags | flag if is_set else flags & ~flag
        elif option in _PROPAGATION_OPTIONS:
            propagation |= _PROPAGATION_OPTIONS[option]
        else:
            data.append(option)
    return flags, propagation, ",".join(data) or None


def mount_one(rootfs: str | os.PathLike[str], entry: Mapping) -> None:
    """Mount one OCI ``mounts`` entry (destination, type, source, options) under ``rootfs``.

    Bind mounts that ask for "ro" need a second, remounting call: the kernel ignores
    MS_RDONLY on the first MS_BIND. See mount(2), "Creating a bind mount".
    """
    target = join_in_root(rootfs, entry["destination"])
    flags, propagation, data = parse_mount_options(entry.get("options", []))
    fstype = entry.get("type")
    source = entry.get("source", fstype or "none")
    is_bind = bool(flags & MountFlag.MS_BIND) or fstype == "bind"
    if is_bind:
        flags |= MountFlag.MS_BIND
        _make_mount_target(target, is_dir=os.path.isdir(source))
        mount(source, target, None, flags & (MountFlag.MS_BIND | MountFlag.MS_REC))
        remount = flags & ~(MountFlag.MS_BIND | MountFlag.MS_REC)
        if remount:
            mount(None, target, None, MountFlag.MS_BIND | MountFlag.MS_REMOUNT | remount)
    else:
        _make_mount_target(target, is_dir=True)
        mount(source, target, fstype, flags, data)
    if propagation:
        mount(None, target, None, propagation)


def mount_all(rootfs: str | os.PathLike[str], entries: Iterable[Mapping]) -> None:
    """Mount every OCI ``mounts`` entry under ``rootfs``, in order."""
    for entry in entries:
        mount_one(rootfs, entry)


def create_devices(rootfs: str | os.PathLike[str], devices: Mapping[str, tuple[int, int]] = DEVICES) -> None:
    """Fill the container's /dev (a fresh tmpfs) with the default devices and links.

    mknod(2) needs CAP_MKNOD in the initial user namespace; inside a user namespace
    it fails with EPERM, and the host's node is bind-mounted instead (as runc does).
    """
    dev = join_in_root(rootfs, "/dev")
    for name, (major, minor) in devices.items():
        node = os.path.join(dev, name)
        try:
            os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            os.chmod(node, 0o666)  # mknod applies the umask
        except PermissionError:
            _touch(node)
            mount(f"/dev/{name}", node, None, MountFlag.MS_BIND)
    for name, target in _DEV_LINKS.items():
        if not os.path.lexists(os.path.join(dev, name)):
            os.symlink(target, os.path.join(dev, name))
    if os.path.exists("/proc/kcore") and not os.path.lexists(os.path.join(dev, "core")):
        os.symlink("/proc/kcore", os.path.join(dev, "core"))


def mask_paths(paths: Iterable[str]) -> None:
    """Hide paths of the current root: files behind /dev/null, directories behind an empty read-only tmpfs.

    Call after pivot_into. Paths that do not exist are skipped, as runc does.
    """
    for path in paths:
        try:
            if os.path.isdir(path):
                mount("tmpfs", path, "tmpfs", MountFlag.MS_RDONLY)
            else:
                mount("/dev/null", path, None, MountFlag.MS_BIND)
        except FileNotFoundError:
            continue


def make_readonly(paths: Iterable[str]) -> None:
    """Make paths of the current root read-only with a bind mount remounted MS_RDONLY.

    Call after pivot_into. Paths that do not exist are skipped.
    """
    for path in paths:
        try:
            mount(path, path, None, MountFlag.MS_BIND | MountFlag.MS_REC)
        except FileNotFoundError:
            continue
        mount(
            None,
            path,
            None,
            MountFlag.MS_BIND | MountFlag.MS_REMOUNT | MountFlag.MS_RDONLY | MountFlag.MS_NOSUID
            | MountFlag.MS_NODEV | MountFlag.MS_NOEXEC,
        )


def _make_mount_target(target: str, is_dir: bool) -> None:
    if is_dir:
        os.makedirs(target, exist_ok=True)
    elif not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        _touch(target)


def _touch(path: str) -> None:
    """An empty file to mount over (what Path.touch() does), if there is none."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666))
