"""Chapter 09 exercises: networking. Reference solutions.

    allocate(subnet, used)                               task 9.1  IPAM: the next free address
    connect_namespaces(pid_a, pid_b, addr_a, addr_b)     task 9.2  a veth pair between two namespaces
    dnat_rule(host_port, container_ip, container_port)   task 9.3  the nft rule of a published port

See: ip-address(8), veth(4), nft(8).
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Iterable

__all__ = ["allocate", "connect_namespaces", "dnat_rule"]


def allocate(subnet: str, used: Iterable[str]) -> str:
    """The lowest address of ``subnet`` a new container may get.

    Never the network address, the broadcast address, the gateway (the first usable
    address, ``.1`` of a /24: the bridge's own address on the host) or anything in
    ``used``. Raise ``ValueError`` when the subnet is full or not a valid CIDR subnet.

    Hint: the ``ipaddress`` module: ``IPv4Network(subnet).hosts()`` skips the network
    and broadcast addresses for you.
    Questions: why must the gateway never be handed out? What does Docker do differently
    (it does not reuse a freed address at once): why might that matter (ARP caches)?

    See: ip-address(8), RFC 1918.
    """
    network = ipaddress.IPv4Network(subnet, strict=True)
    hosts = network.hosts()
    gateway = next(hosts, None)
    taken = {ipaddress.IPv4Address(a) for a in used}
    for candidate in hosts:
        if candidate not in taken and candidate != gateway:
            return str(candidate)
    raise ValueError(f"no available addresses on subnet {subnet}")


def connect_namespaces(pid_a: int, pid_b: int, addr_a: str, addr_b: str, prefixlen: int = 24,
                       names: tuple[str, str] = ("mdex0", "mdex1")) -> None:
    """Join the network namespaces of two processes with a veth pair and give each end an address.

    After this, the end ``names[0]`` is in the namespace of ``pid_a`` with ``addr_a/prefixlen``
    and the end ``names[1]`` in that of ``pid_b`` with ``addr_b/prefixlen``, both up, so that
    ``pid_a``'s namespace can ping ``addr_b``. This runs in a scratch namespace of its own:
    create the pair here, then move each end (``ip link set DEV netns PID``), or create the
    ends directly in place (``... peer name B netns PID``).

    Hint: ``ip link add``, ``ip link set ... netns PID``, and ``nsenter -t PID -n ip ...``
    to configure inside a namespace (subprocess.run with check=True). Or
    :mod:`minidocker.network.netlink`: ``create_veth`` and ``open_route_socket(pid)``.
    Questions: why is a veth created *down*, and in which order must you bring ends up?
    What happens to the pair when one namespace's last process exits?

    See: veth(4), ip-link(8), nsenter(1).
    """
    a, b = names
    run = lambda *argv: subprocess.run(argv, check=True, capture_output=True)  # noqa: E731
    run("ip", "link", "add", a, "netns", str(pid_a), "type", "veth", "peer", "name", b, "netns", str(pid_b))
    for pid, dev, addr in ((pid_a, a, addr_a), (pid_b, b, addr_b)):
        run("nsenter", "-t", str(pid), "-n", "ip", "addr", "add", f"{addr}/{prefixlen}", "dev", dev)
        run("nsenter", "-t", str(pid), "-n", "ip", "link", "set", dev, "up")


def dnat_rule(host_port: int, container_ip: str, container_port: int, proto: str = "tcp",
              host_ip: str = "") -> str:
    """The nft rule (the part after ``add rule ip TABLE CHAIN``) that publishes a port.

    Packets for this host (any of its addresses, or only ``host_ip`` if given) on
    ``proto`` port ``host_port`` get their destination rewritten to
    ``container_ip:container_port``. The grader adds your rule to a ``prerouting`` and
    an ``output`` nat chain (with masquerade of 127.0.0.0/8 and route_localnet already
    set up) and fetches a page through it, from 127.0.0.1 and from another namespace.

    Hint: ``fib daddr type local`` matches "addressed to this host"; ``ip daddr``,
    ``tcp dport`` / ``udp dport``, ``dnat to IP:PORT``. See notebook 9.5.
    Questions: why is the rule needed in *output* too? Why does 127.0.0.1 need
    route_localnet and a masquerade, when another namespace needs neither?

    See: nft(8) "NAT STATEMENTS", "FIB EXPRESSIONS".
    """
    match = f"ip daddr {host_ip} " if host_ip else ""
    return f"{match}fib daddr type local {proto} dport {host_port} dnat to {container_ip}:{container_port}"
