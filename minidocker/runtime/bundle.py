"""An OCI bundle: a directory with ``config.json`` and a root filesystem. Checked before anything exists.

``runc create --bundle DIR`` reads ``DIR/config.json``; ``root.path`` may be relative
to DIR (``rootfs``, as ``runc spec`` writes it). Everything a create could trip on
later is checked here first, so that a bad config costs nothing: no state directory,
no cgroup, no process, no mount.

    load_config(bundle) -> dict         parse + check; root.path made absolute
    check_config(spec, bundle)          the same checks on a dict (the engine's spec)

See: https://github.com/opencontainers/runtime-spec/blob/main/bundle.md and config.md
"""

from __future__ import annotations

import os
import sys

from minidocker.atomic import dumps, loads  # json through _json: no re, no enum (see atomic.py)
from minidocker.errors import InvalidArgument
from minidocker.runtime.spec import validate

__all__ = ["check_config", "load_config"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# (path, expected type) of the fields whose type the runtime relies on; checked in this order.
_TYPES = (
    ("ociVersion", str), ("process", dict), ("process.args", list), ("process.env", list),
    ("process.cwd", str), ("process.terminal", bool), ("process.user", dict), ("process.user.uid", int),
    ("process.user.gid", int), ("process.user.additionalGids", list), ("process.rlimits", list),
    ("root", dict), ("root.path", str), ("root.readonly", bool), ("hostname", str), ("domainname", str),
    ("mounts", list), ("hooks", dict), ("annotations", dict), ("linux", dict), ("linux.namespaces", list),
    ("linux.uidMappings", list), ("linux.gidMappings", list), ("linux.maskedPaths", list),
    ("linux.readonlyPaths", list), ("linux.sysctl", dict), ("linux.devices", list), ("linux.resources", dict),
    ("linux.cgroupsPath", str), ("linux.rootfsPropagation", str),
)
_REQUIRED = ("ociVersion", "root", "root.path", "process", "process.args")
_PROPAGATIONS = ("shared", "slave", "private", "unbindable", "rshared", "rslave", "rprivate", "runbindable")


def load_config(bundle: str) -> dict[str, Any]:
    """Read and check ``bundle/config.json``; return it with an absolute ``root.path``.

    Raises:
        InvalidArgument: a missing or unreadable file, bad JSON, a missing field, a wrong
            type, an unknown namespace, a root outside the bundle, a bad mount destination.
    """
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            spec = loads(f.read())
    except FileNotFoundError:
        raise InvalidArgument(f"failed to load {path}: no such file",
                              hint="give the bundle with --bundle, or write one with 'spec'") from None
    except (OSError, ValueError) as err:
        raise InvalidArgument(f"failed to load {path}: {err}") from None
    if not isinstance(spec, dict):
        raise InvalidArgument(f"failed to load {path}: expected a JSON object, got {type(spec).__name__}")
    check_config(spec, bundle)
    return spec


def check_config(spec: dict[str, Any], bundle: str) -> None:
    """Check ``spec`` and make ``root.path`` absolute (relative to ``bundle``). Raises InvalidArgument."""
    for field in _REQUIRED:
        if _get(spec, field) is None:
            raise InvalidArgument(f"invalid config: {field} is missing")
    for field, kind in _TYPES:
        value = _get(spec, field)
        if value is not None and (not isinstance(value, kind) or (kind is int and isinstance(value, bool))):
            raise InvalidArgument(f"invalid config: {field} must be {_TYPE_NAMES[kind]}, "
                                  f"got {dumps(value)[:60]}")
    for index, entry in enumerate(spec.get("mounts", [])):
        if not isinstance(entry, dict) or not isinstance(entry.get("destination"), str):
            raise InvalidArgument(f"invalid config: mounts[{index}] needs a destination string")
    for index, entry in enumerate(_get(spec, "linux.namespaces") or []):
        if not isinstance(entry, dict):
            raise InvalidArgument(f"invalid config: linux.namespaces[{index}] must be an object")
    validate(spec)
    _check_unsupported(spec)
    root = spec["root"]["path"]
    absolute = os.path.normpath(os.path.join(os.path.abspath(bundle), root))
    if not os.path.isabs(root) and not (absolute + "/").startswith(os.path.abspath(bundle).rstrip("/") + "/"):
        raise InvalidArgument(f"invalid config: root.path {root!r} escapes the bundle {bundle}")
    if not os.path.isdir(absolute):
        raise InvalidArgument(f"invalid config: root.path {absolute} is not a directory")
    spec["root"]["path"] = absolute
    for entry in spec.get("mounts", []):
        _check_destination(absolute, entry["destination"])


def _check_unsupported(spec: dict[str, Any]) -> None:
    linux = spec.get("linux", {})
    if linux.get("intelRdt") is not None:
        raise InvalidArgument("invalid config: linux.intelRdt is not supported by minidocker")
    propagation = linux.get("rootfsPropagation")
    if propagation and propagation not in _PROPAGATIONS:
        raise InvalidArgument(f"invalid config: unknown linux.rootfsPropagation {propagation!r}")
    process = spec["process"]
    for key in ("apparmorProfile", "selinuxLabel"):
        if process.get(key):
            print(f"minidocker: warning: process.{key} is ignored (no LSM support)", file=sys.stderr)


def _check_destination(rootfs: str, destination: str) -> None:
    """Refuse a destination whose path climbs out of the root through a relative symlink.

    Absolute symlinks are the image's own paths (``/var/run -> /run``) and are resolved
    inside the root at mount time (rootfs.secure_join); a relative one that climbs
    above the root (``../../..``) only exists to point at the host.
    """
    current = rootfs
    for part in [p for p in destination.split("/") if p and p != "."]:
        candidate = os.path.join(current, part)
        if os.path.islink(candidate):
            target = os.readlink(candidate)
            resolved = os.path.normpath(os.path.join(current, target))
            if not target.startswith("/") and not (resolved + "/").startswith(rootfs.rstrip("/") + "/"):
                raise InvalidArgument(f"invalid mount destination {destination!r}: "
                                      f"{candidate[len(rootfs):]} is a symlink out of the root ({target})")
            return  # resolved inside the root from here on (secure_join)
        if part == ".." or not os.path.isdir(candidate):
            return
        current = candidate


_TYPE_NAMES = {str: "a string", dict: "an object", list: "a list", bool: "true or false", int: "an integer"}


def _get(spec: dict[str, Any], dotted: str) -> Any:
    value: Any = spec
    for key in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value
