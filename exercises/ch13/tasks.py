"""Chapter 13 exercises: the daemon. Fill in the three functions.

Read exercises/ch13/README.md first; grade with ``make grade CH=13 [TASK=13_1]``.

    demux(stream)                            task 13.1  the attach/logs stream's 8-byte frames
    read_json_log(lines, since, tail)        task 13.2  a json-file log reader, like docker logs
    next_state(state, event, policy, code)   task 13.3  the container state machine, restarts included

See: the Docker Engine API reference ("Attach to a container": stream format), the json-file logging
driver's documentation, docker-container-run(1) "--restart".
"""

from __future__ import annotations

import json  # noqa: F401
import struct  # noqa: F401
from collections.abc import Iterable

__all__ = ["demux", "next_state", "read_json_log"]


def demux(stream: bytes) -> tuple[bytes, bytes]:
    """Split a multiplexed attach/logs stream into (stdout, stderr).

    Each frame is an 8-byte header ``[stream type: 1 byte][3 zero bytes][size: uint32 big-endian]``
    then ``size`` bytes of payload; stream type 1 is stdout, 2 stderr (0, stdin, is never sent
    by the daemon). Raise ``ValueError`` for a truncated frame (a header or payload cut short)
    or an unknown stream type.

    Hint: ``struct.unpack_from(">BxxxI", stream, offset)``.
    Questions: why does a stream *with* a tty carry no headers at all? What would a client
    print if it demultiplexed a tty stream by mistake?

    See: the Engine API reference, ContainerAttach "Stream format".
    """
    # TODO(task 13.1): split the frames into stdout and stderr
    raise NotImplementedError("task 13.1: split the frames into stdout and stderr")


def read_json_log(lines: Iterable[str], since: str | None = None, tail: int | None = None) -> list[tuple[str, str]]:
    """``docker logs [--since T] [--tail N]`` over the lines of a json-file log: [(stream, text)].

    Each line is ``{"log": "text\\n", "stream": "stdout"|"stderr", "time": "2026-12-01T22:30:01.123456789Z"}``.
    Keep entries whose time is at or after ``since`` (the same RFC 3339 format), then, with
    ``tail``, only the last ``tail`` of them (``tail=0``: none). Skip lines that are not
    such objects (a line being written when the daemon died): never raise for them.

    Hint: with nine fractional digits and "Z", two such timestamps compare as strings.
    Questions: why does --tail count entries across both streams together? Why does
    dockerd keep the stream name in every line instead of one file per stream?

    See: https://docs.docker.com/config/containers/logging/json-file/
    """
    # TODO(task 13.2): read, filter by since, keep the tail
    raise NotImplementedError("task 13.2: read, filter by since, keep the tail")


def next_state(state: str, event: str, policy: str = "no", exit_code: int = 0) -> str:
    """The container's state after ``event``, as dockerd decides it.

    States: ``created``, ``running``, ``exited``, ``restarting``, ``removed``. Events:
    ``start``, ``exit`` (its PID 1 ended with ``exit_code``), ``stop`` (docker stop/kill
    of a running container: it then exits), ``rm``, ``rm-force``.

    - start: created, exited or restarting -> running; running -> ValueError ("already running")
    - exit: running -> restarting when ``policy`` says so (``always``, ``unless-stopped``,
      ``on-failure`` with a non-zero code), else exited; from any other state -> ValueError
    - stop: running -> exited (no restart: stopped by hand); restarting -> exited; else ValueError
    - rm: created or exited -> removed; running or restarting -> ValueError (a conflict)
    - rm-force: anything but removed -> removed
    - anything on ``removed`` -> ValueError

    Hint: a dict of allowed (state, event) pairs, and one rule for the policy.
    Questions: why is a container that ``docker stop`` ended not restarted by ``always``
    until the daemon restarts? Which HTTP status does the API give each ValueError here?

    See: docker-container-run(1) "--restart", the Engine API's ContainerStart (304), ContainerDelete (409).
    """
    # TODO(task 13.3): the state after the event, or ValueError
    raise NotImplementedError("task 13.3: the state after the event, or ValueError")
