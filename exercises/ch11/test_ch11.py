"""Graded tests of chapter 11: security.

Run: ``make grade CH=11`` (all tasks) or ``make grade CH=11 TASK=11_2`` (one task).
``tasks`` is your exercises/ch11/tasks.py (the reference with ``--solutions``).
Capabilities are dropped and filters loaded in forked children (minidocker.forked):
the grader itself keeps everything.
"""

from __future__ import annotations

import errno
import os
import re
import struct

import pytest

from minidocker.forked import ChildFailed, call_in_child
from minidocker.linux import CloneFlag, set_no_new_privs, unshare
from minidocker.linux.security import seccomp_set_mode_filter

pytestmark = [pytest.mark.ch11]


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"^{field}:\s+(\w+)", f.read(), re.M).group(1), 16)


# -- task 11.1: a capability mask from names -------------------------------------------------------

@pytest.mark.task11_1
def test_dockers_default_set_is_a80425fb(tasks) -> None:
    default = ["CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID", "SETFCAP",
               "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"]
    assert tasks.capability_mask(default) == 0xA80425FB, "expected 0xa80425fb, docker run's CapEff"


@pytest.mark.task11_1
def test_names_with_or_without_cap_in_any_case(tasks) -> None:
    assert tasks.capability_mask(["cap_sys_admin"]) == tasks.capability_mask(["SYS_ADMIN"]) == 1 << 21
    assert tasks.capability_mask([]) == 0
    assert tasks.capability_mask(["CHOWN", "chown"]) == 1


@pytest.mark.task11_1
def test_unknown_names_raise_value_error(tasks) -> None:
    for bad in (["NOPE"], ["CHOWN", "CAP_"], ["SYS ADMIN"]):
        with pytest.raises(ValueError):
            tasks.capability_mask(bad)


# -- task 11.2: drop capabilities for good ---------------------------------------------------------

def _drop_and_try(tasks, keep: list[str]) -> dict:
    tasks.drop_capabilities(keep)
    result = {"eff": _status("CapEff"), "prm": _status("CapPrm"), "bnd": _status("CapBnd"),
              "inh": _status("CapInh")}
    try:
        unshare(CloneFlag.CLONE_NEWNS)   # needs CAP_SYS_ADMIN
        result["unshare"] = "ok"
    except OSError as err:
        result["unshare"] = errno.errorcode[err.errno]
    path = f"/tmp/.ch11-chown-{os.getpid()}"
    open(path, "w").close()
    try:
        os.chown(path, 1000, 1000)       # needs CAP_CHOWN
        result["chown"] = "ok"
    except OSError as err:
        result["chown"] = errno.errorcode[err.errno]
    finally:
        os.unlink(path)
    return result


@pytest.mark.task11_2
@pytest.mark.root
def test_dropped_capabilities_are_gone_from_every_set(tasks) -> None:
    result = call_in_child(_drop_and_try, tasks, ["CAP_CHOWN", "CAP_SETPCAP"])
    expected = (1 << 0) | (1 << 8)
    assert result["eff"] == result["prm"] == result["bnd"] == expected, \
        f"expected all three sets {expected:#x}: {result}"
    assert result["inh"] == 0, result


@pytest.mark.task11_2
@pytest.mark.root
def test_the_kernel_checks_what_is_left(tasks) -> None:
    result = call_in_child(_drop_and_try, tasks, ["CHOWN"])
    assert result["unshare"] == "EPERM", f"unshare without CAP_SYS_ADMIN must fail: {result}"
    assert result["chown"] == "ok", f"CAP_CHOWN was kept, chown must work: {result}"


# -- task 11.3: a seccomp filter by hand -----------------------------------------------------------

SYS_MKDIR, SYS_MKDIRAT, SYS_GETPID = 83, 258, 39   # x86_64, asm/unistd_64.h


def _filtered(program: bytes) -> dict:
    set_no_new_privs()   # so that an unprivileged process could load it too
    seccomp_set_mode_filter(program)
    result = {"pid": os.getpid() > 0}
    path = f"/tmp/.ch11-mkdir-{os.getpid()}"
    try:
        os.mkdir(path)   # glibc's mkdir() makes the mkdir syscall (83) on x86_64
        os.rmdir(path)
        result["mkdir"] = "ok"
    except OSError as err:
        result["mkdir"] = errno.errorcode[err.errno]
    return result


@pytest.mark.task11_3
def test_filter_has_the_shape_of_a_seccomp_program(tasks) -> None:
    program = tasks.block_syscall_filter(SYS_MKDIR, errno.EACCES)
    assert isinstance(program, bytes) and len(program) % 8 == 0 and 0 < len(program) // 8 <= 16, \
        "expected bytes, 8 per instruction"
    code, _, _, k = struct.unpack_from("<HBBI", program, 0)
    assert (code, k) == (0x20, 4), "the first instruction must load seccomp_data.arch (ld [4])"


@pytest.mark.task11_3
def test_filter_refuses_the_syscall_with_the_errno(tasks) -> None:
    if os.uname().machine != "x86_64":
        pytest.skip("the task's numbers are x86_64's")
    program = tasks.block_syscall_filter(SYS_MKDIR, errno.EACCES)
    result = call_in_child(_filtered, program)
    assert result == {"pid": True, "mkdir": "EACCES"}, \
        f"mkdir must fail with EACCES, getpid must work: {result}"


@pytest.mark.task11_3
def test_filter_lets_other_syscalls_through(tasks) -> None:
    program = tasks.block_syscall_filter(SYS_MKDIRAT, errno.EPERM)
    result = call_in_child(_filtered, program)
    assert result == {"pid": True, "mkdir": "ok"}, f"only mkdirat is blocked, mkdir must work: {result}"


@pytest.mark.task11_3
def test_filter_kills_another_architecture(tasks) -> None:
    # swap the architecture the program expects: the kernel (x86_64) must then kill the child
    program = bytearray(tasks.block_syscall_filter(SYS_MKDIR, errno.EACCES))
    for pc in range(len(program) // 8):
        k = int.from_bytes(program[pc * 8 + 4:pc * 8 + 8], "little")
        if k == 0xC000003E:
            program[pc * 8 + 4:pc * 8 + 8] = (0x40000003).to_bytes(4, "little")   # AUDIT_ARCH_I386
    with pytest.raises(ChildFailed):
        call_in_child(_filtered, bytes(program))
