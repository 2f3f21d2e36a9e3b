"""One small function per syscall, each raising OSError on failure.

Python 3.12 added ``os.unshare`` and ``os.setns``; 3.10 and 3.11 lack them, and the
standard library has no ``mount``, ``umount2``, ``pivot_root``, ``sethostname`` or
``prctl`` at all. These wrappers call libc (or ``syscall(2)`` where glibc has no
wrapper) through ctypes with ``use_errno=True``, so the errno we read is the one the
call set.
"""

from __future__ import annotations

import ctypes
import os
# The C half of the signal module: the same functions and numbers, without the enums that
# `import signal` builds (bench/README.md, "OCI runtime").
import _signal as signal

from minidocker.linux.flags import CloneFlag, MountFlag, UmountFlag, flag_names

__all__ = [
    "mount",
    "pivot_root",
    "is_child_subreaper",
    "set_child_subreaper",
    "set_no_new_privs",
    "set_pdeathsig",
    "sethostname",
    "setns",
    "umount2",
    "unshare",
]


def _load_libc() -> ctypes.CDLL:
    """libc by its glibc soname; any other C library through ctypes.util.

    Not find_library first: on Linux it runs ``ldconfig -p`` in a subprocess, which
    costs more than the rest of this module's import (see bench/README.md).
    """
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        from ctypes.util import find_library

        return ctypes.CDLL(find_library("c"), use_errno=True)


_libc = _load_libc()
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.syscall.restype = ctypes.c_long

# glibc has no pivot_root wrapper, so we go through syscall(2) with the number.
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine)

# prctl(2) options.
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
_PR_SET_NO_NEW_PRIVS = 38


class _Flags:
    """An argument shown by its flag names in an error message: ``unshare(CLONE_NEWUSER)``."""

    def __init__(self, flags: type, value: int) -> None:
        self.flags, self.value = flags, value

    def __repr__(self) -> str:
        return flag_names(self.flags, self.value)


def _check(result: int, call: str, *args: object) -> None:
    """Raise the OSError subclass for errno when a libc call returned -1."""
    if result == -1:
        err = ctypes.get_errno()
        shown = ", ".join(repr(a) for a in args)
        # OSError(errno, text) picks the subclass: EPERM -> PermissionError, ...
        raise OSError(err, f"{call}({shown}): {os.strerror(err)}")


def _path(p: str | os.PathLike[str] | None) -> bytes | None:
    return None if p is None else os.fsencode(p)


def unshare(flags: int) -> None:
    """Move the calling thread into new namespaces given by CLONE_NEW* flags.

    In a multithreaded process only the calling thread moves (and CLONE_NEWUSER
    fails with EINVAL), so call this in a forked, single-threaded child.
    See unshare(2).
    """
    _check(_libc.unshare(int(flags)), "unshare", _Flags(CloneFlag, flags))


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace that ``fd`` refers to (a /proc/PID/ns/* fd or a pidfd).

    ``nstype`` 0 accepts any type; a CLONE_NEW* value makes the kernel check it.
    See setns(2).
    """
    _check(_libc.setns(fd, int(nstype)), "setns", fd, _Flags(CloneFlag, nstype))


def mount(
    source: str | None,
    target: str | os.PathLike[str],
    fstype: str | None,
    flags: int = 0,
    data: str | None = None,
) -> None:
    """Attach a filesystem, or change a mount's flags or propagation.

    See mount(2).
    """
    result = _libc.mount(
        _path(source), _path(target), _path(fstype), int(flags), None if data is None else data.encode()
    )
    _check(result, "mount", source, os.fspath(target), fstype, _Flags(MountFlag, flags), data)


def umount2(target: str | os.PathLike[str], flags: int = 0) -> None:
    """Detach the filesystem mounted at ``target``; MNT_DETACH makes it lazy.

    See umount2(2).
    """
    _check(_libc.umount2(_path(target), int(flags)), "umount2", os.fspath(target), _Flags(UmountFlag, flags))


def pivot_root(new_root: str | os.PathLike[str], put_old: str | os.PathLike[str]) -> None:
    """Make ``new_root`` the root mount and move the old root to ``put_old``.

    ``new_root`` must be a mount point and not shared. ``pivot_root(".", ".")``
    stacks the old root on top of the new one, ready for ``umount2(".", MNT_DETACH)``.
    See pivot_root(2).
    """
    if _SYS_PIVOT_ROOT is None:
        raise OSError(38, f"pivot_root: unknown syscall number on {os.uname().machine}")
    result = _libc.syscall(_SYS_PIVOT_ROOT, _path(new_root), _path(put_old))
    _check(result, "pivot_root", os.fspath(new_root), os.fspath(put_old))


def sethostname(name: str) -> None:
    """Set the hostname of the calling process's UTS namespace.

    See sethostname(2).
    """
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), "sethostname", name)


def _prctl(option: int, arg2: int, name: str) -> None:
    _check(_libc.prctl(option, arg2, 0, 0, 0), "prctl", name, arg2)


def set_pdeathsig(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``sig`` to us when our parent thread dies.

    See PR_SET_PDEATHSIG in prctl(2).
    """
    _prctl(_PR_SET_PDEATHSIG, int(sig), "PR_SET_PDEATHSIG")


def set_no_new_privs() -> None:
    """Forbid gaining privileges through execve (setuid bits, file capabilities).

    See PR_SET_NO_NEW_PRIVS in prctl(2).
    """
    _prctl(_PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS")


def set_child_subreaper(enabled: bool = True) -> None:
    """Become (or stop being) the reaper of orphaned descendants, like PID 1 is for everyone else.

    See PR_SET_CHILD_SUBREAPER in prctl(2).
    """
    _prctl(_PR_SET_CHILD_SUBREAPER, int(enabled), "PR_SET_CHILD_SUBREAPER")


def is_child_subreaper() -> bool:
    """Is this process a child subreaper? See PR_GET_CHILD_SUBREAPER in prctl(2)."""
    value = ctypes.c_int(0)
    _check(_libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.addressof(value), 0, 0, 0), "prctl",
           "PR_GET_CHILD_SUBREAPER")
    return bool(value.value)
