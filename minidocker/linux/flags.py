"""Flag values from the kernel headers, spelled as in C.

Values are for Linux on x86_64 and aarch64 (they are the same on both).
Each is a plain ``int`` and they combine as in C: ``MountFlag.MS_BIND | MountFlag.MS_REC``
is 20480. ``flag_names(MountFlag, 20480)`` spells a value back, ``'MS_BIND|MS_REC'``,
for error messages. Not ``enum.IntFlag``: importing ``enum`` costs 2-5 ms at the start
of every runtime command, which is benchmarked against runc (bench/README.md).
See: include/uapi/linux/sched.h, include/uapi/linux/mount.h.
"""

__all__ = ["CloneFlag", "MountFlag", "UmountFlag", "flag_names"]


class CloneFlag:
    """Namespace flags for unshare(2), setns(2) and clone(2)."""

    CLONE_NEWTIME = 0x00000080  # Linux 5.6
    CLONE_NEWNS = 0x00020000  # mount, Linux 2.4.19
    CLONE_NEWCGROUP = 0x02000000  # Linux 4.6
    CLONE_NEWUTS = 0x04000000  # hostname, Linux 2.6.19
    CLONE_NEWIPC = 0x08000000  # System V IPC and POSIX queues, Linux 2.6.19
    CLONE_NEWUSER = 0x10000000  # Linux 3.8
    CLONE_NEWPID = 0x20000000  # Linux 2.6.24
    CLONE_NEWNET = 0x40000000  # Linux 2.6.29


class MountFlag:
    """``mountflags`` for mount(2)."""

    MS_RDONLY = 1
    MS_NOSUID = 2
    MS_NODEV = 4
    MS_NOEXEC = 8
    MS_SYNCHRONOUS = 16
    MS_REMOUNT = 32
    MS_MANDLOCK = 64
    MS_DIRSYNC = 128
    MS_NOSYMFOLLOW = 256
    MS_NOATIME = 1024
    MS_NODIRATIME = 2048
    MS_BIND = 4096
    MS_MOVE = 8192
    MS_REC = 16384
    MS_SILENT = 32768
    MS_UNBINDABLE = 1 << 17
    MS_PRIVATE = 1 << 18
    MS_SLAVE = 1 << 19
    MS_SHARED = 1 << 20
    MS_RELATIME = 1 << 21
    MS_STRICTATIME = 1 << 24


class UmountFlag:
    """``flags`` for umount2(2)."""

    MNT_FORCE = 1
    MNT_DETACH = 2
    MNT_EXPIRE = 4
    UMOUNT_NOFOLLOW = 8


def flag_names(flags: type, value: int) -> str:
    """``value`` spelled with the names of ``flags`` (a class above): 'CLONE_NEWNS|CLONE_NEWPID'.

    Bits without a name are shown in hex at the end; no bits at all is '0'.
    """
    names, rest = [], value
    for name, bit in vars(flags).items():
        if name.isupper() and value & bit == bit and bit:
            names.append(name)
            rest &= ~bit
    if rest:
        names.append(hex(rest))
    return "|".join(names) or "0"
