"""Networks and endpoints: what ``docker network`` and ``docker run --network/-p`` manage.

State (``tree /var/lib/minidocker/networks``)::

    networks/.lock              flock(2) taken by every change: allocations never race
    networks/<name>.json        a Network: id, subnet, gateway, bridge, endpoints

An *endpoint* is one container on one network: its address (and its MAC, Docker's
``02:42`` + the IPv4 address), the host end of its veth pair, its published ports, its
aliases (more names its peers' hosts files give it), and its *owner* (a PID and that process's start
time): an endpoint whose owner is dead is stale and is reclaimed by the next change
(a ``run`` killed with SIGKILL cannot leak an address for ever).

Life of a bridged container (engine/run.py)::

    plan = plan_network(mode, ports)          bad flags fail here, nothing created
    endpoints = attach(container, plan)       lock; bridge + rules if new; addresses; ports
    ... runtime creates the container ...
    wire(endpoints, pid)                      veth into its netns, address, route, DNAT
    ... the command runs and exits ...
    detach(container_id)                      lock; forget endpoints, delete DNAT rules

The host end of the veth is *not* deleted at exit: when the container's last process
dies the kernel destroys its network namespace, and with it the veth pair, off our
critical path (deleting it ourselves waits for an RCU grace period, ~26 ms).
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path

from minidocker.atomic import read_json, write_json
from minidocker.errors import Conflict, InvalidArgument, NotFound
from minidocker.linux import procfs
from minidocker.network import ipam, names
from minidocker.network.ports import EPHEMERAL, PortMapping, clashes, host_port_in_use, parse_publish
from minidocker.paths import StateRoots
from minidocker.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import Any

__all__ = [
    "DEFAULT_NETWORK", "NetworkPlan", "Network", "NetworkStore", "attach", "connect", "create_network",
    "detach", "disconnect", "list_networks", "plan_endpoint", "plan_network", "prune_networks",
    "remove_network", "wire",
]

DEFAULT_NETWORK = "bridge"  # Docker's default network and its docker0 are ours "bridge" and mdbr0
DEFAULT_BRIDGE = "mdbr0"
DEFAULT_SUBNET = "10.213.0.0/16"
USER_POOL = "10.214.0.0/16"  # user networks get the first free /24 of it, like Docker's 172.18.0.0/16 ...
PREDEFINED = ("bridge", "host", "none")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _new_id() -> str:
    return os.urandom(32).hex()  # 64 hex digits like Docker's; os.urandom is what secrets uses


class Network(Record):
    """A bridge network: one Linux bridge, one subnet, the containers on it."""

    FIELDS = ("id", "name", "subnet", "gateway", "bridge", "created", "driver", "endpoints")
    DEFAULTS = {"driver": "bridge", "endpoints": {}}

    @property
    def user_defined(self) -> bool:
        """Only user-defined networks resolve container names (as in Docker)."""
        return self.name != DEFAULT_NETWORK


class NetworkStore:
    """Network records under ``<lib>/networks``, changed only while holding the lock."""

    def __init__(self, roots: StateRoots) -> None:
        self.directory = roots.lib / "networks"

    @contextmanager
    def locked(self) -> Iterator[NetworkStore]:
        """Hold the store's exclusive lock. See flock(2)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self
        finally:
            os.close(fd)  # releases the lock

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.json"

    def list(self) -> list[Network]:
        if not self.directory.is_dir():
            return []
        found = [Network.from_json(read_json(p)) for p in sorted(self.directory.glob("*.json"))]
        return sorted(found, key=lambda n: n.created)

    def get(self, ref: str) -> Network:
        """A network by name, ID or unique ID prefix."""
        if _NAME.match(ref) and self.path(ref).exists():
            return Network.from_json(read_json(self.path(ref)))
        matches = [n for n in self.list() if n.id.startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        if ref == DEFAULT_NETWORK:
            return self._default()
        raise NotFound(f"network {ref} not found", hint="list networks with 'minidocker network ls'")

    def save(self, network: Network, durable: bool = False) -> None:
        """Atomic always (rename); fsync'd only when asked. Endpoints need no fsync: after a
        crash their owners are dead and the next change reclaims them."""
        write_json(self.path(network.name), network.to_json(), durable=durable)

    def delete(self, network: Network) -> None:
        self.path(network.name).unlink(missing_ok=True)

    def _default(self) -> Network:
        network = Network(_new_id(), DEFAULT_NETWORK, DEFAULT_SUBNET,
                          ipam.gateway_of(ipam.parse_subnet(DEFAULT_SUBNET)), DEFAULT_BRIDGE, time.time())
        self.save(network, durable=True)
        return network


# -- plans: parse the flags before anything is created ------------------------------------------

class NetworkPlan:
    """What ``--network``/``-p``/``-P`` ask for. ``mode``: bridge, none, host or container."""

    def __init__(self, mode: str, network: str | None = None, container: str | None = None,
                 ports: list[PortMapping] | None = None, ip: str | None = None) -> None:
        self.mode = mode
        self.ip = ip  # the address asked for (docker run --ip, user networks only), else the lowest free one
        self.mac: str | None = None   # docker run --mac-address, else the one of its address (ipam.mac_of)
        self.aliases: list[str] = []   # docker run --network-alias: more names its peers resolve it by
        self.network = network  # the bridge network's name (mode bridge)
        self.container = container  # the container whose netns to share (mode container)
        self.ports = [] if ports is None else ports


def plan_network(value: str, publish: list[str], publish_all_ports: list[tuple[int, str]]) -> NetworkPlan:
    """Read ``--network`` and the port flags. Raises InvalidArgument with the value in the message.

    ``publish_all_ports`` are the exposed ports ``-P`` publishes on random host ports.
    """
    ports = [parse_publish(p) for p in publish] + [PortMapping("", 0, port, proto)
                                                   for port, proto in publish_all_ports]
    if value in ("none", "host"):
        if ports and value == "none":
            raise InvalidArgument("cannot publish ports with --network none: the container has no network")
        return NetworkPlan(value)  # Docker discards published ports with host networking
    if value.startswith("container:"):
        ref = value.partition(":")[2]
        if not ref:
            raise InvalidArgument("invalid --network container:: a container name or ID is needed")
        if ports:
            raise InvalidArgument("conflicting options: port publishing and --network container:NAME")
        return NetworkPlan("container", container=ref)
    if not _NAME.match(value):
        raise InvalidArgument(f"invalid network name {value!r}")
    return NetworkPlan("bridge", network=value, ports=ports)


def plan_endpoint(plan: NetworkPlan, aliases: Sequence[str] = (), mac: str | None = None) -> NetworkPlan:
    """``--network-alias`` and ``--mac-address`` on ``plan``, as the daemon puts its container's
    Aliases and MacAddress there (engine/supervisor.py), refused where dockerd refuses them.

    Raises:
        InvalidArgument: an alias that breaks a hosts line, or one off a user-defined network
            (nothing resolves it there); a bad MAC, or one with ``--network host`` or
            ``container:`` (the container has no interface of its own).
    """
    plan.aliases = names.check_aliases(aliases)
    if plan.aliases and (plan.mode != "bridge" or plan.network == DEFAULT_NETWORK):
        raise InvalidArgument("network-scoped alias is supported only for containers "
                              "in user defined networks")
    plan.mac = ipam.parse_mac(mac) if mac else None
    if plan.mac and plan.mode in ("host", "container"):
        raise InvalidArgument("conflicting options: mac-address and the network mode",
                              hint=f"--mac-address needs an interface of the container's own, "
                                   f"not --network {plan.mode}")
    return plan


# -- network create / rm / ls ------------------------------------------------------------------

def create_network(roots: StateRoots, name: str, subnet: str | None = None) -> Network:
    """Create a user-defined bridge network. Like ``docker network create [--subnet]``.

    The bridge, its address and its rules exist when this returns; on any failure none of them do.
    """
    if not _NAME.match(name):
        raise InvalidArgument(f"invalid network name {name!r}",
                              hint="use letters, digits, '_', '.', '-', starting with a letter or digit")
    if name in PREDEFINED:
        raise Conflict(f"network with name {name} already exists", hint=f"{name!r} is predefined")
    store = NetworkStore(roots)
    with store.locked():
        if store.path(name).exists():
            raise Conflict(f"network with name {name} already exists")
        existing = [ipam.parse_subnet(n.subnet) for n in store.list()] + [ipam.parse_subnet(DEFAULT_SUBNET)]
        if subnet is not None:
            wanted = ipam.parse_subnet(subnet)
            clash = ipam.overlapping(wanted, existing)
            if clash is not None:
                raise Conflict(f"invalid subnet {subnet}: it overlaps {clash}, already used by a network",
                               hint="choose a subnet that overlaps no other network "
                                    "(minidocker network inspect)")
        else:
            wanted = ipam.free_subnet(ipam.parse_subnet(USER_POOL), existing)
        network_id = _new_id()
        network = Network(network_id, name, str(wanted), ipam.gateway_of(wanted), f"md-{network_id[:12]}",
                          time.time())
        _ensure_bridge(network)
        store.save(network, durable=True)
    return network


def list_networks(roots: StateRoots) -> list[dict[str, str]]:
    """Rows for ``network ls``: the predefined ones, then the bridge networks."""
    rows = {n.name: {"id": n.id[:12], "name": n.name, "driver": "bridge", "subnet": n.subnet}
            for n in NetworkStore(roots).list()}
    rows.setdefault("bridge", {"id": "-", "name": "bridge", "driver": "bridge", "subnet": DEFAULT_SUBNET})
    rows["host"] = {"id": "-", "name": "host", "driver": "host", "subnet": ""}
    rows["none"] = {"id": "-", "name": "none", "driver": "null", "subnet": ""}
    return sorted(rows.values(), key=lambda r: (r["name"] not in PREDEFINED, r["name"]))


def inspect_network(roots: StateRoots, ref: str) -> dict[str, Any]:
    """The network's record with its live endpoints. Like ``docker network inspect``."""
    store = NetworkStore(roots)
    with store.locked():
        network = store.get(ref)
        _reclaim_stale(store, network)
    data = network.to_json()
    data["endpoints"] = {cid: {k: v for k, v in ep.items() if k != "owner"}
                         for cid, ep in network.endpoints.items()}
    return data


def remove_network(roots: StateRoots, ref: str) -> Network:
    """Delete a network, its bridge and its rules. Like ``docker network rm``.

    Raises:
        Conflict: containers are still on it (or it is predefined).
    """
    if ref in ("host", "none"):
        raise Conflict(f"{ref} is a pre-defined network and cannot be removed")
    store = NetworkStore(roots)
    with store.locked():
        network = store.get(ref)
        _reclaim_stale(store, network)
        if network.endpoints:
            names_ = ", ".join(sorted(ep["name"] for ep in network.endpoints.values()))
            raise Conflict(f"error while removing network {network.name}: it has active endpoints ({names_})",
                           hint="stop those containers or 'minidocker network disconnect' them first")
        _teardown_network(store, network)
    return network


def prune_networks(roots: StateRoots, keep_default: bool = False) -> list[str]:
    """Remove every network without live endpoints, and our nft table (or iptables chains) with the last one.

    ``keep_default`` leaves the default ``bridge`` as it is (``docker network prune`` never
    removes a predefined network; ``minidocker system prune`` removes everything).
    """
    store = NetworkStore(roots)
    removed = []
    with store.locked():
        for network in store.list():
            _reclaim_stale(store, network)
            if not network.endpoints and not (keep_default and network.name == DEFAULT_NETWORK):
                _teardown_network(store, network)
                removed.append(f"deleted network {network.name}")
    return removed


def _teardown_network(store: NetworkStore, network: Network) -> None:
    from minidocker.network import nat
    from minidocker.network.netlink import open_route_socket

    with open_route_socket() as nl:
        nl.delete_link(network.bridge)  # first: without a bridge the rules match nothing
    nat.remove_rules(network.id[:12], network.bridge)
    store.delete(network)
    if not store.list():
        nat.delete_table()


def _ensure_bridge(network: Network) -> int:
    """The network's bridge, created with its address and rules if missing (first use, after a reboot).

    The bridge goes up last: a bridge that is up implies its address and rules exist, so
    the hot path checks the bridge alone (one netlink request) and never starts ``nft`` (or iptables).
    """
    from minidocker.network.netlink import open_route_socket

    with open_route_socket() as nl:
        try:
            index, up = nl.link(network.bridge)
            if up:
                return index
            nl.delete_link(network.bridge)  # half set up by a process that died: start again
        except FileNotFoundError:
            pass
        from minidocker.network import nat

        nat.remove_rules(network.id[:12], network.bridge)  # leftovers of an earlier life of this network
        try:
            index = nl.create_bridge(network.bridge, up=False)
            nl.add_address(index, network.gateway, ipam.parse_subnet(network.subnet).prefixlen)
            nat.setup_network(network.bridge, network.subnet, network.id[:12])
            nl.set_up(index)
        except BaseException:
            nl.delete_link(network.bridge)
            nat.remove_rules(network.id[:12], network.bridge)
            raise
        return index


# -- endpoints ---------------------------------------------------------------------------------

def _owner(pid: int, started: int | None = None) -> list[int]:
    return [pid, started or procfs.start_time(pid) or 0]


def _alive(owner: list[int]) -> bool:
    return procfs.is_alive(owner[0], owner[1] or None)


def _reclaim_stale(store: NetworkStore, network: Network) -> bool:
    """Drop endpoints whose owner died without detaching (a SIGKILLed ``run``)."""
    stale = [cid for cid, ep in network.endpoints.items() if not _alive(ep["owner"])]
    for cid in stale:
        endpoint = network.endpoints.pop(cid)
        if endpoint.get("ports"):
            from minidocker.network import nat

            nat.remove_rules(cid[:12])
    if stale:
        store.save(network)
    return bool(stale)


def _published(store: NetworkStore) -> list[tuple[PortMapping, str]]:
    return [(PortMapping.from_json(p), ep["name"]) for n in store.list() for ep in n.endpoints.values()
            for p in ep.get("ports", [])]


def _choose_ports(store: NetworkStore, wanted: list[PortMapping]) -> list[PortMapping]:
    """Give a host port to each mapping and refuse ports already published or in use."""
    taken = _published(store)
    chosen: list[PortMapping] = []
    for mapping in wanted:
        if mapping.host_port == 0:
            mapping = _random_port(mapping, [m for m, _ in taken] + chosen)
        for other, owner in taken + [(c, "this container") for c in chosen]:
            if clashes(mapping, other):
                raise Conflict(f"failed to publish port {mapping}: port is already allocated (by {owner})",
                               hint="choose another host port")
        if host_port_in_use(mapping):
            raise Conflict(f"failed to publish port {mapping}: address already in use by a host process")
        chosen.append(mapping)
    return chosen


def _random_port(mapping: PortMapping, taken: list[PortMapping]) -> PortMapping:
    for _ in range(200):
        port = EPHEMERAL[int.from_bytes(os.urandom(4), "little") % len(EPHEMERAL)]
        candidate = PortMapping(mapping.host_ip, port, mapping.container_port, mapping.proto)
        if not any(clashes(candidate, t) for t in taken) and not host_port_in_use(candidate):
            return candidate
    raise Conflict("failed to choose a free host port")


def _veth_name(container_id: str, network: Network) -> str:
    return f"md{container_id[:8]}{network.id[:4]}"  # 14 characters: under IFNAMSIZ (16 with the NUL)


def attach(roots: StateRoots, container_id: str, name: str, hostname: str, plan: NetworkPlan,
           directory: Path, ifname: str = "eth0", owner_pid: int | None = None,
           owner_start_time: int | None = None) -> dict[str, Any]:
    """Allocate an address (and host ports) for a container on ``plan.network``.

    Returns the endpoint (a dict with network, ip, prefixlen, gateway, veth, ifname, ports).
    Its owner is ``owner_pid``: by default this process, the ``run`` that waits for the
    container (whose PID 1 dies with it: PDEATHSIG); ``network connect`` gives the
    container's PID 1 (and its recorded ``owner_start_time``). Writes the container's hosts,
    hostname and resolv.conf into ``directory``.
    """
    store = NetworkStore(roots)
    with store.locked():
        network = store.get(plan.network or DEFAULT_NETWORK)
        _reclaim_stale(store, network)
        if container_id in network.endpoints:
            raise Conflict(f"container {name} is already connected to network {network.name}")
        ports = _choose_ports(store, plan.ports)
        bridge_index = _ensure_bridge(network)
        used = [e["ip"] for e in network.endpoints.values()]
        ip = (ipam.claim(ipam.parse_subnet(network.subnet), plan.ip, used, network.gateway) if plan.ip
              else ipam.allocate(ipam.parse_subnet(network.subnet), used, network.gateway))
        endpoint = {
            "name": name, "hostname": hostname, "ip": ip, "veth": _veth_name(container_id, network),
            "ifname": ifname, "ports": [p.to_json() for p in ports],
            **({"requested_ip": ip} if plan.ip else {}),
            "mac": plan.mac or ipam.mac_of(ip), **({"aliases": list(plan.aliases)} if plan.aliases else {}),
            "owner": _owner(owner_pid or os.getpid(), owner_start_time),
            "directory": str(directory),
        }
        if ports:  # the DNAT rules, kept in the record: whoever detaches deletes them by handle
            from minidocker.network import nat

            endpoint["rules"] = nat.publish(ports, ip, container_id[:12])
        network.endpoints[container_id] = endpoint
        try:
            store.save(network)
        except BaseException:
            if ports:
                nat.remove_rules(container_id[:12], published=endpoint["rules"])
            raise
        _write_name_files(store, container_id, hostname, directory)
        _refresh_peers(store, network, skip=container_id)
    return {**endpoint, "network": network.name, "network_id": network.id, "gateway": network.gateway,
            "prefixlen": ipam.parse_subnet(network.subnet).prefixlen, "bridge_index": bridge_index}


def wire(endpoint: dict[str, Any], container_id: str, pid: int) -> None:
    """Put the endpoint into the container: veth pair, address, default route (attach made its DNAT rules).

    Runs while the container is created but has not started its command, so the
    command never sees a network without its address.
    """
    from minidocker.network.netlink import open_route_socket

    with open_route_socket() as nl:
        nl.create_veth(endpoint["veth"], endpoint["ifname"], peer_netns_pid=pid,
                       master=endpoint["bridge_index"], peer_address=endpoint.get("mac"))
    with open_route_socket(pid) as nl:
        index = nl.link_index(endpoint["ifname"])
        nl.set_up(index)
        nl.add_address(index, endpoint["ip"], endpoint["prefixlen"])
        if endpoint["ifname"] == "eth0":
            nl.add_default_route(endpoint["gateway"])


def detach(roots: StateRoots, container_id: str, networks: list[str] | None = None,
           delete_veth: bool = False) -> list[str]:
    """Forget the container's endpoints (on ``networks``, default all) and delete its DNAT rules.

    Returns the names of the networks it left. ``delete_veth`` removes the host end of the
    veth now (``network disconnect``); at exit the kernel does that with the namespace.
    """
    store = NetworkStore(roots)
    left, had_ports, published = [], False, []
    with store.locked():
        for network in store.list():
            if networks is not None and network.name not in networks:
                continue
            endpoint = network.endpoints.pop(container_id, None)
            if endpoint is None:
                continue
            left.append(network.name)
            had_ports |= bool(endpoint.get("ports"))
            published += endpoint.get("rules") or []
            store.save(network)
            if delete_veth:
                from minidocker.network.netlink import open_route_socket

                with open_route_socket() as nl:
                    nl.delete_link(endpoint["veth"])
            _refresh_peers(store, network, skip=container_id)
            if networks is not None:
                _write_name_files(store, container_id, endpoint["hostname"], Path(endpoint["directory"]))
    if had_ports:  # after the lock: DNAT rules are found by owner, whoever publishes next
        from minidocker.network import nat

        # at exit, deleted off the critical path, by the handles attach recorded
        nat.remove_rules(container_id[:12], wait=delete_veth, published=published)
    return left


def _write_name_files(store: NetworkStore, container_id: str, hostname: str, directory: Path) -> None:
    """The container's /etc/hosts (own address, peers on user networks with their aliases),
    hostname, resolv.conf.

    On a user network the container also finds itself by its name and that network's aliases,
    as Docker's embedded DNS answers it: a line of its own address there, after its hostname's."""
    own_ip, peers = None, []
    for network in store.list():
        me = network.endpoints.get(container_id)
        if me is None:
            continue
        own_ip = own_ip or me["ip"]
        if network.user_defined:
            own = [n for n in (me["name"], *me.get("aliases", ())) if n != hostname]
            if own:
                peers.append((me["ip"], own))
            peers += [(ep["ip"], [ep["name"], cid[:12], *ep.get("aliases", ())])
                      for cid, ep in network.endpoints.items() if cid != container_id]
    names.write_in_place(directory / "hosts", names.hosts_file(own_ip, hostname, peers))
    hostname_path = directory / "hostname"
    if not hostname_path.exists():
        names.write_in_place(hostname_path, hostname + "\n")
        try:
            with open("/etc/resolv.conf") as f:
                host_resolv = f.read()
        except FileNotFoundError:
            host_resolv = ""
        names.write_in_place(directory / "resolv.conf", names.resolv_conf(host_resolv))


def _refresh_peers(store: NetworkStore, network: Network, skip: str) -> None:
    if not network.user_defined:
        return
    for cid, ep in network.endpoints.items():
        if cid != skip and os.path.isdir(ep["directory"]):
            _write_name_files(store, cid, ep["hostname"], Path(ep["directory"]))


# -- connect / disconnect a running container ---------------------------------------------------

def connect(roots: StateRoots, network_ref: str, container_ref: str,
            aliases: list[str] | None = None) -> dict[str, Any]:
    """Add a running container to a network. Like ``docker network connect [--alias A]``."""
    from minidocker.engine.container import find_container

    container = find_container(roots, container_ref)
    if not container.is_running():  # a reused PID is never entered (linux/procfs.py)
        raise Conflict(f"cannot connect container {container.name}: it is not running")
    directory = roots.containers / container.id
    if not (directory / "hosts").exists():
        raise Conflict(f"cannot connect container {container.name}: it has no network of its own "
                       "(--network none, host or container:)")
    store = NetworkStore(roots)
    network = store.get(network_ref)
    if aliases and not network.user_defined:
        raise InvalidArgument("network-scoped alias is supported only for containers "
                              "in user defined networks")
    names.check_aliases(aliases or [])
    count = sum(container.id in n.endpoints for n in store.list())
    hostname = next((n.endpoints[container.id]["hostname"] for n in store.list()
                     if container.id in n.endpoints), container.id[:12])
    plan = NetworkPlan("bridge", network.name)
    plan.aliases = list(aliases or [])
    endpoint = attach(roots, container.id, container.name, hostname, plan, directory, ifname=f"eth{count}",
                      owner_pid=container.pid, owner_start_time=container.start_time)
    try:
        wire(endpoint, container.id, container.pid)
    except BaseException:
        detach(roots, container.id, [network.name], delete_veth=True)
        raise
    return endpoint


def disconnect(roots: StateRoots, network_ref: str, container_ref: str) -> None:
    """Remove a container from a network now. Like ``docker network disconnect``."""
    from minidocker.engine.container import find_container

    container = find_container(roots, container_ref)
    network = NetworkStore(roots).get(network_ref)
    if not detach(roots, container.id, [network.name], delete_veth=True):
        raise NotFound(f"container {container.name} is not connected to network {network.name}")


def check_network_exists(roots: StateRoots, plan: NetworkPlan) -> None:
    """Fail early (before any container is created) for ``--network NAME`` that does not exist."""
    if plan.mode == "bridge" and plan.network != DEFAULT_NETWORK:
        store = NetworkStore(roots)
        if not store.path(plan.network or "").exists():
            raise NotFound(f"network {plan.network} not found",
                           hint="create it with 'minidocker network create NAME'")


# -- what the Engine API shows of networks (api/networks.py) -------------------------------------

def container_endpoints(roots: StateRoots, container_id: str,
                        networks: list[Network] | None = None) -> dict[str, dict[str, Any]]:
    """A container's endpoints by network name, as :func:`attach` returns them (inspect's NetworkSettings).

    Read without the lock: records are replaced by rename (atomic.write_json), never seen half written.
    ``networks``: the records, read once for many containers (``docker ps``).
    """
    found = {}
    for network in NetworkStore(roots).list() if networks is None else networks:
        ep = network.endpoints.get(container_id)
        if ep is not None:
            found[network.name] = {**{k: v for k, v in ep.items()
                                      if k not in ("owner", "rules", "directory")},
                                   "network": network.name, "network_id": network.id,
                                   "gateway": network.gateway,
                                   "prefixlen": ipam.parse_subnet(network.subnet).prefixlen}
    return found


_PREDEFINED_DRIVERS = {"host": "host", "none": "null"}


def network_resources(roots: StateRoots) -> list[dict[str, Any]]:
    """``GET /networks``: every network as Docker's NetworkResource, the predefined ones first."""
    store = NetworkStore(roots)
    with store.locked():
        networks = store.list()
        if not any(n.name == DEFAULT_NETWORK for n in networks):
            networks.insert(0, store.get(DEFAULT_NETWORK))   # its record is made on first use
        for network in networks:
            _reclaim_stale(store, network)
    found = [_resource(n) for n in networks] + [_predefined(name) for name in _PREDEFINED_DRIVERS]
    return sorted(found, key=lambda r: (r["Name"] not in PREDEFINED, r["Name"]))


def network_resource(roots: StateRoots, ref: str) -> dict[str, Any]:
    """``GET /networks/{id}``: one network by name, ID or unique ID prefix (Docker's NetworkResource)."""
    for name in _PREDEFINED_DRIVERS:
        predefined = _predefined(name)
        if ref in (name, predefined["Id"]) or (len(ref) >= 3 and predefined["Id"].startswith(ref)):
            return predefined
    store = NetworkStore(roots)
    with store.locked():
        network = store.get(ref)
        _reclaim_stale(store, network)
    return _resource(network)


def _resource(network: Network) -> dict[str, Any]:
    return {
        "Name": network.name, "Id": network.id, "Created": _rfc3339(network.created), "Scope": "local",
        "Driver": "bridge", "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": None, "Config": [{"Subnet": network.subnet,
                                                                   "Gateway": network.gateway}]},
        "Internal": False, "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": {cid: {"Name": ep["name"], "EndpointID": "", "MacAddress": ep.get("mac", ""),
                             "IPv4Address": f"{ep['ip']}/{ipam.parse_subnet(network.subnet).prefixlen}",
                             "IPv6Address": ""} for cid, ep in network.endpoints.items()},
        "Options": {"com.docker.network.bridge.name": network.bridge}, "Labels": {},
    }


def _predefined(name: str) -> dict[str, Any]:
    """``host`` and ``none``: no record, a stable ID (the sha256 of the name)."""
    import hashlib

    return {"Name": name, "Id": hashlib.sha256(f"minidocker-network-{name}".encode()).hexdigest(),
            "Created": _rfc3339(0), "Scope": "local", "Driver": _PREDEFINED_DRIVERS[name],
            "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": None, "Config": []},
            "Internal": False, "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
            "ConfigOnly": False, "Containers": {},
            "Options": {}, "Labels": {}}


def _rfc3339(seconds: float) -> str:
    from minidocker.engine.system import rfc3339   # the API's time format; only the API path needs it

    return rfc3339(seconds)
