"""Graded tests of chapter 04: resource limits with cgroups.

Run: ``make grade CH=04`` (all tasks) or ``make grade CH=04 TASK=4_3`` (one task).
``tasks`` is your exercises/ch04/tasks.py (the reference with ``--solutions``).
Tasks 4.1 and 4.2 are your runtime's cgroup and its teardown, on this machine's kernel:
the groups are where this kernel reads them (v1 or v2, found another way), the limits kill
and refuse for real, and nothing is left. Tasks 4.3 and 4.4 are checked twice: against a
stand-in directory tree in a temporary directory (so that the v2 case is graded on a
v1 machine too) and on the real kernel of this machine, where a forked child (never
pytest itself) is moved into the group and allocates more than its limit; the group
is removed at the end of the test.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from minidocker.cgroups import detect_mode
from minidocker.doctor import cgroup_layout

pytestmark = [pytest.mark.ch04]

MiB = 1 << 20
ROOT = "/sys/fs/cgroup"


# ------------------------------------------------------------------ tasks 4.1 and 4.2: your container's cgroup

def _expected_groups(name: str) -> list[str]:
    """Where this machine's kernel wants the groups: by another way than yours (minidocker's layout)."""
    layout = cgroup_layout()
    if detect_mode() == "unified":
        return [os.path.join(layout.v2_path, name)]
    return [os.path.join(layout.v1_paths["memory"], name), os.path.join(layout.v1_paths["pids"], name)]


def _new_name() -> str:
    if os.geteuid() != 0:
        pytest.skip("needs root: creating cgroups")
    return f"minidocker-ex04-{secrets.token_hex(4)}"


def _clean(groups: list[str]) -> None:
    """The test's own teardown, whatever your code did."""
    deadline = time.monotonic() + 5
    for group in groups:
        while os.path.isdir(group):
            for pid in Path(group, "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.rmdir(group)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)


def _in_groups(groups: list[str], work) -> int:
    """Fork a child, write its PID into each group, let it run ``work()``; return its wait status."""
    go_read, go_write = os.pipe()
    child = os.fork()
    if child == 0:
        code = 0
        try:
            os.close(go_write)
            os.read(go_read, 1)
            code = work()
        finally:
            os._exit(code or 0)
    os.close(go_read)
    try:
        for group in groups:
            Path(group, "cgroup.procs").write_text(str(child))
    finally:
        os.close(go_write)
        _, status = os.waitpid(child, 0)
    return status


def _allocate_64m() -> int:
    data = b"x" * (64 * MiB)  # written, so really charged to the group
    del data
    return 0


def _fork_eight() -> int:
    """Try 8 forks; exit with the number that succeeded."""
    children = []
    for _ in range(8):
        try:
            pid = os.fork()
        except BlockingIOError:  # EAGAIN: pids.max reached
            continue
        if pid == 0:
            time.sleep(0.5)
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    return len(children)


@pytest.mark.task4_1
@pytest.mark.root
def test_create_cgroup_writes_the_limits_where_this_kernel_reads_them(tasks):
    name = _new_name()
    expected = _expected_groups(name)
    try:
        groups = tasks.create_cgroup(name, memory=16 * MiB, pids=20)
        assert [os.path.realpath(g) for g in groups] == expected, (
            f"on this {detect_mode()} machine expected the groups {expected}, found {groups}")
        files = {f: Path(expected[0 if f.startswith("memory") else -1], f) for f in (
            ["memory.max", "pids.max"] if detect_mode() == "unified" else ["memory.limit_in_bytes", "pids.max"])}
        found = {f: path.read_text().strip() for f, path in files.items()}
        assert sorted(found.values()) == sorted([str(16 * MiB), "20"]), f"expected 16 MiB and 20 pids: {found}"
        swap = Path(expected[0], "memory.swap.max" if detect_mode() == "unified" else "memory.memsw.limit_in_bytes")
        if swap.exists():
            assert swap.read_text().strip() in ("0", str(16 * MiB)), f"{swap}: expected no swap, found {swap.read_text()}"
    finally:
        _clean(expected)


@pytest.mark.task4_1
@pytest.mark.root
def test_create_cgroup_memory_limit_kills_a_process_that_exceeds_it(tasks):
    limited, unlimited = _new_name(), _new_name()
    try:
        status = _in_groups(tasks.create_cgroup(limited, memory=16 * MiB), _allocate_64m)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
            f"a child allocating 64 MiB in a 16 MiB group should be killed by SIGKILL; wait status {status}")
        status = _in_groups(tasks.create_cgroup(unlimited), _allocate_64m)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (
            f"without a memory limit the same child should succeed; wait status {status}")
    finally:
        _clean(_expected_groups(limited) + _expected_groups(unlimited))


@pytest.mark.task4_1
@pytest.mark.root
def test_create_cgroup_pids_limit_refuses_forks(tasks):
    name = _new_name()
    try:
        status = _in_groups(tasks.create_cgroup(name, pids=4), _fork_eight)
        forked = os.WEXITSTATUS(status)
        assert os.WIFEXITED(status) and 1 <= forked <= 3, (
            f"with pids=4 (the child itself is one) at most 3 of 8 forks may succeed, found {forked}")
    finally:
        _clean(_expected_groups(name))


@pytest.mark.task4_1
@pytest.mark.root
def test_create_cgroup_removes_what_it_made_when_a_write_fails(tasks):
    name = _new_name()
    try:
        with pytest.raises(OSError):
            tasks.create_cgroup(name, memory=16 * MiB, pids=-5)   # the kernel refuses -5 (EINVAL)
        left = [g for g in _expected_groups(name) if os.path.isdir(g)]
        assert not left, f"pids.max refused -5: expected every group removed again, found {left}"
    finally:
        _clean(_expected_groups(name))


@pytest.mark.task4_2
@pytest.mark.root
def test_remove_cgroup_kills_a_forking_container_and_removes_every_group(tasks):
    name = _new_name()
    groups = _expected_groups(name)
    for group in groups:
        os.mkdir(group)
    go_read, go_write = os.pipe()
    # a "container" that forks all the time, so that a single pass over cgroup.procs misses some
    storm = subprocess.Popen(["sh", "-c", "read go; while :; do sleep 0.05 & sleep 0.05 & wait; done"],
                             stdin=go_read, stdout=subprocess.DEVNULL)
    os.close(go_read)
    reaper = threading.Thread(target=storm.wait, daemon=True)
    try:
        for group in groups:
            Path(group, "cgroup.procs").write_text(str(storm.pid))
        os.write(go_write, b"go\n")
        time.sleep(0.3)
        reaper.start()   # reaps the shell as soon as it dies, as a runtime's waiter would
        tasks.remove_cgroup(groups)
        left = [g for g in groups if os.path.isdir(g)]
        assert not left, f"expected every group removed, found {left}"
        reaper.join(5)
        assert storm.returncode == -signal.SIGKILL, f"expected the shell killed by SIGKILL, found {storm.returncode}"
    finally:
        os.close(go_write)
        _clean(groups)
        if storm.returncode is None:
            storm.kill()
            storm.wait()


@pytest.mark.task4_2
@pytest.mark.root
def test_remove_cgroup_accepts_empty_and_missing_groups(tasks):
    name = _new_name()
    groups = _expected_groups(name)
    os.mkdir(groups[0])
    try:
        tasks.remove_cgroup(groups)   # groups[0] empty, the others (v1) never made
        assert not os.path.isdir(groups[0]), f"expected the empty group {groups[0]} removed"
        tasks.remove_cgroup(groups)   # all gone now: nothing to do, no error
    finally:
        _clean(groups)


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
