"""Applying a layer tar to a directory, safely. Chapter 05.

Two ways to use a layer, and one function for both::

    apply_layer(tar, empty_dir, overlay=True)    the layer alone, whiteouts as overlay
                                                 markers: an overlay lowerdir (Docker's overlay2)
    apply_layer(tar, rootfs, overlay=False)      on top of the layers below, whiteouts
                                                 applied by deleting (Docker's vfs driver)

A layer comes from strangers, so extraction refuses what could write outside the
target or plant something dangerous: absolute names, ``..``, writing through a
symlink, hard links to outside the layer, device nodes (unless allowed), oversized
names. Ownership, modes, times, xattrs, hard links and holes of sparse files are kept.
See: tar(5), https://github.com/opencontainers/image-spec/blob/main/layer.md
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tarfile
from pathlib import Path

from minidocker.errors import InvalidArgument
from minidocker.record import Record
from minidocker.storage.whiteout import OPAQUE_XATTR, make_whiteout, set_opaque, whiteout_target

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import BinaryIO

    from minidocker.storage.tarsplit import TarSplitter  # chapter 06: a layer tar kept as its tree

__all__ = ["LayerStats", "OverwriteRefused", "UnsafeLayer", "apply_layer", "clean_name", "extract_into"]

NAME_MAX = 255       # one path component, see limits.h
PATH_MAX = 4096
_CHUNK = 64 << 10    # file data is copied in 64 KiB reads: tarfile joins its 10 KiB buffers
_ZEROS = bytes(_CHUNK)  # into each read, and 64 KiB stays in the CPU cache (1 MiB: 2x slower)
_XATTR_PAX = "SCHILY.xattr."


class UnsafeLayer(InvalidArgument):
    """A layer tar entry that extraction refuses (path escape, device node, bad name ...)."""


class OverwriteRefused(InvalidArgument):
    """``docker cp``'s ``noOverwriteDirNonDir``: a directory and a non-directory may not replace each
    other."""


class LayerStats(Record):
    """What one application did: entries, bytes of file data, whiteouts and opaque directories.

    ``replaced``: paths removed on the way (a later entry or a whiteout took them);
    ``created``: the paths written, left out of == and repr.
    """

    FIELDS = ("entries", "bytes", "whiteouts", "opaque", "replaced", "created")
    DEFAULTS = {"entries": 0, "bytes": 0, "whiteouts": 0, "opaque": 0, "replaced": 0, "created": set()}
    COMPARED = ("entries", "bytes", "whiteouts", "opaque", "replaced")


def clean_name(name: str) -> str:
    """A tar member name as a relative path ("" for the root), or UnsafeLayer.

    ``./etc/passwd`` -> ``etc/passwd``; ``/etc/passwd`` and ``a/../../x`` are refused.
    """
    if len(os.fsencode(name)) > PATH_MAX:
        raise UnsafeLayer(f"refusing layer entry {name[:60]!r}...: name longer than {PATH_MAX} bytes")
    if name.startswith("/"):
        raise UnsafeLayer(f"refusing layer entry {name!r}: absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    for part in parts:
        if part == "..":
            raise UnsafeLayer(f"refusing layer entry {name!r}: '..' would leave the layer")
        if len(os.fsencode(part)) > NAME_MAX:
            raise UnsafeLayer(f"refusing layer entry {name[:60]!r}...: a component is longer than "
                              f"{NAME_MAX} bytes")
    return "/".join(parts)


def apply_layer(stream: BinaryIO, dest: str | os.PathLike[str], *, overlay: bool,
                allow_devices: bool = False, split: TarSplitter | None = None) -> LayerStats:
    """Extract the layer tar read from ``stream`` into ``dest``. Like ``docker load``'s unpack.

    Args:
        stream: the uncompressed tar, read once from start to end (a pipe is fine).
        dest: an existing directory. With ``overlay=True`` it should be empty.
        overlay: keep whiteouts as overlay markers (True) or apply them by deleting (False).
        allow_devices: create character and block devices (else they are refused).
        split: a TarSplitter that ``stream`` reads through: each file written as it is in
            the tar is reported to it, so that the tar can be rebuilt from ``dest``.

    Raises:
        UnsafeLayer: an entry that would escape ``dest`` or is not allowed; ``dest`` may hold
            part of the layer then, so extract into a staging directory.
    """
    return _Extractor(Path(dest), overlay, allow_devices, split).run(stream)


def extract_into(stream: BinaryIO, dest: str | os.PathLike[str], *, no_overwrite_dir_non_dir: bool = False,
                 owner: tuple[int, int] | None = None, shown: str = "/") -> LayerStats:
    """Extract a tar into an existing tree (a container's directory). Like ``docker cp``'s PUT.

    The same checks as :func:`apply_layer` (no absolute names, no ``..``, no device nodes,
    never through a symlink, hard links only inside ``dest``), and three differences: the
    tree's own symlinks and files are never replaced to make way for a parent directory
    (that is refused: the tree is someone's filesystem), ``.wh.`` names are plain files,
    and a ``./`` entry leaves ``dest`` itself alone.

    Args:
        no_overwrite_dir_non_dir: refuse (OverwriteRefused) to replace a directory with a
            non-directory or the other way round, as ``docker cp`` asks.
        owner: (uid, gid) for every entry instead of the tar's (``docker cp -a``).
        shown: how ``dest`` is named in messages (its path in the container).
    """
    extractor = _Extractor(Path(dest), False, False, None)
    extractor.tree, extractor.no_overwrite, extractor.owner, extractor.shown = (
        True, no_overwrite_dir_non_dir, owner, shown)
    return extractor.run(stream)


class _Extractor:
    tree = False        # extract_into: an existing tree, not a layer
    no_overwrite = False
    owner: tuple[int, int] | None = None
    shown = "/"

    def __init__(self, dest: Path, overlay: bool, allow_devices: bool, split: TarSplitter | None) -> None:
        self.dest = dest
        self.overlay = overlay
        self.allow_devices = allow_devices
        self.split = split
        self.stats = LayerStats()
        self.dirs: set[str] = {""}          # verified real directories (relative paths)
        self.deferred: list[tuple[str, tarfile.TarInfo]] = []   # directory metadata, set at the end
        self.opaque: list[str] = []          # flat mode: directories to empty of lower entries

    def run(self, stream: BinaryIO) -> LayerStats:
        with tarfile.open(fileobj=stream, mode="r|", errorlevel=1) as tar:
            for member in tar:
                self.entry(tar, member)
        for directory in self.opaque:
            self._empty_lower_entries(directory)
        for rel, member in reversed(self.deferred):   # children before parents: mtimes stay
            self._metadata(self._path(rel), member)
        return self.stats

    def entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        rel = clean_name(member.name)
        self.stats.entries += 1
        parent, _, base = rel.rpartition("/")
        if not rel and not member.isdir():   # a "./" symlink would make the root itself lead anywhere
            raise UnsafeLayer(f"refusing layer entry {member.name!r}: the root of the tree can only be a "
                              "directory")
        if self.tree and not rel:
            return  # "./": the destination directory keeps its own owner and mode (as docker cp)
        removed = whiteout_target(base) if rel and not self.tree else None
        if removed is not None:
            self._whiteout(rel, parent, removed)
            return
        if base.startswith(".wh..wh.") and not self.tree:
            return  # aufs bookkeeping, not content
        if rel:
            self._ensure_parent(rel, parent)
        path = self._path(rel)
        if member.isdir():
            self._directory(rel, path, member)
            return
        self._refuse(rel, member)
        try:
            self._create(tar, rel, path, member)
        except FileExistsError:   # an earlier entry is there: replace it, as tar does
            if self.no_overwrite and os.path.isdir(path) and not os.path.islink(path):
                raise OverwriteRefused(f"cannot overwrite directory \"{self._shown(rel)}\" with "
                                       f"non-directory \"{self.shown}\"") from None
            self._clear(rel, path)
            self._create(tar, rel, path, member)
        self.stats.created.add(rel)
        if not (member.islnk() or member.isreg()):   # a regular file got its metadata in _regular
            self._metadata(path, member)

    def _refuse(self, rel: str, member: tarfile.TarInfo) -> None:
        """Devices (unless allowed) and unknown entry types are refused before anything is made."""
        if member.issym() and not member.linkname:   # symlink(2) refuses it (ENOENT): say why, not a 500
            raise UnsafeLayer(f"refusing layer entry {rel!r}: a symlink with an empty target")
        if (member.ischr() or member.isblk()) and not self.allow_devices:
            kind = "character" if member.ischr() else "block"
            raise UnsafeLayer(f"refusing layer entry {rel!r}: {kind} device "
                              f"{member.devmajor}:{member.devminor} not allowed here")
        if not (member.isreg() or member.issym() or member.islnk() or member.isdev()):
            raise UnsafeLayer(f"refusing layer entry {rel!r}: unsupported tar type {member.type!r}")

    def _create(self, tar: tarfile.TarFile, rel: str, path: Path, member: tarfile.TarInfo) -> None:
        """Make a non-directory entry. Raises FileExistsError, and follows nothing, if ``path`` exists.

        Trying first and clearing only on EEXIST saves an lstat per entry: in a fresh
        layer directory nothing is ever in the way.
        """
        if member.isreg():
            self._regular(tar, rel, path, member)
        elif member.issym():
            os.symlink(member.linkname, path)
        elif member.islnk():
            self._hardlink(rel, path, member)
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
        else:
            os.mkfifo(path, 0o600)

    # -- entry kinds -------------------------------------------------------------------------

    def _shown(self, rel: str) -> str:
        return f"{self.shown.rstrip('/')}/{rel}"

    def _directory(self, rel: str, path: Path, member: tarfile.TarInfo) -> None:
        if rel not in self.dirs:
            try:
                st = os.lstat(path)
                if not stat.S_ISDIR(st.st_mode):
                    if self.no_overwrite:
                        raise OverwriteRefused(f"cannot overwrite non-directory \"{self._shown(rel)}\" with "
                                               f"directory \"{self.shown}\"")
                    self._clear(rel, path)
                    os.mkdir(path, 0o700)
            except FileNotFoundError:
                os.mkdir(path, 0o700)
            self.dirs.add(rel)
        self.stats.created.add(rel)
        self.deferred.append((rel, member))

    def _regular(self, tar: tarfile.TarFile, rel: str, path: Path, member: tarfile.TarInfo) -> None:
        source = tar.extractfile(member)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            holes = member.issparse()
            if self.split is not None and not holes and member.size:
                self.split.file(member.offset_data, member.size, rel)   # the bytes as they are in the tar
            remaining = member.size
            while remaining > 0:
                chunk = source.read(min(_CHUNK, remaining))
                if not chunk:
                    raise UnsafeLayer(f"failed to extract {member.name!r}: the tar ends inside the file")
                remaining -= len(chunk)
                if holes and chunk == _ZEROS[: len(chunk)]:
                    os.lseek(fd, len(chunk), os.SEEK_CUR)   # keep the hole: sparse files stay sparse
                else:
                    _write_all(fd, chunk)
            if holes:
                os.ftruncate(fd, member.size)
            self._metadata(fd, member)   # through the descriptor: no more path lookups
        finally:
            os.close(fd)
        self.stats.bytes += member.size

    def _hardlink(self, rel: str, path: Path, member: tarfile.TarInfo) -> None:
        target_rel = clean_name(member.linkname)
        if not target_rel:
            raise UnsafeLayer(f"refusing layer entry {rel!r}: hard link to the layer's root")
        t_parent = target_rel.rpartition("/")[0]
        self._check_parent(target_rel, t_parent, create=False)
        target = self._path(target_rel)
        if self.overlay and target_rel not in self.stats.created:
            raise UnsafeLayer(f"refusing layer entry {rel!r}: hard link to {target_rel!r}, "
                              "which is not in this layer")
        try:
            os.link(target, path, follow_symlinks=False)
        except FileNotFoundError:
            raise UnsafeLayer(f"refusing layer entry {rel!r}: hard link to missing {target_rel!r}") from None
        except (PermissionError, IsADirectoryError):
            if not os.path.isdir(target) or os.path.islink(target):
                raise
            raise UnsafeLayer(f"refusing layer entry {rel!r}: hard link to the directory "
                              f"{target_rel!r}") from None

    def _whiteout(self, rel: str, parent: str, removed: str) -> None:
        self._ensure_parent(rel, parent)
        if removed == "":                    # .wh..wh..opq
            self.stats.opaque += 1
            if self.overlay:
                set_opaque(self._path(parent))
            else:
                self.opaque.append(parent)
            return
        target_rel = f"{parent}/{removed}" if parent else removed
        clean_name(target_rel)               # ".wh..." may not smuggle a '..'
        if "/" in removed or removed == "..":
            raise UnsafeLayer(f"refusing layer entry {rel!r}: bad whiteout name")
        self.stats.whiteouts += 1
        target = self._path(target_rel)
        if self.overlay:
            self._clear(target_rel, target)
            make_whiteout(target)
        elif target_rel not in self.stats.created:
            self._clear(target_rel, target)

    # -- paths -------------------------------------------------------------------------------

    def _path(self, rel: str) -> Path:
        return self.dest / rel if rel else self.dest

    def _ensure_parent(self, rel: str, parent: str) -> None:
        self._check_parent(rel, parent, create=True)

    def _check_parent(self, rel: str, parent: str, create: bool) -> None:
        """Every component of ``parent`` must be a real directory of dest, never a symlink."""
        if parent in self.dirs:
            return
        done = ""
        for part in parent.split("/"):
            done = f"{done}/{part}" if done else part
            if done in self.dirs:
                continue
            path = self._path(done)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                if not create:
                    raise UnsafeLayer(f"refusing layer entry {rel!r}: {done!r} does not exist") from None
                os.mkdir(path, 0o755)
                self.dirs.add(done)
                self.stats.created.add(done)
                continue
            if stat.S_ISLNK(st.st_mode):
                if self.overlay or self.tree or done in self.stats.created or not create:
                    raise UnsafeLayer(f"refusing layer entry {rel!r}: {done!r} is a symlink "
                                      f"(to {os.readlink(path)!r}); writing through it could escape the root")
                # flat mode, a symlink of a lower layer: overlayfs would show this layer's
                # directory instead of it, so the flat tree does the same
                os.unlink(path)
                os.mkdir(path, 0o755)
            elif not stat.S_ISDIR(st.st_mode):
                if self.overlay or self.tree or done in self.stats.created or not create:
                    raise UnsafeLayer(f"refusing layer entry {rel!r}: {done!r} is not a directory")
                os.unlink(path)
                os.mkdir(path, 0o755)
            self.dirs.add(done)
            if create:
                self.stats.created.add(done)  # an opaque parent keeps it: it holds this layer's entries

    def _clear(self, rel: str, path: Path) -> None:
        """Remove what is at ``path`` (a later entry replaces an earlier one, as tar does)."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
            prefix = rel + "/"
            self.dirs = {d for d in self.dirs if d != rel and not d.startswith(prefix)}
            # Their metadata must not be set at the end either: a later entry may put a symlink
            # here, and "b/a" would then name a file through it, outside the tree.
            self.deferred = [(d, m) for d, m in self.deferred if d != rel and not d.startswith(prefix)]
        else:
            os.unlink(path)
        self.stats.replaced += 1

    def _empty_lower_entries(self, directory: str) -> None:
        """Flat mode, opaque directory: delete what lower layers put in it, keep this layer's."""
        root = self._path(directory)
        prefix = f"{directory}/" if directory else ""
        for name in os.listdir(root):
            rel = prefix + name
            if rel in self.stats.created:
                if rel in self.dirs and os.path.isdir(root / name) and not os.path.islink(root / name):
                    self._empty_below(rel)
                continue
            self._clear(rel, root / name)

    def _empty_below(self, directory: str) -> None:
        """Inside an opaque directory, a directory of this layer keeps only this layer's entries."""
        self._empty_lower_entries(directory)

    def _metadata(self, target: str | int, member: tarfile.TarInfo) -> None:
        """Owner, mode, xattrs and times of ``target``: a path (never followed) or an open fd."""
        link = member.issym()
        nofollow = {} if isinstance(target, int) else {"follow_symlinks": False}
        uid, gid = self.owner or (member.uid, member.gid)
        try:
            os.chown(target, uid, gid, **nofollow)
        except PermissionError:
            pass  # not root: files stay ours
        if not link:
            os.chmod(target, member.mode & 0o7777)
        for key, value in member.pax_headers.items():
            if key.startswith(_XATTR_PAX):
                name = key[len(_XATTR_PAX):]
                if name == OPAQUE_XATTR or name.startswith(("trusted.overlay.", "user.overlay.")):
                    continue  # overlay's own markers come only from whiteout entries
                try:
                    os.setxattr(target, name, value.encode("utf-8", "surrogateescape"), **nofollow)
                except OSError as err:
                    if err.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                        raise
        os.utime(target, ns=(int(member.mtime * 1e9),) * 2, **nofollow)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def iter_members(stream: BinaryIO) -> Iterator[tarfile.TarInfo]:
    """The members of a tar stream (names only matter): a helper for tests and notebooks."""
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        yield from tar
