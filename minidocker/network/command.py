"""Run a firewall command (``nft``, ``iptables-restore`` ...) without importing subprocess.

A published port starts one such command when its container starts: ``subprocess``
and ``shutil`` would add ~5 ms of imports to that run, ``os.posix_spawn`` and a pipe
cost nothing. Output and errors share the pipe (the callers parse their own lines
and quote the rest in error messages).

See: posix_spawn(3), pipe(2).
"""

from __future__ import annotations

import os

__all__ = ["run", "which"]

_SBIN = ("/usr/sbin", "/sbin", "/usr/local/sbin")  # root's tools, also when PATH lacks them


def which(name: str) -> str | None:
    """The executable ``name`` on PATH (or in the sbin directories), like shutil.which."""
    for directory in os.environ.get("PATH", os.defpath).split(os.pathsep) + list(_SBIN):
        path = os.path.join(directory, name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return None


def run(argv: list[str], stdin: str | None = None) -> tuple[int, str]:
    """Run ``argv`` (its first item a path) with ``stdin``; return (exit status, stdout+stderr)."""
    out_r, out_w = os.pipe()
    in_r, in_w = os.pipe() if stdin is not None else (os.open(os.devnull, os.O_RDONLY), -1)
    try:
        actions = [(os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
                   (os.POSIX_SPAWN_DUP2, out_w, 2)]
        pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=actions)
    finally:
        os.close(in_r)
        os.close(out_w)
    if stdin is not None:  # a script of a few lines, read whole by the command before it answers
        data = stdin.encode()
        try:
            while data:
                data = data[os.write(in_w, data):]
        except BrokenPipeError:
            pass
        finally:
            os.close(in_w)
    with open(out_r, "rb") as pipe:
        output = pipe.read().decode(errors="replace")
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), output
