"""Just enough rtnetlink to wire a container: what ``ip link/addr/route`` send, by hand.

The kernel configures interfaces through netlink messages on an ``AF_NETLINK``
socket: a 16-byte header, a fixed struct (``ifinfomsg``, ``ifaddrmsg``, ``rtmsg``)
and a list of type-length-value attributes, which nest. This module builds the
handful of messages a container needs and reads the kernel's acknowledgement.

Why not pyroute2 here: importing it costs 60-100 ms, more than the whole budget
of a bridged ``run`` (see notebooks/09 and bench/); these messages cost ~1 ms.
pyroute2 is used where start-up time does not matter (:mod:`.inspect`, the tests).

A netlink socket belongs to the network namespace it was created in, so
:func:`open_route_socket` with ``netns_pid`` enters the container's namespace just
long enough to create the socket, and every message on it then acts there.

Main API::

    with open_route_socket(netns_pid=None) as nl:
        nl.create_veth("md1a2b", "eth0", peer_netns_pid=pid, master=br, up=True)
        nl.create_bridge("mdbr0"); nl.link_index("eth0"); nl.set_up(i)
        nl.add_address(i, "10.213.0.2", 16); nl.add_default_route("10.213.0.1")
        nl.delete_link("md1a2b"); nl.links()

See: netlink(7), rtnetlink(7), veth(4).
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager

from minidocker.linux import CloneFlag, setns

__all__ = ["RouteSocket", "open_route_socket"]

# netlink(7)
_NLMSG_HDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP, NLM_F_EXCL, NLM_F_CREATE = 0x300, 0x200, 0x400
# rtnetlink(7)
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_NEWROUTE = 20, 24
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_IFADDRMSG = struct.Struct("=BBBBI")  # family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # family, dst_len, src_len, tos, table, protocol, scope, type, flags
IFF_UP = 0x1
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_PID = 1, 3, 4, 10, 18, 19
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_GATEWAY = 5
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
IFNAMSIZ = 16  # 15 characters and a NUL: the classic trap


def _attr(kind: int, payload: bytes) -> bytes:
    """One rtattr: length, type, payload, padded to 4 bytes."""
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * ((4 - length % 4) % 4)


def _name(name: str) -> bytes:
    raw = name.encode()
    if not raw or len(raw) >= IFNAMSIZ or "/" in name or any(c.isspace() for c in name):
        raise ValueError(f"invalid interface name {name!r}: 1 to {IFNAMSIZ - 1} characters, no '/' or spaces")
    return raw + b"\0"


def _parse_attrs(data: bytes) -> dict[int, bytes]:
    attrs, offset = {}, 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        attrs[kind & 0x3FFF] = data[offset + 4:offset + length]
        offset += (length + 3) & ~3
    return attrs


class RouteSocket:
    """A NETLINK_ROUTE socket: one request, one acknowledgement (or an OSError)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._seq = 0

    def close(self) -> None:
        self.sock.close()

    # -- transport -------------------------------------------------------------------------
    def request(self, msg_type: int, body: bytes, flags: int = 0) -> list[tuple[int, bytes]]:
        """Send one message; return the (type, payload) replies of a dump; raise OSError on a NACK."""
        self._seq += 1
        header = _NLMSG_HDR.pack(_NLMSG_HDR.size + len(body), msg_type, NLM_F_REQUEST | NLM_F_ACK | flags,
                                 self._seq, 0)
        self.sock.send(header + body)
        replies = []
        while True:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset < len(data):
                length, kind, _, seq, _ = _NLMSG_HDR.unpack_from(data, offset)
                payload = data[offset + _NLMSG_HDR.size:offset + length]
                offset += (length + 3) & ~3
                if seq != self._seq:
                    continue
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", payload)[0]
                    if code:
                        raise OSError(code, os.strerror(code))
                    return replies
                if kind == NLMSG_DONE:
                    return replies
                replies.append((kind, payload))

    # -- links -----------------------------------------------------------------------------
    def create_veth(self, name: str, peer: str, peer_netns_pid: int | None = None,
                    master: int | None = None, up: bool = True, peer_address: str | None = None) -> None:
        """A veth pair in one message: ``name`` here (on ``master``, up), ``peer`` in PID's netns (down).

        Like ``ip link add NAME master BR up type veth peer name PEER address MAC netns PID``;
        without ``peer_address`` the kernel picks a random MAC for the peer.
        """
        flags = IFF_UP if up else 0
        # The peer cannot be created UP: the kernel configures it before the pair is
        # joined, and opening a veth without a peer fails with ENOTCONN. Set it up after.
        peer_body = _IFINFOMSG.pack(0, 0, 0, 0, 0) + _attr(IFLA_IFNAME, _name(peer))
        if peer_address is not None:
            peer_body += _attr(IFLA_ADDRESS, bytes.fromhex(peer_address.replace(":", "")))
        if peer_netns_pid is not None:
            peer_body += _attr(IFLA_NET_NS_PID, struct.pack("=I", peer_netns_pid))
        linkinfo = _attr(IFLA_INFO_KIND, b"veth\0") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_body))
        body = _IFINFOMSG.pack(0, 0, 0, flags, flags) + _attr(IFLA_IFNAME, _name(name)) + _attr(
            IFLA_LINKINFO, linkinfo)
        if master is not None:
            body += _attr(IFLA_MASTER, struct.pack("=I", master))
        self.request(RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL)

    def create_bridge(self, name: str, up: bool = True) -> int:
        """A Linux bridge (a virtual switch). Like ``ip link add NAME type bridge``. Returns its index."""
        flags = IFF_UP if up else 0
        body = _IFINFOMSG.pack(0, 0, 0, flags, flags) + _attr(IFLA_IFNAME, _name(name)) + _attr(
            IFLA_LINKINFO, _attr(IFLA_INFO_KIND, b"bridge\0"))
        self.request(RTM_NEWLINK, body, NLM_F_CREATE | NLM_F_EXCL)
        return self.link_index(name)

    def set_up(self, index: int) -> None:
        """Like ``ip link set DEV up``."""
        self.request(RTM_NEWLINK, _IFINFOMSG.pack(0, 0, index, IFF_UP, IFF_UP))

    def delete_link(self, name: str) -> bool:
        """Like ``ip link del NAME``; False if there was no such link. Deleting one end of a
        veth deletes both; the call waits for an RCU grace period (tens of ms)."""
        try:
            self.request(RTM_DELLINK, _IFINFOMSG.pack(0, 0, 0, 0, 0) + _attr(IFLA_IFNAME, _name(name)))
        except OSError as err:
            if err.errno in (errno.ENODEV, errno.ENOENT):
                return False
            raise
        return True

    def link_index(self, name: str) -> int:
        """The ifindex of ``name``; FileNotFoundError if it does not exist. See if_nametoindex(3)."""
        return self.link(name)[0]

    def link(self, name: str) -> tuple[int, bool]:
        """(ifindex, is up) of ``name``; FileNotFoundError if it does not exist."""
        try:
            replies = self.request(RTM_GETLINK,
                                   _IFINFOMSG.pack(0, 0, 0, 0, 0) + _attr(IFLA_IFNAME, _name(name)))
        except OSError as err:
            if err.errno in (errno.ENODEV, errno.ENOENT):
                raise FileNotFoundError(errno.ENODEV, f"no such network interface: {name}") from None
            raise
        _, _, index, flags, _ = _IFINFOMSG.unpack_from(replies[0][1])
        return index, bool(flags & IFF_UP)

    def links(self) -> list[dict[str, object]]:
        """Every link of this namespace: name, index, up, master index, kind. Like ``ip -d link``."""
        found = []
        for _, payload in self.request(RTM_GETLINK, _IFINFOMSG.pack(0, 0, 0, 0, 0), NLM_F_DUMP):
            _, _, index, flags, _ = _IFINFOMSG.unpack_from(payload)
            attrs = _parse_attrs(payload[_IFINFOMSG.size:])
            info = _parse_attrs(attrs.get(IFLA_LINKINFO, b""))
            master = attrs.get(IFLA_MASTER)
            found.append({
                "name": attrs.get(IFLA_IFNAME, b"").rstrip(b"\0").decode(),
                "index": index,
                "up": bool(flags & IFF_UP),
                "master": struct.unpack("=I", master)[0] if master else None,
                "kind": info.get(IFLA_INFO_KIND, b"").rstrip(b"\0").decode() or None,
            })
        return found

    def mac_address(self, name: str) -> str:
        """The hardware address of ``name`` as ``aa:bb:cc:dd:ee:ff`` ("" if it has none). Like
        ``ip link show``."""
        replies = self.request(RTM_GETLINK, _IFINFOMSG.pack(0, 0, 0, 0, 0) + _attr(IFLA_IFNAME, _name(name)))
        address = _parse_attrs(replies[0][1][_IFINFOMSG.size:]).get(IFLA_ADDRESS, b"")
        return ":".join(f"{b:02x}" for b in address)

    # -- addresses and routes --------------------------------------------------------------
    def add_address(self, index: int, address: str, prefixlen: int) -> None:
        """Like ``ip addr add ADDRESS/PREFIXLEN dev INDEX`` (IPv4)."""
        packed = socket.inet_aton(address)
        body = _IFADDRMSG.pack(socket.AF_INET, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
        body += _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed)
        self.request(RTM_NEWADDR, body, NLM_F_CREATE | NLM_F_EXCL)

    def add_default_route(self, gateway: str) -> None:
        """Like ``ip route add default via GATEWAY``."""
        body = _RTMSG.pack(socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE,
                           RTN_UNICAST, 0) + _attr(RTA_GATEWAY, socket.inet_aton(gateway))
        self.request(RTM_NEWROUTE, body, NLM_F_CREATE | NLM_F_EXCL)


@contextmanager
def open_route_socket(netns_pid: int | None = None) -> Iterator[RouteSocket]:
    """A RouteSocket for this network namespace, or for the one process ``netns_pid`` is in.

    The calling thread enters the target namespace, creates the socket and comes
    back at once: a socket stays bound to the namespace it was created in. See setns(2).
    """
    if netns_pid is None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
    else:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            target = os.open(f"/proc/{netns_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
            try:
                setns(target, CloneFlag.CLONE_NEWNET)
                try:
                    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                         socket.NETLINK_ROUTE)
                finally:
                    setns(own, CloneFlag.CLONE_NEWNET)
            finally:
                os.close(target)
        finally:
            os.close(own)
    nl = RouteSocket(sock)
    try:
        yield nl
    finally:
        nl.close()
