"""Outbound NAT, published ports and network isolation in one nftables table of our own.

Docker writes iptables rules into the host's tables; minidocker keeps everything in
``table ip minidocker``, so that it never flushes or rewrites anyone else's rules and
is removed in one command (``nft delete table ip minidocker``)::

    table ip minidocker {
      chain prerouting  { type nat hook prerouting priority dstnat;  ... dnat ... }   from other hosts/namespaces
      chain output      { type nat hook output priority -100;        ... dnat ... }   from this host, 127.0.0.1 too
      chain postrouting { type nat hook postrouting priority srcnat; ... masquerade }
      chain forward     { type filter hook forward priority filter;  ... drop }       between networks
      set bridges       { type ifname; }                                              our bridges
    }

Every rule carries a comment naming its owner (``net:<id>`` or ``ctr:<id>``); removing
an owner deletes exactly its rules, found by handle. Publishing on 127.0.0.1 needs three
pieces (platform notes §5.3): DNAT in *output* (local packets skip prerouting),
masquerade of 127.0.0.0/8 leaving through the bridge, and ``route_localnet=1`` on the
bridge. Traffic from elsewhere needs prerouting DNAT and ``ip_forward=1``.

Living beside dockerd: it sets the iptables FORWARD policy to DROP and, with br_netfilter,
bridged frames cross FORWARD too, so our containers could not talk to each other or out.
An accept in our nft table cannot help (a drop in any base chain is final), so then, and
only then, two ACCEPT rules for our bridge go into the chain dockerd keeps for its users,
``DOCKER-USER`` (else ``FORWARD``), tagged ``minidocker:net:<id>`` and removed with the
network. Written with ``iptables`` itself: an nft-native rule in an iptables-nft table
would make ``iptables -S`` (and so dockerd) refuse that table.

Main API::

    setup_network(bridge, subnet, owner)       masquerade out, 127/8 in, isolation; sysctls;
                                               FORWARD accepts if dockerd closed it
    publish(mapping, container_ip, owner)      DNAT host port -> container port
    remove_rules(owner)                        every rule with that comment
    delete_table()                             all of it (network rm of the last network, prune)

See: nft(8), "NAT" in nftables wiki; ip-sysctl.rst (route_localnet, ip_forward).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from minidocker.errors import MinidockerError
from minidocker.network.ports import PortMapping

__all__ = ["TABLE", "delete_table", "forward_accepts", "publish", "remove_rules", "rules", "set_sysctl",
           "setup_network"]

TABLE = "minidocker"
_BASE = f"""add table ip {TABLE}
add chain ip {TABLE} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}
add chain ip {TABLE} output {{ type nat hook output priority -100; policy accept; }}
add chain ip {TABLE} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
add chain ip {TABLE} forward {{ type filter hook forward priority filter; policy accept; }}
add set ip {TABLE} bridges {{ type ifname; }}
"""


def _nft(*args: str, script: str | None = None) -> str:
    nft = shutil.which("nft") or "/usr/sbin/nft"
    if not os.path.exists(nft):
        raise MinidockerError("failed to configure NAT: nft is not installed", hint="apt-get install nftables")
    proc = subprocess.run([nft, *args], input=script, capture_output=True, text=True)
    if proc.returncode != 0:
        what = script.strip().replace("\n", "; ") if script else " ".join(args)
        raise MinidockerError(f"failed to apply nftables rules: {proc.stderr.strip()} (nft {what})")
    return proc.stdout


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
    ``route_localnet`` on the bridge (127.0.0.1:port -> container). See nft(8).
    """
    comment = f'comment "net:{owner}"'
    _nft("-f", "-", script=_BASE + "\n".join([
        f'add rule ip {TABLE} postrouting ip saddr {subnet} oifname != "{bridge}" masquerade {comment}',
        f'add rule ip {TABLE} postrouting ip saddr 127.0.0.0/8 oifname "{bridge}" masquerade {comment}',
        # isolation: nothing routed from this network into another of ours (Docker's DOCKER-ISOLATION)
        f'add element ip {TABLE} bridges {{ "{bridge}" }}',
        f'add rule ip {TABLE} forward iifname "{bridge}" oifname @bridges oifname != "{bridge}" drop {comment}',
    ]) + "\n")
    set_sysctl("net.ipv4.ip_forward", "1")
    set_sysctl(f"net.ipv4.conf.{bridge}.route_localnet", "1")
    _open_closed_forward(bridge, owner)


def publish(mapping: PortMapping, container_ip: str, owner: str) -> None:
    """DNAT ``mapping``'s host port to ``container_ip:container_port``, from outside and from here."""
    match = f"ip daddr {mapping.host_ip} " if mapping.host_ip else ""
    rule = (f"{match}fib daddr type local {mapping.proto} dport {mapping.host_port} "
            f'dnat to {container_ip}:{mapping.container_port} comment "ctr:{owner}"')
    _nft("-f", "-", script=_BASE + f"add rule ip {TABLE} prerouting {rule}\nadd rule ip {TABLE} output {rule}\n")


def rules() -> list[dict]:
    """Our rules as nft's JSON objects (chain, handle, comment ...); [] if there is no table."""
    try:
        text = _nft("-j", "-a", "list", "table", "ip", TABLE)
    except MinidockerError as err:
        if "No such file or directory" in str(err):
            return []
        raise
    return [item["rule"] for item in json.loads(text)["nftables"] if "rule" in item]


def remove_rules(owner: str, bridge: str | None = None) -> int:
    """Delete every rule whose comment is ``net:<owner>`` or ``ctr:<owner>`` (and ``bridge`` from
    the set of our bridges); return how many rules."""
    mine = [r for r in rules() if r.get("comment") in (f"net:{owner}", f"ctr:{owner}")]
    script = "".join(f"delete rule ip {TABLE} {r['chain']} handle {r['handle']}\n" for r in mine)
    if bridge is not None:
        _close_forward(bridge, owner)
    if bridge is not None and mine:
        script += f'delete element ip {TABLE} bridges {{ "{bridge}" }}\n'
    if script:
        _nft("-f", "-", script=script)
    return len(mine)


def delete_table() -> bool:
    """Remove the whole table; False if it did not exist."""
    try:
        _nft("delete", "table", "ip", TABLE)
    except MinidockerError as err:
        if "No such file or directory" in str(err):
            return False
        raise
    return True


# -- living beside dockerd: its FORWARD policy DROP ---------------------------------------------

def _iptables(*args: str) -> subprocess.CompletedProcess[str] | None:
    """Run the host's ``iptables`` (whatever its backend; never iptables-legacy by name)."""
    iptables = shutil.which("iptables")
    if iptables is None:
        return None
    return subprocess.run([iptables, "-w", *args], capture_output=True, text=True)


def _forward_chain() -> str | None:
    """Where our accepts must go: DOCKER-USER if dockerd made it, FORWARD if its policy is DROP."""
    user_chain = _iptables("-S", "DOCKER-USER")
    if user_chain is not None and user_chain.returncode == 0:
        return "DOCKER-USER"
    forward = _iptables("-S", "FORWARD")
    if forward is not None and forward.returncode == 0 and "-P FORWARD DROP" in forward.stdout:
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
        if listed is not None and listed.returncode == 0:
            found += [line for line in listed.stdout.splitlines() if f"minidocker:net:{owner}" in line]
    return found


def _open_closed_forward(bridge: str, owner: str) -> None:
    chain = _forward_chain()
    if chain is None:
        return  # FORWARD accepts by default: nothing to open
    for rule in _forward_rules(bridge, owner):
        if _iptables("-C", chain, *rule).returncode != 0:  # type: ignore[union-attr]
            done = _iptables("-I", chain, *rule)
            if done is None or done.returncode != 0:
                raise MinidockerError(f"failed to accept {bridge} in iptables {chain}: "
                                      f"{done.stderr.strip() if done else 'iptables is missing'}")


def _close_forward(bridge: str, owner: str) -> None:
    present = forward_accepts(owner)
    for chain in ("DOCKER-USER", "FORWARD"):
        if not any(line.startswith(f"-A {chain} ") for line in present):
            continue
        for rule in _forward_rules(bridge, owner):
            while True:
                deleted = _iptables("-D", chain, *rule)
                if deleted is None or deleted.returncode != 0:
                    break
