"""What ``runc spec`` writes and what ``runc features`` prints, for this runtime.

``runc_default_spec()`` is runc 1.1's default config.json, field for field (a shell
in ``rootfs``, a terminal, the default capabilities, masked paths); the learner edits
it by hand in notebook 12. ``features()`` says what minidocker implements, in the
shape of runc's ``features`` (runtime-spec features.md), so a manager can check.
See: https://github.com/opencontainers/runtime-spec/blob/main/features.md
"""

from __future__ import annotations

import os

from minidocker.rootfs import DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS
from minidocker.runtime.spec import DEFAULT_PATH, OCI_VERSION

__all__ = ["features", "runc_default_spec"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
_HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]
_MOUNT_OPTIONS = ["async", "atime", "bind", "defaults", "dev", "diratime", "exec", "noatime", "nodev",
                  "nodiratime", "noexec", "nosuid", "private", "rbind", "relatime", "ro", "rprivate",
                  "rshared", "rslave", "runbindable", "rw", "shared", "slave", "strictatime", "suid", "sync",
                  "unbindable"]


def runc_default_spec(rootless: bool = False) -> dict[str, Any]:
    """The config.json ``runc spec`` writes (``--rootless``: with a user namespace for this user)."""
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": [DEFAULT_PATH, "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(_CAPS) for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
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
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": list(DEFAULT_MASKED_PATHS),
            "readonlyPaths": list(DEFAULT_READONLY_PATHS),
        },
    }
    if rootless:
        # runc's specconv.ToRootless: no network or cgroup namespace, so /sys is the host's, bound
        # (sysfs may be mounted only by the owner of the network namespace); no device cgroup.
        spec["linux"]["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "user")]
        spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": os.getuid(), "size": 1}]
        spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": os.getgid(), "size": 1}]
        spec["linux"].pop("resources")
        spec["mounts"][-2] = {"destination": "/sys", "type": "none", "source": "/sys",
                              "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]}
        spec["mounts"][2]["options"].remove("gid=5")   # gid 5 (tty) is not mapped: devpts would refuse it
    return spec


def features() -> dict[str, Any]:
    """What this runtime supports, shaped like ``runc features``."""
    from minidocker.namespaces import NAMESPACES

    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(_HOOKS),
        "mountOptions": list(_MOUNT_OPTIONS),
        "linux": {
            "namespaces": sorted(NAMESPACES),
            "capabilities": [],  # applied by minidocker.security (chapter 11)
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": False},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
        },
        "annotations": {"org.minidocker.init": "true runs an init (like docker run --init) as PID 1"},
    }
