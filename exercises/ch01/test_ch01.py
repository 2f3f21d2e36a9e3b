"""Graded tests of chapter 01: processes and the kernel interface.

Run: ``make grade CH=01`` (all tasks) or ``make grade CH=01 TASK=1_3`` (one task).
``tasks`` is your exercises/ch01/tasks.py (the reference with ``--solutions``).
Every process a test starts is reaped; programs that might hang run in a forked
child with a timeout (minidocker.forked.call_in_child).
"""

from __future__ import annotations

import errno
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from minidocker.forked import call_in_child

pytestmark = [pytest.mark.ch01]


def _status_of(action: Callable[[], None], flags: int = 0) -> tuple[int, int]:
    """Fork a child that runs ``action`` (then exits 0); return (pid, wait status) as waitpid gives them."""
    pid = os.fork()
    if pid == 0:
        try:
            action()
        finally:
            os._exit(0)
    return os.waitpid(pid, flags)


# --- task 1.1: exit_code ----------------------------------------------------------------

@pytest.mark.task1_1
@pytest.mark.parametrize("code", [0, 1, 3, 255])
def test_exit_code_of_a_normal_exit_is_the_code(tasks, code):
    _, status = _status_of(lambda: os._exit(code))
    found = tasks.exit_code(status)
    assert found == code, f"exit_code({status}) for a child that called _exit({code}): expected {code}, found {found}"


@pytest.mark.task1_1
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_exit_code_of_a_killed_process_is_128_plus_the_signal(tasks, sig):
    def die() -> None:
        if sig != signal.SIGKILL:  # SIGKILL cannot be handled; Python turns SIGINT into KeyboardInterrupt
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)

    _, status = _status_of(die)
    found = tasks.exit_code(status)
    expected = 128 + sig
    assert found == expected, (f"exit_code({status}) for a child killed by {sig.name}: "
                               f"expected {expected} (128 + {int(sig)}), found {found}")


@pytest.mark.task1_1
def test_exit_code_of_a_stopped_process_is_an_error(tasks):
    pid, status = _status_of(lambda: os.kill(os.getpid(), signal.SIGSTOP), os.WUNTRACED)
    try:
        assert os.WIFSTOPPED(status)
        with pytest.raises(ValueError):
            tasks.exit_code(status)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


# --- task 1.2: libc_call ----------------------------------------------------------------

@pytest.mark.task1_2
def test_libc_call_returns_the_result(tasks):
    found = tasks.libc_call("getpid")
    assert found == os.getpid(), f"libc_call('getpid'): expected {os.getpid()}, found {found!r}"


@pytest.mark.task1_2
def test_libc_call_really_calls_libc(tasks, tmp_path):
    target = tmp_path / "made-by-libc"
    result = tasks.libc_call("mkdir", os.fsencode(target), 0o700)
    assert result == 0, f"libc_call('mkdir', ...): expected 0, found {result!r}"
    assert target.is_dir(), f"libc_call('mkdir', {os.fsencode(target)!r}, 0o700) returned but {target} is missing"


@pytest.mark.task1_2
@pytest.mark.parametrize(
    "case",
    ["missing", "exists", "not_empty", "no_process"],
)
def test_libc_call_raises_the_oserror_subclass_naming_the_call(tasks, tmp_path, case):
    (tmp_path / "dir" / "file").parent.mkdir()
    (tmp_path / "dir" / "file").write_text("x")
    cases = {
        "missing": ("rmdir", (os.fsencode(tmp_path / "missing"),), FileNotFoundError, errno.ENOENT),
        "exists": ("mkdir", (os.fsencode(tmp_path / "dir"), 0o755), FileExistsError, errno.EEXIST),
        "not_empty": ("rmdir", (os.fsencode(tmp_path / "dir"),), OSError, errno.ENOTEMPTY),
        "no_process": ("kill", (0x7FFFFFF0, 0), ProcessLookupError, errno.ESRCH),
    }
    name, args, expected_type, expected_errno = cases[case]
    with pytest.raises(OSError) as info:
        tasks.libc_call(name, *args)
    err = info.value
    where = f"libc_call({name!r}, {', '.join(map(repr, args))})"
    assert err.errno == expected_errno, (
        f"{where}: expected errno {errno.errorcode[expected_errno]}, found {err.errno!r} "
        "(did you load libc with use_errno=True?)")
    assert isinstance(err, expected_type), f"{where}: expected {expected_type.__name__}, found {type(err).__name__}"
    assert name in str(err), f"{where}: the message should name the call {name!r}, found {str(err)!r}"
    if isinstance(args[0], bytes):
        assert os.fsdecode(args[0]) in str(err), f"{where}: the message should show the path, found {str(err)!r}"


# --- task 1.3: run_capture ----------------------------------------------------------------

def check_run_capture(run_capture: Callable[[Sequence[str]], tuple[int, bytes]], argv: Sequence[str],
                      expected: tuple[int, bytes | int]) -> None:
    """Run the learner's ``run_capture(argv)`` in a forked child (10 s timeout) and compare.

    ``expected`` is (exit code, stdout) or (exit code, length of stdout). In the child,
    ``subprocess`` is switched off, and afterwards no descriptor and no child may be left.
    """

    def in_child() -> tuple[tuple[int, bytes], set[str], bool]:
        import subprocess

        def forbidden(*_a: object, **_k: object) -> None:
            raise AssertionError("task 1.3 asks for os.fork/os.execvp, not subprocess")

        subprocess.Popen = forbidden  # type: ignore[assignment,misc]  # only in this forked child
        fds_before = set(os.listdir("/proc/self/fd"))
        result = run_capture(argv)
        fds_after = set(os.listdir("/proc/self/fd"))
        try:
            os.waitpid(-1, os.WNOHANG)
            unreaped = True
        except ChildProcessError:
            unreaped = False
        return result, fds_after - fds_before, unreaped

    (code, out), new_fds, unreaped = call_in_child(in_child, timeout=10)
    where = f"run_capture({list(argv)!r})"
    exp_code, exp_out = expected
    assert code == exp_code, f"{where}: expected exit code {exp_code}, found {code!r}"
    if isinstance(exp_out, int):
        assert len(out) == exp_out, f"{where}: expected {exp_out} bytes of stdout, found {len(out)}"
    else:
        assert out == exp_out, f"{where}: expected stdout {exp_out!r}, found {out!r}"
    assert not new_fds, f"{where}: left file descriptors open: {sorted(new_fds)} (close both pipe ends)"
    assert not unreaped, f"{where}: left a child process unreaped (a zombie): call os.waitpid"


@pytest.mark.task1_3
@pytest.mark.root
@pytest.mark.parametrize("argv, expected", [
    (["echo", "hello"], (0, b"hello\n")),
    (["sh", "-c", "echo out; echo err >&2; exit 3"], (3, b"out\n")),
    (["sh", "-c", "kill -9 $$"], (137, b"")),
    (["/no/such/program"], (127, b"")),
], ids=["echo", "exit-3-stderr-not-captured", "killed", "not-found"])
def test_run_capture_returns_exit_code_and_stdout(tasks, argv, expected):
    check_run_capture(tasks.run_capture, argv, expected)


@pytest.mark.task1_3
def test_run_capture_reads_more_than_a_pipe_holds(tasks):
    size = 1 << 20  # 1 MiB: 16 times the 64 KiB a pipe buffers
    check_run_capture(tasks.run_capture, ["head", "-c", str(size), "/dev/zero"], (0, size))


@pytest.mark.task1_3
def test_run_capture_cannot_execute_is_126(tasks, tmp_path):
    script = tmp_path / "not-executable"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    check_run_capture(tasks.run_capture, [str(script)], (126, b""))


# --- task 1.4: run_forwarding ----------------------------------------------------------------

def _wait_for(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.01)
    return None


def check_run_forwarding(run_forwarding: Callable[..., int], sig: signal.Signals, tmp: Path,
                         pass_signals: bool) -> None:
    """Start ``run_forwarding`` (in a forked child, its own process group) on a shell that traps ``sig``,
    send ``sig`` to the forwarder once the shell is ready, and expect the shell's exit code back.
    """
    ready = tmp / "ready"
    script = f"trap 'exit 42' {sig.name[3:]}; : > {ready}; while :; do sleep 0.02; done"
    argv = ["sh", "-c", script]
    errors_r, errors_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            os.close(errors_r)
            os.setpgid(0, 0)
            before = {s: signal.getsignal(s) for s in (sig, signal.SIGTERM, signal.SIGINT)}
            found = run_forwarding(argv, [sig]) if pass_signals else run_forwarding(argv)
            after = {s: signal.getsignal(s) for s in before}
            if after != before:
                os.write(errors_w, f"handlers not restored: before {before}, after {after}".encode())
            else:
                code = found
        except BaseException as err:  # noqa: BLE001 - reported to the test
            import traceback

            os.write(errors_w, f"{type(err).__name__}: {err}\n{traceback.format_exc()}".encode())
        finally:
            os._exit(code)
    os.close(errors_w)
    group = pid
    try:
        os.setpgid(pid, pid)  # also done by the child: whichever runs first wins the race
    except (PermissionError, ProcessLookupError):
        pass  # the child already exec'ed or exited
    try:
        deadline = time.monotonic() + 10
        while not ready.exists() and time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                pid = 0
                errors = os.read(errors_r, 65536).decode()
                pytest.fail(f"run_forwarding({argv!r}) ended before the program was ready "
                            f"({os.waitstatus_to_exitcode(status)}):\n{errors}")
            time.sleep(0.01)
        assert ready.exists(), f"run_forwarding({argv!r}): the program did not start within 10 s"
        os.kill(pid, sig)
        status = _wait_for(pid, 10)
        assert status is not None, f"run_forwarding: still running 10 s after {sig.name} was sent to it"
        pid = 0
        errors = os.read(errors_r, 65536).decode()
        assert not errors, f"run_forwarding raised in the child:\n{errors}"
        assert not os.WIFSIGNALED(status), (
            f"run_forwarding: expected it to survive {sig.name} and forward it, "
            f"found it killed by {signal.Signals(os.WTERMSIG(status)).name}")
        found = os.WEXITSTATUS(status)
        assert found == 42, (f"run_forwarding({argv!r}) after {sig.name}: expected the program's exit code 42 "
                             f"(its trap ran), found {found}")
    finally:
        os.close(errors_r)
        try:  # the forwarder and the program it started: nothing of them may outlive the test
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if pid:
            os.waitpid(pid, 0)


@pytest.mark.task1_4
@pytest.mark.root
def test_run_forwarding_passes_sigterm_on_by_default(tasks, tmp_path):
    check_run_forwarding(tasks.run_forwarding, signal.SIGTERM, tmp_path, pass_signals=False)


@pytest.mark.task1_4
@pytest.mark.root
def test_run_forwarding_passes_the_signals_it_is_given(tasks, tmp_path):
    check_run_forwarding(tasks.run_forwarding, signal.SIGUSR1, tmp_path, pass_signals=True)
