"""Chapter 04: resource limits with cgroups.

Three kinds of tests:
- units: sizes, CPU conversions, the OCI resources, the engine's flag checks, and the
  v1/v2 drivers' file writes against stand-in directory trees (no root needed);
- the real kernel, driver-agnostic: OOM kill, pids limit, CPU throttling, stats, exec,
  cleanup. On these hybrid machines they run the v1 driver; test_ch04_vm.py boots a
  qemu guest with pure cgroup v2 and runs this same module there (MINIDOCKER_EXPECT_CGROUP=2);
- cgroup v2 core semantics on this host's controller-less v2 mount.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import missing_feature
from minidocker.cgroups import (
    CgroupV1,
    CgroupV2,
    ControllerMissing,
    Resources,
    cpus_to_quota,
    detect_mode,
    open_cgroup,
    parse_size,
    shares_to_weight,
)
from minidocker.engine.resources import ResourceFlags, resources_from_flags
from minidocker.errors import InvalidArgument

pytestmark = [pytest.mark.ch04]

REPO = Path(__file__).resolve().parent.parent
MiB = 1 << 20


# ---------------------------------------------------------------- units

@pytest.mark.parametrize("text,expected", [
    ("64m", 64 * MiB), ("1g", 1 << 30), ("512k", 512 << 10), ("100", 100), ("10b", 10),
    ("1.5g", 3 << 29), ("64MiB", 64 * MiB), ("64mb", 64 * MiB), ("2 G", 2 << 30), ("1t", 1 << 40),
])
def test_parse_size_reads_docker_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["64q", "-1", "", "m", "1..2m", "64 m b", "0x10", "1e3"])
def test_parse_size_rejects_what_docker_rejects(text):
    with pytest.raises(InvalidArgument, match="invalid size"):
        parse_size(text)


def test_cpus_to_quota_uses_a_100ms_period():
    assert cpus_to_quota(0.5) == (50_000, 100_000)
    assert cpus_to_quota(1.5) == (150_000, 100_000)
    assert cpus_to_quota(0.01) == (1_000, 100_000)
    with pytest.raises(InvalidArgument, match="smallest quota"):
        cpus_to_quota(0.001)


def test_shares_to_weight_matches_runc():
    assert [shares_to_weight(s) for s in (2, 1024, 262144)] == [1, 39, 10000]


def test_resources_round_trip_through_oci():
    oci = {"memory": {"limit": 64 * MiB, "swap": 128 * MiB}, "cpu": {"quota": 50_000, "period": 100_000},
           "pids": {"limit": 20}}
    r = Resources.from_oci(oci)
    assert r.to_oci() == oci
    assert r.controllers() == {"memory", "cpu", "pids"}
    assert Resources.from_oci({}).controllers() == set()


@pytest.mark.parametrize("oci,message", [
    ({"memory": {"limit": -5}}, "memory.limit -5"),
    ({"memory": {"limit": 64 * MiB, "swap": 32 * MiB}}, "at least memory.limit"),
    ({"memory": {"swap": 32 * MiB}}, "needs memory.limit"),
    ({"cpu": {"quota": 10}}, "cpu.quota 10"),
    ({"pids": {"limit": "20"}}, "expected an integer"),
])
def test_resources_reject_impossible_values(oci, message):
    with pytest.raises(InvalidArgument, match=message):
        Resources.from_oci(oci)


# ---------------------------------------------------------------- the engine's flags

def test_flags_become_oci_resources():
    oci = resources_from_flags(ResourceFlags(memory="64m", cpus=0.5, pids_limit=50, cpu_shares=512), cpu_count=2)
    assert oci == {"memory": {"limit": 64 * MiB, "swap": 128 * MiB},  # Docker: as much swap as memory
                   "cpu": {"shares": 512, "quota": 50_000, "period": 100_000}, "pids": {"limit": 50}}
    assert resources_from_flags(ResourceFlags(), cpu_count=2) == {}
    assert resources_from_flags(ResourceFlags(memory="64m", memory_swap="-1"), 2)["memory"]["swap"] == -1


@pytest.mark.parametrize("flags,message", [
    (ResourceFlags(memory="64q"), "invalid --memory '64q': not a size"),
    (ResourceFlags(memory="0"), "minimum memory limit is 6MiB"),
    (ResourceFlags(memory="-5m"), "invalid --memory '-5m'"),
    (ResourceFlags(memory="64m", memory_swap="32m"), "must be at least --memory"),
    (ResourceFlags(memory_swap="1g"), "it needs --memory"),
    (ResourceFlags(cpus=0), "range is 0.01 to 2.00"),
    (ResourceFlags(cpus=-1), "range is 0.01 to 2.00"),
    (ResourceFlags(cpus=3), "only 2 CPUs available"),
    (ResourceFlags(cpus=1, cpu_quota=50_000), "conflicting options"),
    (ResourceFlags(cpu_shares=-3), "--cpu-shares -3"),
    (ResourceFlags(pids_limit=0), "--pids-limit 0"),
    (ResourceFlags(pids_limit=-7), "--pids-limit -7"),
])
def test_bad_flags_name_the_flag_and_the_problem(flags, message):
    with pytest.raises(InvalidArgument, match=message.replace(".", r"\.").replace("(", r"\(")):
        resources_from_flags(flags, cpu_count=2)


# ---------------------------------------------------------------- drivers against stand-in trees

def _seed(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)


@pytest.fixture
def fake_v2(tmp_path: Path) -> Path:
    _seed(tmp_path, {"cgroup.controllers": "cpuset cpu io memory pids\n", "cgroup.subtree_control": ""})
    _seed(tmp_path / "minidocker", {"cgroup.subtree_control": ""})
    _seed(tmp_path / "minidocker" / "c1", {n: "" for n in (
        "cgroup.procs", "memory.max", "memory.swap.max", "cpu.max", "cpu.weight", "pids.max")})
    return tmp_path


def test_v2_create_enables_controllers_on_every_level(fake_v2):
    CgroupV2("/minidocker/c1", str(fake_v2)).create()
    assert (fake_v2 / "cgroup.subtree_control").read_text() == "+cpu +memory +pids"
    assert (fake_v2 / "minidocker/cgroup.subtree_control").read_text() == "+cpu +memory +pids"


def test_v2_apply_writes_each_limit_in_its_file(fake_v2):
    cg = CgroupV2("/minidocker/c1", str(fake_v2))
    cg.apply(Resources(memory_limit=64 * MiB, memory_swap=96 * MiB, cpu_quota=50_000, cpu_period=100_000,
                       cpu_shares=1024, pids_limit=20))
    leaf = fake_v2 / "minidocker/c1"
    assert (leaf / "memory.max").read_text() == str(64 * MiB)
    assert (leaf / "memory.swap.max").read_text() == str(32 * MiB)  # v2 limits swap alone
    assert (leaf / "cpu.max").read_text() == "50000 100000"
    assert (leaf / "cpu.weight").read_text() == "39"
    assert (leaf / "pids.max").read_text() == "20"
    cg.add_process(4242)
    assert (leaf / "cgroup.procs").read_text() == "4242"


def test_pids_max_is_max_when_limit_is_zero(fake_v2, tmp_path):
    CgroupV2("/minidocker/c1", str(fake_v2)).apply(Resources(pids_limit=0))
    assert (fake_v2 / "minidocker/c1/pids.max").read_text() == "max"


def test_v2_reads_stats_and_oom_kills(fake_v2):
    _seed(fake_v2 / "minidocker/c1", {
        "memory.current": "1048576\n", "memory.peak": "67108864\n", "memory.max": "max\n",
        "memory.events": "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n",
        "cpu.stat": "usage_usec 2000\nuser_usec 1500\nsystem_usec 500\nnr_periods 21\nnr_throttled 20\n"
                    "throttled_usec 1600000\n",
        "pids.current": "3\n", "pids.max": "20\n", "pids.events": "max 81\n"})
    s = CgroupV2("/minidocker/c1", str(fake_v2)).stats()
    assert (s.memory_current, s.memory_peak, s.memory_limit, s.oom_kills) == (MiB, 64 * MiB, None, 1)
    assert (s.cpu_usage_ns, s.cpu_periods, s.cpu_throttled_periods, s.cpu_throttled_ns) == (
        2_000_000, 21, 20, 1_600_000_000)
    assert (s.pids_current, s.pids_limit, s.pids_rejected) == (3, 20, 81)


def test_missing_controller_is_reported_before_anything_exists(fake_v2):
    (fake_v2 / "cgroup.controllers").write_text("cpu\n")
    cg = CgroupV2("/minidocker/new", str(fake_v2))
    with pytest.raises(ControllerMissing, match="no memory, pids controller in cgroup v2"):
        cg.check(Resources(memory_limit=64 * MiB, pids_limit=5))
    assert not (fake_v2 / "minidocker/new").exists()


@pytest.fixture
def fake_v1(tmp_path: Path) -> Path:
    for controller in ("memory", "cpu", "cpuacct", "pids", "freezer"):
        _seed(tmp_path / controller, {"cgroup.procs": ""})
    _seed(tmp_path / "memory/minidocker/c1", {n: "" for n in (
        "cgroup.procs", "memory.limit_in_bytes", "memory.memsw.limit_in_bytes")})
    _seed(tmp_path / "cpu/minidocker/c1", {n: "" for n in (
        "cgroup.procs", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.shares")})
    _seed(tmp_path / "pids/minidocker/c1", {"cgroup.procs": "", "pids.max": ""})
    return tmp_path


def test_v1_apply_writes_each_limit_in_its_hierarchy(fake_v1):
    cg = CgroupV1("/minidocker/c1", str(fake_v1))
    cg.apply(Resources(memory_limit=64 * MiB, memory_swap=128 * MiB, cpu_quota=20_000, cpu_period=100_000,
                       cpu_shares=512, pids_limit=0))
    assert (fake_v1 / "memory/minidocker/c1/memory.limit_in_bytes").read_text() == str(64 * MiB)
    assert (fake_v1 / "memory/minidocker/c1/memory.memsw.limit_in_bytes").read_text() == str(128 * MiB)
    assert (fake_v1 / "cpu/minidocker/c1/cpu.cfs_quota_us").read_text() == "20000"
    assert (fake_v1 / "cpu/minidocker/c1/cpu.cfs_period_us").read_text() == "100000"
    assert (fake_v1 / "cpu/minidocker/c1/cpu.shares").read_text() == "512"
    assert (fake_v1 / "pids/minidocker/c1/pids.max").read_text() == "max"


def test_v1_oom_kills_come_from_oom_control(fake_v1):
    _seed(fake_v1 / "memory/minidocker/c1", {"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"})
    assert CgroupV1("/minidocker/c1", str(fake_v1)).oom_kills() == 2


def test_detect_mode_tells_the_three_layouts_apart(tmp_path):
    assert detect_mode(str(tmp_path)) == "legacy"
    _seed(tmp_path / "unified", {"cgroup.controllers": ""})
    assert detect_mode(str(tmp_path)) == "hybrid"
    assert isinstance(open_cgroup("/minidocker/x", str(tmp_path)), CgroupV1)
    _seed(tmp_path, {"cgroup.controllers": "memory"})
    assert detect_mode(str(tmp_path)) == "unified"
    assert isinstance(open_cgroup("/minidocker/x", str(tmp_path)), CgroupV2)


@pytest.mark.parametrize("path", ["", "/", "/minidocker/../etc", "minidocker/./x"])
def test_cgroups_path_must_stay_inside_the_hierarchy(path):
    with pytest.raises(InvalidArgument, match="invalid cgroupsPath"):
        CgroupV2(path)


# ---------------------------------------------------------------- the real kernel (v1 here, v2 in the guest)

@pytest.fixture
def limits_host():
    """Skip unless this host lets us set memory, cpu and pids limits (v1 here, v2 in the vm test)."""
    if os.geteuid() != 0:
        missing_feature("root: cgroup limits need root")
    cg = open_cgroup("/minidocker/probe")
    missing = {"memory", "cpu", "pids"} - cg.available_controllers()
    if missing:
        missing_feature(f"no {', '.join(sorted(missing))} controller in cgroup v{cg.version} on this host")
    return cg.version


def test_driver_matches_the_host(limits_host):
    expected = os.environ.get("MINIDOCKER_EXPECT_CGROUP")
    if expected is None:
        missing_feature("set by the vm test: MINIDOCKER_EXPECT_CGROUP=2", required=False)
    assert limits_host == int(expected), f"expected cgroup v{expected}, found v{limits_host}"


HOG = ["dd", "if=/dev/zero", "of=/dev/null", "bs=160M", "count=1"]  # dd's buffer: 160 MiB touched


def test_memory_hog_is_oom_killed_and_reported(cli, limits_host):
    r = cli("run", "--rm", "--memory", "32m", "busybox", *HOG)
    assert r.code == 137, r
    assert "killed by SIGKILL by the OOM killer (exit status 137)" in r.err, r


def test_oom_kill_of_a_child_is_reported_too(cli, limits_host):
    r = cli("run", "--rm", "--memory", "32m", "busybox", "sh", "-c", " ".join(HOG) + "; echo dd=$?")
    assert r.code == 0 and "dd=137" in r.out, r
    assert "after the OOM killer killed one of its processes" in r.err, r


def test_within_its_limit_a_container_is_not_oom_killed(cli, limits_host):
    r = cli("run", "--rm", "--memory", "64m", "busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=8M", "count=4")
    assert r.code == 0 and "OOM" not in r.err, r


def test_fork_storm_stops_at_pids_limit_and_the_host_is_fine(cli, limits_host):
    storm = "i=0; while [ $i -lt 200 ]; do sleep 5 & i=$((i+1)); done; echo survived"
    r = cli("run", "--rm", "--pids-limit", "20", "busybox", "sh", "-c", storm)
    assert r.code == 2, r  # busybox sh gives up at the first refused fork
    assert "can't fork: Resource temporarily unavailable" in r.err and "survived" not in r.out, r
    assert cli("run", "--rm", "busybox", "true").code == 0


@pytest.fixture
def busybox_rootfs(state_root, tmp_path):
    """A mounted overlay snapshot of the busybox image, for tests that drive the runtime directly."""
    from minidocker.engine.images import local_image
    from minidocker.image import ImageStore
    from minidocker.paths import state_roots
    from minidocker.storage import Snapshot

    image = local_image(ImageStore(state_roots().images), "busybox")
    snapshot = Snapshot.create(image.layers, tmp_path / "snapshot")
    snapshot.mount()
    yield str(snapshot.rootfs)
    snapshot.unmount()
    snapshot.remove()


def _run_and_read_stats(rootfs: str, args: list[str], resources: dict):
    """Run a container through the runtime; return (exit status, wall seconds, its cgroup stats at exit)."""
    from minidocker.runtime import ContainerProcess, default_spec

    spec = default_spec(rootfs, args)
    spec["linux"]["cgroupsPath"] = f"/minidocker/test-{secrets.token_hex(6)}"
    spec["linux"]["resources"] = resources
    devnull = os.open(os.devnull, os.O_RDWR)
    proc = ContainerProcess(spec, stdio=(devnull, devnull, devnull))
    watchdog = threading.Timer(60, proc.kill)  # a bound, should the command not end by itself
    try:
        proc.create()
        start = time.monotonic()
        proc.start()
        watchdog.start()
        status = proc.wait()
        wall = time.monotonic() - start
        stats = proc.cgroup.stats()
        path = proc.cgroup
    finally:
        watchdog.cancel()
        proc.destroy()
        os.close(devnull)
    assert not path.exists(), f"{path} still exists after destroy()"
    return status, wall, stats


def test_pids_events_count_the_refused_forks(limits_host, busybox_rootfs):
    storm = "i=0; while [ $i -lt 100 ]; do sleep 5 & i=$((i+1)); done"
    status, _, stats = _run_and_read_stats(busybox_rootfs, ["sh", "-c", storm], {"pids": {"limit": 10}})
    assert status.exit_code == 2
    assert stats.pids_limit == 10
    assert stats.pids_rejected and stats.pids_rejected >= 1, stats


def test_cpu_quota_throttles_a_busy_loop(limits_host, busybox_rootfs):
    spin = ["sh", "-c", "timeout 2 sh -c 'while :; do :; done'; true"]  # PID 1 ignores timeout's SIGTERM
    status, wall, stats = _run_and_read_stats(busybox_rootfs, spin, {"cpu": {"quota": 20_000, "period": 100_000}})
    share = stats.cpu_usage_ns / 1e9 / wall
    assert 0.12 <= share <= 0.28, f"expected about 20 % of a CPU, found {share:.1%} ({stats})"
    assert stats.cpu_periods >= 10 and stats.cpu_throttled_periods >= 0.7 * stats.cpu_periods, stats


def _start_background(state_root: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "MINIDOCKER_ROOT": str(state_root)}
    return subprocess.Popen([sys.executable, "-m", "minidocker", "run", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)


def _wait_running(cli, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if name in cli("ps").out:
            return
        time.sleep(0.1)
    raise AssertionError(f"container {name} did not start within {timeout} s")


def test_stats_of_a_running_container(cli, state_root, limits_host):
    name = f"stats-{secrets.token_hex(3)}"
    proc = _start_background(state_root, "--rm", "--name", name, "--memory", "64m", "--pids-limit", "30",
                             "--cpus", "0.5", "busybox", "sh", "-c", "sleep 30 & sleep 30 & wait")
    try:
        _wait_running(cli, name)
        r = cli("stats", "--no-stream", "--format", "json", "--interval", "0.2", name)
        assert r.code == 0, r
        row = json.loads(r.out)
        assert row["name"] == name and row["memory_limit"] == 64 * MiB and row["pids_limit"] == 30, row
        assert 3 <= row["pids_current"] <= 5, row  # sh + two sleeps (+ the runtime's waiter)
        assert row["memory_current"] > 0 and row["cpu_usage_ns"] > 0, row
        table = cli("stats", "--no-stream", "--interval", "0.2", name)
        assert "MEM USAGE / LIMIT" in table.out and " / 64MiB" in table.out, table
        joined = cli("exec", name, "cat", "/proc/self/cgroup")  # exec joins the container's cgroup
        assert joined.code == 0 and "/.." not in joined.out, joined
    finally:
        cli("rm", "-f", name)
        proc.wait(timeout=30)


def test_stats_of_a_stopped_container_is_an_error(cli, limits_host):
    name = f"stopped-{secrets.token_hex(3)}"
    assert cli("run", "--name", name, "busybox", "true").code == 0
    r = cli("stats", "--no-stream", name)
    assert r.code == 125 and "it is exited" in r.err, r
    cli("rm", name)


def test_a_crashed_runtime_leaves_a_cgroup_that_rm_removes(cli, state_root, limits_host):
    from minidocker.engine.container import find_container
    from minidocker.paths import state_roots

    name = f"crash-{secrets.token_hex(3)}"
    proc = _start_background(state_root, "--name", name, "--memory", "64m", "busybox", "sleep", "60")
    _wait_running(cli, name)
    container = find_container(state_roots(), name)
    cgroup = open_cgroup(f"/minidocker/{container.id}")
    proc.send_signal(signal.SIGKILL)  # the runtime dies; the container dies of PDEATHSIG
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while cgroup.procs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cgroup.exists() and not cgroup.procs()
    r = cli("rm", name)
    assert r.code == 0, r
    assert not cgroup.exists(), f"{cgroup} survived rm"


@pytest.mark.parametrize("args,message", [
    (["--memory", "64q"], "invalid --memory '64q': not a size"),
    (["--memory", "0"], "the minimum memory limit is 6MiB"),
    (["--memory=-5m"], "invalid --memory '-5m'"),
    (["--cpus", "0"], "invalid --cpus 0"),
    (["--cpus=-1"], "invalid --cpus -1"),
    (["--cpus", "999"], "CPUs available"),
    (["--pids-limit", "0"], "invalid --pids-limit 0"),
    (["--memory", "64m", "--memory-swap", "32m"], "must be at least --memory"),
    (["--cpu-shares", "-3"], "invalid --cpu-shares -3"),
    (["--cpus", "half"], "invalid --cpus 'half': not a number"),
    (["--pids-limit", "1.5"], "invalid --pids-limit '1.5': not an integer"),
])
def test_bad_limits_fail_before_anything_is_created(cli, args, message):
    if os.geteuid() != 0:
        missing_feature("root: cgroup limits need root")
    before = cli("ps", "-a", "-q").out
    r = cli("run", "--rm", *args, "busybox", "true")
    assert r.code == 125 and message in r.err, r
    assert cli("ps", "-a", "-q").out == before  # no container record; the leak detector checks cgroups


# ---------------------------------------------------------------- cgroup v2 core on this host's v2 mount

@pytest.fixture
def unified_root() -> str:
    if os.geteuid() != 0:
        missing_feature("root: cgroup limits need root")
    mode = detect_mode()
    if mode == "legacy":
        missing_feature("no cgroup2 mount")
    return "/sys/fs/cgroup" if mode == "unified" else "/sys/fs/cgroup/unified"


def test_v2_core_membership_freeze_and_kill(unified_root):
    cg = CgroupV2(f"/minidocker/test-{secrets.token_hex(6)}", unified_root)
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        try:
            os.close(write_end)
            os.read(read_end, 1)
        finally:
            os._exit(0)
    os.close(read_end)
    try:
        cg.create(controllers=[])
        cg.add_process(child)
        assert cg.procs() == [child]
        cg.freeze()
        assert "frozen 1" in Path(cg.dir, "cgroup.events").read_text()
        cg.thaw()
        cg.destroy()  # cgroup.kill, then rmdir
        _, status = os.waitpid(child, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert not cg.exists()
    finally:
        os.close(write_end)
        cg.destroy()
        try:
            os.waitpid(child, 0)
        except ChildProcessError:
            pass


def test_hybrid_v2_mount_has_no_memory_controller(unified_root):
    if detect_mode() != "hybrid":
        missing_feature("only on a hybrid host", required=False)
    cg = CgroupV2(f"/minidocker/test-{secrets.token_hex(6)}", unified_root)
    with pytest.raises(ControllerMissing, match="no memory controller in cgroup v2"):
        cg.check(Resources(memory_limit=64 * MiB))
    assert not cg.exists()
