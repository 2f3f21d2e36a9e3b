"""Graded tests of chapter 04: resource limits with cgroups.

Run: ``make grade CH=04`` (all tasks) or ``make grade CH=04 TASK=4_3`` (one task).
``tasks`` is your exercises/ch04/tasks.py (the reference with ``--solutions``).
Tasks 4.1 and 4.2 are pure functions. Tasks 4.3 and 4.4 are checked twice: against a
stand-in directory tree in a temporary directory (so that the v2 case is graded on a
v1 machine too) and on the real kernel of this machine, where a forked child (never
pytest itself) is moved into the group and allocates more than its limit; the group
is removed at the end of the test.
"""

from __future__ import annotations

import os
import secrets
import signal
from pathlib import Path

import pytest

from minidocker.cgroups import detect_mode

pytestmark = [pytest.mark.ch04]

MiB = 1 << 20
ROOT = "/sys/fs/cgroup"


# ------------------------------------------------------------------ task 4.1

@pytest.mark.task4_1
@pytest.mark.parametrize("text,expected", [
    ("64m", 64 * MiB), ("64M", 64 * MiB), ("1g", 1 << 30), ("512k", 512 << 10), ("100", 100),
    ("1.5g", 3 << 29), ("64mb", 64 * MiB), (" 2t ", 2 << 40), ("0.5k", 512),
])
def test_parse_size_reads_docker_sizes(tasks, text, expected):
    found = tasks.parse_size(text)
    assert found == expected, f"parse_size({text!r}): expected {expected}, found {found}"


@pytest.mark.task4_1
@pytest.mark.parametrize("text", ["64q", "-1", "", "m", "1..5g", "0x40", "1e6", "sixty"])
def test_parse_size_rejects_what_is_not_a_size(tasks, text):
    with pytest.raises(ValueError):
        tasks.parse_size(text)


# ------------------------------------------------------------------ task 4.2

@pytest.mark.task4_2
def test_limit_files_for_cgroup_v1(tasks):
    expected = {"memory/GROUP/memory.limit_in_bytes": str(64 * MiB), "cpu/GROUP/cpu.cfs_period_us": "100000",
                "cpu/GROUP/cpu.cfs_quota_us": "50000", "pids/GROUP/pids.max": "20"}
    assert tasks.limit_files(1, 64 * MiB, 0.5, 20) == expected


@pytest.mark.task4_2
def test_limit_files_for_cgroup_v2(tasks):
    expected = {"GROUP/memory.max": str(64 * MiB), "GROUP/cpu.max": "150000 100000", "GROUP/pids.max": "20"}
    assert tasks.limit_files(2, 64 * MiB, 1.5, 20) == expected


@pytest.mark.task4_2
def test_limit_files_rejects_an_unknown_version(tasks):
    with pytest.raises(ValueError):
        tasks.limit_files(3, 64 * MiB, 1, 20)


# ------------------------------------------------------------------ tasks 4.3 and 4.4: stand-in trees

@pytest.mark.task4_3
def test_create_limited_group_v2_enables_memory_first(tasks, tmp_path):
    (tmp_path / "cgroup.subtree_control").write_text("cpu\n")
    directory = tasks.create_limited_group(str(tmp_path), "box", 2, 32 * MiB)
    assert Path(directory) == tmp_path / "box"
    assert "+memory" in (tmp_path / "cgroup.subtree_control").read_text()
    assert (tmp_path / "box" / "memory.max").read_text() == str(32 * MiB)


@pytest.mark.task4_3
def test_create_limited_group_v2_leaves_an_enabled_controller_alone(tasks, tmp_path):
    (tmp_path / "cgroup.subtree_control").write_text("cpu memory pids\n")
    tasks.create_limited_group(str(tmp_path), "box", 2, 32 * MiB)
    assert (tmp_path / "cgroup.subtree_control").read_text() == "cpu memory pids\n"


@pytest.mark.task4_3
def test_create_limited_group_v1_uses_the_memory_hierarchy(tasks, tmp_path):
    (tmp_path / "memory").mkdir()
    directory = tasks.create_limited_group(str(tmp_path), "box", 1, 32 * MiB)
    assert Path(directory) == tmp_path / "memory" / "box"
    assert (tmp_path / "memory" / "box" / "memory.limit_in_bytes").read_text() == str(32 * MiB)


@pytest.mark.task4_4
def test_oom_report_v2(tasks, tmp_path):
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 57\noom 2\noom_kill 2\noom_group_kill 0\n")
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "memory.peak").write_text("33554432\n")
    assert tasks.oom_report(str(tmp_path), 2) == {"oom_kills": 2, "limit": None, "peak": 32 * MiB}
    (tmp_path / "memory.peak").unlink()  # a kernel before 5.19
    (tmp_path / "memory.max").write_text("16777216\n")
    assert tasks.oom_report(str(tmp_path), 2) == {"oom_kills": 2, "limit": 16 * MiB, "peak": None}


@pytest.mark.task4_4
def test_oom_report_v1(tasks, tmp_path):
    (tmp_path / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
    (tmp_path / "memory.limit_in_bytes").write_text("16777216\n")
    (tmp_path / "memory.max_usage_in_bytes").write_text("16777216\n")
    assert tasks.oom_report(str(tmp_path), 1) == {"oom_kills": 1, "limit": 16 * MiB, "peak": 16 * MiB}


# ------------------------------------------------------------------ tasks 4.3 and 4.4: the real kernel

def _host_version() -> int:
    if os.geteuid() != 0:
        pytest.skip("needs root: creating cgroups")
    mode = detect_mode()
    if mode == "unified":
        return 2
    if not os.path.isdir(f"{ROOT}/memory"):
        pytest.skip("no memory controller on this machine")
    return 1


def _overfill(directory: str, megabytes: int) -> int:
    """Fork a child, move it into ``directory``, let it allocate; return its wait status."""
    go_read, go_write = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(go_write)
            os.read(go_read, 1)
            data = b"x" * (megabytes * MiB)  # written, so really charged to the group
            del data
        finally:
            os._exit(0)
    os.close(go_read)
    try:
        with open(os.path.join(directory, "cgroup.procs"), "w") as f:
            f.write(str(child))
    finally:
        os.close(go_write)  # the child starts allocating, inside the group (or dies with us)
        _, status = os.waitpid(child, 0)
    return status


def _remove(directory: str) -> None:
    if os.path.isdir(directory):
        os.rmdir(directory)


@pytest.mark.task4_3
def test_the_limit_holds_on_this_kernel(tasks):
    version = _host_version()
    name = f"minidocker-ex04-{secrets.token_hex(4)}"
    directory = os.path.join(ROOT, "memory", name) if version == 1 else os.path.join(ROOT, name)
    try:
        created = tasks.create_limited_group(ROOT, name, version, 16 * MiB)
        assert os.path.realpath(created) == directory, f"expected the group at {directory}, found {created}"
        status = _overfill(directory, 64)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
            f"a child allocating 64 MiB in a 16 MiB group should be killed by SIGKILL; wait status {status}")
    finally:
        _remove(directory)


@pytest.mark.task4_4
def test_oom_report_after_a_real_oom_kill(tasks):
    version = _host_version()
    name = f"minidocker-ex04-{secrets.token_hex(4)}"
    directory = os.path.join(ROOT, "memory", name) if version == 1 else os.path.join(ROOT, name)
    os.mkdir(directory)
    try:
        with open(os.path.join(directory, "memory.limit_in_bytes" if version == 1 else "memory.max"), "w") as f:
            f.write(str(16 * MiB))
        status = _overfill(directory, 64)
        assert os.WIFSIGNALED(status), f"the child was expected to be OOM-killed; wait status {status}"
        report = tasks.oom_report(directory, version)
        assert report["oom_kills"] == 1 and report["limit"] == 16 * MiB, report
        assert report["peak"] is None or 12 * MiB <= report["peak"] <= 16 * MiB, report
    finally:
        _remove(directory)
