"""Where minidocker keeps its state on the host.

Two roots, as Docker has ``/var/lib/docker`` and ``/run/docker``:

    /var/lib/minidocker   images and containers (survives a reboot)
    /run/minidocker       runtime state: mounts, pids, sockets (a tmpfs, gone at boot)

Setting ``MINIDOCKER_ROOT=/some/dir`` moves both, to ``/some/dir/lib`` and
``/some/dir/run``; the tests use it to work in a temporary directory.

Run by a user other than root (rootless, chapter 11), the defaults are that user's own, as
rootless Docker's: ``$XDG_DATA_HOME/minidocker`` (``~/.local/share/minidocker``) and
``$XDG_RUNTIME_DIR/minidocker`` (without XDG_RUNTIME_DIR, e.g. after su: ``run/`` beside the data).
"""

from __future__ import annotations

import os
from pathlib import Path

from minidocker.record import Frozen

__all__ = ["StateRoots", "state_roots"]


class StateRoots(Frozen):
    """The two state directories (``lib``, ``run``: Paths); every other path is derived from them (frozen)."""

    __slots__ = ()
    FIELDS = ("lib", "run")
    lib: Path
    run: Path

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
    if os.geteuid() != 0:
        return _rootless_roots(env if env is not None else os.environ)
    return StateRoots(lib=Path("/var/lib/minidocker"), run=Path("/run/minidocker"))


def _rootless_roots(env: dict[str, str] | os._Environ[str]) -> StateRoots:
    data = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    lib = Path(data) / "minidocker"
    runtime = env.get("XDG_RUNTIME_DIR")
    return StateRoots(lib=lib, run=Path(runtime) / "minidocker" if runtime else lib / "run")
