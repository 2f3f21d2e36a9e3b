"""Chapter 05 reference solutions: layers, overlayfs and whiteouts.

    overlay_data(lowers, upper, work)   task 5.1  the option string of an overlay mount
    apply_flat(tar_stream, rootfs)      task 5.2  apply a layer tar by deleting what it whites out
    upper_to_layer(upper, out)          task 5.3  an overlay upper directory as a layer tar
    safe_member_name(name)              task 5.4  a tar member name, checked, as a relative path

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

__all__ = ["apply_flat", "overlay_data", "safe_member_name", "upper_to_layer"]


def overlay_data(lowers: Sequence[str | os.PathLike[str]], upper: str | os.PathLike[str],
                 work: str | os.PathLike[str]) -> str:
    """The ``data`` argument of ``mount(2)`` for an overlay of ``lowers`` (top layer first).

    ``lowerdir=TOP:...:BOTTOM,upperdir=UPPER,workdir=WORK``: the kernel puts the
    leftmost lower directory on top.

    Hint: ``os.fspath`` turns a Path into a str.
    Questions: what happens if two lowers have the same file? Why must ``work`` be on
    the same filesystem as ``upper``?

    See: mount(2), Documentation/filesystems/overlayfs.rst "Multiple lower layers".
    """
    return (f"lowerdir={':'.join(os.fspath(p) for p in lowers)},"
            f"upperdir={os.fspath(upper)},workdir={os.fspath(work)}")


def apply_flat(tar_stream: BinaryIO, rootfs: str | os.PathLike[str]) -> None:
    """Apply one layer tar on top of ``rootfs`` (where the lower layers are already applied).

    Regular entries are extracted (later entries replace earlier ones). ``dir/.wh.NAME``
    deletes ``dir/NAME`` (a file or a whole directory) of the lower layers;
    ``dir/.wh..wh..opq`` deletes everything the *lower* layers put in ``dir`` but keeps the
    entries of this same layer, whether they come before or after the marker in the tar.
    Markers themselves are never extracted. Member names are trusted here (task 5.4 is about
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


def safe_member_name(name: str) -> str:
    """Check a tar member name from an untrusted layer; return it as a clean relative path.

    ``./usr/bin/`` -> ``usr/bin``; ``.`` or ``./`` -> ``""`` (the root). Raise
    ``ValueError`` with a message that says why for: an absolute name, any ``..``
    component, a component longer than 255 bytes, a name longer than 4096 bytes.

    Hint: split on "/", drop "" and "." components; measure lengths in bytes
    (``len(part.encode())``).
    Questions: why refuse ``a/../b`` although it stays inside? What else than names can
    make an extraction write outside the target (think of symlinks and hard links)?

    See: path_resolution(7), limits.h (NAME_MAX, PATH_MAX).
    """
    if len(name.encode()) > 4096:
        raise ValueError(f"refusing {name[:40]!r}...: name longer than 4096 bytes")
    if name.startswith("/"):
        raise ValueError(f"refusing {name!r}: absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    for part in parts:
        if part == "..":
            raise ValueError(f"refusing {name!r}: '..' component")
        if len(part.encode()) > 255:
            raise ValueError(f"refusing {name[:40]!r}...: component longer than 255 bytes")
    return "/".join(parts)
