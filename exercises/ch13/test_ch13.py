"""Graded tests of chapter 13: the daemon.

Run: ``make grade CH=13`` (all tasks) or ``make grade CH=13 TASK=13_2`` (one task).
``tasks`` is your exercises/ch13/tasks.py (the reference with ``--solutions``).
Nothing here needs root: the streams and logs are made the way minidockerd makes them
(its supervisor's frame format, its json-file writer), in memory and in a temporary file.
"""

from __future__ import annotations

import json
import struct

import pytest

pytestmark = [pytest.mark.ch13]


def _frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxI", stream, len(payload)) + payload


# -- task 13.1: the 8-byte frames -----------------------------------------------------------------

@pytest.mark.task13_1
def test_frames_split_into_stdout_and_stderr_in_order(tasks) -> None:
    stream = _frame(1, b"out 1\n") + _frame(2, b"err\n") + _frame(1, b"out 2\n") + _frame(1, b"")
    assert tasks.demux(stream) == (b"out 1\nout 2\n", b"err\n")
    assert tasks.demux(b"") == (b"", b"")


@pytest.mark.task13_1
def test_frames_as_the_supervisor_writes_them(tasks) -> None:
    from minidocker.engine.supervisor import _FRAME

    payload = bytes(range(256)) * 300  # larger than one read, binary
    assert tasks.demux(_FRAME.pack(2, len(payload)) + payload) == (b"", payload)


@pytest.mark.task13_1
@pytest.mark.parametrize("bad", [b"\x01\x00\x00", _frame(1, b"abc")[:-1], _frame(3, b"x")])
def test_a_truncated_frame_or_unknown_stream_is_a_value_error(tasks, bad) -> None:
    with pytest.raises(ValueError):
        tasks.demux(bad)


# -- task 13.2: a json-file log reader --------------------------------------------------------------

def _line(stream: str, text: str, time: str) -> str:
    return json.dumps({"log": text, "stream": stream, "time": time})


LOG = [
    _line("stdout", "one\n", "2026-12-01T10:00:00.000000001Z"),
    _line("stderr", "two\n", "2026-12-01T10:00:01.000000000Z"),
    '{"log":"half a line',
    _line("stdout", "three\n", "2026-12-01T10:00:02.500000000Z"),
]


@pytest.mark.task13_2
def test_every_entry_in_order_and_damaged_lines_skipped(tasks) -> None:
    assert tasks.read_json_log(LOG) == [("stdout", "one\n"), ("stderr", "two\n"), ("stdout", "three\n")]
    assert tasks.read_json_log(["", "[1, 2]", "null"]) == []


@pytest.mark.task13_2
def test_since_and_tail_like_docker_logs(tasks) -> None:
    assert tasks.read_json_log(LOG, since="2026-12-01T10:00:01.000000000Z") == [
        ("stderr", "two\n"), ("stdout", "three\n")]
    assert tasks.read_json_log(LOG, tail=1) == [("stdout", "three\n")]
    assert tasks.read_json_log(LOG, tail=2) == [("stderr", "two\n"), ("stdout", "three\n")]
    assert tasks.read_json_log(LOG, tail=0) == []
    assert tasks.read_json_log(LOG, since="2026-12-01T10:00:00.5Z", tail=1) == [("stdout", "three\n")]


@pytest.mark.task13_2
def test_reads_what_minidockerd_writes(tasks, tmp_path) -> None:
    from minidocker.engine.logfile import LogWriter

    path = tmp_path / "c-json.log"
    writer = LogWriter(str(path))
    writer.write("stdout", b"hello\nwor")
    writer.write("stderr", b"oops\n")
    writer.write("stdout", b"ld\n")
    writer.close()
    assert tasks.read_json_log(path.read_text().splitlines()) == [
        ("stdout", "hello\n"), ("stderr", "oops\n"), ("stdout", "world\n")]


# -- task 13.3: the state machine --------------------------------------------------------------------

@pytest.mark.task13_3
@pytest.mark.parametrize("state, event, policy, code, expected", [
    ("created", "start", "no", 0, "running"),
    ("running", "exit", "no", 3, "exited"),
    ("exited", "start", "no", 0, "running"),
    ("running", "exit", "always", 0, "restarting"),
    ("running", "exit", "unless-stopped", 0, "restarting"),
    ("running", "exit", "on-failure", 1, "restarting"),
    ("running", "exit", "on-failure", 0, "exited"),
    ("restarting", "start", "always", 0, "running"),
    ("running", "stop", "always", 0, "exited"),
    ("restarting", "stop", "always", 0, "exited"),
    ("created", "rm", "no", 0, "removed"),
    ("exited", "rm", "no", 0, "removed"),
    ("running", "rm-force", "no", 0, "removed"),
])
def test_allowed_transitions(tasks, state, event, policy, code, expected) -> None:
    assert tasks.next_state(state, event, policy, code) == expected


@pytest.mark.task13_3
@pytest.mark.parametrize("state, event", [
    ("running", "start"), ("created", "exit"), ("exited", "exit"), ("created", "stop"), ("exited", "stop"),
    ("running", "rm"), ("restarting", "rm"), ("removed", "start"), ("removed", "rm-force"), ("created", "jump"),
])
def test_refused_transitions_are_value_errors(tasks, state, event) -> None:
    with pytest.raises(ValueError):
        tasks.next_state(state, event)
