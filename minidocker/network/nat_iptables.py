"""The iptables backend of :mod:`minidocker.network.nat`, for hosts without ``nft``.

The same rules as the nftables table, in chains of our own, each jumped to from a
built-in chain by one rule tagged ``minidocker`` (Docker's DOCKER chains, renamed)::

    nat     PREROUTING  -m addrtype --dst-type LOCAL -j MINIDOCKER     DNAT, from other hosts/namespaces
            OUTPUT      -m addrtype --dst-type LOCAL -j MINIDOCKER     DNAT, from this host, 127.0.0.1 too
            POSTROUTING -j MINIDOCKER-POSTROUTING                      masquerade out; 127/8 into a bridge
    filter  FORWARD (first) -j MINIDOCKER-ISOLATION-STAGE-1            -i br ! -o br -> STAGE-2
                            MINIDOCKER-ISOLATION-STAGE-2               -o br -> DROP  (one of our bridges)

Rules carry a comment ``minidocker:net:<id>`` or ``minidocker:ctr:<id>``. All changes go
through ``iptables-restore --noflush`` (one process, one atomic transaction, the host's
other rules untouched): publishing is one process, unpublishing one more. Existing chains
are never declared with ``:CHAIN`` (that would flush them); they are created with ``-N``
when ``iptables-save`` does not list them. ``iptables``, ``iptables-save`` and
``iptables-restore`` are whatever the host's alternatives point to (iptables-nft on
Debian 12); never iptables-legacy by name: one call of it on an nf_tables host creates legacy
tables, and iptables-nft warns "iptables-legacy tables present" from then on (the two backends:
xtables-nft(8)).

See: iptables(8), iptables-extensions(8), iptables-restore(8).
"""

from __future__ import annotations

import re

from minidocker.errors import MinidockerError
from minidocker.network import command
from minidocker.network.ports import PortMapping

__all__ = ["CHAINS", "TAG", "delete_all", "iptables", "publish", "remove_rules", "rules", "setup_network",
           "unpublish"]

TAG = "minidocker"
DNAT_CHAIN = "MINIDOCKER"
POST_CHAIN = "MINIDOCKER-POSTROUTING"
STAGE1, STAGE2 = "MINIDOCKER-ISOLATION-STAGE-1", "MINIDOCKER-ISOLATION-STAGE-2"
CHAINS = {"nat": (DNAT_CHAIN, POST_CHAIN), "filter": (STAGE1, STAGE2)}
# (table, built-in chain, how it jumps, our chain); FORWARD's jump goes first (-I), before any ACCEPT
_JUMPS = [
    ("nat", "PREROUTING", "-A PREROUTING -m addrtype --dst-type LOCAL", DNAT_CHAIN),
    ("nat", "OUTPUT", "-A OUTPUT -m addrtype --dst-type LOCAL", DNAT_CHAIN),
    ("nat", "POSTROUTING", "-A POSTROUTING", POST_CHAIN),
    ("filter", "FORWARD", "-I FORWARD 1", STAGE1),
]


def iptables(*args: str, tool: str = "iptables", stdin: str | None = None) -> tuple[int, str] | None:
    """Run the host's ``iptables``/``iptables-save``/``iptables-restore``: (exit status, output),
    None if not installed."""
    path = command.which(tool)
    if path is None:
        return None
    return command.run([path, *args], stdin=stdin)


def _save() -> dict[str, list[str]]:
    """``iptables-save`` as {table: its ``:CHAIN`` and ``-A`` lines}."""
    saved = iptables(tool="iptables-save")
    if saved is None or saved[0] != 0:
        raise MinidockerError(f"failed to read iptables rules: "
                              f"{saved[1].strip() if saved else 'iptables-save is not installed'}",
                              hint="apt-get install iptables (or nftables)")
    tables: dict[str, list[str]] = {}
    current: list[str] = []
    for line in saved[1].splitlines():
        if line.startswith("*"):
            current = tables.setdefault(line[1:], [])
        elif line.startswith((":", "-A ")):
            current.append(line)
    return tables


def _restore(script: dict[str, list[str]]) -> None:
    """Apply ``{table: lines}`` in one ``iptables-restore --noflush`` transaction."""
    text = "".join(f"*{table}\n" + "".join(line + "\n" for line in lines) + "COMMIT\n"
                   for table, lines in script.items() if lines)
    if not text:
        return
    done = iptables("--noflush", "-w", tool="iptables-restore", stdin=text)
    if done is None or done[0] != 0:
        cause = done[1].strip() if done else "iptables-restore is not installed"
        raise MinidockerError(f"failed to apply iptables rules: {cause} "
                              f"(iptables-restore --noflush: {text.strip().replace(chr(10), '; ')})")


def _chains(lines: list[str]) -> set[str]:
    return {line[1:].split()[0] for line in lines if line.startswith(":")}


def _is_jump(line: str) -> bool:
    return line.split()[1] in ("PREROUTING", "OUTPUT", "POSTROUTING", "FORWARD") and \
        bool(re.search(r" -j MINIDOCKER[\w-]*$", line)) and f"--comment {TAG} " in line


def _tag(kind: str, owner: str) -> str:
    return f"-m comment --comment {TAG}:{kind}:{owner}"


def setup_network(bridge: str, subnet: str, owner: str) -> None:
    """Our chains and jumps if missing, then the network's masquerade and isolation rules."""
    saved = _save()
    script: dict[str, list[str]] = {"nat": [], "filter": []}
    for table, ours in CHAINS.items():
        present = _chains(saved.get(table, []))
        script[table] += [f"-N {chain}" for chain in ours if chain not in present]
    for table, builtin, jump, target in _JUMPS:
        if not any(_is_jump(line) and line.startswith(f"-A {builtin} ") and line.endswith(f"-j {target}")
                   for line in saved.get(table, [])):
            script[table].append(f"{jump} -m comment --comment {TAG} -j {target}")
    tag = _tag("net", owner)
    script["nat"] += [f"-A {POST_CHAIN} -s {subnet} ! -o {bridge} {tag} -j MASQUERADE",
                      f"-A {POST_CHAIN} -s 127.0.0.0/8 -o {bridge} {tag} -j MASQUERADE"]
    script["filter"] += [f"-A {STAGE1} -i {bridge} ! -o {bridge} {tag} -j {STAGE2}",
                         f"-A {STAGE2} -o {bridge} {tag} -j DROP"]
    _restore(script)


def _dnat(mapping: PortMapping, container_ip: str, owner: str) -> str:
    match = f"-d {mapping.host_ip}/32 " if mapping.host_ip else ""
    return (f"{match}-p {mapping.proto} -m {mapping.proto} --dport {mapping.host_port} {_tag('ctr', owner)} "
            f"-j DNAT --to-destination {container_ip}:{mapping.container_port}")


def publish(mappings: list[PortMapping], container_ip: str, owner: str) -> list[str]:
    """DNAT each mapping in MINIDOCKER (jumped to from PREROUTING and OUTPUT): one process.

    Returns the rules, for :func:`unpublish`.
    """
    specs = [_dnat(m, container_ip, owner) for m in mappings]
    _restore({"nat": [f"-A {DNAT_CHAIN} {spec}" for spec in specs]})
    return specs


def unpublish(specs: list[str]) -> bool:
    """Delete the rules :func:`publish` added, in one ``iptables-restore``; False if that failed."""
    try:
        _restore({"nat": [f"-D {DNAT_CHAIN} {spec}" for spec in specs]})
    except MinidockerError:
        return False
    return True


def rules() -> list[str]:
    """Our rules and jumps, as ``iptables-save`` lines prefixed with their table."""
    saved = _save()
    return [f"{table} {line}" for table in CHAINS for line in saved.get(table, [])
            if line.startswith("-A ") and (line.split()[1] in CHAINS[table] or _is_jump(line))]


def remove_rules(owner: str, bridge: str | None = None) -> int:
    """Delete every rule tagged ``minidocker:net:<owner>`` or ``minidocker:ctr:<owner>`` in our
    chains; return how many. (``bridge``: unused, the tags find the network's rules.)"""
    saved = _save()
    mine = re.compile(rf'--comment "?{TAG}:(net|ctr):{re.escape(owner)}"?( |$)')
    script = {table: ["-D" + line[2:] for line in saved.get(table, [])
                      if line.startswith("-A ") and line.split()[1] in CHAINS[table] and mine.search(line)]
              for table in CHAINS}
    _restore(script)
    return sum(len(lines) for lines in script.values())


def delete_all() -> bool:
    """Remove our jumps and chains; False if there were none."""
    saved = _save()
    script: dict[str, list[str]] = {}
    for table, ours in CHAINS.items():
        present = [c for c in ours if c in _chains(saved.get(table, []))]
        jumps = ["-D" + line[2:] for line in saved.get(table, [])
                 if line.startswith("-A ") and _is_jump(line)]
        script[table] = jumps + [f"-F {c}" for c in present] + [f"-X {c}" for c in present]
    _restore(script)
    return any(script.values())
