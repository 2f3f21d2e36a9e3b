"""The container's terminal, for ``run -t``: a pty whose slave is the container's stdio.

As runc does, the pty is created *inside* the container, from the ``/dev/pts``
(devpts, ``newinstance``) mounted in its rootfs, so ``tty`` in the container prints a
path that exists there. The master end is passed to the runtime over a unix socket
(SCM_RIGHTS) and the runtime copies bytes between it and the user's terminal, which
it puts in raw mode so that Ctrl-C, arrows and the like reach the container as bytes.
See: pty(7), pts(4), unix(7) "SCM_RIGHTS", termios(3).
"""

from __future__ import annotations

import array
import fcntl
import os
import select
import socket
import struct
import termios
import tty
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["copy_window_size", "open_pty", "raw_terminal", "receive_fd", "relay", "send_fd"]

_TIOCGPTN = 0x80045430
_TIOCSPTLCK = 0x40045431


def open_pty(devpts: str | os.PathLike[str]) -> tuple[int, int, str]:
    """Open a new pty on the devpts mounted at ``devpts``: (master fd, slave fd, slave name)."""
    master = os.open(Path(devpts) / "ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    fcntl.ioctl(master, _TIOCSPTLCK, struct.pack("i", 0))  # unlockpt(3)
    number = struct.unpack("I", fcntl.ioctl(master, _TIOCGPTN, struct.pack("I", 0)))[0]  # ptsname(3)
    slave = os.open(Path(devpts) / str(number), os.O_RDWR | os.O_NOCTTY)
    return master, slave, f"/dev/pts/{number}"


def send_fd(sock: socket.socket, fd: int) -> None:
    socket.send_fds(sock, [b"fd"], [fd])


def receive_fd(sock: socket.socket) -> int:
    _, fds, _, _ = socket.recv_fds(sock, 16, 1)
    if not fds:
        raise ConnectionError("the container sent no terminal")
    return fds[0]


def copy_window_size(from_fd: int, to_fd: int) -> None:
    """Give the pty ``to_fd`` the size of the terminal ``from_fd`` (rows, columns)."""
    size = array.array("H", [0, 0, 0, 0])
    try:
        fcntl.ioctl(from_fd, termios.TIOCGWINSZ, size, True)
    except OSError:
        return  # not a terminal
    fcntl.ioctl(to_fd, termios.TIOCSWINSZ, size)


@contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Put the terminal ``fd`` in raw mode for the duration, if it is one."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def relay(master: int, stdin_fd: int | None, stdout_fd: int) -> None:
    """Copy stdin -> master and master -> stdout until the container side closes the pty."""
    readers = [master] + ([stdin_fd] if stdin_fd is not None else [])
    while True:
        try:
            ready, _, _ = select.select(readers, [], [])
        except InterruptedError:
            continue
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every slave fd is closed, the container has exited
                return
            if not data:
                return
            _write_all(stdout_fd, data)
        if stdin_fd is not None and stdin_fd in ready:
            data = os.read(stdin_fd, 65536)
            if data:
                _write_all(master, data)
            else:
                readers.remove(stdin_fd)  # stdin closed: keep showing output


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
