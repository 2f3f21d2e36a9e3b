"""Capabilities: root's power cut into 41 pieces, and the 14 a container keeps. Chapter 11.

Since Linux 2.2 the kernel checks a capability, not "uid 0", before a privileged act:
CAP_SYS_ADMIN to mount, CAP_NET_ADMIN to configure interfaces, CAP_SYS_MODULE to load a
module. A process has five sets (capabilities(7)): *bounding* (the most it can ever get,
even through a setuid binary), *permitted* (what it may switch on), *effective* (what the
kernel checks), *inheritable* and *ambient* (what survives execve for a non-root user).

Docker keeps root's uid in the container but only :data:`DEFAULT_CAPABILITIES` in every set
(moby's oci/caps/defaults.go). Main API::

    CAPABILITIES                           every name, index = capability number
    DEFAULT_CAPABILITIES                   Docker's default set, with the reason for each
    normalize(name) -> "CAP_SYS_ADMIN"     "sys_admin", "SYS_ADMIN", "CAP_SYS_ADMIN" all work
    tweak(add, drop, privileged)           --cap-add/--cap-drop/--privileged, Docker's rules
    to_mask(names) -> int, from_mask(int)  the bit mask /proc/PID/status shows as CapEff
    process_capabilities(names, uid)       the spec's process.capabilities
"""

from __future__ import annotations

from minidocker.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["CAPABILITIES", "DEFAULT_CAPABILITIES", "DEFAULT_CAPABILITY_REASONS", "from_mask",
           "normalize", "process_capabilities", "to_mask", "tweak"]

# include/uapi/linux/capability.h, in number order: CAPABILITIES[21] == "CAP_SYS_ADMIN".
CAPABILITIES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
_NUMBER = {name: number for number, name in enumerate(CAPABILITIES)}

# What a container keeps, and why it is harmless enough to keep (capabilities(7)). Everything
# else is dropped: CAP_SYS_ADMIN (mount, namespaces, half the kernel), CAP_NET_ADMIN (the
# host's firewall if it shares the netns), CAP_SYS_MODULE, CAP_SYS_TIME, CAP_SYS_BOOT ...
DEFAULT_CAPABILITY_REASONS = {
    "CAP_CHOWN": "chown files in the image (package managers do)",
    "CAP_DAC_OVERRIDE": "root reads and writes any file of its own root filesystem",
    "CAP_FSETID": "keep setuid/setgid bits when root modifies a file",
    "CAP_FOWNER": "chmod and utime on files root does not own",
    "CAP_MKNOD": "create device nodes (opening them is still up to the device cgroup)",
    "CAP_NET_RAW": "raw sockets: ping (drop it with --cap-drop NET_RAW)",
    "CAP_SETGID": "switch group, as su and daemons do",
    "CAP_SETUID": "switch user, as su and daemons do",
    "CAP_SETFCAP": "set file capabilities in the image",
    "CAP_SETPCAP": "shrink its own bounding set; cannot grow anything beyond it",
    "CAP_NET_BIND_SERVICE": "listen on ports below 1024 (a web server on 80)",
    "CAP_SYS_CHROOT": "chroot(2): a chroot inside the container's own root",
    "CAP_KILL": "signal processes of other users, inside the PID namespace",
    "CAP_AUDIT_WRITE": "write to the audit log (login and sshd do)",
}
DEFAULT_CAPABILITIES = tuple(DEFAULT_CAPABILITY_REASONS)


def normalize(name: str) -> str:
    """Docker's spelling of a capability: upper case, with ``CAP_``; ``ALL`` stays ``ALL``.

    Raises InvalidArgument for a name the kernel does not have.
    """
    upper = name.strip().upper()
    if upper == "ALL":
        return upper
    full = upper if upper.startswith("CAP_") else f"CAP_{upper}"
    if full not in _NUMBER:
        raise InvalidArgument(f"unknown capability: {name!r}",
                              hint="see capabilities(7); names work with or without CAP_, e.g. NET_ADMIN")
    return full


def tweak(add: Iterable[str] = (), drop: Iterable[str] = (), privileged: bool = False,
          base: Iterable[str] = DEFAULT_CAPABILITIES) -> list[str]:
    """The container's capabilities from ``--cap-add``, ``--cap-drop`` and ``--privileged``.

    Docker's rules (moby oci/caps.TweakCapabilities): privileged gets everything; ``--cap-add
    ALL`` gets everything but the drops; ``--cap-drop ALL`` starts from nothing and keeps the
    adds; otherwise the base set minus the drops plus the adds.
    """
    adds, drops = [normalize(n) for n in add], [normalize(n) for n in drop]
    if privileged:
        return list(CAPABILITIES)
    if "ALL" in adds:
        return [c for c in CAPABILITIES if c not in drops]
    if "ALL" in drops:
        chosen = adds
    else:
        chosen = [c for c in base if c not in drops] + adds
    return sorted(set(chosen), key=_NUMBER.__getitem__)


def to_mask(names: Iterable[str]) -> int:
    """The bit mask of capability names (bit N = capability N), as in /proc/PID/status."""
    mask = 0
    for name in names:
        mask |= 1 << _NUMBER[normalize(name)]
    return mask


def from_mask(mask: int) -> list[str]:
    """The names of the bits set in ``mask``; a bit beyond the known ones reads ``CAP_N``."""
    return [CAPABILITIES[n] if n < len(CAPABILITIES) else f"CAP_{n}"
            for n in range(mask.bit_length()) if mask >> n & 1]


def process_capabilities(names: Iterable[str], uid: int = 0) -> dict[str, list[str]]:
    """The OCI ``process.capabilities`` Docker writes for these names.

    Root gets them bounding, effective and permitted; another user only bounding, so that it
    starts with none, as execve would give it (moby oci.SetCapabilities, since CVE-2022-24769
    the inheritable set stays empty: a file's inheritable bits must not grant anything).
    """
    chosen = list(names)
    if uid == 0:
        return {"bounding": chosen, "effective": list(chosen), "permitted": list(chosen)}
    return {"bounding": chosen}
