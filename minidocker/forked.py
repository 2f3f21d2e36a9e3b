"""Run a function in a forked child and get its result back. Chapter 01.

Namespace and root changes must never happen in a notebook kernel or any other
multithreaded process: unshare(2) would move one thread only, setns(2) into a mount
namespace and unshare(CLONE_NEWUSER) refuse a multithreaded caller (EINVAL), and
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

With ``on_message``, the child can also report while it works (a pull's progress)::

    def count(send):
        for i in range(3):
            send(i)                # on_message(i) runs in the parent, now
        return "done"

    call_in_child(count, on_message=print)     # prints 0 1 2, returns "done"

Every pickle on the pipe is a frame: 4 bytes of length, then the pickle.
See: fork(2), pipe(7), _exit(2).
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import threading
from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar
    T = TypeVar("T")

__all__ = ["ChildFailed", "call_in_child"]


class ChildFailed(RuntimeError):
    """The function raised in the child; the message holds the child's traceback.

    ``error`` is the child's exception itself when it could be pickled (else None), for
    callers that re-raise what the child raised.
    """

    def __init__(self, message: str, child_traceback: str, exit_code: int | None = None,
                 error: BaseException | None = None) -> None:
        super().__init__(f"{message}\n--- in the child ---\n{child_traceback}".rstrip())
        self.child_traceback = child_traceback
        self.exit_code = exit_code
        self.error = error

    def user_error(self, what: str) -> Exception:
        """What to raise for a user: the child's own MinidockerError, else "failed to <what>: <cause>".

        The cause is the child's OSError's strerror (``No space left on device``) or the
        first line of its message; the traceback stays in ``child_traceback``.
        """
        from minidocker.errors import MinidockerError

        if isinstance(self.error, MinidockerError):
            return self.error
        if isinstance(self.error, OSError) and self.error.strerror:
            cause = self.error.strerror
        else:
            cause = str(self).splitlines()[0]
        return MinidockerError(f"failed to {what}: {cause}")


def call_in_child(fn: Callable[..., T], *args: Any, timeout: float | None = 30,
                  on_message: Callable[[Any], None] | None = None, **kwargs: Any) -> T:
    """Call ``fn(*args, **kwargs)`` in a forked child and return what it returned.

    Args:
        timeout: seconds the child may stay silent before it is killed (None: no limit).
        on_message: if given, ``fn`` is called as ``fn(send, *args, **kwargs)``, and each
            ``send(obj)`` in the child calls ``on_message(obj)`` here. If ``on_message``
            raises, the pipe is closed (the child's next ``send`` fails, which ends it), the
            child is waited for, and the exception goes on.

    Raises:
        ChildFailed: ``fn`` raised, the child died, or it took longer than ``timeout`` seconds
            (then it is killed).
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_fd)
        _child(write_fd, fn, args, kwargs, messages=on_message is not None)
    os.close(write_fd)
    try:
        result = _receive(read_fd, timeout, pid, on_message)
    finally:
        os.close(read_fd)
        _, status = os.waitpid(pid, 0)
    if result is None:
        raise ChildFailed(f"the child died without an answer ({_describe(status)})", "",
                          os.waitstatus_to_exitcode(status))
    if result[0] == "ok":
        return result[1]
    raise ChildFailed(result[1], result[2], error=result[3])


def _child(write_fd: int, fn: Callable[..., Any], args: tuple, kwargs: dict, messages: bool) -> None:
    """The child's side: run ``fn``, send its frames, and leave without returning."""
    code = 0
    lock = threading.Lock()   # fn's own threads may send too

    def send(obj: Any) -> None:
        with lock:
            _write_frame(write_fd, ("message", obj))

    try:
        try:
            result = ("ok", fn(send, *args, **kwargs) if messages else fn(*args, **kwargs))
        except BaseException as err:  # noqa: BLE001 - everything goes back to the parent
            import traceback  # only on failure: it costs ~3 ms to import

            result = ("error", f"{type(err).__name__}: {err}", traceback.format_exc(), _picklable(err))
            code = 1
        with lock:
            _write_frame(write_fd, result)
    except BaseException:  # noqa: BLE001 - the parent stopped listening: just leave
        code = 1
    finally:
        os._exit(code)


def _picklable(err: BaseException) -> BaseException | None:
    try:
        pickle.loads(pickle.dumps(err))
    except Exception:  # noqa: BLE001 - any exception class may refuse
        return None
    return err


def _write_frame(fd: int, obj: Any) -> None:
    payload = pickle.dumps(obj)
    view = memoryview(struct.pack(">I", len(payload)) + payload)
    while view:
        view = view[os.write(fd, view):]


def _receive(fd: int, timeout: float | None, pid: int,
             on_message: Callable[[Any], None] | None) -> tuple | None:
    """Frames until the final one (returned), or None if the child died first."""
    buffer = b""
    while True:
        while len(buffer) >= 4:
            length = struct.unpack(">I", buffer[:4])[0]
            if len(buffer) < 4 + length:
                break
            frame, buffer = pickle.loads(buffer[4:4 + length]), buffer[4 + length:]
            if frame[0] != "message":
                return frame
            on_message(frame[1])
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            raise ChildFailed(f"the child did not answer within {timeout} s and was killed", "")
        chunk = os.read(fd, 65536)
        if not chunk:
            return None
        buffer += chunk


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.WEXITSTATUS(status)}"
