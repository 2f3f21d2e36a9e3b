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
import subprocess
import time
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


# --- task 3.1: enter_namespaces ---------------------------------------------------------------

NS_NAMES = ("uts", "ipc", "mnt", "pid_for_children", "pid", "net", "user", "cgroup")


def _ns_links() -> dict[str, str | None]:
    """/proc/self/ns/NAME -> 'uts:[4026531838]'; None for pid_for_children before its PID 1 exists."""
    links: dict[str, str | None] = {}
    for name in NS_NAMES:
        try:
            links[name] = os.readlink(f"/proc/self/ns/{name}")
        except FileNotFoundError:
            links[name] = None
    return links


def _container_around(enter: Callable[[str], None], hostname: str, probe_mount: str) -> dict[str, object]:
    """The grader's container, with your ``enter_namespaces`` as its first half.

    A forked "host" first gets a mount namespace of its own whose mounts are *shared*, as
    systemd makes them on most machines (this one's are private), cut off from the real host.
    In its child (the container's parent): your function, then a tmpfs mounted on
    ``probe_mount``, then PID 1 forked, which reports its PID, hostname and PID namespace.
    The "host" says whether the tmpfs reached it.
    """

    def parent() -> dict[str, object]:
        before = _ns_links()
        enter(hostname)
        after = _ns_links()
        mount("md-probe", probe_mount, "tmpfs")

        def pid1() -> tuple[int, str, str]:
            return os.getpid(), socket.gethostname(), os.readlink("/proc/self/ns/pid")

        pid, name, pid_ns = call_in_child(pid1, timeout=10)
        changed = sorted(n for n in NS_NAMES if before[n] != after[n])
        return {"changed": changed, "pid": pid, "hostname": name,
                "pid1 in the new namespace": pid_ns not in (before["pid"], after["pid"])}

    def host() -> dict[str, object]:
        unshare(CloneFlag.CLONE_NEWNS)
        mount(None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE)   # nothing goes back to the real host
        mount(None, "/", None, MountFlag.MS_REC | MountFlag.MS_SHARED)    # a peer group of our own
        seen = call_in_child(parent, timeout=20)
        seen["propagated"] = os.path.ismount(probe_mount)
        return seen

    return call_in_child(host, timeout=30)


@pytest.mark.task3_1
def test_enter_namespaces_makes_the_next_fork_pid_1_with_the_hostname(tasks, tmp_path):
    probe = tmp_path / "probe"
    probe.mkdir()
    ours = socket.gethostname()
    seen = _container_around(tasks.enter_namespaces, "md-box", str(probe))
    assert seen["changed"] == ["ipc", "mnt", "pid_for_children", "uts"], (
        f"expected new uts, ipc, mnt and pid (for children) namespaces and nothing else, "
        f"found these changed: {seen['changed']}")
    assert (seen["pid"], seen["hostname"]) == (1, "md-box"), (
        f"expected the next fork to be PID 1 with hostname md-box, found PID {seen['pid']}, "
        f"hostname {seen['hostname']!r}")
    assert seen["pid1 in the new namespace"], "PID 1 should be in the new PID namespace"
    assert not seen["propagated"] and not os.path.ismount(probe), (
        "a tmpfs mounted in the container after enter_namespaces appeared on the (shared) host: "
        "make every mount private (MS_REC | MS_PRIVATE on /) right after unshare")
    assert socket.gethostname() == ours, f"the host's hostname changed to {socket.gethostname()!r}"


def _queues() -> dict[str, str]:
    """System V message queues of this IPC namespace: msqid -> its line of /proc/sysvipc/msg."""
    with open("/proc/sysvipc/msg") as f:
        return {line.split()[1]: line for line in f.read().splitlines()[1:] if line.strip()}


@pytest.mark.task3_1
def test_enter_namespaces_gives_each_container_its_own_ipc(tasks):
    """A System V message queue made in one container is invisible on the host and in the next one."""

    def one() -> list[str]:
        tasks.enter_namespaces("md-ipc")

        def pid1() -> list[str]:
            subprocess.run(["ipcmk", "-Q"], check=True, capture_output=True)
            return sorted(_queues())

        return call_in_child(pid1, timeout=10)

    before = _queues()
    try:
        first = call_in_child(one, timeout=20)
        second = call_in_child(one, timeout=20)
        appeared = sorted(set(_queues()) - set(before))
    finally:
        for msqid in set(_queues()) - set(before):  # a missing CLONE_NEWIPC made them on the host
            subprocess.run(["ipcrm", "-q", msqid], capture_output=True)
    assert len(first) == 1 and len(second) == 1, (
        f"each container should see exactly its own message queue: first {first}, second {second}")
    assert not appeared, f"the containers' message queues appeared on the host: msqid {appeared}"


# --- task 3.2: run_as_init ---------------------------------------------------------------------

def _as_pid_1(init: Callable[[list[str]], int], argv: list[str], timeout: float = 20) -> tuple[int, float]:
    """Run ``init(argv)`` as PID 1 of a new PID namespace with its own /proc; (its result, seconds)."""

    def parent() -> int:
        unshare(CloneFlag.CLONE_NEWPID | CloneFlag.CLONE_NEWNS)
        mount(None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE)

        def pid1() -> int:
            mount("proc", "/proc", "proc", MountFlag.MS_NOSUID | MountFlag.MS_NODEV | MountFlag.MS_NOEXEC)
            return init(argv)

        return call_in_child(pid1, timeout=timeout)

    started = time.monotonic()
    code = call_in_child(parent, timeout=timeout + 5)
    return code, time.monotonic() - started


@pytest.mark.task3_2
@pytest.mark.parametrize("argv, expected", [(["sh", "-c", "exit 7"], 7), (["true"], 0),
                                            (["/no/such/program"], 127), (["sh", "-c", "kill -KILL $$"], 137)],
                         ids=["exit-7", "true", "missing-127", "killed-137"])
def test_run_as_init_returns_the_commands_exit_code(tasks, argv, expected):
    code, _ = _as_pid_1(tasks.run_as_init, argv)
    assert code == expected, f"run_as_init({argv!r}) as PID 1: expected {expected}, found {code}"


@pytest.mark.task3_2
def test_run_as_init_reaps_orphans_while_the_command_runs(tasks, tmp_path):
    report = tmp_path / "zombies"
    script = ("(sleep 0.1 &); (sleep 0.1 &); (sleep 0.1 &); sleep 1; "
              f"grep -l '^State:.Z' /proc/[0-9]*/status 2>/dev/null | wc -l > {report}; exit 3")
    code, _ = _as_pid_1(tasks.run_as_init, ["sh", "-c", script])
    assert code == 3, f"expected the script's exit code 3, found {code}"
    zombies = int(report.read_text())
    assert zombies == 0, (
        f"three orphans exited 0.1 s into the command and were re-parented to PID 1; 0.9 s later "
        f"{zombies} were still zombies: reap with waitpid(-1) while the command runs")


@pytest.mark.task3_2
def test_run_as_init_passes_sigterm_on_to_the_command(tasks):
    code, seconds = _as_pid_1(tasks.run_as_init, ["sh", "-c", "kill -TERM 1; sleep 3; exit 0"])
    assert code == 143, (
        f"the command sent SIGTERM to PID 1, which should pass it on (sh dies: 128 + 15 = 143); "
        f"found exit code {code} after {seconds:.1f} s")


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
