"""Image layers for a remapped container (``--userns-remap``): owners shifted into its range. Chapter 11.

The image's files belong to host uid 0; a container whose root is host uid 100000 would see
them as "nobody" and could not write /etc/passwd. Two ways to show them as its own::

    idmapped_lowers(lowers, directory, maps)   each layer bind-mounted with MOUNT_ATTR_IDMAP under
                                               directory/lowers/N: no copy, nothing written
    chowned_lowers(lowers, cache, maps)        a copy of each layer with every owner shifted, once
                                               per layer and mapping (cache/<uid>.<gid>/<layer>),
                                               as dockerd keeps /var/lib/docker/100000.100000/
    unmount_lowers(directory)                  the idmapped layer mounts of a container, if any

Why idmapped lower layers and not an idmapped merged mount: overlayfs takes idmapped layers
(Linux 5.19), but an overlay mount itself cannot be idmapped (mount_setattr gives EINVAL: overlay
does not set FS_ALLOW_IDMAP; tested on 6.x here). The copy is the fallback for a layer store on a
filesystem without idmap support, or an older kernel.
See: mount_setattr(2), Documentation/filesystems/idmappings.rst and overlayfs.rst,
https://docs.docker.com/engine/security/userns-remap/.
"""

from __future__ import annotations

import os
from pathlib import Path

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["IDMAP_UNSUPPORTED", "chowned_lowers", "idmapped_lowers", "unmount_lowers"]

# What mount_setattr(MOUNT_ATTR_IDMAP) answers where idmapped mounts are not possible: EINVAL (the
# filesystem does not support them), ENOSYS (older kernel), EPERM (no CAP_SYS_ADMIN over the mount).
IDMAP_UNSUPPORTED = (22, 38, 1)
_LOWERS = "lowers"


def idmapped_lowers(lowers: Sequence[os.PathLike[str] | str], directory: os.PathLike[str] | str,
                    uid_maps: Sequence[dict[str, int]], gid_maps: Sequence[dict[str, int]]) -> list[Path]:
    """Each layer bind-mounted at ``directory``/lowers/N with owners shifted as the maps say.

    Raises OSError (errno in IDMAP_UNSUPPORTED) when the kernel or filesystem refuses; what was
    mounted by then is unmounted again.
    """
    from minidocker.linux.idmap import idmapped_bind
    from minidocker.namespaces import user_namespace_fd

    base = Path(directory) / _LOWERS
    userns = user_namespace_fd(uid_maps, gid_maps)
    mounted = []
    try:
        for n, layer in enumerate(lowers):
            target = base / str(n)
            target.mkdir(parents=True, exist_ok=True)
            idmapped_bind(layer, target, userns)
            mounted.append(target)
    except OSError:
        unmount_lowers(directory)
        raise
    finally:
        os.close(userns)
    return mounted


def unmount_lowers(directory: os.PathLike[str] | str) -> None:
    """Unmount ``directory``/lowers/* (lazily: the overlay above may still be going away)."""
    base = os.path.join(directory, _LOWERS)
    try:
        names = os.listdir(base)
    except FileNotFoundError:
        return
    from minidocker.linux import UmountFlag, umount2

    for name in names:
        try:
            umount2(os.path.join(base, name), UmountFlag.MNT_DETACH)
        except OSError:
            pass   # not mounted (a failed start, or unmounted before)


def chowned_lowers(lowers: Sequence[os.PathLike[str] | str], cache: os.PathLike[str] | str,
                   uid_maps: Sequence[dict[str, int]], gid_maps: Sequence[dict[str, int]]) -> list[Path]:
    """A shifted copy of each layer under ``cache``/<root uid>.<root gid>/, made on first use."""
    root = Path(cache) / f"{_shift(0, uid_maps)}.{_shift(0, gid_maps)}"
    out = []
    for layer in lowers:
        copy = root / Path(layer).name
        if not copy.is_dir():
            _shifted_copy(Path(layer), copy, uid_maps, gid_maps)
        out.append(copy)
    return out


def _shift(host_id: int, maps: Sequence[dict[str, int]]) -> int:
    """The host id that container id ``host_id`` of the image becomes; unmapped ids stay as they are."""
    for m in maps:
        if m["containerID"] <= host_id < m["containerID"] + m["size"]:
            return m["hostID"] + host_id - m["containerID"]
    return host_id


def _shifted_copy(layer: Path, copy: Path, uid_maps: Sequence[dict[str, int]],
                  gid_maps: Sequence[dict[str, int]]) -> None:
    """``cp -a`` (owners, modes, xattrs such as overlay's opaque mark, whiteout nodes), then every
    owner shifted; chown clears setuid/setgid and file capabilities, so both are put back.
    Built beside its final name and renamed: a crash leaves no half copy in use."""
    import shutil
    import subprocess

    tmp = copy.with_name(f".{copy.name}.{os.getpid()}")
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(tmp, ignore_errors=True)
    subprocess.run(["cp", "-a", "--reflink=auto", f"{layer}/.", str(tmp)], check=True, capture_output=True)
    for path in [tmp, *tmp.rglob("*")]:
        st = os.lstat(path)
        caps = None
        if not path.is_symlink():
            try:
                caps = os.getxattr(path, "security.capability")
            except OSError:
                pass
        os.chown(path, _shift(st.st_uid, uid_maps), _shift(st.st_gid, gid_maps), follow_symlinks=False)
        if not path.is_symlink():
            os.chmod(path, st.st_mode & 0o7777)
            if caps is not None:
                os.setxattr(path, "security.capability", caps)
    try:
        os.rename(tmp, copy)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)   # another run made it first
        if not copy.is_dir():
            raise
