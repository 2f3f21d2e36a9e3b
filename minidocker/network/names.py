"""The files that give a container its names: /etc/hosts, /etc/hostname, /etc/resolv.conf.

Docker writes them in the container's directory and bind-mounts them over the image's.
On a user-defined network, containers find each other **by name**: Docker answers
from an embedded DNS server at 127.0.0.11, which needs a daemon. minidocker has none
in direct mode, so it keeps the hosts files of every container on a network up to date
instead (what Docker did before 1.10): a peer's line holds its name, short ID and network
aliases (``--network-alias``). A bind-mounted file must be rewritten *in place*:
a rename would put a new inode at the path and the container would keep the old one.

Main API::

    hosts_file(ip, hostname, peers)      the text of /etc/hosts
    check_aliases(names)                 refuse a name that would break a hosts line
    resolv_conf(host_text)               the host's resolv.conf without loopback servers
    write_in_place(path, text)           rewrite a file without changing its inode

See: hosts(5), resolv.conf(5), hostname(5).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

__all__ = ["DEFAULT_NAMESERVERS", "check_aliases", "hosts_file", "resolv_conf", "write_in_place"]

DEFAULT_NAMESERVERS = ("8.8.8.8", "8.8.4.4")  # Docker's fallback when the host only has 127.x servers

_HEADER = """127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
"""


def hosts_file(ip: str | None, hostname: str, peers: Iterable[tuple[str, Iterable[str]]] = ()) -> str:
    """/etc/hosts: localhost, this container's address and hostname, then one line per peer."""
    lines = [_HEADER]
    if ip:
        lines.append(f"{ip}\t{hostname}\n")
    for peer_ip, names in peers:
        lines.append(f"{peer_ip}\t{' '.join(names)}\n")
    return "".join(lines)


def check_aliases(aliases: Iterable[str]) -> list[str]:
    """The aliases, if each fits in a hosts line: no space, ``#`` or control character, which would
    split the name, end the line or start a new one in every peer's /etc/hosts.

    Raises:
        InvalidArgument: the first alias that does not fit.
    """
    from minidocker.errors import InvalidArgument

    aliases = list(aliases)
    for alias in aliases:
        if not alias or any(c.isspace() or c == "#" or not c.isprintable() for c in alias):
            # SPEC: dockerd takes any string (its DNS server matches names, no file is written)
            raise InvalidArgument(f"invalid network alias {alias!r}: it must be one word without '#'")
    return aliases


def resolv_conf(host_text: str) -> str:
    """The host's resolv.conf minus nameservers on 127.0.0.0/8 or ::1, which would mean the
    container itself."""
    out, servers = [], 0
    for line in host_text.splitlines():
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1:
            if words[1].startswith("127.") or words[1] == "::1":
                continue
            servers += 1
        out.append(line)
    if not servers:
        out += [f"nameserver {s}" for s in DEFAULT_NAMESERVERS]
    return "\n".join(out).strip() + "\n"


def write_in_place(path: str | os.PathLike[str], text: str) -> None:
    """Replace the content of ``path`` keeping its inode (it may be bind-mounted). See open(2) O_TRUNC."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        data = text.encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)
