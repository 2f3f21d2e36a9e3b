"""IP address management: which address a container gets. Like Docker's default IPAM driver.

A network owns a subnet. Its first usable address is the gateway (the bridge's own
address on the host); containers get the lowest free address after it. The network
address and the broadcast address are never handed out, nor anything already
allocated. The allocations themselves are stored with the network (see
:mod:`minidocker.engine.networks`), updated under a file lock so that 20 ``run``s
started at once still get 20 different addresses.

Main API::

    parse_subnet("10.214.3.0/24")          -> IPv4Network (InvalidArgument if bad)
    gateway_of(subnet)                     -> "10.214.3.1"
    allocate(subnet, used)                 -> "10.214.3.2"
    overlapping(subnet, others)            -> the first of others that overlaps, or None
    free_subnet(pool, taken, prefixlen)    -> the first /prefixlen of pool overlapping nothing taken
    mac_of("10.214.3.2")                   -> "02:42:0a:d6:03:02" (Docker's MAC for an address)
    parse_mac("02:42:AC:11:00:02")         -> "02:42:ac:11:00:02" (InvalidArgument if bad)

See: ip-address(8), RFC 1918 (private addresses).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from minidocker.errors import Conflict, InvalidArgument

__all__ = ["allocate", "claim", "free_subnet", "gateway_of", "mac_of", "overlapping", "parse_mac",
           "parse_subnet"]


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    """A private IPv4 subnet in CIDR form with room for a gateway and a container.

    Raises:
        InvalidArgument: not CIDR, host bits set, not private, or smaller than /30.
    """
    try:
        subnet = ipaddress.IPv4Network(text, strict=True)
    except ValueError as err:
        raise InvalidArgument(f"invalid subnet {text!r}: {err}",
                              hint="use CIDR notation with the host bits zero, like 10.214.0.0/24") from None
    if not subnet.is_private or subnet.is_loopback or subnet.is_link_local or subnet.is_multicast:
        raise InvalidArgument(f"invalid subnet {text!r}: not a private address range",
                              hint="use one of 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16")
    if subnet.prefixlen > 30:
        raise InvalidArgument(f"invalid subnet {text!r}: too small, at most /30")
    return subnet


def gateway_of(subnet: ipaddress.IPv4Network) -> str:
    """The gateway's address: the first usable one (``.1`` of a /24)."""
    return str(subnet.network_address + 1)


def allocate(subnet: ipaddress.IPv4Network, used: Iterable[str], gateway: str | None = None) -> str:
    """The lowest address of ``subnet`` that is not the network, broadcast, gateway or used.

    Raises:
        Conflict: the subnet is full.
    """
    taken = {int(ipaddress.IPv4Address(a)) for a in used}
    taken.add(int(ipaddress.IPv4Address(gateway or gateway_of(subnet))))
    first, last = int(subnet.network_address) + 1, int(subnet.broadcast_address) - 1
    for candidate in range(first, last + 1):
        if candidate not in taken:
            return str(ipaddress.IPv4Address(candidate))
    raise Conflict(f"no available IPv4 addresses on subnet {subnet}",
                   hint="remove containers from the network, or create one with a larger --subnet")


def claim(subnet: ipaddress.IPv4Network, wanted: str, used: Iterable[str], gateway: str | None = None) -> str:
    """``wanted`` itself (``docker run --ip``): in ``subnet``, not its network, broadcast or gateway address,
    not used. Raises InvalidArgument (not an address of the subnet) or Conflict (taken)."""
    try:
        address = ipaddress.IPv4Address(wanted)
    except ValueError:
        raise InvalidArgument(f"invalid IPv4 address: {wanted!r}") from None
    if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
        raise InvalidArgument(f"invalid address {wanted}: "
                              "it does not belong to any of this network's subnets")
    if str(address) == (gateway or gateway_of(subnet)) or str(address) in set(used):
        raise Conflict(f"failed to allocate {wanted}: Address already in use")
    return str(address)


def overlapping(subnet: ipaddress.IPv4Network,
                others: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network | None:
    """The first of ``others`` that shares an address with ``subnet``."""
    return next((o for o in others if subnet.overlaps(o)), None)


def free_subnet(pool: ipaddress.IPv4Network, taken: Iterable[ipaddress.IPv4Network],
                prefixlen: int = 24) -> ipaddress.IPv4Network:
    """The first ``/prefixlen`` of ``pool`` overlapping none of ``taken``. Like Docker's address pools."""
    taken = list(taken)
    for candidate in pool.subnets(new_prefix=prefixlen):
        if overlapping(candidate, taken) is None:
            return candidate
    raise Conflict(f"no free /{prefixlen} subnet left in the pool {pool}",
                   hint="remove unused networks, or give --subnet")


def mac_of(ip: str) -> str:
    """The MAC address Docker gives a container: ``02:42`` and the four bytes of its IPv4 address.

    02 sets the "locally administered" bit of the first byte (and leaves the multicast bit
    clear), so it never clashes with a vendor's address; deriving it from the address
    keeps it unique on the network without a table. (Docker 20.10's libnetwork does the
    same, ``genMAC``; a random MAC, the kernel's default for a veth, works too.)
    """
    return "02:42:" + ":".join(f"{b:02x}" for b in ipaddress.IPv4Address(ip).packed)


def parse_mac(text: str) -> str:
    """A unicast Ethernet address in ``aa:bb:cc:dd:ee:ff`` form, lower case (``docker run --mac-address``)."""
    parts = text.replace("-", ":").split(":")
    try:
        octets = bytes(int(p, 16) for p in parts if len(p) == 2)
    except ValueError:
        octets = b""
    if len(parts) != 6 or len(octets) != 6:
        raise InvalidArgument(f"invalid MAC address: {text}",
                              hint="use six hex bytes, like 02:42:ac:11:00:02")
    if octets[0] & 1:
        raise InvalidArgument(f"invalid MAC address: {text}: a multicast address",
                              hint="the first byte must be even, like 02:42:ac:11:00:02")
    return ":".join(f"{b:02x}" for b in octets)
