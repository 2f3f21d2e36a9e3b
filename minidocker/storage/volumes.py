"""Named volumes: directories the engine manages outside any container. Chapter 10.

A container's own files live in its overlay upper directory and go with ``rm``. A
volume is a plain directory on the host, bind-mounted into containers, that outlives
them. The layout is Docker's (``/var/lib/docker/volumes``)::

    volumes/<name>/_data          what containers see (the mount source)
    volumes/<name>/volume.json    driver, labels, options, creation time

The ``local`` driver takes Docker's options: with none the volume is the directory;
``type``, ``device`` and ``o`` make it a real mount at its first use (``-o type=tmpfs
-o device=tmpfs -o o=size=64m``, or an NFS export, a block device ...), unmounted when
the last container using it ends, as ``mount -t TYPE -o O DEVICE _data`` would.

**Copy-up**: an empty volume mounted over a non-empty image directory is first filled
with that directory's content, ownership, modes, times, xattrs, symlinks and hard
links, as Docker does. :func:`copy_up` works on open directory descriptors and never
follows a symlink, on either side: an image cannot make it read or write outside.

    VolumeStore(root).create(name, labels=..., options=...)   -> Volume
    store.get(name), store.list(), store.remove(name)
    store.activate(volume) / store.deactivate(volume)          the local driver's mount
    validate_name(name), copy_up(source, destination), is_empty(path)

See: https://docs.docker.com/storage/volumes/, mount(2), openat(2).
"""

from __future__ import annotations

import errno
import os
import stat
import time
from pathlib import Path

from minidocker.atomic import read_json, write_json
from minidocker.errors import Conflict, InvalidArgument, NotFound
from minidocker.record import Record

__all__ = ["ANONYMOUS_LABEL", "LOCAL_OPTIONS", "VOLUME_NAME", "Volume", "VolumeStore", "copy_up", "is_empty",
           "is_mount_point", "validate_name"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# Docker's RestrictedNamePattern (moby daemon/names), ``[a-zA-Z0-9][a-zA-Z0-9_.-]+``: two characters at
# least. Checked without `re`, whose import costs start-up time on every `run` with a volume.
VOLUME_NAME = "[a-zA-Z0-9][a-zA-Z0-9_.-]+"
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_CHARS = _ALNUM | frozenset("_.-")


def _is_name(name: str) -> bool:
    return len(name) >= 2 and name[0] in _ALNUM and all(c in _NAME_CHARS for c in name)
# Docker 23+ marks the volumes it creates for a container's VOLUME or `-v /path` with this label.
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
# The local driver's option keys (moby volume/local/local_unix.go: validOpts).
LOCAL_OPTIONS = ("type", "device", "o", "size")


def validate_name(name: str) -> str:
    """Return ``name`` if Docker would accept it for a local volume, else raise InvalidArgument."""
    if not isinstance(name, str) or not _is_name(name):
        raise InvalidArgument(
            f'failed to create volume {name!r}: it includes invalid characters for a local volume name, '
            'only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed',
            hint="a host directory needs an absolute path (/host/dir:/container/dir)")
    return name


class Volume(Record):
    """A volume's metadata. ``mountpoint`` is its ``_data`` directory on the host.

    A Record, not a dataclass: see minidocker/record.py.
    """

    FILE = "volume.json"
    FIELDS = ("name", "driver", "labels", "options", "created_at", "mountpoint")

    def __init__(self, name: str, mountpoint: str, driver: str = "local",
                 labels: dict[str, str] | None = None, options: dict[str, str] | None = None,
                 created_at: str = "") -> None:
        self.name = name
        self.mountpoint = mountpoint
        self.driver = driver
        self.labels = dict(labels or {})
        self.options = dict(options or {})
        self.created_at = created_at  # RFC 3339, as docker volume inspect prints it

    @property
    def anonymous(self) -> bool:
        return ANONYMOUS_LABEL in self.labels

    @property
    def mounts_device(self) -> bool:
        """Whether the local driver mounts something at ``_data`` (``type`` or ``device`` given)."""
        return bool(self.options.get("type") or self.options.get("device"))

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "driver": self.driver, "labels": self.labels, "options": self.options,
                "createdAt": self.created_at}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], mountpoint: str) -> Volume:
        return cls(data["name"], mountpoint, data.get("driver", "local"), data.get("labels"),
                   data.get("options"), data.get("createdAt", ""))

    def inspect(self) -> dict[str, Any]:
        """What ``docker volume inspect`` prints for it (Docker keeps null for no labels or options)."""
        return {"CreatedAt": self.created_at, "Driver": self.driver, "Labels": self.labels or None,
                "Mountpoint": self.mountpoint, "Name": self.name, "Options": self.options or None,
                "Scope": "local"}


class VolumeStore:
    """The volumes under ``root`` (``$MINIDOCKER_ROOT/lib/volumes``)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _directory(self, name: str) -> Path:
        return self.root / validate_name(name)

    def create(self, name: str, driver: str = "local", labels: Mapping[str, str] | None = None,
               options: Mapping[str, str] | None = None, durable: bool = True) -> Volume:
        """Create a volume, or return the one of that name. Like ``docker volume create``.

        Docker returns an existing volume unchanged when asked again with no options,
        and refuses other options for it (a conflict). ``durable=False`` skips the fsync of
        its metadata (an anonymous volume of a ``--rm`` container, gone at its exit).
        """
        if driver != "local":
            raise InvalidArgument(f"failed to create volume {name}: unknown volume driver {driver!r}",
                                  hint="only the local driver is implemented")
        options = dict(options or {})
        for key in options:
            if key not in LOCAL_OPTIONS:
                raise InvalidArgument(f"failed to create volume {name}: invalid option key: {key!r}",
                                      hint="the local driver takes type, device and o "
                                           "(mount -t TYPE -o O DEVICE)")
        if "o" in options and not options.get("type") and not options.get("device"):
            raise InvalidArgument(f"failed to create volume {name}: option 'o' needs 'type' or 'device'")
        directory = self._directory(name)
        try:
            existing = self.get(name)
        except NotFound:
            existing = None
        if existing is not None:
            if options and options != existing.options:
                raise Conflict(f"failed to create volume {name}: "
                               "a volume of that name exists with other options")
            return existing
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".creating-{name}-{os.getpid()}"
        (staging / "_data").mkdir(parents=True, exist_ok=True)
        volume = Volume(name, os.fspath(directory / "_data"), driver, dict(labels or {}), options,
                        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        write_json(staging / Volume.FILE, volume.to_json(), durable=durable)
        try:
            os.rename(staging, directory)  # a volume appears whole, or not at all
        except OSError as err:
            import shutil

            shutil.rmtree(staging, ignore_errors=True)
            if err.errno in (errno.EEXIST, errno.ENOTEMPTY):
                return self.get(name)   # created by someone else meanwhile
            raise
        return volume

    def get(self, name: str) -> Volume:
        """The volume called ``name``. Raises NotFound, also for a name no volume can have (as dockerd:
        ``docker inspect a`` asks for a volume ``a`` last and must hear "no such volume", not "invalid")."""
        if not isinstance(name, str) or not _is_name(name):
            raise NotFound(f"get {name}: no such volume")
        directory = self._directory(name)
        try:
            data = read_json(directory / Volume.FILE)
        except FileNotFoundError:
            raise NotFound(f"get {name}: no such volume") from None
        return Volume.from_json(data, os.fspath(directory / "_data"))

    def list(self) -> list[Volume]:
        """Every volume, by name."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in sorted(os.listdir(self.root)):
            if entry.startswith(".") or not _is_name(entry):
                continue
            try:
                found.append(self.get(entry))
            except (NotFound, ValueError):
                continue
        return found

    def remove(self, name: str) -> None:
        """Delete a volume and its data (the caller checks that no container uses it)."""
        volume = self.get(name)
        self.deactivate(volume)
        if is_mount_point(volume.mountpoint):   # never delete through a mount (a bound device's files)
            raise Conflict(f"cannot remove volume {name}: {volume.mountpoint} is still mounted")
        directory = self._directory(name)
        hidden = self.root / f".removing-{name}-{os.getpid()}"
        os.rename(directory, hidden)   # gone for every reader at once; the files go next
        import shutil

        shutil.rmtree(hidden, ignore_errors=True)

    def lock(self, volume: Volume) -> _Lock:
        """An exclusive lock on the volume (its directory, flock(2)): two runs must not both copy up."""
        return _Lock(os.path.dirname(volume.mountpoint))

    def activate(self, volume: Volume) -> None:
        """Mount the local driver's device at ``_data`` if its options ask for one and it is not mounted."""
        if not volume.mounts_device or is_mount_point(volume.mountpoint):
            return
        from minidocker.rootfs import parse_mount_options
        from minidocker.linux import mount

        options = volume.options
        flags, _, data = parse_mount_options(options.get("o", "").split(",") if options.get("o") else [])
        fstype = options.get("type") or None
        device = options.get("device") or fstype or "none"
        if fstype is None or options.get("o", "").split(",").count("bind"):
            from minidocker.linux import MountFlag

            flags |= MountFlag.MS_BIND
        try:
            mount(device, volume.mountpoint, fstype, flags, data)
        except OSError as err:
            command = f"mount -t {fstype} -o {options.get('o', '')} {device} {volume.mountpoint}"
            raise InvalidArgument(f"failed to mount volume {volume.name}: {os.strerror(err.errno or 0)}: "
                                  f"{command}") from err

    def deactivate(self, volume: Volume) -> None:
        """Unmount what :meth:`activate` mounted (a tmpfs volume's content goes with it, as in Docker)."""
        if volume.mounts_device:
            from minidocker.linux import UmountFlag, umount2

            while is_mount_point(volume.mountpoint):   # stacked by two runs at once: all of them
                umount2(volume.mountpoint, UmountFlag.MNT_DETACH)


class _Lock:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.fd = -1

    def __enter__(self) -> None:
        import fcntl

        self.fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)   # releases the lock


def is_mount_point(path: str | os.PathLike[str]) -> bool:
    """Whether something is mounted at ``path`` (in this mount namespace).

    Read from /proc/self/mountinfo: os.path.ismount compares devices and inodes with the parent
    and misses a bind mount from the same filesystem (the local driver's ``o=bind``).
    See: proc(5) "/proc/pid/mountinfo".
    """
    target = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4].replace("\\040", " ") == target for line in f)


def is_empty(path: str | os.PathLike[str]) -> bool:
    """True if the directory has no entries (what decides a copy-up)."""
    with os.scandir(path) as entries:
        return next(entries, None) is None


_SMALL_FILE = 64 << 10
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def copy_up(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> int:
    """Copy an image directory into an empty volume, keeping everything. Like Docker's copy-up.

    Ownership, modes (setuid too), times, xattrs, symlinks (as links), hard links
    (as links), devices, fifos and sockets are kept; the destination directory takes
    the source directory's owner and mode. Every step goes through directory file
    descriptors opened with O_NOFOLLOW, so a symlink is copied, never followed.
    Returns the number of entries copied.
    See: openat(2), copy_file_range(2), xattr(7).
    """
    src = os.open(source, _DIR_FLAGS)
    try:
        dst = os.open(destination, _DIR_FLAGS)
        try:
            count = _copy_dir(src, dst, dst, {}, "")
            _copy_meta(src, dst, os.fstat(src))
            return count
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_dir(src: int, dst: int, root: int, links: dict[tuple[int, int], str], prefix: str) -> int:
    """Copy the entries of directory ``src`` into ``dst``; ``root`` is the copy's top (hard links are
    made relative to it, from ``links``: (device, inode) -> the first copy's path)."""
    count = 0
    with os.scandir(src) as entries:
        names = [e.name for e in entries]
    for name in names:
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        mode = st.st_mode
        count += 1
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst)
            child_src = os.open(name, _DIR_FLAGS, dir_fd=src)
            try:
                child_dst = os.open(name, _DIR_FLAGS, dir_fd=dst)
                try:
                    count += _copy_dir(child_src, child_dst, root, links, f"{prefix}{name}/")
                    _copy_meta(child_src, child_dst, st)
                finally:
                    os.close(child_dst)
            finally:
                os.close(child_src)
            continue
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            os.link(links[key], name, src_dir_fd=root, dst_dir_fd=dst, follow_symlinks=False)
            continue
        if stat.S_ISREG(mode):
            _copy_file(src, dst, name, st)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            _copy_xattrs(src, dst, name, symlink=True)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)
        else:   # character and block devices, fifos, sockets
            os.mknod(name, mode, st.st_rdev, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            os.chmod(name, stat.S_IMODE(mode), dir_fd=dst)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst, follow_symlinks=False)
        if st.st_nlink > 1:
            links[key] = prefix + name
    return count


def _copy_file(src: int, dst: int, name: str, st: os.stat_result) -> None:
    fin = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
    try:
        fout = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                       dir_fd=dst)
        try:
            left = st.st_size
            if left <= _SMALL_FILE:   # one read and one write beat copy_file_range's set-up for small files
                data = os.read(fin, left)
                while data:
                    data = data[os.write(fout, data):]
                left = 0
            while left > 0:
                try:
                    done = os.copy_file_range(fin, fout, left)
                except OSError as err:
                    if err.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                        raise
                    done = os.sendfile(fout, fin, None, left)
                if done == 0:
                    break   # the file shrank meanwhile
                left -= done
            _copy_meta(fin, fout, st)
        finally:
            os.close(fout)
    finally:
        os.close(fin)


def _copy_meta(src_fd: int, dst_fd: int, st: os.stat_result) -> None:
    """Owner, then mode (chown clears setuid bits), xattrs, then times: on open descriptors."""
    os.fchown(dst_fd, st.st_uid, st.st_gid)
    os.fchmod(dst_fd, stat.S_IMODE(st.st_mode))
    _copy_fd_xattrs(src_fd, dst_fd)
    os.utime(dst_fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_fd_xattrs(src_fd: int, dst_fd: int) -> None:
    try:
        names = os.listxattr(src_fd)
    except OSError:
        return
    for key in names:
        try:
            os.setxattr(dst_fd, key, os.getxattr(src_fd, key))
        except OSError as err:
            if err.errno not in (errno.ENOTSUP, errno.EPERM, errno.ENODATA):
                raise


def _copy_xattrs(src: int, dst: int, name: str, symlink: bool) -> None:
    """A symlink's xattrs (trusted.* and security.* only can be set on one); by path, no following."""
    src_path, dst_path = f"/proc/self/fd/{src}/{name}", f"/proc/self/fd/{dst}/{name}"
    try:
        names = os.listxattr(src_path, follow_symlinks=not symlink)
    except OSError:
        return
    for key in names:
        try:
            os.setxattr(dst_path, key, os.getxattr(src_path, key, follow_symlinks=not symlink),
                        follow_symlinks=not symlink)
        except OSError as err:
            if err.errno not in (errno.ENOTSUP, errno.EPERM, errno.ENODATA):
                raise
