"""A container's files from outside it: ``docker cp`` both ways, ``diff``, ``export``. Chapter 14.

::

    with container_root(service, "web") as (container, root):   # its merged view, mounted meanwhile
        ...                                           # (freeze=True for a write: frozen, one writer)
        stat_path(root, "/etc/hosts")                 PathStat: HEAD .../archive
                                                      (its X-Docker-Container-Path-Stat header)
        archive_path(root, "/etc", out)               GET .../archive: a tar of it, rooted at "etc"
        extract_to_dir(root, "/tmp", tar_stream)      PUT .../archive: a tar unpacked into /tmp
        export_root(root, out)                        GET .../export: the whole filesystem
    container_changes(service, "web")                 GET .../changes: [Change] from the upper directory

Paths follow Docker's rules: relative paths are relative to ``/``; every directory on
the way is followed, symlinks included, *inside* the container (chapter 02's
secure_join); the last element is followed only when the path ends in ``/`` or ``/.``
(for a PUT, always: you may extract into a symlink to a directory). Then the directory
reached is opened and its real path checked to be under the container's root, and the
rest happens relative to that descriptor: a container that swaps a directory for a
symlink to the host's ``/`` meanwhile gets an error, never the host's files. A PUT goes
through chapter 05's extraction (storage/layer.py: extract_into), which refuses ``..``,
absolute names, device nodes, hard links out of the tree and writing through a symlink.
While it runs, a running container is frozen (its processes cannot race the checks,
CVE-2018-15664) and no other write into the same container runs.

A stopped or created container has no mounted root: :func:`container_root` mounts its
overlay snapshot for the operation (as dockerd mounts the container's layer) and
unmounts it after, unless the container started meanwhile (start reuses the mount).
See: docker-container-cp(1), docker-container-diff(1), docker-container-export(1),
the Engine API reference "ContainerArchive", path_resolution(7), openat(2).
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import stat
import threading
import time

from minidocker.errors import Conflict, InvalidArgument, NotFound
from minidocker.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path
    from typing import BinaryIO

__all__ = ["PathStat", "archive_path", "container_changes", "container_root", "export_root", "extract_to_dir",
           "frozen", "go_file_mode", "stat_path"]

_O_PATH = getattr(os, "O_PATH", 0o10000000)
_users: dict[str, int] = {}   # container ID -> operations that hold its root mounted (container_root)
_freezes: dict[str, int] = {}  # container ID -> operations that hold it frozen (frozen)
_STOPPED = ("created", "exited", "dead", "restarting")   # no process holds the root mounted


class PathStat(Record):
    """What ``HEAD /containers/{id}/archive`` tells: Docker's ContainerPathStat.

    ``mode`` holds Go's ``os.FileMode`` bits (the docker CLI decodes them), ``mtime`` is in
    nanoseconds, ``link_target`` the symlink's target resolved inside the container.
    """

    FIELDS = ("name", "size", "mode", "mtime", "link_target")

    def __init__(self, name: str, size: int, mode: int, mtime: int, link_target: str = "") -> None:
        self.name, self.size, self.mode, self.mtime, self.link_target = name, size, mode, mtime, link_target

    def is_dir(self) -> bool:
        return bool(self.mode & _GO_DIR)

    def docker_json(self) -> dict:
        """The header's JSON: ``{"name","size","mode","mtime","linkTarget"}`` (mtime as Go writes a time)."""
        return {"name": self.name, "size": self.size, "mode": self.mode, "mtime": go_time(self.mtime),
                "linkTarget": self.link_target}


# Go's os.FileMode type bits (the permission bits are the low 9, as in st_mode). See: Go's io/fs FileMode.
_GO_DIR, _GO_SYMLINK, _GO_DEVICE, _GO_PIPE, _GO_SOCKET = 1 << 31, 1 << 27, 1 << 26, 1 << 25, 1 << 24
_GO_SETUID, _GO_SETGID, _GO_CHAR, _GO_STICKY = 1 << 23, 1 << 22, 1 << 21, 1 << 20


def go_file_mode(st_mode: int) -> int:
    """An ``st_mode`` as Go's ``os.FileMode``: a directory 0755 is ``1<<31 | 0o755`` = 2147484141."""
    mode = st_mode & 0o777
    kind = stat.S_IFMT(st_mode)
    mode |= {stat.S_IFDIR: _GO_DIR, stat.S_IFLNK: _GO_SYMLINK, stat.S_IFBLK: _GO_DEVICE,
             stat.S_IFCHR: _GO_DEVICE | _GO_CHAR, stat.S_IFIFO: _GO_PIPE,
             stat.S_IFSOCK: _GO_SOCKET}.get(kind, 0)
    for bit, go_bit in ((stat.S_ISUID, _GO_SETUID), (stat.S_ISGID, _GO_SETGID), (stat.S_ISVTX, _GO_STICKY)):
        if st_mode & bit:
            mode |= go_bit
    return mode


def go_time(ns: int) -> str:
    """Nanoseconds as Go's RFC 3339 with trailing zeros of the fraction dropped:
    ``2026-11-27T17:05:47.5Z``."""
    seconds, fraction = divmod(ns, 10**9)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return text + (f".{fraction:09d}".rstrip("0") if fraction else "") + "Z"


# -- the container's root, mounted for the operation --------------------------------------------------

@contextlib.contextmanager
def container_root(service, ref: str, freeze: bool = False) -> Iterator[tuple[object, Path]]:
    """The container (by name or ID) and its merged root directory, mounted while the ``with`` lasts.

    ``service``: the daemon's ContainerService; its lock orders the mount against ``start``.
    ``freeze``: a write. A running container's processes are frozen meanwhile
    (:func:`frozen`), and writes into one container go one at a time: a second tar could
    otherwise replace a directory the first has checked with a symlink out of the root.
    """
    from minidocker.storage import Snapshot

    with service.lock:
        container = service.get(ref)
        snapshot = Snapshot(container.directory(service.roots), _layers(service, container))
        if not os.path.ismount(snapshot.rootfs):
            if not snapshot.upper.is_dir():
                raise NotFound(f"container {container.id[:12]} has no filesystem")
            if container.status not in _STOPPED:   # a foreground `minidocker run`: mounted in its namespace
                raise Conflict(f"cannot reach the files of container {container.id[:12]}: it is "
                               f"{container.status} and its root is mounted only in its own mount namespace",
                               hint="a second overlay mount of a live upper directory is undefined "
                                    "behaviour; copy when it has stopped")
            snapshot.mount()
        if not _users.get(container.id):
            try:
                _volume_binds[container.id] = _bind_volumes(service.roots, container.id, snapshot.rootfs)
            except BaseException:
                if container.status in _STOPPED:
                    snapshot.unmount()
                raise
        _users[container.id] = _users.get(container.id, 0) + 1
    try:
        if freeze:
            with _writer_lock(container.id), frozen(service, container):
                yield container, snapshot.rootfs
        else:
            yield container, snapshot.rootfs
    finally:
        with service.lock:
            _users[container.id] -= 1
            if not _users[container.id]:
                del _users[container.id]
                _unbind_volumes(_volume_binds.pop(container.id, []))
                try:
                    status = service.get(container.id).status
                except NotFound:
                    status = "exited"   # removed meanwhile: its remove unmounted it already
                if status in _STOPPED:
                    snapshot.unmount()


_volume_binds: dict[str, list[int]] = {}   # container ID -> the volume mounts bound onto its root for copies


def _bind_volumes(roots, container_id: str, rootfs: os.PathLike[str] | str) -> list[int]:
    """The container's volumes and bind mounts, bound onto its root here while a copy lasts.

    As dockerd does for ``docker cp`` (daemon/archive.go mounts the container's volumes
    first): a copy into ``/data`` of a container with ``-v vol:/data`` reaches the volume,
    not the directory its mount covers, and a read-only one stays read-only. Each target is
    resolved inside the root (secure_join) and pinned by an O_PATH descriptor checked to be
    there, so a container that swaps a directory for a symlink meanwhile cannot move the mount
    onto the host; the mounts are undone through their own descriptors, never by path, for the
    same reason. A tmpfs lives only in the container's namespace: not reachable, as with
    dockerd. Returns the mounts' descriptors, for :func:`_unbind_volumes`.
    """
    from minidocker.engine.volumes import container_mounts
    from minidocker.linux.idmap import AT_RECURSIVE, OPEN_TREE_CLOEXEC, OPEN_TREE_CLONE
    from minidocker.linux.idmap import mount_setattr_readonly, move_mount, open_tree
    from minidocker.rootfs import secure_join

    real_root = os.path.realpath(rootfs)
    mounts = [m for m in container_mounts(roots, container_id)
              if m.get("Type") in ("volume", "bind") and m.get("Source") and m.get("Destination")]
    made: list[int] = []
    try:
        for m in sorted(mounts, key=lambda m: m["Destination"].rstrip("/").count("/")):   # parents first
            target = os.fspath(secure_join(real_root, m["Destination"]))
            try:
                pinned = _pin_in_root(real_root, target, os.O_NOFOLLOW)   # the place itself, any type
            except FileNotFoundError:
                continue   # not made yet (a created container's first start makes it): nothing covers it
            try:
                tree = open_tree(m["Source"], OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE)
                try:
                    if not m.get("RW", True):
                        mount_setattr_readonly(tree)
                    move_mount(tree, pinned)
                except BaseException:
                    os.close(tree)
                    raise
                made.append(tree)
            finally:
                os.close(pinned)
    except BaseException:
        _unbind_volumes(made)
        raise
    return made


def _unbind_volumes(mounts: list[int]) -> None:
    """Detach the mounts :func:`_bind_volumes` made (children before parents), through their descriptors."""
    from minidocker.linux.flags import UmountFlag
    from minidocker.linux.syscalls import umount2

    for fd in reversed(mounts):
        try:
            umount2(f"/proc/self/fd/{fd}", UmountFlag.MNT_DETACH)
        except OSError:
            pass   # already gone: the container renamed or removed the directory it covered (a lazy detach)
        finally:
            os.close(fd)


_writer_locks: dict[str, list] = {}   # container ID -> [lock, holders and waiters]
_writer_locks_guard = threading.Lock()


@contextlib.contextmanager
def _writer_lock(container_id: str) -> Iterator[None]:
    """One writer per container at a time; the lock goes when no one holds or waits for it."""
    with _writer_locks_guard:
        entry = _writer_locks.setdefault(container_id, [threading.Lock(), 0])
        entry[1] += 1
    try:
        with entry[0]:
            yield
    finally:
        with _writer_locks_guard:
            entry[1] -= 1
            if not entry[1]:
                del _writer_locks[container_id]


@contextlib.contextmanager
def frozen(service, container) -> Iterator[None]:
    """A running container's processes frozen (its cgroup's freezer) while the ``with`` lasts.

    Writes into a live container's tree race with its processes: between our check of a
    directory and our write into it, one could swap that directory for a symlink to the
    host (CVE-2018-15664, ``docker cp``). Frozen processes cannot; dockerd froze them for
    ``cp`` too, and ``commit`` pauses by default for a consistent layer. A container that
    is not running (or is paused already) is left as it is.
    See: cgroups(7), the kernel's cgroup-v1/freezer-subsystem and cgroup-v2 "cgroup.freeze".
    """
    if container.status != "running":
        yield
        return
    from minidocker.atomic import read_json
    from minidocker.cgroups import open_cgroup

    with service.lock:   # two copies at once: the first freezes, the last thaws
        try:
            config = read_json(container.directory(service.roots) / "config.json")
            cgroup = open_cgroup(config["linux"]["cgroupsPath"])
            if not _freezes.get(container.id):
                cgroup.freeze()
        except (OSError, KeyError, ValueError) as err:
            raise Conflict(f"failed to pause container {container.id[:12]} for the copy: {err}") from None
        _freezes[container.id] = _freezes.get(container.id, 0) + 1
    try:
        yield
    finally:
        with service.lock:
            _freezes[container.id] -= 1
            if not _freezes[container.id]:
                del _freezes[container.id]
                cgroup.thaw()


def _layers(service, container) -> list:
    from minidocker.image import ImageStore

    store = ImageStore(service.roots.images)
    image = store.load_image(container.image_id) if container.image_id else store.get(container.image)
    return image.layers


# -- paths inside the root ------------------------------------------------------------------------

def _absolute(path: str) -> str:
    """Docker's absPath: relative to ``/``, cleaned, a trailing ``/`` or ``/.`` kept (it means: follow)."""
    clean = posixpath.normpath("/" + path)
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    if path.endswith("/.") and clean != "/":
        return clean + "/."
    if path.endswith("/") and clean != "/":
        return clean + "/"
    return clean


def _pin_directory(real_root: str, host_directory: str) -> int:
    """Open ``host_directory`` (a secure_join result) as an O_PATH fd, checked to be in the root.

    Raises FileNotFoundError, NotADirectoryError, or OSError(EXDEV) (see :func:`_pin_in_root`).
    """
    return _pin_in_root(real_root, host_directory, os.O_DIRECTORY)


def _pin_in_root(real_root: str, path: str, flags: int) -> int:
    """An O_PATH descriptor of ``path`` (a secure_join result, opened with ``flags`` too), checked in
    the root.

    secure_join resolved every symlink inside the root; if a component was swapped for a
    symlink since (a running container can race us), the descriptor's real path
    (``/proc/self/fd/N``) is elsewhere: that ends here.
    """
    fd = os.open(path, _O_PATH | flags | os.O_CLOEXEC)
    where = os.readlink(f"/proc/self/fd/{fd}")
    if where != real_root and not where.startswith(real_root + "/"):
        os.close(fd)
        raise OSError(errno.EXDEV, f"{path} resolved outside the container's root")
    return fd


class _Resolved:
    """A container path reached safely: a pinned directory and the entry's name in it.

    Every directory on the way is followed inside the root (secure_join), the last
    element too with ``follow_last`` or a trailing ``/`` or ``/.``. ``at`` names the entry
    through the pinned directory (``/proc/self/fd/N/name``), so only the last component
    is looked up again, never followed by the callers. The root itself is pinned as
    (the container's directory, ``rootfs``).
    """

    def __init__(self, root: Path, absolute: str, follow_last: bool) -> None:
        from minidocker.rootfs import secure_join

        self.absolute, self.real_root = absolute, os.path.realpath(root)
        directory, base = absolute.rsplit("/", 1)
        if follow_last or base in ("", "."):
            host = os.fspath(secure_join(self.real_root, absolute))
        else:
            host = os.path.join(os.fspath(secure_join(self.real_root, directory or "/")), base)
        parent, self.name = os.path.split(host)
        if host == self.real_root:
            self.fd = os.open(parent, _O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)   # ours, not the container's
        else:
            self.fd = _pin_directory(self.real_root, parent)
        self.at = f"/proc/self/fd/{self.fd}/{self.name}"

    def lstat(self) -> os.stat_result:
        return os.stat(self.name, dir_fd=self.fd, follow_symlinks=False)

    def container_path(self) -> str:
        """Where the entry is, as the container names it (symlinks resolved)."""
        where = os.path.join(os.readlink(f"/proc/self/fd/{self.fd}"), self.name)
        rel = os.path.relpath(where, self.real_root)
        return "/" if rel == "." else "/" + rel

    def link_target(self) -> str:
        """For a symlink: its target followed all the way inside the root (it need not exist), as dockerd
        tells."""
        from minidocker.rootfs import secure_join

        rel = os.path.relpath(secure_join(self.real_root, self.absolute), self.real_root)
        return "/" if rel == "." else "/" + rel

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> _Resolved:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open_resolved(root: Path, absolute: str, follow_last: bool) -> _Resolved:
    """:class:`_Resolved` and the entry's lstat checked (a trailing ``/`` needs a directory); closed on
    error."""
    resolved = None
    try:
        resolved = _Resolved(root, absolute, follow_last)
        st = resolved.lstat()
        if absolute.endswith(("/", "/.")) and not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, absolute)
        return resolved
    except BaseException:
        if resolved is not None:
            resolved.close()
        raise


def _resolve(root: Path, path: str, shown_container: str, follow_last: bool = False) -> _Resolved:
    """The path or Docker's errors: 404 "Could not find the file ...", 400 for a file used as a directory."""
    if not path:
        raise InvalidArgument("bad parameter: path cannot be empty")
    absolute = _absolute(path)
    try:
        return _open_resolved(root, absolute, follow_last)
    except FileNotFoundError:
        raise NotFound(f"Could not find the file {path} in container {shown_container}") from None
    except NotADirectoryError:
        raise InvalidArgument(f"lstat {absolute}: not a directory") from None
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENAMETOOLONG):
            raise InvalidArgument(f"lstat {absolute[:200]}: {os.strerror(err.errno).lower()}") from None
        if err.errno == errno.EXDEV:   # a component became a symlink out of the root meanwhile
            raise InvalidArgument(f"refusing {absolute}: it leads out of the container's root "
                                  "(it changed while it was resolved)") from None
        raise


def stat_path(root: Path, path: str, shown_container: str = "") -> PathStat:
    """``HEAD /containers/{id}/archive?path=``: what is at ``path``, a symlink not followed."""
    with _resolve(root, path, shown_container) as resolved:
        return _stat(resolved)


def _stat(resolved: _Resolved) -> PathStat:
    st = resolved.lstat()
    link_target = resolved.link_target() if stat.S_ISLNK(st.st_mode) else ""
    if resolved.absolute.endswith("/."):
        name = "."
    else:
        name = posixpath.basename(resolved.absolute.rstrip("/")) or "/"
    return PathStat(name, st.st_size, go_file_mode(st.st_mode), st.st_mtime_ns, link_target)


def archive_path(root: Path, path: str, out: BinaryIO, shown_container: str = "") -> PathStat:
    """``GET /containers/{id}/archive?path=``: a tar of ``path`` rooted at its base name; its stat.

    ``/tmp`` gives ``tmp/``, ``tmp/a``...; ``/tmp/.`` gives ``./``, ``./a``; a symlink is
    archived as itself. Nothing is ever followed below it.
    """
    from minidocker.storage.diff import write_tree_tar

    with _resolve(root, path, shown_container) as resolved:
        found = _stat(resolved)
        name = "/" if resolved.absolute == "/" else found.name
        write_tree_tar(resolved.at, out, name=name, whole_seconds=True)
        return found


def extract_to_dir(root: Path, path: str, stream: BinaryIO, shown_container: str = "", *,
                   no_overwrite_dir_non_dir: bool = False, owner: tuple[int, int] | None = None,
                   read_only: bool = False) -> None:
    """``PUT /containers/{id}/archive?path=``: unpack the tar read from ``stream`` into directory ``path``.

    Raises:
        NotFound: no such path. InvalidArgument: not a directory, a read-only root,
            not a tar. UnsafeLayer (an InvalidArgument): an entry that could escape or is
            not allowed; what came before it stays (as with docker cp).
    """
    import tarfile

    from minidocker.storage.layer import extract_into

    with _resolve(root, path, shown_container, follow_last=True) as resolved:
        try:   # pinned too: a symlink put there since the resolution is not a directory, never followed
            dest = os.open(resolved.name, _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                           dir_fd=resolved.fd)
        except (NotADirectoryError, FileNotFoundError):
            raise InvalidArgument("extraction point is not a directory") from None
        try:
            if read_only:
                raise InvalidArgument("container rootfs is marked read-only")
            extract_into(stream, f"/proc/self/fd/{dest}", no_overwrite_dir_non_dir=no_overwrite_dir_non_dir,
                         owner=owner, shown=resolved.container_path())
        except tarfile.ReadError as err:
            raise InvalidArgument(f"failed to extract the archive into {path}: not a tar archive "
                                  f"({err})") from None
        finally:
            os.close(dest)


def export_root(root: Path, out: BinaryIO) -> None:
    """``GET /containers/{id}/export``: every file of the container's merged view, one tar."""
    from minidocker.storage.diff import write_tree_tar

    write_tree_tar(root, out, root_entry=False, whole_seconds=True)


def container_changes(service, ref: str) -> list:
    """``GET /containers/{id}/changes``: what the container added, changed and deleted
    (storage/changes.py)."""
    from minidocker.storage.changes import changes

    container = service.get(ref)
    upper = container.directory(service.roots) / "upper"
    if not upper.is_dir():
        return []
    return changes(upper, _layers(service, container))


def container_owner(root: Path, user: str | None) -> tuple[int, int]:
    """``docker cp -a`` (copyUIDGID): the uid and gid of the container's user (its /etc/passwd for names)."""
    if not user:
        return 0, 0
    name, _, group = user.partition(":")
    uid = gid = None
    if name.isdigit():
        uid = int(name)
    passwd = _read_in_root(root, "/etc/passwd")
    for line in passwd.splitlines():
        fields = line.split(":")
        if len(fields) > 3 and (fields[0] == name or (uid is not None and fields[2] == str(uid))):
            uid, gid = int(fields[2]), int(fields[3])
            break
    if uid is None:
        raise InvalidArgument(f"unable to find user {name}: no matching entries in passwd file")
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            for line in _read_in_root(root, "/etc/group").splitlines():
                fields = line.split(":")
                if len(fields) > 2 and fields[0] == group:
                    gid = int(fields[2])
                    break
            else:
                raise InvalidArgument(f"unable to find group {group}: no matching entries in group file")
    return uid, gid if gid is not None else uid


def _read_in_root(root: Path, path: str) -> str:
    try:
        with _Resolved(root, path, follow_last=False) as resolved:
            fd = os.open(resolved.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=resolved.fd)
            with os.fdopen(fd, "r", errors="replace") as f:
                return f.read(1 << 20)
    except OSError:
        return ""
