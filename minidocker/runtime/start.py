"""``start``: let a created container's init exec the user's process. Like ``runc start``.

Any process may call it: it meets init at the exec fifo (see
:mod:`minidocker.runtime.create`). The fifo is opened non-blocking and polled, so
that an init that died meanwhile gives an error instead of a ``start`` that hangs
(a blocking open would wait for a writer for ever).
"""

from __future__ import annotations

import errno
import os
import select

from minidocker.errors import ContainerError, InvalidState
from minidocker.linux.procfs import is_alive
from minidocker.runtime.hooks import run_hooks
from minidocker.runtime.state import FIFO, State, load
from minidocker.runtime.status import Status

__all__ = ["start"]


def start(root: str, container_id: str) -> State:
    """Run the created container's process; return its state (``running``).

    Raises:
        NotFound: no such container.
        InvalidState: it is not ``created`` ("cannot start container X: it is running").
        ContainerError: its init died before it could be released.
    """
    container = load(root, container_id)
    if not container.status.can_start():
        raise InvalidState(f"cannot start container {container_id}: it is {container.status}",
                           hint="only a created container can be started; create a new one")
    path = os.path.join(root, container_id, FIFO)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise InvalidState(f"cannot start container {container_id}: it was started already") from None
    try:
        _release(fd, container)
    finally:
        os.close(fd)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    container.status = Status.RUNNING
    run_hooks("poststart", container.config_hooks("poststart"), container.to_oci())
    return container


def _release(fd: int, container: State) -> None:
    """Wait for init's byte on the fifo, checking every 100 ms that init is still there."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while True:
        if poller.poll(100):
            try:
                data = os.read(fd, 1)
            except OSError as err:
                if err.errno == errno.EAGAIN:
                    continue
                raise
            if data:
                return
            # EOF: the writer came and went without a byte: another start got it.
            raise InvalidState(f"cannot start container {container.id}: it was started already")
        if not is_alive(container.pid, container.start_time):  # type: ignore[arg-type]
            raise ContainerError(f"failed to start container {container.id}: its init process exited")
