"""Where minidocker keeps its state on the host.

Two roots, as Docker has ``/var/lib/docker`` and ``/run/docker``:

    /var/lib/minidocker   images and containers (survives a reboot)
    /run/minidocker       runtime state: mounts, pids, sockets (a tmpfs, gone at boot)

Setting ``MINIDOCKER_ROOT=/some/dir`` moves both, to ``/some/dir/lib`` and
``/some/dir/run``; the tests use it to work in a temporary directory.
"""

from __future__ import annotations

import os
from collections import namedtuple
from pathlib import Path

__all__ = ["StateRoots", "state_roots"]


class StateRoots(namedtuple("StateRoots", ["lib", "run"])):
    """The two state directories (``lib``, ``run``: Paths); every other path is derived from them.

    A namedtuple, frozen like the dataclass it was, without the 7 ms of importing
    dataclasses on every command (see bench/README.md).
    """

    __slots__ = ()

    @property
    def images(self) -> Path:
        return self.lib / "images"

    @property
    def containers(self) -> Path:
        return self.lib / "containers"


def state_roots(env: dict[str, str] | None = None) -> StateRoots:
    """The state roots, honouring ``MINIDOCKER_ROOT``."""
    base = (env if env is not None else os.environ).get("MINIDOCKER_ROOT")
    if base:
        return StateRoots(lib=Path(base) / "lib", run=Path(base) / "run")
    return StateRoots(lib=Path("/var/lib/minidocker"), run=Path("/run/minidocker"))
