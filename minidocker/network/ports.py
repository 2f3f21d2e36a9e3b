"""Published ports: parsing ``-p`` like Docker, and choosing host ports.

``-p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/tcp|/udp]``; without HOST_PORT (or with
``-P``) a free port from the ephemeral range is chosen, as Docker does.

Main API::

    parse_publish("127.0.0.1:8080:80/tcp") -> PortMapping(host_ip, host_port, container_port, proto)
    parse_expose("80/tcp") -> (80, "tcp")
    clashes(a, b) -> True if both want the same host address, port and protocol
    host_port_in_use(mapping) -> True if a host process already listens there
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from minidocker.errors import InvalidArgument
from minidocker.record import Record

__all__ = ["EPHEMERAL", "PortMapping", "clashes", "host_port_in_use", "parse_expose", "parse_publish"]

EPHEMERAL = range(32768, 61000)  # /proc/sys/net/ipv4/ip_local_port_range, Docker's default too


class PortMapping(Record):
    """One published port. ``host_port`` 0 means 'choose one'; ``host_ip`` "" means every address."""

    FIELDS = ("host_ip", "host_port", "container_port", "proto")
    DEFAULTS = {"proto": "tcp"}

    def __str__(self) -> str:
        return f"{self.host_ip or '0.0.0.0'}:{self.host_port}->{self.container_port}/{self.proto}"


def _port(text: str, spec: str, allow_zero: bool = False) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = -1
    if not (0 if allow_zero else 1) <= value <= 65535:
        raise InvalidArgument(f"invalid port {text!r} in {spec!r}: expected a number from 1 to 65535",
                              hint="use -p [HOST_IP:]HOST_PORT:CONTAINER_PORT[/tcp|udp], like -p 8080:80")
    return value


def _proto(text: str, spec: str) -> str:
    if text not in ("tcp", "udp"):
        raise InvalidArgument(f"invalid protocol {text!r} in {spec!r}: expected tcp or udp")
    return text


def parse_expose(spec: str) -> tuple[int, str]:
    """``80`` or ``53/udp`` (``--expose`` and an image's ExposedPorts keys)."""
    port, _, proto = spec.partition("/")
    return _port(port, spec), _proto(proto or "tcp", spec)


def parse_publish(spec: str) -> PortMapping:
    """Read one ``-p`` value. Raises InvalidArgument with the value in the message."""
    rest, _, proto = spec.partition("/")
    proto = _proto(proto or "tcp", spec)
    parts = rest.rsplit(":", 2)
    host_ip, host_port = "", "0"
    if len(parts) == 3:
        host_ip, host_port, container_port = parts
    elif len(parts) == 2:
        host_port, container_port = parts
    else:
        (container_port,) = parts
    if host_ip:
        try:
            address = ipaddress.IPv4Address(host_ip)
        except ValueError:
            raise InvalidArgument(f"invalid host address {host_ip!r} in {spec!r}: "
                                  "expected an IPv4 address") from None
        host_ip = "" if address.is_unspecified else str(address)
    return PortMapping(host_ip, _port(host_port or "0", spec, allow_zero=True), _port(container_port, spec),
                       proto)


def clashes(a: PortMapping, b: PortMapping) -> bool:
    """Two mappings that would catch the same packets (0.0.0.0 overlaps every address)."""
    return (a.host_port == b.host_port and a.proto == b.proto
            and (not a.host_ip or not b.host_ip or a.host_ip == b.host_ip))


def host_port_in_use(mapping: PortMapping) -> bool:
    """True if a process of this network namespace already listens on the host port.

    A DNAT rule would silently steal its traffic; Docker's proxy would fail to bind. So we
    try to bind, as docker-proxy would, and let go at once. See bind(2), EADDRINUSE.
    """
    kind = socket.SOCK_STREAM if mapping.proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        try:
            s.bind((mapping.host_ip or "0.0.0.0", mapping.host_port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                return True
            if err.errno == errno.EADDRNOTAVAIL:
                raise InvalidArgument(f"cannot publish on {mapping.host_ip}: "
                                      "no interface has this address") from None
            raise
    return False
