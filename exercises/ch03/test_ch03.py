"""Graded tests of chapter 03: namespaces.

Run: ``make grade CH=03`` (all tasks) or ``make grade CH=03 TASK=3_5`` (one task).
``tasks`` is your exercises/ch03/tasks.py (the reference with ``--solutions``).
Processes in new namespaces are forked children that wait on a pipe (``parked``)
and die with the test; anything that joins or creates namespaces for the caller
runs in a forked child (minidocker.forked.call_in_child), never in pytest itself.

Task 3.3 uses your ``run_capture`` of chapter 01 through ``previous("ch01")``; if
that one is not done yet, continue from the reference: MINIDOCKER_CHECKPOINT=ch01
(see exercises/README.md, "Stuck?").
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from minidocker.forked import call_in_child
from minidocker.linux import CloneFlag, MountFlag, mount, set_pdeathsig, sethostname, unshare

pytestmark = [pytest.mark.ch03, pytest.mark.root]


@dataclass
class Parked:
    pid: int
    _go: int
    _out: int

    def probe(self) -> object:
        """Run the parked child's probe function and return its result (once)."""
        os.write(self._go, b"g")
        data = _read_until_eof(self._out, 10)
        kind, value = pickle.loads(data)
        if kind == "error":
            raise AssertionError(f"the probe failed in the parked child: {value}")
        return value


def _read_until_eof(fd: int, timeout: float) -> bytes:
    chunks = []
    while True:
        ready, _, _ = select.select([fd], [], [], timeout)
        if not ready:
            raise AssertionError(f"a parked child did not answer within {timeout} s")
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


@contextmanager
def parked(flags: int = 0, setup: Callable[[], None] | None = None,
           probe: Callable[[], object] | None = None) -> Iterator[Parked]:
    """A forked child that called ``unshare(flags)`` and ``setup()``, then waits until the block ends.

    ``probe``, when given, runs in the child on ``Parked.probe()`` and its result comes back.
    """
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (ready_r, go_w, out_r):
                os.close(fd)
            set_pdeathsig(signal.SIGKILL)
            try:
                if flags:
                    unshare(flags)
                if setup is not None:
                    setup()
            except BaseException as err:
                os.write(ready_w, f"error: {type(err).__name__}: {err}".encode())
                raise
            os.write(ready_w, b"ok")
            os.close(ready_w)
            if os.read(go_r, 1) == b"g" and probe is not None:
                try:
                    payload = pickle.dumps(("ok", probe()))
                except BaseException as err:  # noqa: BLE001
                    payload = pickle.dumps(("error", f"{type(err).__name__}: {err}"))
                os.write(out_w, payload)
        finally:
            os._exit(0)
    for fd in (ready_w, go_r, out_w):
        os.close(fd)
    try:
        answer = _read_until_eof(ready_r, 10)
        if not answer.startswith(b"ok"):
            raise AssertionError(f"could not set up the test's child: {answer.decode()}")
        yield Parked(pid, go_w, out_r)
    finally:
        for fd in (ready_r, go_w, out_r):
            os.close(fd)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def _inodes(pid: int | str) -> dict[str, int]:
    """The expected answer, by another way: stat(2) of each /proc/PID/ns entry."""
    found = {}
    for name in os.listdir(f"/proc/{pid}/ns"):
        try:
            found[name] = os.stat(f"/proc/{pid}/ns/{name}").st_ino
        except FileNotFoundError:
            continue  # pid_for_children before the new PID namespace has its PID 1
    return found


# --- task 3.1: namespaces_of ----------------------------------------------------------------

@pytest.mark.task3_1
def test_namespaces_of_self_lists_every_entry_of_proc_ns(tasks):
    expected = _inodes("self")
    for arg in ("self", os.getpid()):
        found = tasks.namespaces_of(arg)
        assert found == expected, f"namespaces_of({arg!r}): expected {expected}, found {found}"
    assert tasks.namespaces_of() == expected, "namespaces_of() without argument should mean 'self'"


@pytest.mark.task3_1
@pytest.mark.parametrize("flags", [CloneFlag.CLONE_NEWUTS | CloneFlag.CLONE_NEWIPC, CloneFlag.CLONE_NEWPID],
                         ids=["uts+ipc", "pid-before-fork"])
def test_namespaces_of_another_process(tasks, flags):
    with parked(flags) as child:
        expected = _inodes(child.pid)
        found = tasks.namespaces_of(child.pid)
    assert found == expected, (f"namespaces_of({child.pid}) (a child that called unshare({flags!r})): "
                               f"expected {expected}, found {found}")


# --- task 3.2: namespace_diff ----------------------------------------------------------------

@pytest.mark.task3_2
@pytest.mark.parametrize("flags, expected", [
    (0, set()),
    (CloneFlag.CLONE_NEWUTS | CloneFlag.CLONE_NEWIPC, {"uts", "ipc"}),
    (CloneFlag.CLONE_NEWPID, {"pid_for_children"}),
    (CloneFlag.CLONE_NEWNET | CloneFlag.CLONE_NEWNS, {"net", "mnt"}),
], ids=["nothing", "uts+ipc", "pid-before-fork", "net+mnt"])
def test_namespace_diff_names_what_a_child_unshared(tasks, flags, expected):
    with parked(flags) as child:
        found = tasks.namespace_diff(os.getpid(), child.pid)
        swapped = tasks.namespace_diff(child.pid, os.getpid())
    where = f"namespace_diff(<pytest>, <a child that called unshare({CloneFlag(flags)!r})>)"
    assert found == expected, f"{where}: expected {expected or 'set()'}, found {found}"
    assert swapped == found, f"{where} with the arguments swapped: expected the same set, found {swapped}"


# --- task 3.3: run_isolated ----------------------------------------------------------------

def check_run_isolated(run_isolated: Callable[..., tuple[int, bytes]], hostname: str) -> None:
    """Call ``run_isolated`` in a forked child; expect PID 1, the hostname, the exit code, and the caller unchanged."""
    argv = ["sh", "-c", "echo $$; cat /proc/sys/kernel/hostname; exit 5"]

    def in_child() -> tuple[tuple[int, bytes], bool]:
        names = ("uts", "pid", "pid_for_children", "mnt")
        before = {n: os.readlink(f"/proc/self/ns/{n}") for n in names}
        result = run_isolated(argv, hostname)
        after = {n: os.readlink(f"/proc/self/ns/{n}") for n in names}
        return result, before == after

    ours = socket.gethostname()
    (code, out), caller_unchanged = call_in_child(in_child, timeout=20)
    where = f"run_isolated({argv!r}, {hostname!r})"
    assert (code, out) == (5, f"1\n{hostname}\n".encode()), (
        f"{where}: expected (5, b'1\\n{hostname}\\n') (exit code; PID 1; the hostname), found {(code, out)!r}")
    assert caller_unchanged, f"{where}: the caller's own namespaces changed: unshare in a forked child"
    assert socket.gethostname() == ours, f"{where}: changed the host's hostname to {socket.gethostname()!r}"


@pytest.mark.task3_3
def test_run_isolated_runs_as_pid_1_with_its_own_hostname(tasks):
    check_run_isolated(tasks.run_isolated, "md-box")


# --- task 3.4: map_ids ----------------------------------------------------------------

def _ids() -> tuple[int, int]:
    return os.getuid(), os.getgid()


def _read_map(pid: int, name: str) -> list[tuple[int, ...]]:
    with open(f"/proc/{pid}/{name}") as f:
        return [tuple(int(x) for x in line.split()) for line in f if line.strip()]


@pytest.mark.task3_4
@pytest.mark.parametrize("uid_ranges, gid_ranges, expected_ids", [
    ([(0, 0, 1)], [(0, 0, 1)], (0, 0)),
    ([(1000, 0, 1)], [(2000, 0, 1)], (1000, 2000)),
    ([(0, 100000, 65536), (65536, 0, 1)], [(0, 200000, 65536), (65536, 0, 1)], (65536, 65536)),
], ids=["root-to-root", "root-outside-is-1000-inside", "two-ranges"])
def test_map_ids_writes_both_maps(tasks, uid_ranges, gid_ranges, expected_ids):
    with parked(CloneFlag.CLONE_NEWUSER, probe=_ids) as child:
        tasks.map_ids(child.pid, uid_ranges, gid_ranges)
        found_maps = (_read_map(child.pid, "uid_map"), _read_map(child.pid, "gid_map"))
        found_ids = child.probe()
    where = f"map_ids(<child in a new user namespace>, {uid_ranges}, {gid_ranges})"
    assert found_maps == (uid_ranges, gid_ranges), (
        f"{where}: expected /proc/PID/uid_map and gid_map {(uid_ranges, gid_ranges)}, found {found_maps}")
    assert found_ids == expected_ids, (
        f"{where}: the child (root outside) expected to be (uid, gid) {expected_ids} inside, found {found_ids}")


@pytest.mark.task3_4
def test_map_ids_refuses_an_empty_range_and_writes_nothing(tasks):
    with parked(CloneFlag.CLONE_NEWUSER) as child:
        with pytest.raises(ValueError):
            tasks.map_ids(child.pid, [(0, 0, 1)], [(0, 0, 0)])
        found = (_read_map(child.pid, "uid_map"), _read_map(child.pid, "gid_map"))
    assert found == ([], []), f"map_ids with an invalid gid range: expected no map written, found {found}"


# --- task 3.5: join_namespace ----------------------------------------------------------------

def _join_and_look(join: Callable[[int, str], None], pid: int, name: str, look: Callable[[], object]) -> object:
    """In a forked child: join, look, and check that no file descriptor was left open."""

    def in_child() -> tuple[object, set[str]]:
        before = set(os.listdir("/proc/self/fd"))
        join(pid, name)
        leaked = set(os.listdir("/proc/self/fd")) - before
        return look(), leaked

    seen, leaked = call_in_child(in_child, timeout=20)
    assert not leaked, f"join_namespace({pid}, {name!r}) left file descriptors open: {sorted(leaked)}"
    return seen


@pytest.mark.task3_5
def test_join_namespace_uts_sees_the_targets_hostname(tasks):
    with parked(CloneFlag.CLONE_NEWUTS, setup=lambda: sethostname("md-target")) as target:
        found = _join_and_look(tasks.join_namespace, target.pid, "uts", socket.gethostname)
    assert found == "md-target", f"after join_namespace(<target>, 'uts'): expected hostname 'md-target', found {found!r}"


@pytest.mark.task3_5
def test_join_namespace_mnt_sees_the_targets_mounts(tasks, tmp_path):
    marker = tmp_path / "m" / "only-in-the-target"

    def setup() -> None:
        mount(None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE)
        mount("md-test", marker.parent, "tmpfs")
        marker.write_text("hello")

    marker.parent.mkdir()
    with parked(CloneFlag.CLONE_NEWNS, setup=setup) as target:
        assert not marker.exists(), "the test's mount leaked to the host"
        found = _join_and_look(tasks.join_namespace, target.pid, "mnt", marker.exists)
    assert found, f"after join_namespace(<target>, 'mnt'): expected to see {marker} on the target's tmpfs, found nothing"


@pytest.mark.task3_5
def test_join_namespace_net_sees_only_loopback(tasks):
    with parked(CloneFlag.CLONE_NEWNET) as target:
        found = _join_and_look(tasks.join_namespace, target.pid, "net", lambda: [n for _, n in socket.if_nameindex()])
    assert found == ["lo"], f"after join_namespace(<target in a new netns>, 'net'): expected interfaces ['lo'], found {found}"


@pytest.mark.task3_5
def test_join_namespace_rejects_an_unknown_name(tasks):
    with pytest.raises(KeyError):
        tasks.join_namespace(os.getpid(), "bogus")
