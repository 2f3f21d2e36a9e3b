"""Container networking. Chapter 09.

Mechanisms only (the engine's :mod:`minidocker.engine.networks` keeps the state)::

    bring_up_loopback()                      lo up in a new netns (--network none)     loopback.py
    open_route_socket(netns_pid)             raw rtnetlink: veth, bridge, addr, route   netlink.py
    ipam.allocate(subnet, used)              the next free address                     ipam.py
    nat.setup_network / publish / remove_rules   masquerade, DNAT, isolation           nat.py
        (nft: our own table; iptables: MINIDOCKER* chains)   nat_nft.py, nat_iptables.py
    parse_publish("127.0.0.1:8080:80")       -p like Docker                            ports.py
    hosts_file / resolv_conf / write_in_place    names for the container               names.py
    describe_in(pid)                         live state with pyroute2                  inspect.py

The sandbox the course experiments in is course code: :mod:`minidocker.coursenet`.
Only ``bring_up_loopback`` is imported here: the runtime's init needs it, and
``--network none`` must not pay for the rest.
"""

from minidocker.network.loopback import bring_up_loopback

__all__ = ["bring_up_loopback"]
