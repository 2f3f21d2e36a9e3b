"""Chapter 05 reference solutions: layers, overlayfs and whiteouts.

    mount_overlay(layers, container_dir) task 5.1  your container's root: an overlay of the image's layers
    apply_flat(tar_stream, rootfs)      task 5.2  apply a layer tar by deleting what it whites out
    upper_to_layer(upper, out)          task 5.3  an overlay upper directory as a layer tar
    unpack_for_overlay(tar, directory)  task 5.4  a layer tar as an overlay lower (0:0 whiteouts, xattrs)

See: Documentation/filesystems/overlayfs.rst, the OCI image spec's layer.md, tar(5).
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from minidocker.linux import mount

__all__ = ["apply_flat", "mount_overlay", "unpack_for_overlay", "upper_to_layer"]


def mount_overlay(layers: Sequence[str | os.PathLike[str]], container_dir: str | os.PathLike[str]) -> str:
    """Mount your container's root filesystem: an overlay of an image's ``layers`` (top first); return it.

    Stage 6.5 calls it in the container's own mount namespace. Make ``upper`` (the container's
    writable layer), ``work`` (overlayfs's scratch space) and ``merged`` in ``container_dir``, and
    mount ``overlay`` on ``merged`` with ``lowerdir=TOP:...:BOTTOM,upperdir=...,workdir=...``.
    Return the path of ``merged``. The options must fit in one page (``mount(2)`` copies at most
    4096 bytes of them): an image may have a hundred layers under long paths. When they would
    not fit, do what Docker's overlay2 driver does: give each layer a short name, a symlink
    ``container_dir/l/N`` to it, and mount with paths relative to ``container_dir``
    (``lowerdir=l/0:l/1:...,upperdir=upper,workdir=work``), having changed the working
    directory there for the ``mount`` call, and back afterwards.

    Hint: ``minidocker.linux.mount("overlay", merged, "overlay", 0, data)``; ``os.sysconf("SC_PAGE_SIZE")``;
    ``os.symlink``; ``os.open(".", os.O_RDONLY)`` + ``os.chdir`` ... ``os.fchdir`` to come back.
    Questions: what does the kernel answer when the options are cut at 4096 bytes? What does a
    file deleted in the container leave in ``upper``? Why must ``work`` be on the same filesystem
    as ``upper``?

    See: mount(2), Documentation/filesystems/overlayfs.rst "Multiple lower layers",
    https://docs.docker.com/engine/storage/drivers/overlayfs-driver/ ("the l directory").
    """
    base = Path(container_dir)
    upper, work, merged = base / "upper", base / "work", base / "merged"
    for directory in (upper, work, merged):
        directory.mkdir(exist_ok=True)
    data = f"lowerdir={':'.join(os.fspath(layer) for layer in layers)},upperdir={upper},workdir={work}"
    if len(data.encode()) < os.sysconf("SC_PAGE_SIZE"):   # the options and their NUL in one page
        mount("overlay", merged, "overlay", 0, data)
        return str(merged)
    (base / "l").mkdir(exist_ok=True)
    for index, layer in enumerate(layers):
        os.symlink(os.path.abspath(layer), base / "l" / str(index))
    short = f"lowerdir={':'.join(f'l/{i}' for i in range(len(layers)))},upperdir=upper,workdir=work"
    here = os.open(".", os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.chdir(base)              # the kernel resolves relative option paths from the working directory
        mount("overlay", merged, "overlay", 0, short)
    finally:
        os.fchdir(here)
        os.close(here)
    return str(merged)


def apply_flat(tar_stream: BinaryIO, rootfs: str | os.PathLike[str]) -> None:
    """Apply one layer tar on top of ``rootfs`` (where the lower layers are already applied).

    Regular entries are extracted (later entries replace earlier ones). ``dir/.wh.NAME``
    deletes ``dir/NAME`` (a file or a whole directory) of the lower layers;
    ``dir/.wh..wh..opq`` deletes everything the *lower* layers put in ``dir`` but keeps the
    entries of this same layer, whether they come before or after the marker in the tar.
    Markers themselves are never extracted. Member names are trusted here (task 5.4 refuses
    untrusted ones).

    Hint: iterate with ``tarfile.open(fileobj=tar_stream, mode="r|")``; ``tar.extract(member,
    rootfs)`` for ordinary entries; remember which paths this layer created; apply opaque
    markers at the end.
    Questions: why can an opaque directory not simply be emptied when its marker is read?
    What does umoci write instead of an opaque marker?

    See: https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts
    """
    root = Path(rootfs)
    created: set[str] = set()
    opaque: list[str] = []
    with tarfile.open(fileobj=tar_stream, mode="r|") as tar:
        for member in tar:
            name = member.name.strip("/").removeprefix("./")
            parent, _, base = name.rpartition("/")
            if base == ".wh..wh..opq":
                opaque.append(parent)
                continue
            if base.startswith(".wh."):
                _remove(root / parent / base[4:])
                continue
            parts = name.split("/")
            created.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
            target = root / name
            if os.path.lexists(target) and not (member.isdir() and target.is_dir() and not target.is_symlink()):
                _remove(target)
            tar.extract(member, root, set_attrs=True, numeric_owner=True)
    for directory in opaque:
        _empty_lower(root, directory, created)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()


def _empty_lower(root: Path, directory: str, created: set[str]) -> None:
    for name in os.listdir(root / directory):
        rel = f"{directory}/{name}" if directory else name
        if rel not in created:
            _remove(root / rel)
        elif (root / rel).is_dir() and not (root / rel).is_symlink():
            _empty_lower(root, rel, created)


def upper_to_layer(upper: str | os.PathLike[str], out: BinaryIO) -> None:
    """Write an overlay upper directory to ``out`` as an OCI layer tar (what ``docker commit`` does).

    Every entry is archived with a name relative to ``upper`` (no leading "/" or "./"),
    except: a character device 0:0 (an overlay whiteout) becomes an empty regular file
    ``dir/.wh.NAME``; a directory with the xattr ``trusted.overlay.opaque`` = ``b"y"`` is
    archived and followed by an empty ``dir/.wh..wh..opq``.

    Hint: ``os.walk`` (sorted), ``os.lstat``, ``stat.S_ISCHR`` and ``st_rdev == 0``;
    ``os.getxattr(path, "trusted.overlay.opaque")``; ``tar.add(path, arcname, recursive=False)``
    and ``tar.addfile(tarfile.TarInfo(name))`` for an empty marker.
    Questions: why is a deletion not just left out of the tar? Which xattrs of the upper
    directory must not travel into the layer?

    See: Documentation/filesystems/overlayfs.rst "whiteouts and opaque directories".
    """
    upper = Path(upper)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for directory, dirs, files in os.walk(upper):
            dirs.sort()
            for name in sorted(dirs + files):
                path = Path(directory) / name
                rel = str(path.relative_to(upper))
                st = os.lstat(path)
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    parent = os.path.dirname(rel)
                    tar.addfile(tarfile.TarInfo(os.path.join(parent, ".wh." + name)))
                    continue
                tar.add(path, arcname=rel, recursive=False)
                if stat.S_ISDIR(st.st_mode) and _opaque(path):
                    tar.addfile(tarfile.TarInfo(f"{rel}/.wh..wh..opq"))


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
    except OSError:
        return False


def unpack_for_overlay(tar_stream: BinaryIO, directory: str | os.PathLike[str]) -> None:
    """Unpack one layer tar into its own (empty) ``directory``, ready to be an overlay lower directory.

    What an image store does once per layer, so that ``mount_overlay`` (task 5.1) can stack the
    layers: ordinary entries are extracted as they are; the layer's deletion markers become what
    overlayfs itself reads: ``dir/.wh.NAME`` becomes a character device 0:0 named ``dir/NAME`` (a
    whiteout), ``dir/.wh..wh..opq`` becomes the xattr ``trusted.overlay.opaque`` = ``b"y"`` on
    ``dir`` (an opaque directory; create ``dir`` if the tar has not yet). Markers themselves are
    never extracted. A member whose name is absolute or has a ``..`` component is refused with
    ``ValueError`` before it is written: a layer comes from a stranger.

    Hint: ``tarfile.open(fileobj=tar_stream, mode="r|")``, ``tar.extract(member, directory,
    set_attrs=True, numeric_owner=True)``; ``os.mknod(path, stat.S_IFCHR, os.makedev(0, 0))``;
    ``os.setxattr(path, "trusted.overlay.opaque", b"y")``.
    Questions: why can a whiteout not stay a ``.wh.`` file for overlayfs? Why do the opaque xattr's
    name and the 0:0 device need root? What does ``apply_flat`` (task 5.2) do differently, and
    when would a runtime want that instead?

    See: Documentation/filesystems/overlayfs.rst "whiteouts and opaque directories",
    https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts
    """
    root = Path(directory)
    with tarfile.open(fileobj=tar_stream, mode="r|") as tar:
        for member in tar:
            name = member.name
            parts = [p for p in name.split("/") if p not in ("", ".")]
            if name.startswith("/") or ".." in parts:
                raise ValueError(f"refusing layer member {name!r}: it would leave the layer's directory")
            parent, base = "/".join(parts[:-1]), parts[-1] if parts else ""
            if base == ".wh..wh..opq":
                (root / parent).mkdir(parents=True, exist_ok=True)
                os.setxattr(root / parent, "trusted.overlay.opaque", b"y")
            elif base.startswith(".wh."):
                (root / parent).mkdir(parents=True, exist_ok=True)
                os.mknod(root / parent / base[4:], stat.S_IFCHR, os.makedev(0, 0))
            else:
                tar.extract(member, root, set_attrs=True, numeric_owner=True)


