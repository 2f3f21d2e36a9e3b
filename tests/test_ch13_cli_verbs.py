"""Chapter 13: ``minidocker pause|unpause|rename|top|stats --no-stream|port`` through minidockerd.

Each is a thin client of an Engine API endpoint the daemon serves; each is compared with
what the real docker CLI prints for the same container on the same daemon (stdout and exit
code; stderr carries the daemon's same message). ``port`` uses a daemon in a network
sandbox (minidocker/network/sandbox.py), so that ``-p`` publishes without touching the host.
Without a daemon the commands say how to start one.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from daemonkit import Minidockerd, assert_clean, daemon_fixture, sandbox_fixture

pytestmark = [pytest.mark.ch13, pytest.mark.root, pytest.mark.netns, pytest.mark.overlay]

PORT = 15900   # this file's host ports: 15900-15949
REPO = Path(__file__).resolve().parent.parent


daemon = daemon_fixture("cliverbs")   # no bridge: containers run with --network none, for the cgroup verbs


@pytest.fixture
def clean(daemon):
    yield daemon
    daemon.remove_all()


sandbox = sandbox_fixture("cliports")


@pytest.fixture
def bridged(sandbox):
    """A daemon in a network sandbox, for ``-p`` (its bridge and DNAT rules stay in the sandbox)."""
    with Minidockerd.in_sandbox(sandbox) as d:
        try:
            yield d
        finally:
            d.remove_all()
    assert_clean(sandbox)


def ours(daemon, *args: str) -> subprocess.CompletedProcess:
    """``minidocker ARGS`` as a user runs it, talking to this daemon (MINIDOCKER_HOST)."""
    return subprocess.run([sys.executable, "-m", "minidocker", *args], env={**daemon.env, "MINIDOCKER_HOST":
                          daemon.host}, capture_output=True, text=True, timeout=60, cwd=REPO)


def theirs(daemon, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], env=daemon.env, capture_output=True, text=True, timeout=60)


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"{result.args}: exit {result.returncode}\n{result.stdout}{result.stderr}"
    return result.stdout


def same(daemon, *args: str) -> str:
    """Run ``args`` with both CLIs: the same exit code and stdout; stdout."""
    mine, docker_s = ours(daemon, *args), theirs(daemon, *args)
    assert (mine.returncode, mine.stdout) == (docker_s.returncode, docker_s.stdout), (args, mine, docker_s)
    return mine.stdout


def state(daemon, ref: str) -> dict:
    return json.loads(ok(theirs(daemon, "inspect", ref)))[0]["State"]


def test_pause_and_unpause_print_what_docker_prints_and_freeze(clean):
    ok(theirs(clean, "run", "-d", "--network", "none", "--name", "pa", "busybox", "sleep", "100"))
    ok(theirs(clean, "run", "-d", "--network", "none", "--name", "pb", "busybox", "sleep", "100"))
    mine, docker_s = ours(clean, "pause", "pa"), theirs(clean, "pause", "pb")
    assert mine.returncode == docker_s.returncode == 0 and (mine.stdout, docker_s.stdout) == ("pa\n", "pb\n")
    assert state(clean, "pa")["Status"] == state(clean, "pb")["Status"] == "paused"
    again = ours(clean, "pause", "pa"), theirs(clean, "pause", "pb")   # already paused: a conflict
    assert again[0].returncode == again[1].returncode == 1, again
    assert "is already paused" in again[0].stderr and "is already paused" in again[1].stderr, again
    mine, docker_s = ours(clean, "unpause", "pa"), theirs(clean, "unpause", "pb")
    assert (mine.returncode, mine.stdout, docker_s.stdout) == (0, "pa\n", "pb\n")
    assert state(clean, "pa")["Status"] == state(clean, "pb")["Status"] == "running"
    missing = ours(clean, "pause", "nosuch"), theirs(clean, "pause", "nosuch")
    assert [(m.returncode, m.stdout) for m in missing] == [(1, ""), (1, "")], missing
    assert all("No such container: nosuch" in m.stderr for m in missing), missing


def test_rename_prints_nothing_and_refuses_a_taken_name_as_docker_does(clean):
    ok(theirs(clean, "create", "--network", "none", "--name", "first", "busybox", "true"))
    ok(theirs(clean, "create", "--network", "none", "--name", "second", "busybox", "true"))
    mine, docker_s = ours(clean, "rename", "first", "first2"), theirs(clean, "rename", "second", "second2")
    assert (mine.returncode, mine.stdout) == (docker_s.returncode, docker_s.stdout) == (0, "")
    names = {json.loads(ok(theirs(clean, "inspect", n)))[0]["Name"] for n in ("first2", "second2")}
    assert names == {"/first2", "/second2"}
    taken = ours(clean, "rename", "first2", "second2"), theirs(clean, "rename", "second2", "first2")
    assert taken[0].returncode == taken[1].returncode == 1, taken
    assert "is already in use" in taken[0].stderr and "is already in use" in taken[1].stderr, taken
    same(clean, "rename", "nosuch", "other")
    assert "No such container: nosuch" in ours(clean, "rename", "nosuch", "other").stderr


def test_top_prints_dockers_table_with_and_without_ps_options(clean):
    ok(theirs(clean, "run", "-d", "--network", "none", "--name", "tp", "busybox", "sh", "-c",
              "sleep 100 & sleep 100"))
    table = same(clean, "top", "tp")
    assert table.splitlines()[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    assert sum("sleep 100" in line for line in table.splitlines()) == 2, table
    assert same(clean, "top", "tp", "-o", "pid,args").splitlines()[0].split() == ["PID", "COMMAND"]
    assert same(clean, "top", "nosuch") == ""


def _shape(table: str) -> list[str]:
    """A stats table with its figures as N and runs of spaces as two: the columns, not the readings."""
    return [re.sub(r" {2,}", "  ", re.sub(r"\d+(\.\d+)?", "N", line)).strip() for line in table.splitlines()]


def test_stats_no_stream_has_dockers_columns_and_figures(clean):
    cid = ok(theirs(clean, "run", "-d", "--name", "st", "--network", "none", "-m", "64m", "busybox", "sleep",
                    "100")).strip()
    for args in (["stats", "--no-stream", "st"], ["stats", "--no-stream"]):
        mine, docker_s = ours(clean, *args), theirs(clean, *args)
        assert mine.returncode == docker_s.returncode == 0, (mine, docker_s)
        assert mine.stdout.splitlines()[0] == docker_s.stdout.splitlines()[0]   # the header, spaced alike
        assert _shape(mine.stdout) == _shape(docker_s.stdout), (mine.stdout, docker_s.stdout)
        row, docker_row = (re.split(r" {2,}", out.stdout.splitlines()[1]) for out in (mine, docker_s))
        assert row[:2] == docker_row[:2] == [cid[:12], "st"]
        assert row[3].split(" / ")[1] == docker_row[3].split(" / ")[1] == "64MiB"   # the limit
        assert row[7] == docker_row[7] == "1"   # PIDS
    assert ours(clean, "stats", "--no-stream", "nosuch").returncode == 1


def test_port_lists_like_docker_and_names_one_private_port(bridged):
    ok(theirs(bridged, "run", "-d", "--name", "pp", "-p", f"127.0.0.1:{PORT + 1}:80", "-p", f"{PORT + 2}:80",
              "-p", f"{PORT + 3}:53/udp", "-p", f"{PORT + 4}:443", "busybox", "sleep", "100"))
    listed = same(bridged, "port", "pp")   # sorted "naturally", as the docker CLI does: 443 after 80
    assert listed.splitlines() == [f"53/udp -> 0.0.0.0:{PORT + 3}", f"80/tcp -> 0.0.0.0:{PORT + 2}",
                                   f"80/tcp -> 127.0.0.1:{PORT + 1}",
                                   f"443/tcp -> 0.0.0.0:{PORT + 4}"], listed
    assert same(bridged, "port", "pp", "80").splitlines() == [f"0.0.0.0:{PORT + 2}", f"127.0.0.1:{PORT + 1}"]
    assert same(bridged, "port", "pp", "53/udp") == f"0.0.0.0:{PORT + 3}\n"
    for args in (["port", "pp", "81"], ["port", "pp", "x"], ["port", "nosuch"]):
        mine, docker_s = ours(bridged, *args), theirs(bridged, *args)
        assert (mine.returncode, mine.stdout) == (docker_s.returncode, docker_s.stdout) == (1, ""), \
            (mine, docker_s)
    assert "No public port '81' published for pp" in ours(bridged, "port", "pp", "81").stderr
    ok(theirs(bridged, "create", "--name", "pq", "-p", f"{PORT + 5}:80", "busybox", "true"))
    assert same(bridged, "port", "pq") == ""   # created: nothing published yet


@pytest.mark.parametrize("args", [["pause", "x"], ["unpause", "x"], ["rename", "x", "y"], ["top", "x"],
                                  ["port", "x"]])
def test_without_a_daemon_they_say_how_to_start_it(args, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "MINIDOCKER_HOST"}
    result = subprocess.run([sys.executable, "-m", "minidocker", *args],
                            env={**env, "MINIDOCKER_ROOT": str(tmp_path)},
                            capture_output=True, text=True, timeout=30, cwd=REPO)
    assert result.returncode == 125 and result.stdout == ""
    assert result.stderr == (f"minidocker: {args[0]} needs minidockerd, and no daemon answers\n"
                             "hint: start it with: minidocker daemon start\n")
