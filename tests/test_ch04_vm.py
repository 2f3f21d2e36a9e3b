"""Chapter 04 on a pure cgroup v2 kernel: this module's sibling, run in a qemu guest.

These machines are v1/v2 hybrids whose v2 mount has no memory, cpu or pids
controller, so the v2 driver's limits cannot be shown here. tests/vm.py boots
Debian's kernel under qemu with the host's root read-only over 9p and a pure
cgroup2 hierarchy; there the real-kernel tests of test_ch04_cgroups.py (OOM kill
from memory.events, pids.max, cpu.max throttling, stats, exec, cleanup) run against
CgroupV2, and the result comes back on the serial console. One boot, about a minute
under TCG; a second one, of seconds, shows that the guest's root is a real root (user
namespaces work there). Needs qemu-system-x86 and busybox-static (the Makefile's apt
target) and downloads the kernel package once into .cache/vm.
"""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

import pytest
from conftest import missing_feature
from vm import Guest, GuestUnavailable

pytestmark = [pytest.mark.ch04, pytest.mark.vm, pytest.mark.slow, pytest.mark.root]

REPO = Path(__file__).resolve().parent.parent
# The only tests allowed to skip in the guest: they are about the hybrid layout.
GUEST_SKIPS = ("only on a hybrid host",)


def _run(tmp_path: Path, script: str, timeout: float) -> tuple[str, str]:
    """Boot the guest (tests/vm.py) on ``script``; its output, and a report for failures. Exit 0 asserted."""
    try:
        guest = Guest.prepare()
    except GuestUnavailable as err:
        missing_feature(f"the cgroup v2 guest: {err}")
    path = tmp_path / "guest.sh"
    path.write_text(script)
    result = guest.run(path, timeout=timeout)
    report = f"guest output ({result.seconds:.0f} s):\n{result.output or result.console}"
    assert result.exit_code == 0, report
    return result.output, report


def test_cgroup_v2_limits_hold_in_a_qemu_guest(tmp_path):
    script = (f"cd {shlex.quote(str(REPO))} && MINIDOCKER_EXPECT_CGROUP=2 exec {shlex.quote(sys.executable)} "
              "-m pytest -p no:cacheprovider -q -rs -m 'not vm' tests/test_ch04_cgroups.py\n")
    output, report = _run(tmp_path, script, timeout=900)
    summary = re.search(r"(\d+) passed", output)
    assert summary and int(summary.group(1)) >= 40, report
    skips = [line for line in output.splitlines() if line.startswith("SKIPPED")]
    unexpected = [line for line in skips if not any(reason in line for reason in GUEST_SKIPS)]
    assert not unexpected, report


# minidocker's own way in (namespaces.user_namespace_fd, as --userns-remap's idmapped layers use it)
USERNS_PROGRAM = """import os
from minidocker.namespaces import user_namespace_fd
m = [{"containerID": 0, "hostID": 100000, "size": 65536}]
fd = user_namespace_fd(m, m)
print("python:", os.readlink(f"/proc/self/fd/{fd}") != os.readlink("/proc/self/ns/user"))
"""


def test_the_guest_runs_at_a_real_root_so_user_namespaces_work(tmp_path):
    """switch_root, not chroot (tests/vm.py): unshare(CLONE_NEWUSER) refuses a chrooted caller (EPERM)."""
    program = tmp_path / "userns.py"
    program.write_text(USERNS_PROGRAM)
    script = ("unshare --user --map-root-user sh -c 'echo \"unshare: $(id -u) $(cat /proc/self/uid_map)\"'\n"
              f"PYTHONPATH={shlex.quote(str(REPO))} exec {shlex.quote(sys.executable)} "
              f"{shlex.quote(str(program))}\n")
    output, report = _run(tmp_path, script, timeout=300)
    found = dict(re.findall(r"^(unshare|python): (.*)$", output, re.MULTILINE))
    assert re.fullmatch(r"0 +0 +0 +1", found.get("unshare", "")), report   # root in it, mapped to us
    assert found.get("python") == "True", report   # a namespace of its own, not ours
