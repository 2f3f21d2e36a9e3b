"""The kernel interface: thin ctypes wrappers for the syscalls Python's ``os`` lacks.

This package is the only place in minidocker that calls libc. Each function is named
after its man page, takes Python values, returns None (or a plain value), and raises
``OSError`` (the right subclass: ``PermissionError``, ``FileNotFoundError``, ...)
whose message names the call and its arguments. Nothing returns -1.

Main API::

    unshare(flags)                    See unshare(2).
    setns(fd, nstype=0)               See setns(2).
    mount(source, target, fstype, flags=0, data=None)   See mount(2).
    umount2(target, flags=0)          See umount2(2).
    pivot_root(new_root, put_old)     See pivot_root(2).
    sethostname(name)                 See sethostname(2).
    set_pdeathsig(sig)                See PR_SET_PDEATHSIG in prctl(2).
    set_no_new_privs()                See PR_SET_NO_NEW_PRIVS in prctl(2).
    set_child_subreaper(enabled)      See PR_SET_CHILD_SUBREAPER in prctl(2).
    is_child_subreaper()              See PR_GET_CHILD_SUBREAPER in prctl(2).

Flags are plain ints spelled as in C: ``CloneFlag.CLONE_NEWNS``, ``MountFlag.MS_BIND``,
``UmountFlag.MNT_DETACH`` (``flag_names`` spells a value back).
"""

from minidocker import lazy_attributes

# Loaded on first use (PEP 562): ``minidocker.linux.procfs`` (plain file reads) must not pay
# for ctypes and loading libc, which ``syscalls`` does; the runtime's ``state`` needs only procfs.
_FROM = {"CloneFlag": "flags", "MountFlag": "flags", "UmountFlag": "flags", "flag_names": "flags"}

__all__ = [
    "CloneFlag",
    "MountFlag",
    "UmountFlag",
    "flag_names",
    "is_child_subreaper",
    "mount",
    "pivot_root",
    "set_child_subreaper",
    "set_no_new_privs",
    "set_pdeathsig",
    "sethostname",
    "setns",
    "umount2",
    "unshare",
]

__getattr__ = lazy_attributes(__name__, {name: _FROM.get(name, "syscalls") for name in __all__})
