"""The kernel's process security calls: capability sets, prctl switches, seccomp filters.

One small function per call, each raising OSError on failure (see :mod:`.syscalls`)::

    capget(pid=0) -> (effective, permitted, inheritable)    See capget(2).
    capset(effective, permitted, inheritable)               See capset(2).
    capbset_read(cap) / capbset_drop(cap)                   PR_CAPBSET_READ/DROP in prctl(2).
    cap_ambient_raise(cap) / cap_ambient_is_set(cap)        PR_CAP_AMBIENT in prctl(2).
    cap_ambient_clear_all()
    set_keepcaps(keep) / get_keepcaps()                     PR_SET_KEEPCAPS in prctl(2).
    get_no_new_privs()                                      PR_GET_NO_NEW_PRIVS in prctl(2).
    seccomp_set_mode_filter(program, flags=0)               SECCOMP_SET_MODE_FILTER in seccomp(2).
    cap_last_cap()                                          /proc/sys/kernel/cap_last_cap

Capability sets are plain ints, bit N for capability N (``1 << 21`` is CAP_SYS_ADMIN);
names live one layer up, in :mod:`minidocker.security.capabilities`.
"""

from __future__ import annotations

import ctypes
import os

from minidocker.linux.syscalls import _check, _libc

__all__ = [
    "cap_ambient_clear_all",
    "cap_ambient_is_set",
    "cap_ambient_raise",
    "cap_last_cap",
    "capbset_drop",
    "capbset_read",
    "capget",
    "capset",
    "get_keepcaps",
    "get_no_new_privs",
    "seccomp_set_mode_filter",
    "set_keepcaps",
]

# include/uapi/linux/capability.h: version 3 takes two 32-bit words per set.
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# include/uapi/linux/prctl.h
_PR_GET_KEEPCAPS = 7
_PR_SET_KEEPCAPS = 8
_PR_CAPBSET_READ = 23
_PR_CAPBSET_DROP = 24
_PR_GET_NO_NEW_PRIVS = 39
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_IS_SET = 1
_PR_CAP_AMBIENT_RAISE = 2
_PR_CAP_AMBIENT_CLEAR_ALL = 4

# include/uapi/linux/seccomp.h; glibc has no seccomp() wrapper, so syscall(2) with its number.
_SECCOMP_SET_MODE_FILTER = 1
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}.get(os.uname().machine)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    """struct sock_fprog: the length in instructions and a pointer to them. See linux/filter.h."""

    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_libc.capget.argtypes = [ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData * 2)]
_libc.capset.argtypes = [ctypes.POINTER(_CapHeader), ctypes.POINTER(_CapData * 2)]


def _prctl(option: int, arg2: int = 0, arg3: int = 0, name: str = "") -> int:
    result = _libc.prctl(option, arg2, arg3, 0, 0)
    _check(result, "prctl", name, arg2, arg3)
    return result


def capget(pid: int = 0) -> tuple[int, int, int]:
    """The (effective, permitted, inheritable) capability sets of ``pid`` (0: the caller).

    See capget(2).
    """
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(header), ctypes.byref(data)), "capget", pid)
    effective, permitted, inheritable = (getattr(data[0], f) | getattr(data[1], f) << 32
                                         for f in ("effective", "permitted", "inheritable"))
    return effective, permitted, inheritable


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the caller's three capability sets. A set may only shrink, except within permitted.

    See capset(2).
    """
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for word in (0, 1):
        shift = 32 * word
        data[word].effective = (effective >> shift) & 0xFFFFFFFF
        data[word].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[word].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset",
           hex(effective), hex(permitted), hex(inheritable))


def capbset_read(cap: int) -> bool:
    """Whether capability ``cap`` is in the caller's bounding set.

    See PR_CAPBSET_READ in prctl(2).
    """
    return _prctl(_PR_CAPBSET_READ, cap, name="PR_CAPBSET_READ") == 1


def capbset_drop(cap: int) -> None:
    """Remove ``cap`` from the bounding set, for good: no exec can bring it back. Needs CAP_SETPCAP.

    See PR_CAPBSET_DROP in prctl(2).
    """
    _prctl(_PR_CAPBSET_DROP, cap, name="PR_CAPBSET_DROP")


def cap_ambient_raise(cap: int) -> None:
    """Add ``cap`` to the ambient set (it must be permitted and inheritable): kept across execve.

    See PR_CAP_AMBIENT in prctl(2), "Ambient capabilities" in capabilities(7).
    """
    _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_RAISE, cap, name="PR_CAP_AMBIENT_RAISE")


def cap_ambient_is_set(cap: int) -> bool:
    """Whether ``cap`` is in the ambient set. See PR_CAP_AMBIENT in prctl(2)."""
    return _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_IS_SET, cap, name="PR_CAP_AMBIENT_IS_SET") == 1


def cap_ambient_clear_all() -> None:
    """Empty the ambient set. See PR_CAP_AMBIENT in prctl(2)."""
    _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, name="PR_CAP_AMBIENT_CLEAR_ALL")


def set_keepcaps(keep: bool) -> None:
    """Keep the permitted set through a setuid() away from uid 0 (the kernel clears it otherwise).

    See PR_SET_KEEPCAPS in prctl(2).
    """
    _prctl(_PR_SET_KEEPCAPS, int(keep), name="PR_SET_KEEPCAPS")


def get_keepcaps() -> bool:
    """The keep-capabilities flag. See PR_GET_KEEPCAPS in prctl(2)."""
    return _prctl(_PR_GET_KEEPCAPS, name="PR_GET_KEEPCAPS") == 1


def get_no_new_privs() -> bool:
    """Whether execve may no longer grant privileges. See PR_GET_NO_NEW_PRIVS in prctl(2)."""
    return _prctl(_PR_GET_NO_NEW_PRIVS, name="PR_GET_NO_NEW_PRIVS") == 1


def seccomp_set_mode_filter(program: bytes, flags: int = 0) -> None:
    """Install a classic BPF program (8 bytes per ``struct sock_filter``) as a seccomp filter.

    The kernel runs it at every later syscall of this thread and its children, for good.
    It needs no_new_privs or CAP_SYS_ADMIN. See SECCOMP_SET_MODE_FILTER in seccomp(2).
    """
    if _SYS_SECCOMP is None:
        raise OSError(38, f"seccomp: unknown syscall number on {os.uname().machine}")
    if len(program) % 8 or not 0 < len(program) // 8 <= 4096:
        raise OSError(22, f"seccomp: a program is 1 to 4096 instructions of 8 bytes, "
                          f"got {len(program)} bytes")
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
    result = _libc.syscall(_SYS_SECCOMP, _SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(fprog))
    _check(result, "seccomp", "SECCOMP_SET_MODE_FILTER", flags, f"<{len(program) // 8} instructions>")


def cap_last_cap() -> int:
    """The highest capability number this kernel knows (40, CAP_CHECKPOINT_RESTORE, since 5.9).

    See /proc/sys/kernel/cap_last_cap in capabilities(7). Without /proc (a container
    that is only chrooted), the bounding set is probed: PR_CAPBSET_READ fails with
    EINVAL past the last capability, as libcap does.
    """
    try:
        with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
            return int(f.read())
    except FileNotFoundError:
        last = 0
        while True:
            try:
                capbset_read(last + 1)
            except OSError:
                return last
            last += 1
