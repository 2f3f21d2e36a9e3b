"""Chapter 09 exercises: networking. Fill in the three functions.

Read exercises/ch09/README.md first; grade with ``make grade CH=09 [TASK=9_1]``.

    plug_in(bridge, host_end, address, gateway)          task 9.1  your container's own netns, on a bridge
    connect_namespaces(pid_a, pid_b, addr_a, addr_b)     task 9.2  a veth pair between two namespaces
    publish_ports(table, bridge, subnet, ports)          task 9.3  your runtime's NAT: masquerade, DNAT

See: ip-address(8), veth(4), nft(8).
"""

from __future__ import annotations

import os  # noqa: F401
import subprocess  # noqa: F401
from collections.abc import Sequence

from minidocker.linux import CloneFlag, unshare  # noqa: F401 - for task 9.1
from minidocker.network.netlink import open_route_socket  # noqa: F401 - for task 9.1

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
    # TODO(task 9.1): a socket, unshare(CLONE_NEWNET), the veth on the bridge, eth0 and lo up, a route
    raise NotImplementedError("task 9.1: plug a new network namespace into the bridge")


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
    # TODO(task 9.2): create the veth pair, move its ends, address them, bring them up
    raise NotImplementedError("task 9.2: create the veth pair, move its ends, address them, bring them up")


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
    # TODO(task 9.3): ruleset (masquerade; DNAT in prerouting and output), ip_forward, route_localnet, nft
    raise NotImplementedError("task 9.3: install the NAT table: masquerade and published ports")
