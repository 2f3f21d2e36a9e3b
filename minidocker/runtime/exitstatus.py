"""Exit statuses, explained the way a shell and Docker report them.

A wait status is not an exit code: ``os.waitpid`` returns 512 for "exited with 2".
Docker (like a shell) reports a process killed by signal N as 128 + N, so 137 is
SIGKILL, 143 is SIGTERM; 125, 126 and 127 mean the container never ran its
command: minidocker failed, the command is not executable, or not found.
This module is the only place that computes those numbers.
See: wait(2), signal(7), bash(1) "EXIT STATUS".
"""

from __future__ import annotations

import os

from minidocker.record import Frozen

__all__ = ["EXIT_CANNOT_EXECUTE", "EXIT_ENGINE_ERROR", "EXIT_NOT_FOUND", "ExitStatus"]

EXIT_ENGINE_ERROR = 125
EXIT_CANNOT_EXECUTE = 126
EXIT_NOT_FOUND = 127


class ExitStatus(Frozen):
    """How a process ended: an exit ``code``, or the ``signal`` that killed it (and if ``oom_killed``).

    Frozen (a tuple), like the dataclass it was, without importing dataclasses (7 ms)
    on every command (see bench/README.md).
    """

    __slots__ = ()
    FIELDS = ("code", "signal", "oom_killed")
    DEFAULTS = {"code": None, "signal": None, "oom_killed": False}
    code: int | None
    signal: int | None
    oom_killed: bool

    @classmethod
    def from_wait_status(cls, status: int, oom_killed: bool = False) -> ExitStatus:
        """Decode the ``status`` of waitpid(2)."""
        if os.WIFSIGNALED(status):
            return cls(signal=os.WTERMSIG(status), oom_killed=oom_killed)
        return cls(code=os.WEXITSTATUS(status), oom_killed=oom_killed)

    @property
    def exit_code(self) -> int:
        """The code Docker reports: the command's own, or 128 + the signal number."""
        if self.signal is not None:
            return 128 + self.signal
        return self.code or 0

    def describe(self) -> str:
        """'exited with status 3', 'killed by SIGKILL (exit status 137)' ..."""
        if self.signal is None:
            after = " after the OOM killer killed one of its processes" if self.oom_killed else ""
            return f"exited with status {self.exit_code}{after}"
        import signal

        try:
            name = signal.Signals(self.signal).name
        except ValueError:
            name = f"signal {self.signal}"
        by = " by the OOM killer" if self.oom_killed else ""
        return f"killed by {name}{by} (exit status {self.exit_code})"
