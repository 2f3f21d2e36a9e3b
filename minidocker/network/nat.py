"""Outbound NAT, published ports and network isolation: one interface, two backends.

Docker writes its rules into the host's iptables tables. minidocker never flushes or
rewrites anyone else's rules: with ``nft`` it keeps everything in one table of its own
(:mod:`~minidocker.network.nat_nft`, removed in one command); without ``nft`` it uses
chains of its own, ``MINIDOCKER*``, each jumped to from a built-in chain by one tagged
rule (:mod:`~minidocker.network.nat_iptables`). The backend is chosen at run time: nft
if installed, else iptables; ``MINIDOCKER_FIREWALL=nft|iptables`` forces one.

Both hold the same rules: masquerade of the network's traffic leaving the host,
isolation between our bridges (Docker's DOCKER-ISOLATION), and per published port a
DNAT in *prerouting* (traffic from other hosts/namespaces; needs ``ip_forward=1``) and
in *output* (from this host: local packets skip prerouting). Publishing on 127.0.0.1
needs two more pieces: masquerade of 127.0.0.0/8 leaving through the bridge (else the
container answers to its own loopback), and ``route_localnet=1`` on the bridge (else the kernel
drops 127/8 as martian off ``lo``: ``route_localnet`` in Documentation/networking/ip-sysctl.rst).

Cost on the hot path: publishing is one process (``nft --echo --handle`` or
``iptables-restore --noflush``, ~3 ms) whose rules the endpoint's record keeps, so removing
them at the container's exit is one more, without listing the rules first, and detached:
any deletion waits for the kernel's RCU grace period (~15 ms here), like a veth's. The
commands are started with ``posix_spawn`` (:mod:`~minidocker.network.command`): importing
``subprocess`` and ``shutil`` would cost ~5 ms more.

Living beside dockerd: it sets the iptables FORWARD policy to DROP and, with br_netfilter,
bridged frames cross FORWARD too, so our containers could not talk to each other or out.
An accept in our nft table cannot help (a drop in any base chain is final), so then, and
only then, two ACCEPT rules for our bridge go into the chain dockerd keeps for its users,
``DOCKER-USER`` (else ``FORWARD``), tagged ``minidocker:net:<id>`` and removed with the
network, with either backend. Written with ``iptables`` itself: an nft-native rule in an
iptables-nft table would make ``iptables -S`` (and so dockerd) refuse that table.

Main API::

    firewall()                                 "nft" or "iptables": the backend in use
    setup_network(bridge, subnet, owner)       masquerade out, 127/8 in, isolation; sysctls;
                                               FORWARD accepts if dockerd closed it
    publish(mappings, container_ip, owner)     DNAT host ports -> container ports
    remove_rules(owner)                        every rule of that owner (network or container)
    delete_table()                             all of ours (network rm of the last network, prune)

See: nft(8), iptables(8), "NAT" in nftables wiki; ip-sysctl.rst (route_localnet, ip_forward).
"""

from __future__ import annotations

import importlib
import os

from minidocker.errors import InvalidArgument, MinidockerError
from minidocker.network.command import which
from minidocker.network.nat_iptables import iptables as _run_iptables
from minidocker.network.ports import PortMapping

__all__ = ["BACKENDS", "ENV", "delete_table", "firewall", "forward_accepts", "publish", "remove_rules",
           "rules", "set_sysctl", "setup_network"]

ENV = "MINIDOCKER_FIREWALL"
BACKENDS = {"nft": "minidocker.network.nat_nft", "iptables": "minidocker.network.nat_iptables"}


def firewall() -> str:
    """The backend: ``$MINIDOCKER_FIREWALL`` if set, else nft if installed, else iptables."""
    forced = os.environ.get(ENV)
    if forced:
        if forced not in BACKENDS:
            raise InvalidArgument(f"invalid {ENV} {forced!r}: expected nft or iptables")
        return forced
    if which("nft"):
        return "nft"
    if which("iptables"):
        return "iptables"
    raise MinidockerError("failed to configure NAT: neither nft nor iptables is installed",
                          hint="apt-get install nftables")


def _backend():  # the module; typing.ModuleType would cost an import
    return importlib.import_module(BACKENDS[firewall()])


def set_sysctl(name: str, value: str) -> None:
    """Write ``/proc/sys/<name with dots as slashes>``; skip the write if it holds that value."""
    path = "/proc/sys/" + name.replace(".", "/")
    with open(path, "r+") as f:
        if f.read().strip() != value:
            f.seek(0)
            f.write(value)


def setup_network(bridge: str, subnet: str, owner: str) -> None:
    """Rules of one bridge network: outbound masquerade, loopback publishing, isolation.

    Also turns on ``ip_forward`` (containers reach the outside through the host) and
    ``route_localnet`` on the bridge (127.0.0.1:port -> container). See nft(8), iptables(8).
    """
    _backend().setup_network(bridge, subnet, owner)
    set_sysctl("net.ipv4.ip_forward", "1")
    set_sysctl(f"net.ipv4.conf.{bridge}.route_localnet", "1")
    _open_closed_forward(bridge, owner)


def publish(mappings: list[PortMapping], container_ip: str, owner: str) -> list[str]:
    """DNAT the mappings' host ports to ``container_ip``, from outside and from here, in one process.

    Returns the rules as the backend names them (nft handles, iptables rule specs): the
    caller keeps them in its record, so that :func:`remove_rules` deletes them without
    listing, from whichever process detaches the container.
    """
    return _backend().publish(mappings, container_ip, owner) if mappings else []


def rules() -> list:
    """Our rules: nft's JSON objects (nft) or ``iptables-save`` lines (iptables)."""
    return _backend().rules()


def remove_rules(owner: str, bridge: str | None = None, wait: bool = True,
                 published: list[str] | None = None) -> int:
    """Delete every rule of ``owner`` (a network's, with its ``bridge``, or a container's).

    The ``published`` rules (what :func:`publish` returned) are deleted without listing;
    with ``wait`` False (a container's exit) in a detached process, off the exit's critical
    path: any deletion makes the kernel wait for an RCU grace period (~15 ms here), like a
    veth's. Returns how many rules were found by listing (0 when the published ones were deleted).
    """
    backend = _backend()
    if bridge is not None:
        _close_forward(bridge, owner)
    if published and bridge is None:
        if not wait:
            try:
                _detached(lambda: backend.unpublish(published) or backend.remove_rules(owner))
                return 0
            except OSError:  # cannot fork (EAGAIN, ENOMEM): delete them here
                pass
        if backend.unpublish(published):
            return 0
    return backend.remove_rules(owner, bridge)


def _detached(work) -> None:  # Callable[[], object]; typing would cost an import
    """Run ``work`` in a grandchild that outlives us (reparented, never a zombie of ours), with
    /dev/null for stdio and no other inherited descriptor (no lock, no caller's pipe). See fork(2)."""
    child = os.fork()
    if child:
        os.waitpid(child, 0)
        return
    try:
        if os.fork() == 0:
            os.setsid()  # a ^C to our terminal's process group does not stop it
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            for fd in [int(name) for name in os.listdir("/proc/self/fd")]:
                if fd > 2:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            work()
    finally:
        os._exit(0)


def delete_table() -> bool:
    """Remove all of ours: the nft table and the MINIDOCKER chains with their jumps, whichever
    exist (a network may have been set up with the other backend); False if there was nothing."""
    removed = False
    for name, module in BACKENDS.items():
        if which(name):
            removed |= importlib.import_module(module).delete_all()
    return removed


# -- living beside dockerd: its FORWARD policy DROP ---------------------------------------------

def _iptables(*args: str) -> tuple[int, str] | None:
    """Run the host's ``iptables`` (whatever its backend; never iptables-legacy by name):
    (exit status, output), None if it is not installed."""
    return _run_iptables("-w", *args)


def _forward_chain() -> str | None:
    """Where our accepts must go: DOCKER-USER if dockerd made it, FORWARD if its policy is DROP."""
    user_chain = _iptables("-S", "DOCKER-USER")
    if user_chain is not None and user_chain[0] == 0:
        return "DOCKER-USER"
    forward = _iptables("-S", "FORWARD")
    if forward is not None and forward[0] == 0 and "-P FORWARD DROP" in forward[1]:
        return "FORWARD"
    return None


def _forward_rules(bridge: str, owner: str) -> list[list[str]]:
    tag = ["-m", "comment", "--comment", f"minidocker:net:{owner}"]
    return [["-i", bridge, *tag, "-j", "ACCEPT"], ["-o", bridge, *tag, "-j", "ACCEPT"]]


def forward_accepts(owner: str) -> list[str]:
    """Our ACCEPT rules in DOCKER-USER and FORWARD (``iptables -S`` lines) for network ``owner``."""
    found = []
    for chain in ("DOCKER-USER", "FORWARD"):
        listed = _iptables("-S", chain)
        if listed is not None and listed[0] == 0:
            found += [line for line in listed[1].splitlines() if f"minidocker:net:{owner}" in line]
    return found


def _open_closed_forward(bridge: str, owner: str) -> None:
    chain = _forward_chain()
    if chain is None:
        return  # FORWARD accepts by default: nothing to open
    for rule in _forward_rules(bridge, owner):
        if _iptables("-C", chain, *rule)[0] != 0:  # type: ignore[index]
            done = _iptables("-I", chain, *rule)
            if done is None or done[0] != 0:
                raise MinidockerError(f"failed to accept {bridge} in iptables {chain}: "
                                      f"{done[1].strip() if done else 'iptables is missing'}")


def _close_forward(bridge: str, owner: str) -> None:
    present = forward_accepts(owner)
    for chain in ("DOCKER-USER", "FORWARD"):
        if not any(line.startswith(f"-A {chain} ") for line in present):
            continue
        for rule in _forward_rules(bridge, owner):
            while True:
                deleted = _iptables("-D", chain, *rule)
                if deleted is None or deleted[0] != 0:
                    break
