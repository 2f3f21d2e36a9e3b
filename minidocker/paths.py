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

from minidocker.record import Frozen

TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["StateRoots", "run_root", "state_roots"]


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
    from pathlib import Path

    lib, run = _roots(env if env is not None else os.environ)
    return StateRoots(lib=Path(lib), run=Path(run))


def run_root(env: dict[str, str] | None = None) -> str:
    """``state_roots().run`` as a string, without importing pathlib (the daemon client's and the
    runtime's commands need only this one path, and pathlib's imports cost ~5 ms per command)."""
    return _roots(env if env is not None else os.environ)[1]


def _roots(env: dict[str, str] | os._Environ[str]) -> tuple[str, str]:
    """(lib, run): the one place that decides them."""
    base = env.get("MINIDOCKER_ROOT")
    if base:
        return os.path.join(base, "lib"), os.path.join(base, "run")
    if os.geteuid() != 0:   # rootless
        data = env.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        lib = os.path.join(data, "minidocker")
        runtime = env.get("XDG_RUNTIME_DIR")
        return lib, os.path.join(runtime, "minidocker") if runtime else os.path.join(lib, "run")
    return "/var/lib/minidocker", "/run/minidocker"
