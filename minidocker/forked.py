"""Run a function in a forked child and get its result back. Chapter 01.

Namespace and root changes must never happen in a notebook kernel or any other
multithreaded process (platform notes §1): unshare(2) would move one thread only,
pivot_root(2) would re-root the caller. So experiments run in a fork::

    def look():
        unshare(CloneFlag.CLONE_NEWUTS)
        sethostname("inside")
        return socket.gethostname()

    call_in_child(look)            # -> "inside"; our own hostname is unchanged

The child sends the return value (pickled) or its exception (with the traceback as
text) through a pipe and leaves with ``os._exit``, so that nothing of the caller's
stack runs twice. Calls nest: a function that unshares CLONE_NEWPID and calls
``call_in_child`` again runs the inner function as PID 1 of the new namespace.
See: fork(2), pipe(7), _exit(2).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["ChildFailed", "call_in_child"]

T = TypeVar("T")


class ChildFailed(RuntimeError):
    """The function raised in the child; the message holds the child's traceback."""

    def __init__(self, message: str, child_traceback: str, exit_code: int | None = None) -> None:
        super().__init__(f"{message}\n--- in the child ---\n{child_traceback}".rstrip())
        self.child_traceback = child_traceback
        self.exit_code = exit_code


def call_in_child(fn: Callable[..., T], *args: Any, timeout: float = 30, **kwargs: Any) -> T:
    """Call ``fn(*args, **kwargs)`` in a forked child and return what it returned.

    Raises:
        ChildFailed: ``fn`` raised, the child died, or it took longer than ``timeout`` seconds
            (then it is killed).
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 0
        try:
            os.close(read_fd)
            try:
                payload = pickle.dumps(("ok", fn(*args, **kwargs)))
            except BaseException as err:  # noqa: BLE001 - everything goes back to the parent
                payload = pickle.dumps(("error", f"{type(err).__name__}: {err}", traceback.format_exc()))
                code = 1
            view = memoryview(payload)
            while view:
                view = view[os.write(write_fd, view):]
        finally:
            os._exit(code)
    os.close(write_fd)
    try:
        data = _read_all(read_fd, timeout, pid)
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    if not data:
        raise ChildFailed(f"the child died without an answer ({_describe(status)})", "",
                          os.waitstatus_to_exitcode(status))
    result = pickle.loads(data)
    if result[0] == "ok":
        return result[1]
    raise ChildFailed(result[1], result[2])


def _read_all(fd: int, timeout: float, pid: int) -> bytes:
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            raise ChildFailed(f"the child did not answer within {timeout} s and was killed", "")
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.WEXITSTATUS(status)}"
