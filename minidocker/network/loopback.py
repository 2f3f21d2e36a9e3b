"""The loopback interface of a new network namespace starts DOWN; Docker brings it up.

Two ioctls on any socket: read the interface flags, set IFF_UP. See netdevice(7).
"""

from __future__ import annotations

import fcntl
import socket
import struct

__all__ = ["bring_up_loopback"]

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def bring_up_loopback(name: str = "lo") -> None:
    """Set ``lo`` UP in the current network namespace. Like ``ip link set lo up``."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifreq = struct.pack("16sH14x", name.encode(), 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", name.encode(), flags | _IFF_UP))
