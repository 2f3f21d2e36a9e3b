"""OCI hooks: programs the runtime runs at fixed points of a container's life.

Each hook is ``{"path", "args", "env", "timeout"}``; it gets the container's state
(the JSON of ``runc state``) on its stdin. Where and when, as the spec says::

    prestart, createRuntime   in the runtime's namespaces, after the container's exist,
                              before pivot_root                 (create: the parent)
    createContainer           in the container's namespaces, before pivot_root (create: init)
    startContainer            in the container, before the user's process   (start: init)
    poststart                 in the runtime's namespaces, after the process started (start)
    poststop                  in the runtime's namespaces, after the container is deleted (delete)

A failing hook of the first four stops the container (an error naming the hook);
a failing poststart or poststop hook is a warning only, as in the spec.
See: https://github.com/opencontainers/runtime-spec/blob/main/config.md#posix-platform-hooks
"""

from __future__ import annotations

import sys

from minidocker.errors import ContainerError

__all__ = ["WARN_ONLY", "run_hooks"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

WARN_ONLY = ("poststart", "poststop")


def run_hooks(kind: str, hooks: Sequence[Mapping[str, Any]], state: Mapping[str, Any]) -> None:
    """Run the ``kind`` hooks in order, each with ``state`` as JSON on stdin.

    Raises:
        ContainerError: a hook failed, timed out or could not be run (except WARN_ONLY kinds).
    """
    if not hooks:
        return
    import subprocess  # only configs with hooks pay for it

    from minidocker.atomic import dumps

    data = dumps(dict(state)).encode()
    for hook in hooks:
        path = hook.get("path", "")
        args = list(hook.get("args") or [path])
        env = dict(item.split("=", 1) for item in hook.get("env", []) if "=" in item)
        timeout = hook.get("timeout")
        try:
            result = subprocess.run(args, executable=path, input=data, env=env, timeout=timeout,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
            problem = (None if result.returncode == 0 else
                       f"exited with status {result.returncode}: "
                       f"{result.stderr.decode(errors='replace').strip()}")
        except subprocess.TimeoutExpired:
            problem = f"timed out after {timeout} s"
        except OSError as err:
            problem = err.strerror or str(err)
        if problem is None:
            continue
        message = f"failed to run {kind} hook {path}: {problem}".rstrip(": ")
        if kind in WARN_ONLY:
            print(f"minidocker: warning: {message}", file=sys.stderr)
            continue
        raise ContainerError(message)
