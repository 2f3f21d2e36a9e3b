"""Chapter 01: the container records survive crashes and races.

- a ``kill -9`` of a foreground ``run`` is reconciled by the next command that reads the state;
- ``rm -f`` racing a container's own ``--rm`` prints no raw errno;
- twenty concurrent ``run --name same`` make one container and nineteen clear errors;
- a PID in a record is trusted only with its start time (linux/procfs.py): a reused PID is
  never signalled or entered;
- a record that is not JSON is a clear error, and ``system prune`` removes it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.ch01, pytest.mark.root]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def md_background(state_root: Path, minidocker_command: list[str]):
    """Start ``minidocker ARGS...`` (the launcher) without waiting; returns the Popen."""
    def start(*args: str) -> subprocess.Popen:
        env = {**os.environ, "MINIDOCKER_ROOT": str(state_root)}
        return subprocess.Popen([*minidocker_command, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)

    return start


def records(state_root: Path) -> dict[str, dict]:
    """Every container record by name, read from disk (no minidocker code, so no reconciling)."""
    found = {}
    containers = state_root / "lib" / "containers"
    for path in containers.glob("*/container.json"):
        if not path.parent.name.startswith("."):
            data = json.loads(path.read_text())
            found[data["name"]] = data
    return found


def wait_running(state_root: Path, name: str, proc: subprocess.Popen, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = records(state_root).get(name)
        if record and record["status"] == "running":
            return record
        if proc.poll() is not None:
            raise AssertionError(f"run {name} ended early: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"container {name} did not start in {timeout} s")


def rootfs_mounted(state_root: Path, container_id: str) -> bool:
    target = f"{state_root}/lib/containers/{container_id}/rootfs"
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == target for line in f)


def cgroup_exists(state_root: Path, container_id: str) -> bool:
    from minidocker.cgroups import open_cgroup

    config = json.loads((state_root / "lib" / "containers" / container_id / "config.json").read_text())
    return open_cgroup(config["linux"]["cgroupsPath"]).exists()


def kill_run(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)


@pytest.mark.parametrize("remove", [True, False], ids=["rm", "kept"])
def test_a_killed_foreground_run_is_reconciled_by_the_next_ps(cli, state_root, md_background, remove):
    name = f"crashed-{'rm' if remove else 'kept'}"
    proc = md_background("run", *(["--rm"] if remove else []), "--name", name, "busybox", "sleep", "60")
    try:
        container_id = wait_running(state_root, name, proc)["id"]
        kill_run(proc)
        # what the SIGKILL left: the record says running, the overlay is mounted, the cgroup is there
        assert records(state_root)[name]["status"] == "running"
        assert rootfs_mounted(state_root, container_id) and cgroup_exists(state_root, container_id)
        listing = cli("ps", "-a")
        assert listing.code == 0, listing
        assert not rootfs_mounted(state_root, container_id), "the next ps left the overlay mounted"
        if remove:
            assert name not in listing.out and name not in records(state_root), listing
            assert cli("run", "--rm", "--name", name, "busybox", "true").code == 0, "its name is free again"
        else:
            line = next(line for line in listing.out.splitlines() if line.endswith(name))
            assert "Exited (137)" in line, listing
            assert not cgroup_exists(state_root, container_id)
    finally:
        proc.kill()
        proc.communicate()
        cli("rm", "-f", name)


def test_rm_f_racing_the_containers_own_rm_prints_no_errno(cli, state_root, md_background):
    for attempt in range(5):
        name = f"racer{attempt}"
        proc = md_background("run", "--rm", "--name", name, "busybox", "sleep", "60")
        try:
            wait_running(state_root, name, proc)
            removed = cli("rm", "-f", name)
            _, run_err = proc.communicate(timeout=20)
            assert removed.code == 0 and "Errno" not in removed.err, removed
            assert proc.returncode == 137 and "Errno" not in run_err, (proc.returncode, run_err)
        finally:
            proc.kill()
            proc.communicate()
            cli("rm", "-f", name)
    assert not records(state_root)


def test_delete_later_of_a_directory_someone_removed_is_not_an_error(tmp_path):
    from minidocker.engine.remove import delete_later

    directory = tmp_path / "containers" / ("a" * 64)
    directory.mkdir(parents=True)
    assert delete_later(directory) is True
    assert delete_later(directory) is False  # the second of two racing removals


def test_twenty_concurrent_runs_with_one_name_make_one_container(cli, state_root, md_background):
    procs = [md_background("run", "--name", "same", "busybox", "true") for _ in range(20)]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    try:
        winners = [err for code, err in results if code == 0]
        losers = [err for code, err in results if code != 0]
        assert len(winners) == 1, results
        assert len(losers) == 19 and all(
            'the container name "/same" is already in use' in err and "Traceback" not in err for err in losers), losers
        assert [line for line in cli("ps", "-a").out.splitlines() if line.endswith(" same")] != []
        assert list(records(state_root)) == ["same"]
    finally:
        cli("rm", "-f", "same")


@pytest.mark.parametrize("name", ["../../etc", "a/b", "-x", ".hidden", ""])
def test_a_container_name_docker_refuses_is_refused(cli, state_root, name):
    r = cli("run", "--rm", "--name", name, "busybox", "true")
    assert r.code == 125 and ("invalid container name" in r.err or "empty" in r.err), r
    assert not records(state_root)


def test_a_reused_pid_is_never_signalled_or_entered(cli, state_root):
    """A record naming a live PID with another start time: the PID was reused by a host process."""
    bystander = subprocess.Popen(["sleep", "60"])
    container_id = "f" * 64
    directory = state_root / "lib" / "containers" / container_id
    directory.mkdir(parents=True)
    record = {"id": container_id, "name": "stale", "image": "busybox:latest", "command": ["sleep", "60"],
              "created": time.time(), "status": "running", "pid": bystander.pid, "start_time": 1}
    (directory / "container.json").write_text(json.dumps(record))
    try:
        assert "exited" in next(line for line in cli("ps", "-a").out.splitlines() if line.endswith("stale")).lower()
        assert cli("exec", "stale", "true").code != 0
        connect = cli("network", "connect", "bridge", "stale")
        assert connect.code != 0 and "not running" in connect.err, connect
        assert cli("rm", "-f", "stale").code == 0
        time.sleep(0.2)
        assert bystander.poll() is None, "rm -f killed an unrelated process that reused the PID"
    finally:
        bystander.kill()
        bystander.wait()
        shutil.rmtree(directory, ignore_errors=True)


def test_a_broken_record_is_a_clear_error_and_prune_removes_it(cli, state_root):
    directory = state_root / "lib" / "containers" / ("e" * 64)
    directory.mkdir(parents=True)
    (directory / "container.json").write_text('{"id": "eee", "na')
    listing = cli("ps", "-a")
    assert listing.code == 125 and "failed to read container record" in listing.err, listing
    assert "hint:" in listing.err and "Traceback" not in listing.err, listing
    pruned = cli("system", "prune", "-f")
    assert pruned.code == 0 and "deleted broken record" in pruned.out, pruned
    assert not directory.exists()


# --- errors that escaped as tracebacks ---------------------------------------------------------

def test_an_export_that_fails_in_its_child_is_a_clear_error(cli):
    assert cli("run", "--name", "exported", "busybox", "true").code == 0
    try:
        r = cli("export", "-o", "/dev/full", "exported")
        assert r.code == 125 and "failed to export container" in r.err and "No space left on device" in r.err, r
        assert "Traceback" not in r.err, r
    finally:
        assert cli("rm", "exported").code == 0


def test_a_corrupt_network_record_is_a_clear_error_and_is_left_alone(cli, state_root):
    networks = state_root / "lib" / "networks"
    networks.mkdir(parents=True, exist_ok=True)
    broken = networks / "broken.json"
    broken.write_text("{not json")
    try:
        r = cli("network", "ls")
        assert r.code == 125 and f"failed to read {broken}: not valid JSON" in r.err and "Traceback" not in r.err, r
        assert broken.read_text() == "{not json"
    finally:
        broken.unlink()


def test_permission_denied_as_root_does_not_say_try_sudo(cli, tmp_path):
    assert os.geteuid() == 0
    immutable = tmp_path / "immutable.tar"
    immutable.write_bytes(b"")
    subprocess.run(["chattr", "+i", str(immutable)], check=True)  # EPERM even for root. See chattr(1)
    try:
        r = cli("save", "-o", str(immutable), "busybox")
    finally:
        subprocess.run(["chattr", "-i", str(immutable)], check=True)
    assert r.code == 125 and "Operation not permitted" in r.err, r
    assert "sudo" not in r.err, r


def test_refusals_of_bad_input_are_invalid_argument():
    """The API answers 400 for InvalidArgument, 500 for other errors: these are the caller's input."""
    from minidocker.cgroups.base import ControllerMissing
    from minidocker.errors import InvalidArgument
    from minidocker.storage.layer import UnsafeLayer

    assert issubclass(UnsafeLayer, InvalidArgument) and issubclass(ControllerMissing, InvalidArgument)
