"""A minimal init for ``run --init``: what tini does for Docker.

A process that is PID 1 of a PID namespace has two duties most programs ignore:
it must reap orphaned children (every orphan in the namespace is re-parented to it,
and unreaped ones stay zombies), and it gets no default signal actions: a SIGTERM
it has no handler for is simply dropped, so ``stop`` has to wait for SIGKILL.
This init forks the real command, forwards signals to it, reaps every child, and
exits with the command's status (128 + N if a signal N killed it, like tini).
See: pid_namespaces(7), "The namespace init process"; wait(2).
"""

from __future__ import annotations

import os
# The C half of the signal module: the same functions and numbers, without the enums that
# `import signal` builds (bench/README.md, "OCI runtime").
import _signal as signal

from minidocker.runtime.exitstatus import EXIT_NOT_FOUND, ExitStatus

__all__ = ["FORWARDED_SIGNALS", "reap_and_forward"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import NoReturn

FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT,
                     signal.SIGUSR1, signal.SIGUSR2, signal.SIGWINCH, signal.SIGCONT)


def reap_and_forward(start_command: Callable[[], NoReturn], close_fds: Sequence[int] = (),
                     terminal: bool = False) -> NoReturn:
    """Fork ``start_command`` (which execs), then reap and forward signals until it exits."""
    child = os.fork()
    if child == 0:
        try:
            os.setpgid(0, 0)  # its own process group, so job control works in a shell
            if terminal:
                signal.signal(signal.SIGTTOU, signal.SIG_IGN)
                os.tcsetpgrp(0, os.getpid())
            start_command()
        finally:
            os._exit(EXIT_NOT_FOUND)
    for fd in close_fds:
        os.close(fd)  # the exec-status pipe must close when the *command* execs, not when we exit
    for sig in FORWARDED_SIGNALS:
        signal.signal(sig, lambda signum, _frame: _forward(child, signum))
    while True:
        pid, status = os.wait()  # any child: orphans are ours to reap
        if pid == child:
            os._exit(ExitStatus.from_wait_status(status).exit_code)  # 128 + N for a signal, like tini


def _forward(child: int, signum: int) -> None:
    try:
        os.kill(child, signum)
    except ProcessLookupError:
        pass
