"""Chapter 03: namespaces — each one shown isolated, user ids mapped, and entered again with setns."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from minidocker.forked import call_in_child
from minidocker.namespaces import NAMESPACES, clone_flags, format_id_map, namespaces_of

pytestmark = [pytest.mark.ch03, pytest.mark.root]


def test_the_container_has_its_own_hostname_and_ours_is_unchanged(cli):
    ours = os.uname().nodename
    r = cli("run", "--rm", "--hostname", "inside", "busybox", "hostname")
    assert r.out == "inside\n", r
    assert os.uname().nodename == ours


def test_the_default_hostname_is_the_short_container_id(cli):
    r = cli("run", "busybox", "hostname")
    try:
        containers = cli("ps", "-a", "-q").out.split()
        assert r.out.strip() in containers, r
    finally:
        cli("rm", r.out.strip())


def test_the_command_is_pid_1_and_sees_only_its_own_processes(cli):
    r = cli("run", "--rm", "busybox", "sh", "-c", "echo $$; sleep 0 & ps -o pid,comm")
    lines = r.out.splitlines()
    assert lines[0] == "1", r
    pids = [int(line.split()[0]) for line in lines[2:]]
    assert pids == sorted(pids) and max(pids) < 10, f"expected only the container's few low PIDs\n{r}"


def test_every_namespace_differs_from_the_hosts(cli):
    r = cli("run", "--rm", "busybox", "sh", "-c", "for n in pid mnt uts ipc net cgroup; do readlink /proc/1/ns/$n; done")
    assert r.code == 0, r
    inside = dict(line.split(":", 1) for line in r.out.split())
    assert set(inside) == {"pid", "mnt", "uts", "ipc", "net", "cgroup"}, r
    ours = namespaces_of("self")
    for oci_type, ns in NAMESPACES.items():
        if ns.proc_name in inside:
            assert f"[{ours[oci_type]}]" != inside[ns.proc_name], f"{oci_type} namespace is the host's\n{r}"


def test_ipc_objects_of_the_container_are_not_the_hosts(cli):
    made = subprocess.run(["ipcmk", "-Q"], capture_output=True, text=True, check=True)  # a host queue first
    queue_id = made.stdout.split()[-1]
    try:
        host_ids = [line.split()[1] for line in Path("/proc/sysvipc/msg").read_text().splitlines()[1:]]
        assert queue_id in host_ids, host_ids
        r = cli("run", "--rm", "busybox", "sh", "-c", "wc -l < /proc/sysvipc/msg")
        assert r.code == 0 and r.out.split() == ["1"], f"expected an empty queue table inside (header only)\n{r}"
    finally:
        subprocess.run(["ipcrm", "-q", queue_id], check=True)


def test_the_network_namespace_has_only_loopback_and_it_is_up(cli):
    r = cli("run", "--rm", "busybox", "sh", "-c", "ls /sys/class/net; ip -o link show lo; ping -c1 -W1 127.0.0.1 >/dev/null && echo ping-ok")
    assert r.out.split()[0] == "lo" and r.out.count("\n") >= 3, r
    assert "UP" in r.out and "ping-ok" in r.out, r


def test_the_cgroup_namespace_root_is_the_containers_cgroup(cli):
    r = cli("run", "--rm", "busybox", "cat", "/proc/self/cgroup")
    assert all(line.endswith(":/") for line in r.out.splitlines()), r


def test_clone_flags_skip_namespaces_that_are_joined_by_path():
    flags = clone_flags([{"type": "pid"}, {"type": "network", "path": "/proc/1/ns/net"}])
    assert flags == NAMESPACES["pid"].flag


def test_unknown_namespace_type_is_a_clear_error():
    from minidocker.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="unknown namespace type 'time'"):
        clone_flags([{"type": "time"}])


def test_format_id_map_refuses_negative_ids():
    from minidocker.errors import InvalidArgument

    assert format_id_map([{"containerID": 0, "hostID": 100000, "size": 65536}]) == "0 100000 65536\n"
    with pytest.raises(InvalidArgument):
        format_id_map([{"containerID": 0, "hostID": -1, "size": 1}])


@pytest.mark.userns
def test_root_in_a_user_namespace_is_an_unprivileged_id_on_the_host(state_root):
    from minidocker.engine.images import local_image
    from minidocker.image import ImageStore
    from minidocker.paths import state_roots
    from minidocker.runtime import default_spec, run

    image_rootfs = local_image(ImageStore(state_roots().images), "busybox").layers[0]
    work = Path(tempfile.mkdtemp(prefix="minidocker-userns-"))
    try:
        work.chmod(0o755)  # the mapped root (host uid 100000) must be able to reach its rootfs
        rootfs = work / "rootfs"
        shutil.copytree(image_rootfs, rootfs, symlinks=True)
        spec = default_spec(str(rootfs), ["sh", "-c", "cat /proc/self/uid_map; id -u; stat -c %u /proc/1/root/bin/busybox"],
                            namespaces=("user", "pid", "network", "ipc", "uts", "mount", "cgroup"))
        spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        spec["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]

        def run_it() -> tuple[int, str]:
            read_fd, write_fd = os.pipe()
            status = run(spec, stdio=(os.open(os.devnull, os.O_RDONLY), write_fd, write_fd))
            os.close(write_fd)
            with os.fdopen(read_fd) as f:
                return status.exit_code, f.read()

        code, output = call_in_child(run_it)
    finally:
        shutil.rmtree(work)
    lines = output.split()
    assert code == 0, output
    assert lines[:3] == ["0", "100000", "65536"], output
    assert lines[3] == "0", output  # root inside ...
    assert lines[4] == "65534", output  # ... and the host's root-owned files are "nobody" to it


def _start_background(state_root: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "MINIDOCKER_ROOT": str(state_root)}
    proc = subprocess.Popen([sys.executable, "-m", "minidocker", "run", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    first_line = proc.stdout.readline()
    if first_line != "ready\n":
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"container did not start: {first_line!r}\n{err}")
    return proc


def _stop(proc: subprocess.Popen, cli, name: str) -> None:
    from minidocker.engine.container import find_container
    from minidocker.paths import state_roots

    container = find_container(state_roots(), name)
    if container.pid:
        os.kill(container.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.communicate()
    assert cli("rm", name).code == 0


def test_exec_enters_the_namespaces_of_a_running_container(cli, state_root):
    proc = _start_background(state_root, "--name", "exec-target", "--hostname", "target", "busybox",
                             "sh", "-c", "echo ready; exec sleep 60")
    try:
        r = cli("exec", "exec-target", "sh", "-c", "hostname; ps -o pid,comm; cat /proc/1/cmdline")
        assert r.code == 0, r
        lines = r.out.splitlines()
        assert lines[0] == "target", r
        assert any(line.split() == ["1", "sleep"] for line in lines[1:]), r
    finally:
        _stop(proc, cli, "exec-target")


def test_exec_passes_exit_codes_and_env(cli, state_root):
    proc = _start_background(state_root, "--name", "exec-codes", "busybox", "sh", "-c", "echo ready; exec sleep 60")
    try:
        assert cli("exec", "exec-codes", "sh", "-c", "exit 4").code == 4
        r = cli("exec", "-e", "X=1", "exec-codes", "sh", "-c", "echo $X")
        assert r.out == "1\n", r
        missing = cli("exec", "exec-codes", "no-such-command")
        assert missing.code == 127 and "executable file not found" in missing.err, missing
    finally:
        _stop(proc, cli, "exec-codes")


def test_pid1_that_never_waits_leaves_zombies_and_init_does_not(cli, state_root):
    # Orphans are re-parented to PID 1; `sleep` as PID 1 never calls wait(2), so they stay zombies.
    # They exit 0.2 s later, when PID 1 is surely `sleep` already (the shell would reap them).
    spawn_orphan = "(sleep 0.2 &); (sleep 0.2 &);"
    without = _start_background(state_root, "--name", "no-init", "busybox", "sh", "-c",
                                f"{spawn_orphan} echo ready; exec sleep 60")
    with_init = _start_background(state_root, "--name", "with-init", "--init", "busybox", "sh", "-c",
                                  f"{spawn_orphan} echo ready; exec sleep 60")
    try:
        count = "sleep 0.6; ps -o stat | grep -c '^Z' || true"
        assert int(cli("exec", "no-init", "sh", "-c", count).out) >= 2
        assert int(cli("exec", "with-init", "sh", "-c", count).out) == 0
    finally:
        _stop(without, cli, "no-init")
        _stop(with_init, cli, "with-init")


def test_exec_in_a_stopped_container_is_a_clear_error(cli):
    assert cli("run", "--name", "stopped-one", "busybox", "true").code == 0
    try:
        r = cli("exec", "stopped-one", "true")
        assert r.code != 0 and "it is exited" in r.err, r
    finally:
        cli("rm", "stopped-one")


def test_exec_in_an_unknown_container_is_not_found(cli):
    r = cli("exec", "no-such-container", "true")
    assert r.code != 0 and "no such container: no-such-container" in r.err, r
