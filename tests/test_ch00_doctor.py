"""Chapter 00: the environment doctor tells the truth about this machine, and says how to fix it.

Each finding is cross-checked against a second, independent source: statfs(2) magic
numbers against the doctor's mountinfo reading, ``iptables -V`` against the symlink,
a real setuid(2) to nobody against the root and CAP_SYS_ADMIN checks.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minidocker import doctor
from minidocker.doctor import Check, cgroup_layout, container_hints, is_static_elf, parse_mountinfo
from minidocker.forked import call_in_child

pytestmark = pytest.mark.ch00

ORIGINAL_IDS = ("root", "userns", "netns", "overlay", "cgroup_v1", "cgroup_v2", "runc", "docker")
NEW_IDS = ("python", "kernel", "cap_sys_admin", "container", "userns_unprivileged", "overlay_upper",
           "cgroup_mode", "busybox", "firewall")
CGROUP2_MAGIC = 0x63677270
TMPFS_MAGIC = 0x01021994
OVERLAY_MAGIC = 0x794C7630
NOBODY = 65534


def statfs_magic(path: str) -> int:
    """f_type of statfs(2): the first field of struct statfs (a long on Linux)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    buf = ctypes.create_string_buffer(256)
    if libc.statfs(os.fsencode(path), buf) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"statfs({path!r}): {os.strerror(err)}")
    return ctypes.c_long.from_buffer(buf).value & 0xFFFFFFFF


# --- the report ---------------------------------------------------------------------------


def test_report_names_every_check_once_in_order():
    checks = doctor.run_checks()
    report = doctor.format_report(checks)
    ids = [c.id for c in checks]
    assert len(ids) == len(set(ids)), f"duplicate ids: {ids}"
    assert set(ORIGINAL_IDS + NEW_IDS) <= set(ids), f"missing: {set(ORIGINAL_IDS + NEW_IDS) - set(ids)}"
    lines = report.splitlines()
    check_lines = [line for line in lines if line.startswith("[")]
    assert len(check_lines) == len(checks), report
    for c, line in zip(checks, check_lines):
        assert f"] {c.name}: {c.detail}" in line, f"expected {c.name} in {line!r}"
    assert re.fullmatch(r"\d+ ok, \d+ warnings, \d+ failures: .*", lines[-1]), lines[-1]


def test_every_check_that_can_fail_says_how_to_fix_it():
    for c in doctor.run_checks():
        assert isinstance(c, Check)
        if not c.ok:
            assert c.fix, f"{c.id} failed without a fix: {c.detail}"
    # Checks that pass here still carry their fix (the nobody test below reads it).
    assert "sudo" in doctor.feature("root").fix


def test_feature_is_cached_and_unknown_ids_raise_key_error():
    assert doctor.feature("kernel") is doctor.feature("kernel")
    with pytest.raises(KeyError):
        doctor.feature("no-such-check")


def test_cli_doctor_exits_zero_on_this_machine(cli):
    r = cli("doctor")
    assert r.code == 0, r
    for c in doctor.run_checks():
        assert c.name in r.out, f"{c.name} not in the report\n{r}"
    assert "0 failures" in r.out, r


def test_doctor_is_cheap_to_import_and_fast_to_run():
    code = ("import sys, time; t = time.perf_counter(); import minidocker.doctor as d; "
            "t1 = time.perf_counter(); d.run_checks(); t2 = time.perf_counter(); "
            "print(t1 - t, t2 - t1, 'ctypes' in sys.modules, 'subprocess' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    import_s, checks_s, ctypes_loaded, subprocess_loaded = float(out[0]), float(out[1]), out[2], out[3]
    assert import_s < 0.2, f"import took {import_s:.3f} s"
    assert checks_s < 0.5, f"run_checks took {checks_s:.3f} s"
    assert ctypes_loaded == "False", "the doctor should not need ctypes"
    if shutil.which("iptables") and "xtables" in os.path.realpath(shutil.which("iptables")):
        assert subprocess_loaded == "False", "the iptables symlink was readable, no subprocess needed"


# --- each finding against a second source -----------------------------------------------


def test_python_check_matches_the_running_interpreter():
    c = doctor.feature("python")
    assert c.ok == ((3, 10) <= sys.version_info[:2] <= (3, 13))
    assert ".".join(map(str, sys.version_info[:3])) in c.detail


def test_kernel_check_reports_uname_release():
    c = doctor.feature("kernel")
    release = os.uname().release
    assert release in c.detail
    assert c.ok == (int(release.split(".")[0]) >= 5)


def test_cgroup_mode_matches_statfs_of_sys_fs_cgroup():
    layout = cgroup_layout()
    magic = statfs_magic("/sys/fs/cgroup")
    if magic == CGROUP2_MAGIC:
        expected = "unified"
    else:
        assert magic == TMPFS_MAGIC, f"/sys/fs/cgroup has statfs magic {magic:#x}"
        unified = os.path.isdir("/sys/fs/cgroup/unified") and statfs_magic("/sys/fs/cgroup/unified") == CGROUP2_MAGIC
        expected = "hybrid" if unified else "legacy"
    assert layout.mode == expected, f"doctor says {layout.mode}, statfs says {expected}"
    assert doctor.feature("cgroup_mode").detail.startswith(expected + ":")


def test_cgroup_controllers_match_proc_cgroups_and_cgroup_controllers():
    layout = cgroup_layout()
    # /proc/cgroups: a non-zero hierarchy id means the controller is mounted on v1.
    rows = [line.split() for line in Path("/proc/cgroups").read_text().splitlines()[1:]]
    on_v1 = sorted(name for name, hierarchy, _n, enabled in rows if hierarchy != "0" and enabled == "1")
    assert list(layout.v1_controllers) == on_v1
    if layout.v2_path:
        expected = Path(layout.v2_path, "cgroup.controllers").read_text().split()
        assert list(layout.v2_controllers) == expected
        assert doctor.feature("cgroup_v2").ok


@pytest.mark.parametrize("sample, mode, v1, v2", [
    ("30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate", "unified", (), "/sys/fs/cgroup"),
    ("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
     "32 31 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
     "33 31 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
     "34 31 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd", "legacy",
     ("cpu", "cpuacct", "memory"), None),
    ("31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
     "39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
     "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw", "hybrid", ("pids",), "/sys/fs/cgroup/unified"),
    ("27 1 254:0 / / rw - ext4 /dev/vda rw", "none", (), None),
])
def test_cgroup_layout_from_sample_mountinfo(sample, mode, v1, v2):
    layout = cgroup_layout(parse_mountinfo(sample))
    assert (layout.mode, layout.v1_controllers, layout.v2_path) == (mode, v1, v2)


def test_overlay_upper_check_matches_statfs_of_root():
    root_is_overlay = statfs_magic("/") == OVERLAY_MAGIC
    c = doctor.feature("overlay_upper")
    assert c.detail.startswith("/ is overlay" if root_is_overlay else "/ is ")
    assert ("/ is overlay" in c.detail) == root_is_overlay
    assert "tmpfs" in c.fix  # the way out of overlay-on-overlay


def test_overlay_check_agrees_with_proc_filesystems():
    listed = "overlay" in Path("/proc/filesystems").read_text().split()
    if listed:
        assert doctor.feature("overlay").ok


def test_mountinfo_unescapes_spaces_in_mount_points():
    [m] = parse_mountinfo(r"50 27 0:40 / /mnt/with\040space rw - tmpfs none rw")
    assert (m.mount_point, m.fstype, m.source) == ("/mnt/with space", "tmpfs", "none")


def test_userns_check_reads_max_user_namespaces():
    value = Path("/proc/sys/user/max_user_namespaces").read_text().strip()
    c = doctor.feature("userns")
    assert value in c.detail and c.ok == (value != "0")


def test_unprivileged_userns_check_names_the_distribution_knobs_that_exist():
    c = doctor.feature("userns_unprivileged")
    for knob in ("kernel.unprivileged_userns_clone", "kernel.apparmor_restrict_unprivileged_userns"):
        path = Path("/proc/sys", *knob.split("."))
        if path.exists():
            assert knob in c.detail or knob.split(".")[1] in c.fix + c.detail, c


@pytest.mark.skipif(shutil.which("iptables") is None, reason="iptables is not installed")
def test_firewall_backend_matches_iptables_version():
    out = subprocess.run(["iptables", "-V"], capture_output=True, text=True, timeout=10).stdout
    backend = "nf_tables" if "nf_tables" in out else "legacy"
    assert f"iptables -> {backend}" in doctor.feature("firewall").detail, out


def test_busybox_check_tells_static_from_dynamic_binaries():
    assert doctor.feature("busybox").ok == any(
        os.path.exists(p) and is_static_elf(p) for p in ("/bin/busybox", "/usr/bin/busybox"))
    assert not is_static_elf(sys.executable), "the python binary is dynamically linked"
    assert not is_static_elf(__file__), "a text file is not an ELF binary"


def test_container_hints_on_a_seeded_root(tmp_path):
    assert container_hints(tmp_path) == []
    (tmp_path / ".dockerenv").touch()
    (tmp_path / "proc/1").mkdir(parents=True)
    (tmp_path / "proc/1/cgroup").write_text("0::/system.slice/docker-3f2a.scope\n")
    hints = container_hints(tmp_path, root_fstype="overlay")
    assert hints[0].startswith("/ is an overlay")
    assert any("docker-3f2a" in h for h in hints) and hints[-1].startswith("/.dockerenv")


def test_container_check_agrees_with_the_files_here():
    c = doctor.feature("container")
    if os.path.exists("/.dockerenv"):
        assert "/.dockerenv" in c.detail
    if statfs_magic("/") == OVERLAY_MAGIC or os.path.exists("/run/.containerenv"):
        assert not c.ok


def test_cap_sys_admin_matches_capeff():
    eff = int(re.search(r"^CapEff:\s*(\w+)", Path("/proc/self/status").read_text(), re.M).group(1), 16)
    assert doctor.feature("cap_sys_admin").ok == bool(eff & (1 << 21))


# --- a real non-root run -------------------------------------------------------------------


def _checks_as_nobody() -> dict[str, tuple[bool, str, str]]:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)  # from uid 0 to non-zero: the kernel clears the effective capabilities
    return {c.id: (c.ok, c.detail, c.fix) for c in doctor.run_checks(cached=False)}


@pytest.mark.root
def test_non_root_child_gets_root_and_cap_sys_admin_failures_with_fixes():
    found = call_in_child(_checks_as_nobody)
    ok, detail, fix = found["root"]
    assert not ok and detail == f"running as uid {NOBODY}" and "sudo" in fix
    ok, detail, fix = found["cap_sys_admin"]
    assert not ok and "missing" in detail and "--privileged" in fix
    assert doctor.feature("root").ok, "the parent's cached result is untouched"


@pytest.mark.root
def test_cli_doctor_as_nobody_exits_one_and_prints_the_fix(state_root):
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "minidocker", "doctor"], capture_output=True, text=True,
                          timeout=30, user=NOBODY, group=NOBODY, extra_groups=[],
                          env={**os.environ, "HOME": "/nonexistent"}, cwd="/")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "[FAIL] root: running as uid 65534" in proc.stdout
    assert "fix: run as root (sudo)" in proc.stdout
    assert time.monotonic() - start < 10


def test_the_doctor_and_the_cgroup_driver_name_the_same_mode():
    """One vocabulary, one answer: the doctor's layout (from mountinfo) and detect_mode (what the
    driver is chosen by)."""
    from minidocker.cgroups import detect_mode

    assert cgroup_layout().mode == detect_mode()
