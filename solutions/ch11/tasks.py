"""Chapter 11 exercises: security. Reference solutions.

    capability_mask(names)             task 11.1  Docker's names -> the bit mask of /proc/PID/status
    drop_capabilities(keep)            task 11.2  keep only these capabilities, for good
    block_syscall_filter(nr, errno)    task 11.3  a classic BPF seccomp program refusing one syscall

See: capabilities(7), prctl(2), capset(2), seccomp(2).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from minidocker.linux.security import cap_last_cap, capbset_drop, capbset_read, capset

__all__ = ["CAPABILITY_NUMBERS", "block_syscall_filter", "capability_mask", "drop_capabilities"]

# A few numbers from include/uapi/linux/capability.h (capabilities(7) lists them all).
CAPABILITY_NUMBERS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3, "CAP_FSETID": 4,
    "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8, "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15, "CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19, "CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27, "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31, "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35, "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38, "CAP_BPF": 39, "CAP_CHECKPOINT_RESTORE": 40,
}


def capability_mask(names: Iterable[str]) -> int:
    """The bit mask of these capabilities: bit N set for capability number N.

    Names come as Docker takes them: with or without ``CAP_``, in any case
    (``"net_admin"``, ``"CAP_NET_ADMIN"``). Raise ``ValueError`` for a name that is not a
    capability. ``capability_mask(["CHOWN", "KILL"]) == 0b100001``.

    Hint: normalise each name first (upper case, add ``CAP_`` when missing), then look it up
    in ``CAPABILITY_NUMBERS``; ``1 << n`` is the bit of capability n.
    Question: /proc/self/status shows CapEff as hex: what does ``00000000a80425fb`` say?

    See: capabilities(7), "Capabilities list"; proc(5), /proc/PID/status.
    """
    mask = 0
    for name in names:
        upper = name.strip().upper()
        full = upper if upper.startswith("CAP_") else f"CAP_{upper}"
        if full not in CAPABILITY_NUMBERS:
            raise ValueError(f"unknown capability: {name!r}")
        mask |= 1 << CAPABILITY_NUMBERS[full]
    return mask


def drop_capabilities(keep: Iterable[str]) -> None:
    """Keep only the capabilities ``keep`` in this process, and make sure no exec brings the others back.

    Three sets must shrink: the bounding set (the most any later exec, even of a setuid-root
    binary, can give), then permitted and effective (what the kernel checks now). The
    inheritable set becomes empty. Runs as root in a forked child (the grader forks).

    Hint: ``capbset_drop(n)`` for each capability n not kept, up to ``cap_last_cap()``
    (``capbset_read`` tells what is there; dropping needs CAP_SETPCAP, so the bounding set
    goes first), then one ``capset(effective, permitted, inheritable)``; all in
    ``minidocker.linux.security``; ``capability_mask`` from task 11.1.
    Question: why does the order matter? What would a setuid-root program get after capset
    alone?

    See: capabilities(7), "Capability bounding set"; capset(2); PR_CAPBSET_DROP in prctl(2).
    """
    mask = capability_mask(keep)
    for cap in range(cap_last_cap() + 1):
        if not mask >> cap & 1 and capbset_read(cap):
            capbset_drop(cap)
    capset(mask, mask, 0)


# Classic BPF (include/uapi/linux/filter.h, bpf_common.h) and seccomp (include/uapi/linux/seccomp.h).
_LD_W_ABS, _JEQ_K, _RET_K = 0x20, 0x15, 0x06
_AUDIT_ARCH_X86_64 = 0xC000003E
_SECCOMP_RET_KILL_PROCESS, _SECCOMP_RET_ERRNO, _SECCOMP_RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000


def block_syscall_filter(syscall_nr: int, errno: int) -> bytes:
    """A seccomp filter (classic BPF) that makes syscall ``syscall_nr`` fail with ``errno``.

    Every other syscall is allowed. The program must first check the architecture in
    ``seccomp_data.arch`` and kill the process when it is not x86_64 (0xc000003e): the
    same number means another syscall on another architecture. Return the program as
    bytes, 8 per instruction (``struct sock_filter``: u16 code, u8 jt, u8 jf, u32 k),
    ready for ``seccomp_set_mode_filter``.

    Hint: seven instructions: load arch (offset 4 of seccomp_data); jump if equal; return
    KILL_PROCESS; load nr (offset 0); jump if equal; return ERRNO | errno; return ALLOW.
    ``struct.pack("<HBBI", code, jt, jf, k)`` packs one. ``jt``/``jf`` count the
    instructions to skip after this one.
    Question: why can this filter not look at the path given to ``mkdir``?

    See: seccomp(2), "EXAMPLES"; Documentation/userspace-api/seccomp_filter.rst.
    """
    program = [
        (_LD_W_ABS, 0, 0, 4),                                   # A = seccomp_data.arch
        (_JEQ_K, 1, 0, _AUDIT_ARCH_X86_64),                     # x86_64: skip the kill
        (_RET_K, 0, 0, _SECCOMP_RET_KILL_PROCESS),
        (_LD_W_ABS, 0, 0, 0),                                   # A = seccomp_data.nr
        (_JEQ_K, 0, 1, syscall_nr),                             # ours: next, else skip one
        (_RET_K, 0, 0, _SECCOMP_RET_ERRNO | (errno & 0xFFFF)),
        (_RET_K, 0, 0, _SECCOMP_RET_ALLOW),
    ]
    return b"".join(struct.pack("<HBBI", *instruction) for instruction in program)
