"""Chapter 01: the command line — help, bad input (a clear error, exit 125, nothing left), ps and rm."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.ch01, pytest.mark.root]


def test_help_lists_the_commands(cli):
    r = cli("--help")
    assert r.code == 0, r
    for command in ("run", "exec", "ps", "rm", "images", "doctor", "system"):
        assert command in r.out, r


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # --pull never: a missing image is otherwise pulled (from Docker Hub here; chapter 07)
        (["run", "--rm", "--pull", "never", "no-such-image"], "No such image: no-such-image:latest"),
        (["run", "--rm", "Not_A_Valid_Reference"], "invalid reference format"),
        (["run", "--rm", "--entrypoint", "", "busybox"], "no command specified"),
        (["run", "--rm", "--hostname", "bad_name!", "busybox", "true"], "invalid hostname 'bad_name!'"),
        (["run", "--rm", "--hostname", "a" * 65, "busybox", "true"], "invalid hostname"),
        (["run", "--rm", "-e", "=value", "busybox", "true"], "invalid environment variable '=value'"),
        (["run", "--rm", "-u", "alice", "busybox", "true"], "invalid user 'alice'"),
        (["run", "--rm", "-w", "relative/dir", "busybox", "true"], "it must be absolute"),
        (["run"], "'minidocker run' requires at least 1 argument: IMAGE"),
        (["run", "--no-such-flag", "busybox"], "unknown flag: --no-such-flag"),
        (["run", "--name"], "flag needs an argument: --name"),
        (["run", "--rm=maybe", "busybox"], "invalid argument 'maybe' for --rm"),
        (["rm"], "'minidocker rm' requires at least 1 argument: CONTAINERS"),
        (["system", "frobnicate"], "unknown command 'frobnicate' for 'minidocker system'"),
    ],
)
def test_bad_input_is_a_clear_error_with_exit_125_and_leaves_nothing(cli, args, message):
    r = cli(*args)
    assert r.code == 125, r
    assert r.err.startswith("minidocker: ") and message in r.err, r
    assert "Traceback" not in r.err, r


def test_not_root_is_a_clear_error(cli, state_root):
    env = {**os.environ, "MINIDOCKER_ROOT": str(state_root)}
    proc = subprocess.run([sys.executable, "-m", "minidocker", "run", "--rm", "busybox", "true"], env=env,
                          capture_output=True, text=True, user=65534, group=65534, extra_groups=[], cwd="/")
    assert proc.returncode == 125, proc
    assert "needs root" in proc.stderr and "hint:" in proc.stderr, proc.stderr


def test_a_name_in_use_is_a_conflict(cli):
    assert cli("run", "--name", "taken", "busybox", "true").code == 0
    try:
        r = cli("run", "--rm", "--name", "taken", "busybox", "true")
        assert r.code == 125 and 'the container name "/taken" is already in use' in r.err, r
    finally:
        assert cli("rm", "taken").code == 0


def test_ps_shows_stopped_containers_with_their_exit_code_and_rm_removes_them(cli):
    assert cli("run", "--name", "listed", "busybox", "sh", "-c", "exit 5").code == 5
    try:
        assert "listed" not in cli("ps").out
        listing = cli("ps", "-a").out
        line = next(line for line in listing.splitlines() if line.endswith("listed"))
        assert "Exited (5)" in line and "busybox:latest" in line, listing
    finally:
        assert cli("rm", "listed").code == 0
    assert "listed" not in cli("ps", "-a").out


def test_rm_of_an_unknown_container_fails(cli):
    r = cli("rm", "no-such-container")
    assert r.code == 1 and "no such container" in r.err, r


def test_system_prune_removes_stopped_containers(cli):
    assert cli("run", "--name", "prunable", "busybox", "true").code == 0
    r = cli("system", "prune", "-f")
    assert r.code == 0 and "deleted container" in r.out, r
    assert "prunable" not in cli("ps", "-a").out


def test_the_launcher_and_python_m_minidocker_behave_the_same(cli):
    """The tests run the launcher users run; ``python -m minidocker`` must give the same answers."""
    for args in (("run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"), ("rm", "nosuch")):
        fast, module = cli(*args), cli(*args, module=True)
        assert (fast.code, fast.out, fast.err) == (module.code, module.out, module.err), (fast, module)
