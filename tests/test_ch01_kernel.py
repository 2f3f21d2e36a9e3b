"""Chapter 01: the kernel interface (minidocker.linux), exit statuses, forked calls."""

from __future__ import annotations

import errno
import os
import signal

import pytest

from minidocker.forked import ChildFailed, call_in_child
from minidocker.linux import CloneFlag, MountFlag, mount, pivot_root, sethostname, setns, umount2, unshare
from minidocker.runtime.exitstatus import ExitStatus

pytestmark = pytest.mark.ch01


def test_umount2_of_a_missing_path_raises_file_not_found_naming_the_call():
    with pytest.raises(FileNotFoundError) as info:
        umount2("/no/such/mount/point")
    assert info.value.errno == errno.ENOENT
    assert "umount2('/no/such/mount/point'" in str(info.value)


def test_mount_with_an_unknown_filesystem_type_raises_naming_type_and_flags():
    with pytest.raises(OSError) as info:
        mount("none", "/tmp", "no-such-fs", MountFlag.MS_RDONLY)
    assert info.value.errno in (errno.ENODEV, errno.EPERM)
    assert "no-such-fs" in str(info.value) and "MS_RDONLY" in str(info.value)


def test_setns_with_a_bad_fd_raises_ebadf():
    with pytest.raises(OSError) as info:
        setns(9999, CloneFlag.CLONE_NEWUTS)
    assert info.value.errno == errno.EBADF


def test_pivot_root_needs_a_mount_point_and_works_after_a_bind_onto_itself(tmp_path):
    # SPEC: pivot_root(2) lists EINVAL for "new_root is not a mount point"; kernel 6.x checks
    # "new_root is on the current root mount" first and answers EBUSY for a plain directory of /.
    def attempt() -> tuple[int, str]:
        unshare(CloneFlag.CLONE_NEWNS)
        mount(None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE)
        try:
            pivot_root(tmp_path, tmp_path)
            return 0, ""
        except OSError as err:
            failure = err.errno
        mount(str(tmp_path), tmp_path, None, MountFlag.MS_BIND)
        os.mkdir(tmp_path / "marker")
        os.chdir(tmp_path)
        pivot_root(".", ".")
        umount2(".", 2)
        os.chdir("/")
        return failure, ",".join(sorted(os.listdir("/")))

    failure, listing = call_in_child(attempt)
    assert failure in (errno.EINVAL, errno.EBUSY)
    assert listing == "marker"


@pytest.mark.root
def test_unshare_uts_in_a_child_leaves_our_hostname_alone():
    ours = os.uname().nodename

    def rename() -> str:
        unshare(CloneFlag.CLONE_NEWUTS)
        sethostname("inside-a-child")
        return os.uname().nodename

    assert call_in_child(rename) == "inside-a-child"
    assert os.uname().nodename == ours


def test_call_in_child_reraises_with_the_childs_traceback():
    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ChildFailed) as info:
        call_in_child(fail)
    assert "ValueError: boom" in str(info.value)
    assert "in fail" in info.value.child_traceback


def test_call_in_child_keeps_the_childs_exception_object():
    with pytest.raises(ChildFailed) as info:
        call_in_child(lambda: {}["missing"])
    assert isinstance(info.value.error, KeyError) and info.value.error.args == ("missing",)


def test_call_in_child_delivers_messages_while_the_child_works():
    seen = []

    def count(send) -> str:
        for i in range(3):
            send({"step": i})
        return "done"

    assert call_in_child(count, on_message=seen.append) == "done"
    assert seen == [{"step": 0}, {"step": 1}, {"step": 2}]


def test_call_in_child_stops_a_child_whose_messages_are_refused():
    class Enough(Exception):
        pass

    def refuse(message: object) -> None:
        raise Enough

    def chatter(send) -> None:
        while True:   # ends only when the parent closes the pipe: send raises BrokenPipeError
            send(b"x" * 4096)

    with pytest.raises(Enough):
        call_in_child(chatter, on_message=refuse, timeout=5)
    # the child was waited for: the leak detector would see a leftover process


def test_call_in_child_reports_a_child_killed_by_a_signal():
    with pytest.raises(ChildFailed, match="SIGKILL"):
        call_in_child(lambda: os.kill(os.getpid(), signal.SIGKILL))


@pytest.mark.parametrize(
    ("status", "code", "text"),
    [
        (0, 0, "exited with status 0"),
        (3 << 8, 3, "exited with status 3"),
        (signal.SIGKILL, 137, "killed by SIGKILL (exit status 137)"),
        (signal.SIGTERM, 143, "killed by SIGTERM (exit status 143)"),
    ],
)
def test_exit_status_follows_the_shell_convention(status, code, text):
    decoded = ExitStatus.from_wait_status(status)
    assert decoded.exit_code == code
    assert decoded.describe() == text


def test_exit_status_names_the_oom_killer():
    assert ExitStatus(signal=9, oom_killed=True).describe() == "killed by SIGKILL by the OOM killer (exit status 137)"
