"""The OCI runtime-spec config: the contract between the engine and the runtime.

Docker's daemon writes a ``config.json`` into a bundle and hands it to runc; the
engine of minidocker builds the same dict and hands it to :mod:`minidocker.runtime`.
:func:`default_spec` is what ``runc spec`` prints, adjusted the way Docker adjusts it
(its masked and read-only paths, ``/dev/shm`` of 64 MiB). :func:`validate` checks
what the runtime relies on, so that a bad config fails before anything is created.

See: https://github.com/opencontainers/runtime-spec/blob/main/config.md
"""

from __future__ import annotations


from minidocker.cgroups import Resources
from minidocker.errors import InvalidArgument
from minidocker.namespaces import NAMESPACES
from minidocker.rootfs import DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS
from minidocker.security.options import check_security, security_spec

__all__ = ["DEFAULT_PATH", "OCI_VERSION", "default_mounts", "default_spec", "validate", "validate_hostname"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

OCI_VERSION = "1.0.2"
# Docker's and runc's; the one copy
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# RFC 1123 labels: 1-63 of [A-Za-z0-9-], not starting or ending with '-'; Linux allows 64 bytes
# in all (HOST_NAME_MAX), see gethostname(2). Checked without re (its import: ~2 ms per command).
_LABEL_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def _is_label(label: str) -> bool:
    return (0 < len(label) <= 63 and label[0] != "-" and label[-1] != "-"
            and all(c in _LABEL_CHARACTERS for c in label))


def default_mounts() -> list[dict[str, Any]]:
    """The filesystems every container gets, as ``runc spec`` writes them."""
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
    ]


def default_spec(
    rootfs: str,
    args: Sequence[str],
    *,
    env: Sequence[str] = (DEFAULT_PATH,),
    cwd: str = "/",
    hostname: str | None = None,
    terminal: bool = False,
    uid: int = 0,
    gid: int = 0,
    additional_gids: Sequence[int] = (),
    namespaces: Sequence[str] = ("pid", "network", "ipc", "uts", "mount", "cgroup"),
    readonly_rootfs: bool = False,
) -> dict[str, Any]:
    """A complete OCI config for running ``args`` in ``rootfs``. Like ``runc spec``."""
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": terminal,
            "user": {"uid": uid, "gid": gid},
            "args": list(args),
            "env": list(env),
            "cwd": cwd,
        },
        "root": {"path": rootfs, "readonly": readonly_rootfs},
        "mounts": default_mounts(),
        "linux": {
            "namespaces": [{"type": t} for t in namespaces],
            "maskedPaths": list(DEFAULT_MASKED_PATHS),
            "readonlyPaths": list(DEFAULT_READONLY_PATHS),
        },
    }
    security = security_spec()  # Docker's default capabilities and seccomp profile (chapter 11)
    spec["process"]["capabilities"] = security["capabilities"]
    if "seccomp" in security:
        spec["linux"]["seccomp"] = security["seccomp"]
    spec["linux"]["resources"] = {"devices": security["devices"]}  # the device cgroup's allowlist
    if additional_gids:
        spec["process"]["user"]["additionalGids"] = list(additional_gids)
    if hostname is not None:
        spec["hostname"] = hostname
    return spec


def validate_hostname(hostname: str) -> str:
    """Return ``hostname`` if the kernel and DNS would accept it, else raise InvalidArgument."""
    if not hostname or len(hostname.encode()) > 64 or not all(
        _is_label(label) for label in hostname.split(".")
    ):
        raise InvalidArgument(
            f"invalid hostname {hostname!r}",
            hint="use letters, digits, '-' and '.', at most 64 characters (RFC 1123)",
        )
    return hostname


def validate(spec: Mapping[str, Any]) -> None:
    """Check the parts of a config the runtime relies on. Raises InvalidArgument."""
    process = spec.get("process")
    if not isinstance(process, dict):
        raise InvalidArgument("invalid config: 'process' is missing")
    args = process.get("args")
    if not args or not all(isinstance(a, str) for a in args):
        raise InvalidArgument("invalid config: process.args must be a non-empty list of strings",
                              hint="give a command, or use an image that has one")
    for item in process.get("env", []):
        if "=" not in item or item.startswith("="):
            raise InvalidArgument(f"invalid environment variable {item!r}: expected KEY=VALUE")
    if not str(process.get("cwd", "/")).startswith("/"):
        raise InvalidArgument(f"invalid working directory {process.get('cwd')!r}: it must be absolute")
    if not spec.get("root", {}).get("path"):
        raise InvalidArgument("invalid config: root.path is missing")
    if "hostname" in spec:
        validate_hostname(spec["hostname"])
    for entry in spec.get("linux", {}).get("namespaces", []):
        if entry.get("type") not in NAMESPACES:
            raise InvalidArgument(f"invalid config: unknown namespace type {entry.get('type')!r}")
    Resources.from_oci(spec.get("linux", {}).get("resources"))  # raises on a bad limit
    for entry in spec.get("mounts", []):
        if not str(entry.get("destination", "")).startswith("/"):
            raise InvalidArgument(f"invalid mount {entry}: destination must be absolute")
    check_security(spec)  # capability names, seccomp actions (chapter 11)
