"""Chapter 01 exercises: processes and the kernel interface. Fill in the four functions.

Read exercises/ch01/README.md first. Each function keeps its signature and docstring;
replace the ``raise NotImplementedError`` with your code, then grade::

    make grade CH=01              # every task
    make grade CH=01 TASK=1_3     # one task

    exit_code(status)                 task 1.1  wait status -> Docker's exit code
    libc_call(name, *args)            task 1.2  a libc call through ctypes, OSError on -1
    run_capture(argv)                 task 1.3  fork, exec, wait; stdout through a pipe
    run_forwarding(argv, signals)     task 1.4  run a program, pass signals on to it

See: fork(2), execve(2), wait(2), pipe(7), signal(7).
"""

from __future__ import annotations

import ctypes
import ctypes.util  # noqa: F401 - for task 1.2
import os  # noqa: F401
import signal
from collections.abc import Iterable, Sequence

__all__ = ["exit_code", "libc_call", "run_capture", "run_forwarding"]


def exit_code(status: int) -> int:
    """Turn a wait status into the exit code Docker reports. Like ``$?`` in a shell.

    ``os.waitpid`` returns a *status* that packs how the process ended: 512 means
    "exited with 2". A process killed by signal N has no exit code of its own;
    shells and Docker report 128 + N (137 for SIGKILL, 143 for SIGTERM).

    Hint: ``os.WIFEXITED``, ``os.WEXITSTATUS``, ``os.WIFSIGNALED``, ``os.WTERMSIG``.
    Questions: what does ``os.waitstatus_to_exitcode`` return for SIGKILL, and why is
    that not what Docker prints? What should happen for a process that was only stopped?

    Raises:
        ValueError: the status is not a final one (stopped or continued process).
    See: wait(2), bash(1) "EXIT STATUS".
    """
    # TODO(task 1.1): decode the wait status
    raise NotImplementedError("task 1.1: decode the wait status")


def libc_call(name: str, *args: int | bytes | None) -> int:
    """Call the libc function ``name`` with ``args`` and return its result; raise OSError if it fails.

    Python's ``os`` lacks some syscalls (``mount``, ``pivot_root`` ...), so minidocker
    calls libc through ctypes. A libc function reports failure by returning -1 and
    leaving the reason in ``errno``. Raise ``OSError(errno, message)``: Python then
    picks the subclass (``FileNotFoundError`` for ENOENT, ``PermissionError`` for
    EPERM ...). The message names the call and its arguments, e.g.
    ``mkdir(b'/no/such', 493): No such file or directory``.

    Hint: ``ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)``, then
    ``ctypes.get_errno()``; ``os.strerror``. minidocker/linux/syscalls.py does this
    for real (read ``_check`` there once yours works).
    Questions: why is ``use_errno=True`` needed: which errno does ``ctypes.get_errno()``
    read without it? Why load libc once, not on every call?

    Raises:
        OSError: the call returned -1 (the right subclass for its errno).
    See: errno(3), ctypes "Accessing values exported from dlls".
    """
    # TODO(task 1.2): call libc, raise OSError on -1
    raise NotImplementedError("task 1.2: call libc, raise OSError on -1")


def run_capture(argv: Sequence[str]) -> tuple[int, bytes]:
    """Run a program, wait for it, and return (exit code, what it wrote to stdout). Like ``docker run``.

    Without ``subprocess``: fork, connect the child's stdout to a pipe, exec the
    program (searching PATH), read everything, then wait. The exit code is Docker's
    (task 1.1). If the program cannot be started the child exits with 127 when it is
    not found and 126 when it cannot be executed, as a shell does.

    Hint: ``os.pipe``, ``os.fork``, ``os.dup2``, ``os.execvp``, ``os.read``,
    ``os.waitpid``, and your ``exit_code``. A forked child must end in ``os._exit``.
    Questions: what happens if you wait before reading and the program writes more
    than 64 KiB? Why must the parent close its copy of the pipe's write end before
    reading? What would an exception escaping the child do?

    See: fork(2), pipe(7), dup2(2), execvp(3), waitpid(2).
    """
    # TODO(task 1.3): fork, exec, read the pipe, wait
    raise NotImplementedError("task 1.3: fork, exec, read the pipe, wait")


def run_forwarding(
    argv: Sequence[str], signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)
) -> int:
    """Run a program and pass ``signals`` on to it until it ends; return its exit code.

    What a container's PID 1 (``docker run --init``) must do: ``docker stop`` sends
    SIGTERM to the container's first process, which has to hand it to the real
    program. While the program runs, each of ``signals`` sent to us is sent to it;
    we do not die of it. When it has ended, our previous handlers are back.

    Hint: ``signal.signal`` returns the previous handler; ``os.kill``; the exit code
    comes from your ``exit_code``. ``signal.pthread_sigmask`` closes the race below.
    Questions: what if a signal arrives after ``fork`` but before your handler is
    installed? Which handlers does the child keep after ``execvp``, and which signal
    mask? Why does ``os.waitpid`` not fail with EINTR when a handler ran (PEP 475)?

    See: signal(7), sigprocmask(2), kill(2), docker-stop(1).
    """
    # TODO(task 1.4): forward signals to the program until it ends
    raise NotImplementedError("task 1.4: forward signals to the program until it ends")
