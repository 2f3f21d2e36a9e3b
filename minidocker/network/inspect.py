"""Live network state, read with pyroute2: what ``ip -d addr`` shows, as data.

For ``network inspect``-style views, the notebook's diagram and the tests: places
where start-up time does not matter (importing pyroute2 costs 60-100 ms, which is
why the hot path speaks netlink itself, see :mod:`.netlink`).

Main API::

    describe()                 links of the current netns: name, kind, index, master, peer, addresses
    describe_in(pid)           the same for the network namespace of process ``pid`` (in a forked child)

See: rtnetlink(7); pyroute2's IPRoute.
"""

from __future__ import annotations

import os

__all__ = ["describe", "describe_in"]


def describe() -> list[dict]:
    """Every link of the calling thread's network namespace with its IPv4 addresses."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        addresses: dict[int, list[str]] = {}
        for msg in ipr.get_addr(family=2):
            addresses.setdefault(msg["index"], []).append(f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}")
        links = []
        for msg in ipr.get_links():
            info = msg.get_attr("IFLA_LINKINFO")
            links.append({
                "name": msg.get_attr("IFLA_IFNAME"),
                "index": msg["index"],
                "kind": info.get_attr("IFLA_INFO_KIND") if info else None,
                "master": msg.get_attr("IFLA_MASTER"),
                "peer": msg.get_attr("IFLA_LINK"),  # a veth's peer index (in its own namespace)
                "up": bool(msg["flags"] & 1),
                "addresses": addresses.get(msg["index"], []),
            })
    return links


def describe_in(pid: int | str) -> list[dict]:
    """:func:`describe` run in a forked child that joined the network namespace of ``pid``
    (a PID, or the path of a namespace file such as /run/netns/NAME).

    The caller never changes namespace (safe in a notebook kernel). See setns(2).
    """
    from minidocker.forked import call_in_child
    from minidocker.linux import CloneFlag, setns

    def inside() -> list[dict]:
        fd = os.open(pid if isinstance(pid, str) else f"/proc/{pid}/ns/net", os.O_RDONLY)
        setns(fd, CloneFlag.CLONE_NEWNET)
        os.close(fd)
        return describe()

    return call_in_child(inside)
