"""``minidocker exec``: run a command in a running container (see runtime/exec.py for how)."""

from __future__ import annotations

from minidocker.engine.container import find_container
from minidocker.engine.run import parse_env
from minidocker.errors import InvalidArgument, InvalidState
from minidocker.image.runconfig import merge_env
from minidocker.paths import StateRoots, state_roots
from minidocker.runtime import ExitStatus, exec_in
from minidocker.runtime.spec import DEFAULT_PATH

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["exec_container"]


def exec_container(ref: str, command: Sequence[str], env: Sequence[str] = (), workdir: str = "/",
                   roots: StateRoots | None = None) -> ExitStatus:
    """Run ``command`` in the running container ``ref``. Like ``docker exec``."""
    roots = roots or state_roots()
    if not command:
        raise InvalidArgument("exec needs a command", hint="minidocker exec CONTAINER COMMAND [ARG...]")
    container = find_container(roots, ref)
    if not container.is_running():  # a reused PID is never entered (linux/procfs.py)
        raise InvalidState(f"cannot exec in container {container.id[:12]}: it is {container.status}",
                           hint=f"start it first: minidocker run ... (container {container.name})")
    merged = dict(item.split("=", 1) for item in merge_env(parse_env(env), [DEFAULT_PATH]))
    return exec_in(container.pid, list(command), merged, workdir, spec=_spec_of(container, roots))


def _spec_of(container: object, roots: StateRoots) -> dict | None:
    """The container's config.json: exec gets its user, capabilities and seccomp filter (chapter 11)."""
    import json

    try:
        path = container.directory(roots) / "config.json"  # type: ignore[attr-defined]
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
