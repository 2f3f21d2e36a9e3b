"""Device nodes: the host's, for ``--privileged``, as OCI ``linux.devices``. Chapter 11.

A device node is only a name for a (type, major, minor) triple: whoever may create one
(CAP_MKNOD) and open it reaches the driver, e.g. ``b 8 0``, the host's first disk. Docker
gives ``--privileged`` containers a node for every device of the host; the runtime creates
them with mknod after the default ones::

    host_devices()                  the host's /dev as OCI device entries
    parse_device("/dev/loop0:/dev/disk:r")   --device: the entry and the cgroup rule that allows it
    DEFAULT_DEVICE_RULES            the device cgroup's allowlist (OCI linux.resources.devices):
                                    mknod of anything, but open only of null, zero, full, tty,
                                    random, urandom, the ptys, console and tun, as Docker

See: mknod(2), Documentation/admin-guide/devices.txt, the OCI runtime spec's "Devices".
"""

from __future__ import annotations

import os
import stat

from minidocker.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["DEFAULT_DEVICE_RULES", "PRIVILEGED_DEVICE_RULES", "host_devices",
           "parse_device"]

# runc's AllowedDevices, which Docker uses: deny everything, then allow these. CAP_MKNOD stays in
# the default capabilities, so the cgroup is what keeps "mknod sda b 8 0; cat sda" from the disk.
DEFAULT_DEVICE_RULES = [
    {"allow": False, "access": "rwm"},
    {"allow": True, "type": "c", "access": "m"},          # mknod of any character device
    {"allow": True, "type": "b", "access": "m"},          # and of any block device: no open
    *({"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
      for major, minor in ((1, 3), (1, 5), (1, 7), (5, 0), (5, 1), (1, 8), (1, 9), (5, 2), (10, 200))),
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},   # /dev/pts/*
]
PRIVILEGED_DEVICE_RULES = [{"allow": True, "access": "rwm"}]

# Like runc's devices.HostDevices: these directories are the container's own (mounted by the
# runtime) or not devices at all; /dev/console is the runtime's (the pty of -t).
_SKIPPED = ("pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev")


def host_devices(root: str = "/dev") -> list[dict[str, Any]]:
    """Every character and block device under ``root``, as OCI ``linux.devices`` entries."""
    found = []
    for directory, dirs, files in os.walk(root):
        if directory == root:
            dirs[:] = [d for d in dirs if d not in _SKIPPED]
        for name in files:
            path = os.path.join(directory, name)
            if path == os.path.join(root, "console"):
                continue
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue   # gone since the walk listed it
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
                found.append({"path": "/dev" + path[len(root):], "type": kind,
                              "major": os.major(st.st_rdev), "minor": os.minor(st.st_rdev),
                              "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid})
    return sorted(found, key=lambda d: d["path"])


def parse_device(value: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``--device HOST[:CONTAINER][:PERMISSIONS]`` -> (OCI linux.devices entry, device cgroup rule).

    Docker's reading: a last part made of r, w and m is the permissions (default rwm); the
    container path defaults to the host path. Raises InvalidArgument for a path that is not a
    device node, or bad permissions.
    """
    parts = value.split(":")
    permissions = "rwm"
    if len(parts) > 1 and parts[-1] and set(parts[-1]) <= set("rwm"):
        permissions = parts.pop()
    if len(parts) > 2 or not parts[0]:
        raise InvalidArgument(f"invalid --device {value!r}", hint="use HOST[:CONTAINER][:PERMISSIONS], e.g. "
                                                                   "/dev/loop0:/dev/disk:r")
    host, container = parts[0], parts[1] if len(parts) == 2 and parts[1] else parts[0]
    if not container.startswith("/"):
        raise InvalidArgument(f"invalid --device {value!r}: the container path {container!r} "
                              "must be absolute")
    try:
        st = os.stat(host)
    except OSError as err:
        raise InvalidArgument(f"failed to add device {host!r}: {err.strerror.lower()}") from None
    if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise InvalidArgument(f"failed to add device {host!r}: not a device node")
    kind = "c" if stat.S_ISCHR(st.st_mode) else "b"
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    entry = {"path": container, "type": kind, "major": major, "minor": minor,
             "fileMode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid}
    return entry, {"allow": True, "type": kind, "major": major, "minor": minor, "access": permissions}


