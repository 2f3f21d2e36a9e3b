"""The loopback interface of a new network namespace starts DOWN; Docker brings it up.

Two ioctls on any socket: read the interface flags, set IFF_UP. See netdevice(7).
"""

from __future__ import annotations

import fcntl
import struct

# The C module under `socket`: all we need is a socket to call ioctl on, and importing
# socket.py (with selectors and enums) costs 1.7 ms on every container start.
from _socket import AF_INET, SOCK_DGRAM
from _socket import socket as _new_socket

__all__ = ["bring_up_loopback"]

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def bring_up_loopback(name: str = "lo") -> None:
    """Set ``lo`` UP in the current network namespace. Like ``ip link set lo up``."""
    s = _new_socket(AF_INET, SOCK_DGRAM)
    try:
        ifreq = struct.pack("16sH14x", name.encode(), 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(s.fileno(), _SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(s.fileno(), _SIOCSIFFLAGS, struct.pack("16sH14x", name.encode(), flags | _IFF_UP))
    finally:
        s.close()
