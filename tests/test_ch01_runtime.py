"""Chapter 01: a container's process through the real CLI — exit codes, signals, stdio, env, cwd, user."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

pytestmark = [pytest.mark.ch01, pytest.mark.root]


def test_true_exits_zero(cli):
    r = cli("run", "--rm", "busybox", "true")
    assert (r.code, r.out, r.err) == (0, "", ""), r


def test_exit_code_of_the_command_is_the_containers(cli):
    r = cli("run", "--rm", "busybox", "sh", "-c", "exit 3")
    assert r.code == 3, r


def test_command_not_found_exits_127_with_dockers_wording(cli):
    r = cli("run", "--rm", "busybox", "no-such-command")
    assert r.code == 127, r
    assert 'exec: "no-such-command": executable file not found in $PATH' in r.err, r


def test_missing_path_exits_127(cli):
    r = cli("run", "--rm", "busybox", "/no/such/file")
    assert r.code == 127, r
    assert "no such file or directory" in r.err, r


def test_file_that_is_not_executable_exits_126(cli):
    r = cli("run", "--rm", "busybox", "/etc/passwd")
    assert r.code == 126, r
    assert "permission denied" in r.err, r


def test_init_reports_command_not_found_too(cli):
    r = cli("run", "--rm", "--init", "busybox", "no-such-command")
    assert r.code == 127, r


def test_stdout_and_stderr_stay_separate(cli):
    r = cli("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2")
    assert (r.out, r.err) == ("out\n", "err\n"), r


def test_stdin_reaches_the_container_only_with_interactive(cli):
    with_i = cli("run", "--rm", "-i", "busybox", "cat", input="hello\n")
    without_i = cli("run", "--rm", "busybox", "cat", input="hello\n")
    assert with_i.out == "hello\n", with_i
    assert without_i.out == "" and without_i.code == 0, without_i


def test_env_workdir_and_user_flags(cli):
    r = cli("run", "--rm", "-e", "GREETING=hi there", "-w", "/tmp/made/for/us", "-u", "65534:65534",
            "busybox", "sh", "-c", 'echo "$GREETING"; pwd; id -u; id -g')
    assert r.out.split("\n")[:4] == ["hi there", "/tmp/made/for/us", "65534", "65534"], r


def test_env_without_value_is_taken_from_the_callers_environment(cli):
    r = cli("run", "--rm", "-e", "FROM_HOST", "-e", "NOT_SET_ANYWHERE", "busybox", "sh", "-c",
            'echo "$FROM_HOST"; echo "${NOT_SET_ANYWHERE-unset}"', env={"FROM_HOST": "yes"})
    assert r.out == "yes\nunset\n", r


def test_default_environment_has_path_and_hostname(cli):
    r = cli("run", "--rm", "--hostname", "box", "busybox", "env")
    assert "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in r.out.splitlines(), r
    assert "HOSTNAME=box" in r.out.splitlines(), r


def test_sigpipe_is_default_in_the_container(cli):
    # Python ignores SIGPIPE; if the container inherited that, `yes` would never stop.
    r = cli("run", "--rm", "busybox", "sh", "-c", "yes | head -n 2", timeout=20)
    assert r.out == "y\ny\n" and r.code == 0, r


def _popen_run(state_root, *args: str) -> subprocess.Popen:
    env = {**os.environ, "MINIDOCKER_ROOT": str(state_root)}
    return subprocess.Popen([sys.executable, "-m", "minidocker", "run", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_output(proc: subprocess.Popen, timeout: float = 10) -> str:
    """The first line the container prints: our readiness handshake (no sleeps)."""
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), True)
    deadline = time.monotonic() + timeout
    line = proc.stdout.readline()
    assert time.monotonic() < deadline, "container did not get ready"
    return line


def test_sigterm_to_the_cli_is_forwarded_and_init_exits_143(state_root):
    proc = _popen_run(state_root, "--rm", "--init", "busybox", "sh", "-c", "echo ready; sleep 60")
    try:
        assert _wait_for_output(proc) == "ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 143
    finally:
        proc.kill()
        proc.communicate()


def test_pid1_without_a_handler_ignores_sigterm_but_not_sigkill(state_root):
    # pid_namespaces(7): PID 1 gets only signals it has a handler for; SIGKILL from an
    # ancestor namespace is the exception. This is why `docker stop` needs a grace period.
    proc = _popen_run(state_root, "--rm", "busybox", "sh", "-c", "echo ready; exec sleep 60")
    try:
        assert _wait_for_output(proc) == "ready\n"
        proc.send_signal(signal.SIGTERM)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.5)
        os.kill(_container_pid1(state_root), signal.SIGKILL)
        assert proc.wait(timeout=10) == 137
    finally:
        proc.kill()
        proc.communicate()


def _container_pid1(state_root) -> int:
    from minidocker.engine.container import list_containers
    from minidocker.paths import state_roots

    running = [c for c in list_containers(state_roots({"MINIDOCKER_ROOT": str(state_root)}))
               if c.status == "running"]
    assert len(running) == 1, running
    assert running[0].pid is not None
    return running[0].pid


def test_init_reaps_orphaned_zombies(cli):
    # The orphans of `sh -c '(sleep 0 &)'` are re-parented to PID 1; with --init they are reaped.
    script = "for i in 1 2 3 4 5; do (true &); done; sleep 0.3; ps -o stat,comm | grep -c '^Z' || true"
    with_init = cli("run", "--rm", "--init", "busybox", "sh", "-c", script)
    assert with_init.out.strip() == "0", with_init


def test_a_container_gets_a_terminal_with_tty(state_root):
    import pty

    master, slave = pty.openpty()
    env = {**os.environ, "MINIDOCKER_ROOT": str(state_root)}
    proc = subprocess.Popen([sys.executable, "-m", "minidocker", "run", "--rm", "-it", "busybox", "sh", "-c",
                             "tty; echo TERM=$TERM; stty size; exit 7"],
                            stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    output = b""
    try:
        code = proc.wait(timeout=20)
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    text = output.decode(errors="replace")
    assert code == 7, text
    assert "/dev/pts/0" in text, text
    assert "TERM=xterm" in text, text
