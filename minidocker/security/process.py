"""The last steps before exec: user, capabilities, no_new_privs, seccomp. Chapter 11.

:func:`apply_process_security` reads the OCI spec's ``process.user``,
``process.capabilities``, ``process.noNewPrivileges`` and ``linux.seccomp`` and applies
them in runc's order (libcontainer's ``finalizeNamespace`` and ``standard_init``)::

    seccomp filter, if no_new_privs is not asked for   installing one then needs CAP_SYS_ADMIN,
                                                      which the next steps take away
    drop the bounding set                              needs CAP_SETPCAP, still ours
    PR_SET_KEEPCAPS 1, setgroups, setgid, setuid       the kernel would empty the permitted set
    PR_SET_KEEPCAPS 0                                  when uid 0 leaves; keepcaps stops it
    capset(effective, permitted, inheritable)
    ambient set                                        what survives execve for a non-root user
    PR_SET_NO_NEW_PRIVS, then the seccomp filter       as late as possible: fewer of our own
                                                      calls run under the filter

Capabilities this process does not have itself cannot be given (CAP_SYS_RESOURCE is missing
from root's bounding set on some hosts): they are left out instead of failing, so that
``--privileged`` works there. A spec without ``process.capabilities`` keeps all of ours.
See: capabilities(7), prctl(2), seccomp(2).
"""

from __future__ import annotations

import os

from minidocker.atomic import dumps
from minidocker.linux import set_no_new_privs
from minidocker.linux.security import (
    cap_ambient_clear_all,
    cap_ambient_raise,
    cap_last_cap,
    capbset_drop,
    capbset_read,
    capget,
    capset,
    seccomp_set_mode_filter,
    set_keepcaps,
)
from minidocker.security.capabilities import to_mask

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["apply_capabilities", "apply_process_security", "seccomp_program", "set_user"]


_COMPILED: dict[str, bytes] = {}


def seccomp_program(spec: Mapping[str, Any]) -> bytes | None:
    """The spec's seccomp filter compiled (None without one); raises ValueError for a bad profile.

    The runtime compiles it before it forks: in the parent, whose objects are its own, it
    takes 0.3 ms; in a freshly forked child each object it touches is a copy-on-write page
    fault, and it takes 1.2 ms on the way to the user's process (bench/README.md).
    """
    seccomp = spec.get("linux", {}).get("seccomp")
    if not seccomp:
        return None
    # A daemon's supervisor starts container after container with one profile: keep the last few
    # programs, by the profile's JSON (0.04 ms to write, against 0.3 to compile).
    key = dumps(seccomp)
    program = _COMPILED.get(key)
    if program is None:
        # Here, not at the top: a config without seccomp does not load the compiler and the
        # syscall table. Callers compile on the host, before they fork into the container:
        # from inside its root, minidocker's modules cannot be imported.
        from minidocker.security.seccomp import compile_filter

        program = compile_filter(seccomp)
        if len(_COMPILED) >= 8:
            _COMPILED.clear()
        _COMPILED[key] = program
    return program


def apply_process_security(spec: Mapping[str, Any], program: bytes | None = None) -> None:
    """Become the spec's user with the spec's capabilities, no_new_privs and seccomp filter.

    Runs in the container's init, right before the exec. Like runc's init. ``program``
    is :func:`seccomp_program` of the spec, if the caller compiled it already.
    """
    process = spec.get("process", {})
    no_new_privs = bool(process.get("noNewPrivileges"))
    if program is None:
        program = seccomp_program(spec)  # before anything changes: a bad profile fails cleanly
    if program is not None and not no_new_privs:
        seccomp_set_mode_filter(program)
    capabilities = process.get("capabilities")
    user = process.get("user", {})
    if capabilities is None:
        set_user(user)
    else:
        apply_capabilities(capabilities, lambda: set_user(user))
    if no_new_privs:
        set_no_new_privs()
    if program is not None and no_new_privs:
        seccomp_set_mode_filter(program)


def set_user(user: Mapping[str, Any]) -> None:
    """Drop to the spec's uid/gid: groups first, then gid, then uid (after setuid we could not)."""
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    if user.get("umask") is not None:
        os.umask(int(user["umask"]))
    groups = [int(g) for g in user.get("additionalGids", [])]
    try:
        os.setgroups(groups)
    except PermissionError:
        # A rootless namespace mapped by its own user has setgroups(2) denied (user_namespaces(7)):
        # with no groups to set there is nothing to drop (runc skips it too).
        with open("/proc/self/setgroups") as f:
            if groups or f.read().strip() != "deny":
                raise
    os.setgid(gid)
    os.setuid(uid)


def apply_capabilities(capabilities: Mapping[str, Any], switch_user: Any = None) -> None:
    """Set the five capability sets from an OCI ``process.capabilities``; ``switch_user`` runs in between."""
    _, have, _ = capget()
    known = (1 << cap_last_cap() + 1) - 1

    def mask(name: str) -> int:
        return to_mask(capabilities.get(name, ())) & known & have

    bounding = mask("bounding")
    for cap in range(cap_last_cap() + 1):
        if not bounding >> cap & 1 and capbset_read(cap):
            capbset_drop(cap)
    if switch_user is not None:
        set_keepcaps(True)
        try:
            switch_user()
        finally:
            set_keepcaps(False)
    effective, permitted, inheritable = mask("effective"), mask("permitted"), mask("inheritable")
    capset(effective & permitted, permitted, inheritable)
    ambient = mask("ambient") & permitted & inheritable
    cap_ambient_clear_all()
    for cap in range(ambient.bit_length()):
        if ambient >> cap & 1:
            cap_ambient_raise(cap)

