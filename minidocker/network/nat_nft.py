"""The nftables backend of :mod:`minidocker.network.nat`: one table of our own.

::

  table ip minidocker {
    chain prerouting  { type nat hook prerouting priority dstnat;  ... dnat ... }  other hosts/namespaces
    chain output      { type nat hook output priority -100;        ... dnat ... }  this host, 127.0.0.1 too
    chain postrouting { type nat hook postrouting priority srcnat; ... masquerade }
    chain forward     { type filter hook forward priority filter;  ... drop }      between networks
    set bridges       { type ifname; }                                             our bridges
  }

Every rule carries a comment naming its owner (``net:<id>`` or ``ctr:<id>``). Publishing
costs one ``nft`` process (~3 ms): ``nft --echo --handle`` prints the handles of the rules
it added, and removing them at exit is one more (``delete rule ... handle N``), instead of
listing the table to find them. Measured here: adding rules takes ~3 ms, but any deletion
(a rule, a set element, a chain) ~10-30 ms, the kernel waiting for an RCU grace period;
so does re-declaring the table's hooked chains, which publishing therefore skips.
Removing the whole table is one command.

See: nft(8), "NAT" in the nftables wiki.
"""

from __future__ import annotations

import re

from minidocker.errors import MinidockerError
from minidocker.network import command
from minidocker.network.ports import PortMapping

__all__ = ["TABLE", "delete_all", "publish", "remove_rules", "rules", "setup_network", "unpublish"]

TABLE = "minidocker"
_BASE = f"""add table ip {TABLE}
add chain ip {TABLE} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}
add chain ip {TABLE} output {{ type nat hook output priority -100; policy accept; }}
add chain ip {TABLE} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}
add chain ip {TABLE} forward {{ type filter hook forward priority filter; policy accept; }}
add set ip {TABLE} bridges {{ type ifname; }}
"""
_ECHOED = re.compile(rf"^add rule ip {TABLE} (\w+) .* # handle (\d+)$", re.MULTILINE)


def _nft(*args: str, script: str | None = None) -> str:
    nft = command.which("nft")
    if nft is None:
        raise MinidockerError("failed to configure NAT: nft is not installed",
                              hint="apt-get install nftables")
    status, output = command.run([nft, *args], stdin=script)
    if status != 0:
        what = script.strip().replace("\n", "; ") if script else " ".join(args)
        raise MinidockerError(f"failed to apply nftables rules: {output.strip()} (nft {what})")
    return output


def setup_network(bridge: str, subnet: str, owner: str) -> None:
    """Outbound masquerade, masquerade of 127.0.0.0/8 into the bridge, isolation. See nft(8)."""
    comment = f'comment "net:{owner}"'
    _nft("-f", "-", script=_BASE + "\n".join([
        f'add rule ip {TABLE} postrouting ip saddr {subnet} oifname != "{bridge}" masquerade {comment}',
        f'add rule ip {TABLE} postrouting ip saddr 127.0.0.0/8 oifname "{bridge}" masquerade {comment}',
        # isolation: nothing routed from this network into another of ours (Docker's DOCKER-ISOLATION)
        f'add element ip {TABLE} bridges {{ "{bridge}" }}',
        f'add rule ip {TABLE} forward iifname "{bridge}" oifname @bridges oifname != "{bridge}" '
        f'drop {comment}',
    ]) + "\n")


def publish(mappings: list[PortMapping], container_ip: str, owner: str) -> list[str]:
    """DNAT each mapping's host port to ``container_ip``, from outside and from here: one ``nft``.

    Returns the rules' ``"<chain> <handle>"``, for :func:`unpublish`. See nft(8) --echo --handle.
    """
    script = ""
    for mapping in mappings:
        match = f"ip daddr {mapping.host_ip} " if mapping.host_ip else ""
        rule = (f"{match}fib daddr type local {mapping.proto} dport {mapping.host_port} "
                f'dnat to {container_ip}:{mapping.container_port} comment "ctr:{owner}"')
        script += f"add rule ip {TABLE} prerouting {rule}\nadd rule ip {TABLE} output {rule}\n"
    try:  # the table exists (the network's bridge is up): re-declaring its hooked chains costs ~20 ms
        echoed = _nft("--echo", "--handle", "-f", "-", script=script)
    except MinidockerError as err:
        if "No such file or directory" not in str(err):
            raise
        echoed = _nft("--echo", "--handle", "-f", "-", script=_BASE + script)  # someone deleted it
    return [f"{chain} {handle}" for chain, handle in _ECHOED.findall(echoed)]


def unpublish(handles: list[str]) -> bool:
    """Delete the rules :func:`publish` added, by handle, in one ``nft``; False if that failed."""
    script = "".join(f"delete rule ip {TABLE} {h.split()[0]} handle {h.split()[1]}\n" for h in handles)
    try:
        _nft("-f", "-", script=script)
    except MinidockerError:
        return False
    return True


def rules() -> list[dict]:
    """Our rules as nft's JSON objects (chain, handle, comment ...); [] if there is no table."""
    try:
        text = _nft("-j", "-a", "list", "table", "ip", TABLE)
    except MinidockerError as err:
        if "No such file or directory" in str(err):
            return []
        raise
    import json

    return [item["rule"] for item in json.loads(text)["nftables"] if "rule" in item]


def remove_rules(owner: str, bridge: str | None = None) -> int:
    """Delete every rule whose comment is ``net:<owner>`` or ``ctr:<owner>`` (and ``bridge`` from
    the set of our bridges); return how many rules."""
    mine = [r for r in rules() if r.get("comment") in (f"net:{owner}", f"ctr:{owner}")]
    script = "".join(f"delete rule ip {TABLE} {r['chain']} handle {r['handle']}\n" for r in mine)
    if bridge is not None and mine:
        script += f'delete element ip {TABLE} bridges {{ "{bridge}" }}\n'
    if script:
        _nft("-f", "-", script=script)
    return len(mine)


def delete_all() -> bool:
    """Remove the whole table; False if it did not exist."""
    try:
        _nft("delete", "table", "ip", TABLE)
    except MinidockerError as err:
        if "No such file or directory" in str(err):
            return False
        raise
    return True
