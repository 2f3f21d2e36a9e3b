"""Rootless containers: ``minidocker run`` by a user who is not root. Chapter 11.

The user creates a user namespace first (no privilege needed: user_namespaces(7)) and is root
in it, with every capability *over that namespace's objects*: its own mount, pid, uts, ipc and
network namespaces, and the files it owns. Nothing more: the host sees the user's uid, and a
host file the user may not write stays unwritable, whatever the container's root tries::

    check_rootless()                  this kernel lets a non-root user make a user namespace
    rootless_mappings(user, uid, gid) uidMappings/gidMappings: 0 -> the user, 1.. -> the user's
                                      subordinate range (/etc/subuid, newuidmap) if there is one
    configure_rootless(spec, user)    the spec's rootless changes, and the warnings to print
    ROOTFS_ANNOTATION                 the overlay the runtime mounts *inside* the namespaces
    remove_tree(path)                 a container's files, deleted as root of a namespace like its own

How the others do it (rootless Docker, podman, runc): the same user namespace first, then the
rest; overlayfs mounted inside it (Linux 5.11) with ``userxattr`` (its marks go to user.overlay.*
xattrs, the only ones an unprivileged root may set); the state under the user's home and
$XDG_RUNTIME_DIR; cgroups only where systemd delegated a v2 subtree to the user
(``Delegate=yes``); networking through a user-space TCP/IP stack (slirp4netns or pasta) that this
course machine does not have, so a container gets ``--network none`` (or ``host``).
See: user_namespaces(7), newuidmap(1), subuid(5), Documentation/filesystems/overlayfs.rst,
https://docs.docker.com/engine/security/rootless/, runc's docs/cgroup-v2.md and rootless.go.
"""

from __future__ import annotations

import os

from minidocker.errors import InvalidArgument, MinidockerError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ROOTFS_ANNOTATION", "check_rootless", "check_rootless_options", "configure_rootless",
           "delegated_cgroup", "is_rootless", "remove_tree", "rootless_mappings", "rootless_overlay"]

# "lowerdir=...,upperdir=...,workdir=...,userxattr": the runtime mounts it at root.path once it is
# in the container's user and mount namespaces (runtime/init.stage1).
ROOTFS_ANNOTATION = "org.minidocker.rootless-overlay"
_SUBORDINATE_SIZE = 65536   # what useradd gives (subuid(5)), and what images' uids need


def is_rootless() -> bool:
    return os.geteuid() != 0


def check_rootless() -> None:
    """Raise MinidockerError (with the fix) if this kernel stops non-root users' user namespaces."""
    def read(path: str) -> str | None:
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return None

    if not os.path.exists("/proc/self/ns/user") or read("/proc/sys/user/max_user_namespaces") == "0":
        raise MinidockerError("cannot run rootless: this kernel has no user namespaces for users",
                              hint="sysctl -w user.max_user_namespaces=15000, or run as root")
    if read("/proc/sys/kernel/unprivileged_userns_clone") == "0":
        raise MinidockerError("cannot run rootless: kernel.unprivileged_userns_clone is 0",
                              hint="sysctl -w kernel.unprivileged_userns_clone=1 (as root), or run as root")
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
        raise MinidockerError("cannot run rootless: AppArmor restricts unprivileged user namespaces",
                              hint="sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or an AppArmor "
                                   "profile with 'userns,' for minidocker (as Ubuntu 23.10+ asks)")


def rootless_mappings(user: str, uid: int, gid: int, subuid: str = "/etc/subuid", subgid: str = "/etc/subgid"
                      ) -> tuple[list[dict[str, int]], list[dict[str, int]]]:
    """Container 0 is the user; with a subordinate range and newuidmap/newgidmap, 1..65536 too.

    Without one the namespace holds one uid and one gid: images whose files belong to other ids
    show those as nobody, and ``--user 1000`` has no host id to become.
    """
    from minidocker.namespaces import find_helper
    from minidocker.security.userns import subordinate

    uids = [{"containerID": 0, "hostID": uid, "size": 1}]
    gids = [{"containerID": 0, "hostID": gid, "size": 1}]
    sub_u, sub_g = subordinate(subuid, user), subordinate(subgid, user)
    if sub_u and sub_g and find_helper("newuidmap") and find_helper("newgidmap"):
        uids.append({"containerID": 1, "hostID": sub_u[0], "size": min(sub_u[1], _SUBORDINATE_SIZE)})
        gids.append({"containerID": 1, "hostID": sub_g[0], "size": min(sub_g[1], _SUBORDINATE_SIZE)})
    return uids, gids


def delegated_cgroup() -> str | None:
    """The cgroup v2 subtree delegated to this user (a path under /sys/fs/cgroup), else None.

    Delegation (cgroup-v2.rst "Delegation"; systemd's ``Delegate=yes``, which user@.service
    has) is a directory chowned to the user with its cgroup.procs, cgroup.threads and
    cgroup.subtree_control: the user may make groups below it, enable controllers for them and
    move its processes between them. We take the topmost such ancestor of our own group: our
    process lives in a leaf below it, so it has no processes of its own and may enable
    controllers for the container's group (the "no internal processes" rule). Under systemd, a
    login shell is in session-N.scope, which is not delegated: ``systemd-run --user --scope
    minidocker run ...`` starts minidocker inside user@UID.service. v1 and hybrid hierarchies
    are never delegated (None).
    """
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    if len(lines) != 1 or not lines[0].startswith("0::/"):
        return None
    me, best = os.geteuid(), None
    path = lines[0][3:].rstrip("/")
    while path:
        directory = "/sys/fs/cgroup" + path
        try:
            owned = all(os.stat(os.path.join(directory, name)).st_uid == me
                        for name in ("", "cgroup.procs", "cgroup.subtree_control"))
        except OSError:
            owned = False
        if not owned:
            break
        best, path = path, os.path.dirname(path).rstrip("/")
    return best if best != lines[0][3:].rstrip("/") else None   # our own leaf: no room for a sibling


def configure_rootless(spec: dict[str, Any], user: str, resources_asked: bool) -> list[str]:
    """Make ``spec`` a rootless container's: its own user namespace first, the user's maps, no
    cgroup unless delegated, no device nodes to create. Returns the warnings to print."""
    warnings = []
    linux = spec.setdefault("linux", {})
    namespaces = [n for n in linux.get("namespaces", []) if n["type"] != "user"]
    linux["namespaces"] = [{"type": "user"}, *namespaces]
    linux["uidMappings"], linux["gidMappings"] = rootless_mappings(user, os.getuid(), os.getgid())
    # A mount option naming an id the namespace does not map fails (devpts' gid=5 with one id):
    # dropped, as runc's specconv.ToRootless drops it.
    for m in spec.get("mounts", []):
        m["options"] = [o for o in m.get("options", []) if not _unmapped_option(o, linux)]
    if len(linux["uidMappings"]) == 1:
        warnings.append(f"minidocker: rootless with one uid: no subordinate ids for {user} in /etc/subuid "
                        "and /etc/subgid (or no newuidmap: Debian's uidmap package); files of other users "
                        "in the image show as nobody")
    delegated = delegated_cgroup()
    if delegated is None:
        linux.pop("cgroupsPath", None)
        linux.get("resources", {}).pop("devices", None)
        if resources_asked or linux.get("resources"):
            raise InvalidArgument("cannot apply resource limits rootless: no cgroup is delegated to this "
                                  "user",
                                  hint="on a pure cgroup v2 host with systemd: systemd-run --user --scope "
                                       "minidocker run ... (user@.service delegates memory, pids and cpu), "
                                       "or run as root")
        linux.pop("resources", None)
        warnings.append("minidocker: rootless: no cgroup (this host's cgroups are not delegated to the "
                        "user: v1 or hybrid hierarchies never are); limits, stats and the device cgroup "
                        "are skipped")
    else:
        linux["cgroupsPath"] = f"{delegated}/minidocker-{os.urandom(6).hex()}"
        # The eBPF device filter needs CAP_BPF/CAP_SYS_ADMIN of the host; in a user namespace no
        # device node can be made anyway (mknod(2)), and only the host's bound nodes exist.
        linux.get("resources", {}).pop("devices", None)
    if not any(n["type"] == "network" for n in linux["namespaces"]):
        # --network host: sysfs may be mounted only by the network namespace's owner; bind the
        # host's /sys read-only instead, as runc's rootless spec does (specconv.ToRootless).
        host_sys = {"destination": "/sys", "type": "none", "source": "/sys",
                    "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
        spec["mounts"] = [host_sys if m["type"] == "sysfs" else m for m in spec.get("mounts", [])]
    # Device nodes cannot be made in a user namespace: the runtime binds the host's instead
    # (rootfs.create_devices does it for the default ones).
    linux.pop("devices", None)
    return warnings


def _unmapped_option(option: str, linux: dict[str, Any]) -> bool:
    key, _, value = option.partition("=")
    if key not in ("uid", "gid") or not value.isdigit():
        return False
    maps = linux["uidMappings"] if key == "uid" else linux["gidMappings"]
    return not any(m["containerID"] <= int(value) < m["containerID"] + m["size"] for m in maps)


def check_rootless_options(options: Any, mount_types: list[str]) -> None:
    """Refuse, before anything exists, what a rootless container cannot have here; choose the network.

    ``mount_types``: the type of each -v/--mount (bind, volume, tmpfs). Binds of the user's
    directories work; named volumes are not supported rootless yet.

    Networks: ``none`` by default, ``host`` works (the user's own sockets); a bridge needs a
    veth pair in the host's network namespace, which only root can make, so rootless Docker
    runs a user-space stack (slirp4netns, pasta) instead. None is installed on this machine.
    """
    if options.network in (None, "bridge") or options.publish or options.publish_all:
        if options.network == "bridge" or options.publish or options.publish_all:
            raise InvalidArgument("cannot use a bridge network rootless: it needs a user-space network "
                                  "stack (slirp4netns or pasta, as rootless Docker uses), which minidocker "
                                  "does not have",
                                  hint="use --network none (the rootless default) or --network host, "
                                       "or run as root")
        options.network = "none"
    if options.network not in ("none", "host"):
        raise InvalidArgument(f"cannot use network {options.network!r} rootless",
                              hint="use --network none (the rootless default) or --network host")
    if options.volumes_from or "volume" in mount_types:
        raise InvalidArgument("cannot use named volumes rootless (minidocker does not support it yet)",
                              hint="bind a directory of yours (-v /home/you/data:/data) or use --tmpfs")
    if options.security.privileged:
        raise InvalidArgument("cannot run --privileged rootless: the user has no host privileges to give",
                              hint="run as root")


def rootless_overlay(lowers: Any, directory: str | os.PathLike[str]) -> str:
    """The overlay the runtime mounts inside the user namespace: ``userxattr`` keeps overlay's own
    marks in user.overlay.* xattrs (trusted.* needs CAP_SYS_ADMIN in the initial namespace)."""
    from minidocker.storage.overlay import overlay_options

    upper, work = os.path.join(directory, "upper"), os.path.join(directory, "work")
    return overlay_options(lowers, upper, work) + ",userxattr"


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Delete a rootless container's directory, also what the user alone may not delete.

    Its upper layer may hold files of the user's subordinate ids (a ``--user 1000`` process
    wrote them) and overlay's mode-000 work directory: the user, outside, may not touch
    those, but root of a user namespace mapped like the container's may, as podman's
    ``unshare rm`` does. The plain deletion first; the namespace only when something is left.
    """
    import pwd
    import shutil

    shutil.rmtree(path, ignore_errors=True)
    if not os.path.lexists(path):
        return
    from minidocker.namespaces import user_namespace_fd

    uids, gids = rootless_mappings(pwd.getpwuid(os.getuid()).pw_name, os.getuid(), os.getgid())
    os.close(user_namespace_fd(uids, gids, then=lambda: shutil.rmtree(path, ignore_errors=True)))
