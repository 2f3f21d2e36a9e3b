"""The daemon's configuration: ``/etc/minidocker/daemon.json`` and the flags of ``minidockerd``.

Like dockerd's ``/etc/docker/daemon.json``: the keys are the long flag names, an
unknown key is refused by name (a typo must not be ignored silently), and a setting
given both as a flag and in the file is refused too, with both values::

    {"debug": true, "hosts": ["unix:///run/minidocker/minidocker.sock"],
     "log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"},
     "live-restore": true, "default-network": "bridge",
     "registry-mirrors": ["http://127.0.0.1:5000"], "insecure-registries": ["10.0.0.5:5000"]}

With ``MINIDOCKER_ROOT`` set (the tests), the file is ``$MINIDOCKER_ROOT/daemon.json``
and the socket ``$MINIDOCKER_ROOT/run/minidocker.sock``: never the host's.
See: dockerd(8) "Daemon configuration file".
"""

from __future__ import annotations

import json
import os

from minidocker.errors import InvalidArgument
from minidocker.paths import StateRoots, state_roots
from minidocker.record import Record

__all__ = ["DaemonConfig", "KEYS", "LOG_DRIVERS", "default_config_file", "default_socket", "load_config"]

LOG_DRIVERS = ("json-file", "none")
LOG_OPTS = ("max-size", "max-file")
# key in daemon.json -> (attribute, JSON type, default)
KEYS: dict[str, tuple[str, type, object]] = {
    "debug": ("debug", bool, False),
    "hosts": ("hosts", list, None),
    "pidfile": ("pidfile", str, None),
    "root": ("root", str, None),
    "group": ("group", str, "minidocker"),
    "log-level": ("log_level", str, "info"),
    "log-driver": ("log_driver", str, "json-file"),
    "log-opts": ("log_opts", dict, None),
    "live-restore": ("live_restore", bool, True),
    "default-network": ("default_network", str, "bridge"),
    "registry-mirrors": ("registry_mirrors", list, None),
    "insecure-registries": ("insecure_registries", list, None),
    # TCP hosts (tcp://HOST:PORT) only with mutual TLS, as dockerd's --tlsverify: the four together
    "tlsverify": ("tlsverify", bool, False),
    "tlscacert": ("tlscacert", str, None),
    "tlscert": ("tlscert", str, None),
    "tlskey": ("tlskey", str, None),
}
_LEVELS = ("debug", "info", "warn", "error", "fatal")


class DaemonConfig(Record):
    """The daemon's settings, file and flags merged (attributes: the keys with ``_`` for ``-``)."""

    FIELDS = tuple(attr for attr, _, _ in KEYS.values())

    def __init__(self, **values) -> None:
        for attr, kind, default in KEYS.values():
            value = values.get(attr, default)
            if value is None and kind in (list, dict):
                value = kind()
            setattr(self, attr, value)

    @property
    def roots(self) -> StateRoots:
        """The state roots: ``root`` moves both, as MINIDOCKER_ROOT does."""
        return state_roots({"MINIDOCKER_ROOT": self.root} if self.root else None)

    @property
    def socket(self) -> str:
        """The unix socket's path, from the first ``unix://`` host, else the default under the roots.

        The unix socket is always served, TCP hosts or not: local tools find the daemon there.
        """
        unix = [h for h in self.hosts if not h.startswith("tcp://")]
        return parse_host(unix[0]) if unix else str(self.roots.run / "minidocker.sock")

    @property
    def tcp_hosts(self) -> list[tuple[str, int]]:
        """(address, port) of each ``tcp://`` host; checked by :func:`load_config` to come with TLS."""
        return [parse_tcp_host(h) for h in self.hosts if h.startswith("tcp://")]


def default_socket(env: dict[str, str] | None = None) -> str:
    """``/run/minidocker/minidocker.sock``, or under ``$MINIDOCKER_ROOT/run``."""
    return str(state_roots(env).run / "minidocker.sock")


def default_config_file(env: dict[str, str] | None = None) -> str:
    base = (env if env is not None else os.environ).get("MINIDOCKER_ROOT")
    return os.path.join(base, "daemon.json") if base else "/etc/minidocker/daemon.json"


def parse_tcp_host(host: str) -> tuple[str, int]:
    """``tcp://127.0.0.1:2376`` to ("127.0.0.1", 2376); ``[::1]:2376`` too. The port is required."""
    address, sep, port = host[len("tcp://"):].rstrip("/").rpartition(":")
    address = address.strip("[]")
    if not sep or not address or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"invalid host {host!r}: expected tcp://ADDRESS:PORT")
    return address, int(port)


def parse_host(host: str) -> str:
    """``unix:///path`` (or a bare path) to the path; any other scheme is refused (TCP:
    :func:`parse_tcp_host`)."""
    if host.startswith("unix://"):
        path = host[len("unix://"):]
    elif host.startswith("/"):
        path = host
    else:
        raise InvalidArgument(f"invalid host {host!r}: only unix:///path sockets are supported",
                              hint="minidockerd listens on a unix socket only, e.g. -H unix:///tmp/md.sock")
    if not path.startswith("/"):
        raise InvalidArgument(f"invalid host {host!r}: the socket path must be absolute")
    if len(path.encode()) > 107:
        raise InvalidArgument(f"invalid host {host!r}: a unix socket path has at most 107 bytes")
    return path


def _check(key: str, value: object, where: str) -> object:
    attr, kind, _ = KEYS[key]
    if kind is list and isinstance(value, str) and key == "hosts":
        value = [value]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidArgument(f"failed to load {where}: {key} must be a {_TYPE_NAMES[kind]}, "
                              f"not {json.dumps(value)}")
    if kind is list and not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"failed to load {where}: {key} must be a list of strings")
    if key == "hosts":
        for host in value:
            parse_tcp_host(host) if host.startswith("tcp://") else parse_host(host)
    if key == "log-driver" and value not in LOG_DRIVERS:
        raise InvalidArgument(f"failed to load {where}: log-driver {value!r} is not supported",
                              hint=f"use one of {', '.join(LOG_DRIVERS)}")
    if key == "log-opts":
        unknown = sorted(set(value) - set(LOG_OPTS))
        if unknown:
            raise InvalidArgument(f"failed to load {where}: unknown log opt '{unknown[0]}' for json-file "
                                  "log driver")
        if not all(isinstance(v, str) for v in value.values()):
            raise InvalidArgument(f"failed to load {where}: log-opts values must be strings")
    if key == "log-level" and value not in _LEVELS:
        raise InvalidArgument(f"failed to load {where}: log-level {value!r} is not one of "
                              f"{', '.join(_LEVELS)}")
    return value


_TYPE_NAMES = {bool: "boolean", list: "list", dict: "object", str: "string", int: "number"}


def load_config(path: str | None = None, flags: dict[str, object] | None = None) -> DaemonConfig:
    """The file (if it exists; ``path`` given explicitly must exist) merged with ``flags``.

    ``flags`` maps daemon.json keys to values given on the command line (only those given).

    Raises:
        InvalidArgument: not JSON, not an object, an unknown key (named), a wrong type, or
            a key given both as a flag and in the file.
    """
    explicit = path is not None
    path = path or default_config_file()
    values: dict[str, object] = {}
    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        if explicit:
            raise InvalidArgument(f"failed to load {path}: no such file") from None
        text = None
    if text is not None:
        try:
            document = json.loads(text or b"{}")
        except ValueError as err:
            raise InvalidArgument(f"failed to load {path}: invalid JSON: {err}") from None
        if not isinstance(document, dict):
            raise InvalidArgument(f"failed to load {path}: the file must hold a JSON object")
        unknown = sorted(set(document) - set(KEYS))
        if unknown:
            raise InvalidArgument(f"failed to load {path}: the following directives don't match any "
                                  f"configuration option: {', '.join(unknown)}")
        for key, value in document.items():
            values[KEYS[key][0]] = _check(key, value, path)
    conflicts = []
    for key, value in (flags or {}).items():
        attr = KEYS[key][0]
        if attr in values and values[attr] != value:
            conflicts.append(f"{key}: (from flag: {value}, from file: {values[attr]})")
        values[attr] = _check(key, value, "the command line")
    if conflicts:
        raise InvalidArgument(f"failed to load {path}: the following directives are specified both as a flag "
                              f"and in the configuration file: {', '.join(conflicts)}")
    config = DaemonConfig(**values)
    _check_tls(config)
    return config


def _check_tls(config: DaemonConfig) -> None:
    """A TCP host needs --tlsverify and all three files (mutual TLS); plain TCP is refused, as it is root."""
    tcp = [h for h in config.hosts if h.startswith("tcp://")]
    if not tcp:
        return
    if not config.tlsverify:
        raise InvalidArgument(
            f"invalid host {tcp[0]!r}: only unix:///path sockets are supported without --tlsverify: "
            "plain TCP gives root on this host to anyone who can connect",
            hint="add --tlsverify --tlscacert CA.pem --tlscert CERT.pem --tlskey KEY.pem (clients then "
                 "need a certificate the CA signed), or listen on a unix socket, "
                 "e.g. -H unix:///tmp/md.sock")
    missing = [name for name in ("tlscacert", "tlscert", "tlskey") if not getattr(config, name)]
    if missing:
        raise InvalidArgument(f"--tlsverify needs --{' --'.join(missing)}")
    for name in ("tlscacert", "tlscert", "tlskey"):
        if not os.path.isfile(getattr(config, name)):
            raise InvalidArgument(f"failed to load --{name} {getattr(config, name)}: no such file")
