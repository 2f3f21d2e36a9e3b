"""Namespaces: what a process can see. Chapter 03.

Each namespace type wraps one global resource; a process in a new one sees its own
copy. minidocker speaks the OCI runtime spec's names (``linux.namespaces[].type``):

    OCI type   /proc/PID/ns  flag              what it isolates
    pid        pid           CLONE_NEWPID      process IDs (the first child is PID 1)
    mount      mnt           CLONE_NEWNS       the mount table
    uts        uts           CLONE_NEWUTS      hostname and domain name
    ipc        ipc           CLONE_NEWIPC      System V IPC, POSIX message queues
    network    net           CLONE_NEWNET      interfaces, routes, firewall, sockets
    user       user          CLONE_NEWUSER     uids, gids and capabilities
    cgroup     cgroup        CLONE_NEWCGROUP   the view of /proc/self/cgroup

Main API::

    clone_flags(namespaces)          OCI list -> CLONE_NEW* flags for unshare
    namespaces_of(pid)               {"pid": 4026531836, ...} from /proc/PID/ns
    enter(pid, types)                setns into a running container's namespaces
    write_id_maps(pid, uid_map, gid_map)   map a user namespace's ids to the host's
    user_namespace_fd(uid_map, gid_map)    an fd of a new, mapped user namespace (a child of ours made it)

See: namespaces(7), pid_namespaces(7), user_namespaces(7), setns(2).
"""

from __future__ import annotations

import os

from minidocker.errors import InvalidArgument
from minidocker.linux import CloneFlag, setns, unshare
from minidocker.record import Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

__all__ = [
    "NAMESPACES",
    "Namespace",
    "clone_flags",
    "enter",
    "find_helper",
    "format_id_map",
    "namespaces_of",
    "open_namespaces",
    "user_namespace_fd",
    "write_id_maps",
]


class Namespace(Frozen):
    """One namespace type: its OCI name, its file in /proc/PID/ns, its clone flag (frozen: a tuple)."""

    __slots__ = ()
    FIELDS = ("oci_type", "proc_name", "flag")
    oci_type: str
    proc_name: str
    flag: int


NAMESPACES: dict[str, Namespace] = {
    ns.oci_type: ns
    for ns in (
        # Joining order for enter(): user first (it grants the capabilities needed to
        # join the others it owns), mount last (it changes our root directory).
        Namespace("user", "user", CloneFlag.CLONE_NEWUSER),
        Namespace("cgroup", "cgroup", CloneFlag.CLONE_NEWCGROUP),
        Namespace("ipc", "ipc", CloneFlag.CLONE_NEWIPC),
        Namespace("uts", "uts", CloneFlag.CLONE_NEWUTS),
        Namespace("network", "net", CloneFlag.CLONE_NEWNET),
        Namespace("pid", "pid", CloneFlag.CLONE_NEWPID),
        Namespace("mount", "mnt", CloneFlag.CLONE_NEWNS),
    )
}


def clone_flags(namespaces: Iterable[Mapping[str, str]]) -> int:
    """The CLONE_NEW* flags for the OCI namespaces that are to be created (no ``path``).

    Raises:
        InvalidArgument: for a type that is not one of the seven above.
    """
    flags = 0
    for entry in namespaces:
        ns = _lookup(entry["type"])
        if not entry.get("path"):
            flags |= ns.flag
    return flags


def namespaces_of(pid: int | str = "self") -> dict[str, int]:
    """The namespace identities (inode numbers) of a process, by OCI type.

    Two processes are in the same namespace exactly when the inodes are equal.
    ``/proc/PID/ns/uts`` is a magic link reading ``uts:[4026531838]``.
    """
    found = {}
    for ns in NAMESPACES.values():
        try:
            link = os.readlink(f"/proc/{pid}/ns/{ns.proc_name}")
        except FileNotFoundError:
            continue  # a kernel built without this namespace type
        found[ns.oci_type] = int(link.split("[", 1)[1].rstrip("]"))
    return found


def open_namespaces(pid: int, types: Iterable[str]) -> list[tuple[Namespace, int]]:
    """Open /proc/PID/ns/* of the given types, in joining order; the caller closes the fds.

    Opening all of them first matters: after joining the mount namespace,
    /proc/PID may no longer be the same process (or be visible at all).
    """
    wanted = {_lookup(t).oci_type for t in types}
    opened = []
    try:
        for ns in NAMESPACES.values():
            if ns.oci_type in wanted:
                opened.append((ns, os.open(f"/proc/{pid}/ns/{ns.proc_name}", os.O_RDONLY | os.O_CLOEXEC)))
    except BaseException:
        for _, fd in opened:
            os.close(fd)
        raise
    return opened


def enter(pid: int, types: Iterable[str]) -> None:
    """Join the namespaces of process ``pid``. Like ``nsenter -t PID`` and ``docker exec``.

    Must run in a single-threaded process (a forked child): setns(2) into a mount or
    user namespace fails with EINVAL in a multithreaded one. Joining a PID
    namespace affects only the children we fork afterwards.
    Namespaces we are already in are skipped (joining your own user namespace is EINVAL).
    See setns(2).
    """
    mine = namespaces_of("self")
    theirs = namespaces_of(pid)
    needed = [t for t in types if theirs.get(t) != mine.get(t)]
    opened = open_namespaces(pid, needed)
    try:
        for ns, fd in opened:
            setns(fd, ns.flag)
    finally:
        for _, fd in opened:
            os.close(fd)


def format_id_map(mappings: Sequence[Mapping[str, int]]) -> str:
    """OCI ``uidMappings`` -> the text of /proc/PID/uid_map: "inside outside count" lines."""
    lines = []
    for m in mappings:
        container_id, host_id, size = int(m["containerID"]), int(m["hostID"]), int(m["size"])
        if min(container_id, host_id) < 0 or size <= 0:
            raise InvalidArgument(f"invalid id mapping {dict(m)}: ids must be >= 0 and size > 0")
        lines.append(f"{container_id} {host_id} {size}")
    return "\n".join(lines) + "\n"


def write_id_maps(
    pid: int,
    uid_mappings: Sequence[Mapping[str, int]],
    gid_mappings: Sequence[Mapping[str, int]],
) -> None:
    """Map the user namespace of ``pid``: write its uid_map and gid_map, once each.

    Until this is done the process runs as the overflow id 65534 ("nobody").
    A privileged parent (root in the parent namespace) may map any range. Another user may
    map only its own uid and gid, after denying setgroups(2) (rootless, one id); for more ids
    the setuid helpers newuidmap/newgidmap check the user's /etc/subuid and /etc/subgid
    ranges and write the maps (rootless Docker and podman use them too).
    See user_namespaces(7), "User and group ID mappings", newuidmap(1).
    """
    if os.geteuid() != 0:
        _write_id_maps_rootless(pid, uid_mappings, gid_mappings)
        return
    with open(f"/proc/{pid}/uid_map", "w") as f:
        f.write(format_id_map(uid_mappings))
    with open(f"/proc/{pid}/gid_map", "w") as f:
        f.write(format_id_map(gid_mappings))


def user_namespace_fd(
    uid_mappings: Sequence[Mapping[str, int]],
    gid_mappings: Sequence[Mapping[str, int]],
    then: Callable[[], None] | None = None,
) -> int:
    """An fd of a new user namespace, mapped as OCI ``uidMappings`` and ``gidMappings``. Like ``unshare -U``.

    A forked child unshares CLONE_NEWUSER and waits; we, its parent, write its maps
    (write_id_maps: any range as root, the user's own ids or newuidmap's otherwise) and open
    /proc/CHILD/ns/user. The child then becomes root of the namespace and runs ``then``, if
    given, with every capability over what the namespace maps, and exits; the fd keeps the
    namespace alive without it. The caller closes the fd.
    Used for idmapped mounts (storage/remap.py) and rootless clean-up (security/rootless.py).
    See user_namespaces(7).
    """
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:   # pragma: no cover - the child
        try:
            os.close(ready_r)
            os.close(go_w)
            unshare(CloneFlag.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            if os.read(go_r, 1) == b"1" and then is not None:   # mapped: uid 0 exists here now
                os.setresgid(0, 0, 0)
                os.setresuid(0, 0, 0)
                then()
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(go_r)
    try:
        if os.read(ready_r, 1) != b"1":
            raise OSError(f"failed to create a user namespace: child {pid} exited before "
                          "unshare(CLONE_NEWUSER)")
        write_id_maps(pid, uid_mappings, gid_mappings)
        fd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        os.write(go_w, b"1")
        return fd
    finally:
        os.close(ready_r)
        os.close(go_w)
        os.waitpid(pid, 0)


def find_helper(name: str) -> str | None:
    """``name``'s path on PATH (shutil.which without shutil's imports), or None."""
    for directory in (os.environ.get("PATH") or "/usr/bin:/bin").split(":"):
        path = os.path.join(directory or ".", name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return None


def _write_id_maps_rootless(pid: int, uid_mappings: Sequence[Mapping[str, int]],
                            gid_mappings: Sequence[Mapping[str, int]]) -> None:
    from minidocker.errors import MinidockerError

    if len(uid_mappings) == 1 and len(gid_mappings) == 1:
        with open(f"/proc/{pid}/setgroups", "w") as f:
            f.write("deny")
        for name, mappings in (("uid_map", uid_mappings), ("gid_map", gid_mappings)):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(format_id_map(mappings))
        return
    for helper, mappings in (("newuidmap", uid_mappings), ("newgidmap", gid_mappings)):
        path = find_helper(helper)
        if path is None:
            raise MinidockerError(f"failed to map the user namespace: {helper} is not installed",
                                  hint="install Debian's uidmap package, or map one id")
        args = [str(v) for m in mappings for v in (m["containerID"], m["hostID"], m["size"])]
        # posix_spawn, not subprocess: its import costs more than the helper's run
        errors_r, errors_w = os.pipe()
        try:
            child = os.posix_spawn(path, [helper, str(pid), *args], {"PATH": "/usr/bin:/bin"},
                                   file_actions=[(os.POSIX_SPAWN_DUP2, errors_w, 2)])
        finally:
            os.close(errors_w)
        with os.fdopen(errors_r, "rb") as f:
            errors = f.read().decode(errors="replace").strip()
        if os.waitstatus_to_exitcode(os.waitpid(child, 0)[1]) != 0:
            raise MinidockerError(f"failed to map the user namespace: {errors or helper + ' failed'}",
                                  hint="the ranges must be the user's in /etc/subuid and /etc/subgid "
                                       "(subuid(5))")


def _lookup(oci_type: str) -> Namespace:
    try:
        return NAMESPACES[oci_type]
    except KeyError:
        raise InvalidArgument(
            f"unknown namespace type {oci_type!r}", hint=f"use one of {', '.join(NAMESPACES)}"
        ) from None
