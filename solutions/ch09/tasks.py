"""Chapter 09 exercises: networking. Reference solutions.

    plug_in(bridge, host_end, address, gateway)          task 9.1  your container's own netns, on a bridge
    connect_namespaces(pid_a, pid_b, addr_a, addr_b)     task 9.2  a veth pair between two namespaces
    publish_ports(table, bridge, subnet, ports)          task 9.3  your runtime's NAT: masquerade, DNAT

See: ip-address(8), veth(4), nft(8).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

from minidocker.linux import CloneFlag, unshare
from minidocker.network.netlink import open_route_socket

__all__ = ["connect_namespaces", "plug_in", "publish_ports"]


def plug_in(bridge: str, host_end: str, address: str, gateway: str, prefixlen: int = 24) -> None:
    """Give the calling process a network namespace of its own, plugged into ``bridge`` by a veth pair.

    What your runtime's container gets from its first child (stage 9.4 calls it through
    ``prepare``). Open a netlink route socket first (a socket stays in the namespace it was made
    in), then ``unshare(CLONE_NEWNET)``; through the first socket create the veth pair:
    ``host_end`` in the caller's old namespace, on the bridge and up, and its peer ``eth0`` in the
    new namespace (the one of your own PID). Then, through a socket opened in the new namespace:
    ``address/prefixlen`` on ``eth0``, ``eth0`` and ``lo`` up, and the default route via
    ``gateway`` (the bridge's address). Never fork here: in stage 9.4 the first process forked
    after ``unshare(CLONE_NEWPID)`` becomes the container's PID 1.

    Hint: ``minidocker.network.netlink.open_route_socket()`` (a context manager) gives a socket
    with ``create_veth(name, peer, peer_netns_pid=, master=)``, ``link_index``, ``add_address``,
    ``set_up`` and ``add_default_route`` (notebook 09, section 9.7); ``minidocker.linux.unshare``.
    Questions: why must the first socket be opened *before* the ``unshare``? What happens to
    ``host_end`` when the container's last process exits? Why is ``eth0`` created down?

    See: veth(4), rtnetlink(7), network_namespaces(7), ip-link(8) "master".
    """
    with open_route_socket() as host:                 # bound to the caller's namespace, for good
        unshare(CloneFlag.CLONE_NEWNET)
        host.create_veth(host_end, "eth0", peer_netns_pid=os.getpid(), master=host.link_index(bridge))
    with open_route_socket() as inside:               # the new namespace
        eth0 = inside.link_index("eth0")
        inside.add_address(eth0, address, prefixlen)
        inside.set_up(eth0)
        inside.set_up(inside.link_index("lo"))
        inside.add_default_route(gateway)


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


def publish_ports(table: str, bridge: str, subnet: str, ports: Sequence[tuple[int, str, int]] = ()) -> None:
    """Install your runtime's NAT for the containers on ``bridge``: the way out, and published ports.

    One nft table ``ip TABLE`` of your own, loaded with ``nft -f -`` in one transaction, with
    three nat chains: ``postrouting`` (priority srcnat) masquerades what comes from ``subnet``
    and leaves through another interface than ``bridge`` (containers reach the world with the
    host's address), and what comes from 127.0.0.0/8 and leaves through ``bridge`` (the answer of
    a port published on 127.0.0.1 must come back); ``prerouting`` and ``output`` (priority
    dstnat, -100) send each ``(host_port, container_ip, container_port)`` of ``ports``: TCP to
    any address of this host (``fib daddr type local``) on ``host_port`` is DNATed to
    ``container_ip:container_port``. Also turn on ``net.ipv4.ip_forward`` and the bridge's
    ``route_localnet`` (files under ``/proc/sys/net/ipv4``). To undo it all:
    ``nft delete table ip TABLE`` (stage 9.4 does it after the container).

    Hint: build the ruleset as text (``table ip T { chain post { type nat hook postrouting
    priority srcnat; ... } ... }``), ``subprocess.run(["nft", "-f", "-"], input=..., text=True,
    check=True)``; notebook 09, sections 9.4 and 9.5.
    Questions: why is the DNAT needed in ``output`` as well as in ``prerouting``? Why does
    127.0.0.1 need ``route_localnet`` and a masquerade when another machine needs neither? Why
    must the masquerade not apply to traffic between two containers of the bridge?

    See: nft(8) "NAT STATEMENTS", "FIB EXPRESSIONS"; ip-sysctl.rst "route_localnet".
    """
    dnat = "".join(f"\n    fib daddr type local tcp dport {host_port} dnat to {ip}:{container_port}"
                   for host_port, ip, container_port in ports)
    ruleset = f"""table ip {table} {{
  chain post {{
    type nat hook postrouting priority srcnat;
    ip saddr {subnet} oifname != "{bridge}" masquerade
    ip saddr 127.0.0.0/8 oifname "{bridge}" masquerade
  }}
  chain pre {{
    type nat hook prerouting priority dstnat;{dnat}
  }}
  chain out {{
    type nat hook output priority -100;{dnat}
  }}
}}
"""
    with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
        f.write("1")
    with open(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet", "w") as f:
        f.write("1")
    subprocess.run(["nft", "-f", "-"], input=ruleset, text=True, check=True, capture_output=True)
