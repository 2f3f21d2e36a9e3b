"""``run``'s security flags -> the spec's capabilities, no_new_privs, seccomp, paths, devices. Chapter 11.

    --cap-add NET_ADMIN / --cap-drop ALL     process.capabilities (Docker's names, with or without CAP_)
    --privileged                              every capability, no seccomp, no masked or read-only
                                              paths, a writable /sys, every host device
    --security-opt no-new-privileges[=true]   process.noNewPrivileges
    --security-opt seccomp=unconfined|FILE    no linux.seccomp, or FILE (Docker's profile format)
    --security-opt systempaths=unconfined     no masked or read-only paths (as Docker)
    --security-opt apparmor=P / label=L       accepted, reported as not enforced
    --device /dev/loop0[:/dev/disk][:rwm]     the node in the container and its device cgroup rule

:func:`security_spec` returns the defaults for :func:`minidocker.runtime.spec.default_spec`;
:func:`configure` rewrites them for the flags once the user is known (a non-root user gets
only the bounding set, as with Docker). The engine only translates; the runtime applies
(:func:`minidocker.security.process.apply_process_security`).
"""

from __future__ import annotations

import os

from minidocker.errors import InvalidArgument
from minidocker.record import Record
from minidocker.security.capabilities import DEFAULT_CAPABILITIES, process_capabilities, tweak

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

__all__ = ["SecurityFlags", "check_security", "configure", "default_seccomp", "parse_security_opts",
           "security_spec"]

_TRUE, _FALSE = ("", "true", "1"), ("false", "0")
_DEFAULT_SECCOMP: dict[tuple[str, ...], dict] = {}


class SecurityFlags(Record):
    """The security flags of ``run`` as typed: checked by :func:`configure`."""

    FIELDS = ("privileged", "cap_add", "cap_drop", "security_opt", "devices", "userns")

    def __init__(self, privileged: bool = False, cap_add: list[str] | None = None,
                 cap_drop: list[str] | None = None, security_opt: list[str] | None = None,
                 devices: list[str] | None = None, userns: str | None = None) -> None:
        self.privileged = privileged
        self.cap_add = [] if cap_add is None else cap_add
        self.cap_drop = [] if cap_drop is None else cap_drop
        self.security_opt = [] if security_opt is None else security_opt
        self.devices = [] if devices is None else devices  # --device HOST[:CONTAINER][:rwm]
        self.userns = userns  # --userns host: no remap for this container (Docker's run flag)


def default_seccomp(capabilities: Iterable[str] = DEFAULT_CAPABILITIES) -> dict[str, Any] | None:
    """The default profile resolved for these capabilities (None where we cannot build filters)."""
    from minidocker.security.seccomp import NATIVE_ARCH, profile_to_oci

    key = tuple(capabilities)
    if key not in _DEFAULT_SECCOMP:
        from minidocker.linux.syscall_table import ARCHITECTURES
        from minidocker.security.profile import default_profile

        if NATIVE_ARCH not in ARCHITECTURES:
            return None
        _DEFAULT_SECCOMP[key] = profile_to_oci(default_profile(), key)
    return _copy(_DEFAULT_SECCOMP[key])


def security_spec() -> dict[str, Any]:
    """What every container gets unless flags say otherwise: Docker's capabilities and seccomp profile."""
    from minidocker.security.devices import DEFAULT_DEVICE_RULES

    result: dict[str, Any] = {"capabilities": process_capabilities(DEFAULT_CAPABILITIES),
                              "devices": [dict(rule) for rule in DEFAULT_DEVICE_RULES]}
    seccomp = default_seccomp()
    if seccomp is not None:
        result["seccomp"] = seccomp
    return result


def check_security(spec: dict[str, Any]) -> None:
    """Check a config's capability names and seccomp actions before anything is created.

    A hand-written config.json would otherwise fail inside the container's init. Raises
    InvalidArgument.
    """
    from minidocker.security.capabilities import normalize

    for kind, names in (spec.get("process", {}).get("capabilities") or {}).items():
        for name in names:
            if normalize(name) == "ALL":
                raise InvalidArgument(f"invalid config: process.capabilities.{kind} lists 'ALL'",
                                      hint="name each capability")
    seccomp = spec.get("linux", {}).get("seccomp")
    if seccomp:
        from minidocker.security.seccomp import ACTIONS

        rules = seccomp.get("syscalls") or []
        actions = [seccomp.get("defaultAction")] + [rule.get("action") for rule in rules]
        bad = [a for a in actions if a not in ACTIONS]
        if bad:
            raise InvalidArgument(f"invalid config: linux.seccomp action {bad[0]!r} does not exist")


def parse_security_opts(values: Iterable[str]) -> dict[str, Any]:
    """``--security-opt`` values -> {"no_new_privileges", "seccomp" (None, "unconfined" or a path),
    "systempaths", "ignored"}. Raises InvalidArgument for one Docker would refuse."""
    parsed: dict[str, Any] = {"no_new_privileges": False, "seccomp": None, "systempaths": None, "ignored": []}
    for value in values:
        key, sep, arg = value.partition("=")
        if not sep and ":" in value:   # the old "no-new-privileges:true" spelling
            key, sep, arg = value.partition(":")
        if key == "no-new-privileges" and arg.lower() in _TRUE + _FALSE:
            parsed["no_new_privileges"] = arg.lower() in _TRUE
        elif key == "seccomp" and arg:
            parsed["seccomp"] = arg
        elif key == "systempaths" and arg == "unconfined":
            parsed["systempaths"] = arg
        elif key in ("apparmor", "label") and arg:
            parsed["ignored"].append(value)
        else:
            raise InvalidArgument(f"invalid --security-opt: {value!r}",
                                  hint="use no-new-privileges[=true], seccomp=unconfined|PROFILE.json, "
                                       "systempaths=unconfined, apparmor=PROFILE or label=LABEL")
    return parsed


def configure(spec: dict[str, Any], flags: SecurityFlags) -> list[str]:
    """Apply the flags to a spec whose user is final. Returns warnings for the user (stderr)."""
    opts = parse_security_opts(flags.security_opt)
    if flags.userns not in (None, "", "host"):
        raise InvalidArgument(f"invalid --userns {flags.userns!r}", hint="the only mode is host")
    caps = tweak(flags.cap_add, flags.cap_drop, flags.privileged)
    process, linux = spec["process"], spec.setdefault("linux", {})
    process["capabilities"] = process_capabilities(caps, int(process.get("user", {}).get("uid", 0)))
    if opts["no_new_privileges"]:
        process["noNewPrivileges"] = True
    seccomp = opts["seccomp"]
    if flags.privileged or seccomp == "unconfined":
        linux.pop("seccomp", None)
    elif seccomp is not None:
        from minidocker.security.seccomp import load_profile, profile_to_oci

        linux["seccomp"] = profile_to_oci(load_profile(seccomp), caps)
    elif set(caps) != set(DEFAULT_CAPABILITIES) or "seccomp" not in linux:
        # the profile's includes/excludes depend on the capabilities (CAP_SYS_ADMIN allows mount ...)
        resolved = default_seccomp(caps)
        if resolved is not None:
            linux["seccomp"] = resolved
    warnings = []
    if "seccomp" not in linux and not flags.privileged and seccomp != "unconfined":
        from minidocker.security.seccomp import NATIVE_ARCH

        warnings.append(f"WARNING: no seccomp filter: minidocker has syscall tables for x86_64 and i386, "
                        f"not {NATIVE_ARCH or os.uname().machine}")
    if flags.privileged or opts["systempaths"]:
        linux["maskedPaths"], linux["readonlyPaths"] = [], []
    if flags.privileged:
        _privileged(spec)
    if flags.devices:
        _add_devices(spec, flags.devices)
    return warnings + [f"WARNING: --security-opt {value} is accepted but not enforced: minidocker loads no "
                       "AppArmor or SELinux policy" for value in opts["ignored"]]


def _privileged(spec: dict[str, Any]) -> None:
    """A writable /sys and every device of the host, as ``docker run --privileged``."""
    from minidocker.security.devices import PRIVILEGED_DEVICE_RULES, host_devices

    for mount in spec.get("mounts", []):
        if mount.get("type") == "sysfs":
            mount["options"] = [o for o in mount.get("options", []) if o != "ro"]
    spec["linux"]["devices"] = host_devices()
    spec["linux"].setdefault("resources", {})["devices"] = [dict(r) for r in PRIVILEGED_DEVICE_RULES]


def _add_devices(spec: dict[str, Any], values: list[str]) -> None:
    """``--device``: a node in the container's /dev and a rule in its device cgroup."""
    from minidocker.security.devices import parse_device

    linux = spec["linux"]
    for value in values:
        entry, rule = parse_device(value)
        linux.setdefault("devices", []).append(entry)
        linux.setdefault("resources", {}).setdefault("devices", []).append(rule)


def _copy(seccomp: dict[str, Any]) -> dict[str, Any]:
    """A copy deep enough that a caller may edit the spec without changing the cache."""
    return {**seccomp, "architectures": list(seccomp["architectures"]),
            "syscalls": [dict(rule) for rule in seccomp["syscalls"]]}
