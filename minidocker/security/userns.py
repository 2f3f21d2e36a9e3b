"""User namespaces for ``--userns-remap``: root in the container, an unprivileged uid on the host. Chapter 11.

Like ``dockerd --userns-remap``: every container gets a user namespace whose uid and gid 0
are host ids from a subordinate range (/etc/subuid, /etc/subgid; see subuid(5)). A process
that escapes every other wall is then uid 100000 on the host, owner of nothing::

    remap_ranges("default")            (100000, 65536) for uids and gids: dockremap's entry, else
                                       Docker's usual first range
    remap_ranges("alice")              alice's entries in /etc/subuid and /etc/subgid
    remap_ranges("100000:65536")       a range given directly
    apply_remap(spec, value)           the user namespace and its uidMappings/gidMappings

    remapped_layers(spec, lowers, dir, cache)  the image's layers as the remapped root's own

What would break, and why: the image's files belong to host uid 0, which the namespace does not
map; inside they would show as "nobody" (65534) and the container's root could not write them (no
capability applies to an unmapped owner). Docker therefore keeps a separate, chowned copy of the
layers per remap (/var/lib/docker/100000.100000/). minidocker bind-mounts each layer idmapped
instead (no copy; storage/remap.py says why the layers and not the merged overlay), and falls back
to Docker's chowned copy where the kernel or filesystem refuses (MINIDOCKER_USERNS_LAYERS=chown
asks for it). The writable layer is chowned to the remapped root, so "/" and new files are root's.
Every directory above the container's root must be searchable by the mapped root ("others" need x).
See: user_namespaces(7), subuid(5), https://docs.docker.com/engine/security/userns-remap/.
"""

from __future__ import annotations

import os

from minidocker.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["LAYERS_ENV", "ROOT_ANNOTATION", "apply_remap", "check_searchable", "configure_remap",
           "give_to_remapped_root", "layers_mode", "remap_ranges", "remapped_layers"]

# The host uid:gid of the container's root, for the engine's chown of the writable layer.
ROOT_ANNOTATION = "org.minidocker.userns-root"

_DEFAULT_RANGE = (100000, 65536)
# "idmap" (the default: idmapped layer mounts, the copy where they are refused) or "chown" (the copy).
LAYERS_ENV = "MINIDOCKER_USERNS_LAYERS"


def remap_ranges(value: str, subuid: str = "/etc/subuid", subgid: str = "/etc/subgid"
                 ) -> tuple[tuple[int, int], tuple[int, int]]:
    """((uid start, count), (gid start, count)) for a ``--userns-remap`` value."""
    start, sep, count = value.partition(":")
    if sep and start.isdigit() and count.isdigit():
        if int(count) < 1 or int(start) < 1:
            raise InvalidArgument(f"invalid userns remap {value!r}: the range must start above 0 "
                                  "and be non-empty")
        return (int(start), int(count)), (int(start), int(count))
    user = "dockremap" if value == "default" else value
    uids, gids = subordinate(subuid, user), subordinate(subgid, user)
    if uids is None or gids is None:
        if value == "default":
            return _DEFAULT_RANGE, _DEFAULT_RANGE
        raise InvalidArgument(f"invalid userns remap {value!r}: no entry for {user} in {subuid} "
                              f"and {subgid}",
                              hint=f"add '{user}:100000:65536' to both files (subuid(5)), "
                                   "or give START:COUNT")
    return uids, gids


def apply_remap(spec: dict[str, Any], value: str) -> tuple[int, int]:
    """Add a user namespace mapped as ``value`` says; returns the host (uid, gid) of the container's root."""
    (uid, uid_count), (gid, gid_count) = remap_ranges(value)
    linux = spec.setdefault("linux", {})
    if not any(n["type"] == "user" for n in linux.get("namespaces", [])):
        linux.setdefault("namespaces", []).insert(0, {"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": uid_count}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": gid_count}]
    return uid, gid


def configure_remap(spec: dict[str, Any], rootfs: str, flags: Any, value: str) -> None:
    """The engine's part of ``--userns-remap``: check, then add the namespace and its maps.

    ``--userns host`` opts out; ``--privileged`` is refused, as Docker refuses it.
    """
    if flags.userns == "host":
        return
    if flags.privileged:
        raise InvalidArgument("privileged mode is incompatible with user namespaces",
                              hint="run it in the host's user namespace: --userns host (as Docker asks)")
    check_searchable(rootfs)
    layers_mode()   # checked before anything of the container exists
    spec.setdefault("annotations", {})[ROOT_ANNOTATION] = "%d:%d" % apply_remap(spec, value)


def give_to_remapped_root(spec: dict[str, Any], upper: str | os.PathLike[str],
                          container_dir: str | os.PathLike[str]) -> None:
    """Chown the writable layer to the remapped root ("/" and new files are its own); make the
    container's directory searchable for it."""
    uid, gid = spec["annotations"][ROOT_ANNOTATION].split(":")
    os.chown(upper, int(uid), int(gid))
    os.chmod(container_dir, 0o711)


def remapped_layers(spec: dict[str, Any], lowers: list[Any], container_dir: str | os.PathLike[str],
                    cache: str | os.PathLike[str]) -> tuple[list[Any], str]:
    """The overlay's lower directories for a remapped container, and how they were made
    ("idmapped" or "chowned"): the image's root-owned files become the container root's.

    ``cache`` holds the chowned copies (one per layer and mapping, kept for the next run).
    """
    from minidocker.storage.remap import IDMAP_UNSUPPORTED, chowned_lowers, idmapped_lowers

    uid_maps, gid_maps = spec["linux"]["uidMappings"], spec["linux"]["gidMappings"]
    if layers_mode() == "idmap":
        try:
            return idmapped_lowers(lowers, container_dir, uid_maps, gid_maps), "idmapped"
        except OSError as err:
            if err.errno not in IDMAP_UNSUPPORTED:
                raise
    return chowned_lowers(lowers, cache, uid_maps, gid_maps), "chowned"


def layers_mode() -> str:
    """How the layers of a remapped container are shown as its root's: MINIDOCKER_USERNS_LAYERS."""
    mode = os.environ.get(LAYERS_ENV, "idmap")
    if mode not in ("idmap", "chown"):
        raise InvalidArgument(f"invalid {LAYERS_ENV} {mode!r}",
                              hint="use idmap (idmapped layer mounts, a chowned copy where refused) or chown")
    return mode


def check_searchable(path: str | os.PathLike[str]) -> None:
    """Raise InvalidArgument unless every existing directory above ``path`` lets others search it (x).

    (Directories still to be made are the engine's, made searchable.)
    """
    directory = os.path.dirname(os.path.abspath(path))
    while True:
        try:
            mode = os.stat(directory).st_mode
        except FileNotFoundError:
            mode = 0o001
        if not mode & 0o001:
            raise InvalidArgument(f"cannot remap user namespaces: {directory} is not searchable by the "
                                  "remapped root",
                                  hint=f"chmod o+x {directory} (Docker keeps its data root at 0711 for this)")
        if directory == "/":
            return
        directory = os.path.dirname(directory)


def subordinate(path: str, user: str) -> tuple[int, int] | None:
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                fields = line.strip().split(":")
                if len(fields) == 3 and fields[0] == user and fields[1].isdigit() and fields[2].isdigit():
                    return int(fields[1]), int(fields[2])
    except FileNotFoundError:
        pass
    return None
