"""Chapter 13: the container verbs of minidockerd beyond run/stop/rm, with the docker CLI and docker-py.

``exec`` with a terminal (``-it``, ``/exec/{id}/resize``), ``-d``, ``-u``, ``-w``, ``-e`` and
``/exec/{id}/json``; ``pause``/``unpause`` (the cgroup freezer) and what stop, kill, rm,
exec and start do to a paused container; ``rename`` (atomic, through the engine's name
claims); ``top``; ``stats`` (one document and the stream); ``container prune``; the
``wait`` conditions; ``/containers/{id}/resize``. Where a private dockerd can do the same,
its status codes, messages and JSON keys are the reference (the ``docker`` marker).
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import threading
import time
from pathlib import Path

import pytest

from daemonkit import Minidockerd, daemon_fixture, docker, http_request, ok, wait_for

pytestmark = [pytest.mark.ch13, pytest.mark.root, pytest.mark.overlay]


daemon = daemon_fixture(None, "--debug")


@pytest.fixture
def client(daemon):
    import docker as docker_py  # docker-py: requirements.txt

    c = docker_py.DockerClient(base_url=daemon.host)
    yield c
    c.close()


def api(daemon, method: str, path: str, body: object = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    status, _, raw = daemon.request(method, "/v1.41" + path, data,
                                    {"Content-Type": "application/json"} if data else None)
    try:
        return status, json.loads(raw) if raw.strip() else None
    except ValueError:
        return status, raw.decode(errors="replace")


def sleeper(daemon, name: str, *command: str) -> str:
    return ok(daemon, "run", "-d", "--name", name, "busybox", *(command or ("sleep", "1000"))).strip()


# -- exec ---------------------------------------------------------------------------------------

def _in_a_terminal(argv: list[str], env: dict, rows: int, cols: int, typed: bytes = b"",
                   timeout: float = 20) -> tuple[int, bytes]:
    """Run ``argv`` with a pty of rows x cols as its stdin/stdout/stderr (as in a terminal window)."""
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    output = b""
    deadline = time.monotonic() + timeout
    sent = False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 4096)
                except OSError:  # EIO: every slave fd closed
                    break
                if not data:
                    break
                output += data
            if typed and not sent and b"ready" in output:
                os.write(master, typed)
                sent = True
            if proc.poll() is not None and not ready:
                break
        return proc.wait(timeout=max(deadline - time.monotonic(), 1)), output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def test_docker_exec_it_gets_a_terminal_of_the_clients_size_and_its_keystrokes(daemon):
    sleeper(daemon, "tty-host")
    try:
        code, output = _in_a_terminal(
            ["docker", "exec", "-it", "tty-host", "sh", "-c", "tty; stty size; echo ready; read line; "
             "echo got:$line; exit 3"], daemon.env, rows=33, cols=101, typed=b"hello\r")
        text = output.decode(errors="replace")
        assert code == 3, text
        assert "/dev/pts/" in text and "33 101" in text and "got:hello" in text, text
        assert "\r\n" in text, "a terminal's output ends lines with CR LF"
    finally:
        ok(daemon, "rm", "-f", "tty-host")


def test_exec_with_a_tty_through_docker_py_resizes_and_has_no_frames(daemon, client):
    container = client.containers.run("busybox", ["sleep", "1000"], detach=True)
    try:
        eid = client.api.exec_create(container.id, ["sh", "-c", "sleep 0.5; stty size"], tty=True)["Id"]
        sock = client.api.exec_start(eid, tty=True, socket=True)
        client.api.exec_resize(eid, height=21, width=77)
        raw = sock._sock if hasattr(sock, "_sock") else sock
        raw.settimeout(10)
        data = b""
        while True:
            chunk = raw.recv(4096)
            if not chunk:
                break
            data += chunk
        raw.close()
        assert data == b"21 77\r\n", data  # raw bytes: no 8-byte headers with a tty
        inspected = client.api.exec_inspect(eid)
        tty = inspected["ProcessConfig"]["tty"]
        assert (inspected["Running"], inspected["ExitCode"], tty) == (False, 0, True)
    finally:
        container.remove(force=True)


def test_exec_d_u_w_e_and_exec_inspect(daemon, client):
    sleeper(daemon, "exec-host")
    try:
        out = docker(daemon, "exec", "-u", "nobody", "-w", "/tmp", "-e", "GREETING=hi", "exec-host",
                     "sh", "-c", "id -u; id -g; pwd; echo $GREETING")
        assert (out.returncode, out.text) == (0, "65534\n65534\n/tmp\nhi\n"), out.errors
        numeric = ok(daemon, "exec", "-u", "1234:5", "exec-host", "id")
        assert numeric.startswith("uid=1234 gid=5"), numeric
        assert ok(daemon, "exec", "-d", "exec-host", "sh", "-c", "sleep 0.3; touch /tmp/done-by-d") == ""
        wait_for(lambda: docker(daemon, "exec", "exec-host", "test", "-e", "/tmp/done-by-d").returncode == 0,
                 what="the detached exec to run")
        container = client.containers.get("exec-host")
        eid = client.api.exec_create(container.id, ["sh", "-c", "sleep 1; exit 5"])["Id"]
        before = client.api.exec_inspect(eid)
        assert (before["Running"], before["ExitCode"], before["Pid"]) == (False, None, 0), before
        client.api.exec_start(eid, detach=True)
        running = client.api.exec_inspect(eid)
        assert running["Running"] is True and running["Pid"] > 0 and running["ExitCode"] is None, running
        assert running["ContainerID"] == container.id and running["ProcessConfig"]["entrypoint"] == "sh"
        wait_for(lambda: not client.api.exec_inspect(eid)["Running"], what="the exec to end")
        assert client.api.exec_inspect(eid)["ExitCode"] == 5
        unknown = docker(daemon, "exec", "-u", "no-such-user", "exec-host", "true")
        assert unknown.returncode != 0 and "no-such-user" in unknown.errors, unknown.errors
    finally:
        ok(daemon, "rm", "-f", "exec-host")


# -- pause and unpause ---------------------------------------------------------------------------

def _log_lines(daemon, name: str) -> int:
    return ok(daemon, "logs", name).count("\n")


def _freezer_state(daemon, name: str) -> str:
    from minidocker.cgroups import open_cgroup

    directory = Path(ok(daemon, "inspect", "-f", "{{.LogPath}}", name).strip()).parent
    group = open_cgroup(json.loads((directory / "config.json").read_text())["linux"]["cgroupsPath"])
    if group.version == 2:
        return "FROZEN" if "frozen 1" in Path(group.dir, "cgroup.events").read_text() else "THAWED"
    return Path(group.dir("freezer"), "freezer.state").read_text().strip()


def test_pause_freezes_every_process_and_unpause_thaws_them(daemon, client):
    sleeper(daemon, "ticking", "sh", "-c", "while true; do echo tick; sleep 0.05; done")
    try:
        wait_for(lambda: _log_lines(daemon, "ticking") > 2, what="the first ticks")
        assert ok(daemon, "pause", "ticking").strip() == "ticking"
        assert _freezer_state(daemon, "ticking") == "FROZEN"
        frozen_at = _log_lines(daemon, "ticking")
        time.sleep(0.5)
        assert _log_lines(daemon, "ticking") == frozen_at, "a frozen process wrote"
        assert ok(daemon, "inspect", "-f", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
                  "ticking").split() == ["paused", "true", "true"]
        row = ok(daemon, "ps", "--filter", "name=ticking", "--format", "{{.State}}|{{.Status}}").strip()
        assert row.startswith("paused|Up ") and row.endswith("(Paused)"), row
        assert ok(daemon, "ps", "-q", "--filter", "status=paused").strip() == ok(
            daemon, "inspect", "-f", "{{.ID}}", "ticking").strip()[:12]
        assert client.containers.get("ticking").status == "paused"
        client.containers.get("ticking").unpause()
        assert _freezer_state(daemon, "ticking") == "THAWED"
        wait_for(lambda: _log_lines(daemon, "ticking") > frozen_at + 2, what="ticks after the thaw")
        assert client.containers.get("ticking").status == "running"
    finally:
        ok(daemon, "rm", "-f", "ticking")


def test_stop_kill_and_rm_f_of_a_paused_container_end_it_as_dockerd_does(daemon):
    sleeper(daemon, "paused-stop", "sh", "-c",
            "trap 'exit 7' TERM; echo ready; while true; do sleep 0.1; done")
    sleeper(daemon, "paused-kill")
    sleeper(daemon, "paused-rm")
    try:
        wait_for(lambda: ok(daemon, "logs", "paused-stop") == "ready\n", what="the trap to be set")
        for name in ("paused-stop", "paused-kill", "paused-rm"):
            ok(daemon, "pause", name)
        started = time.monotonic()
        ok(daemon, "stop", "-t", "20", "paused-stop")
        assert time.monotonic() - started < 10, "SIGTERM reached the trap only after the grace period"
        assert ok(daemon, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Paused}}",
                  "paused-stop").split() == ["exited", "7", "false"]
        ok(daemon, "kill", "paused-kill")
        assert ok(daemon, "wait", "paused-kill").strip() == "137"
        refused = docker(daemon, "rm", "paused-rm")
        assert refused.returncode == 1 and "You cannot remove a paused container" in refused.errors
        ok(daemon, "rm", "-f", "paused-rm")
        assert docker(daemon, "inspect", "paused-rm").returncode == 1
    finally:
        docker(daemon, "rm", "-f", "paused-stop", "paused-kill", "paused-rm")


def test_exec_and_start_of_a_paused_container_are_refused(daemon):
    cid = sleeper(daemon, "paused-refusals")
    try:
        ok(daemon, "pause", "paused-refusals")
        refused = docker(daemon, "exec", "paused-refusals", "true")
        assert refused.returncode != 0 and f"Container {cid} is paused, unpause the container before exec" \
            in refused.errors, refused.errors
        status, body = api(daemon, "POST", "/containers/paused-refusals/start")
        assert (status, body) == (409, {"message": "cannot start a paused container, try unpause instead"})
        ok(daemon, "unpause", "paused-refusals")
        assert ok(daemon, "exec", "paused-refusals", "echo", "thawed") == "thawed\n"
    finally:
        ok(daemon, "rm", "-f", "paused-refusals")


# -- rename ----------------------------------------------------------------------------------------

def test_rename_frees_the_old_name_and_lookups_follow(daemon):
    cid = sleeper(daemon, "first-name")
    try:
        assert ok(daemon, "rename", "first-name", "second-name") == ""
        assert ok(daemon, "inspect", "-f", "{{.Name}}", cid).strip() == "/second-name"
        assert ok(daemon, "ps", "--filter", f"id={cid}", "--format", "{{.Names}}").strip() == "second-name"
        assert api(daemon, "GET", "/containers/first-name/json")[0] == 404
        assert api(daemon, "GET", "/containers/second-name/json")[1]["Id"] == cid
        assert api(daemon, "GET", f"/containers/{cid[:12]}/json")[1]["Name"] == "/second-name"
        other = ok(daemon, "create", "--name", "first-name", "busybox", "true").strip()
        assert other != cid
        ok(daemon, "rm", "first-name")
    finally:
        ok(daemon, "rm", "-f", cid)


def test_concurrent_renames_to_one_name_give_it_to_exactly_one(daemon):
    ids = [ok(daemon, "create", "busybox", "true").strip() for _ in range(8)]
    try:
        results: list[int] = []

        def rename(cid: str) -> None:
            results.append(api(daemon, "POST", f"/containers/{cid}/rename?name=contested")[0])

        threads = [threading.Thread(target=rename, args=(cid,)) for cid in ids]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [204] + [409] * 7, results
        names = [api(daemon, "GET", f"/containers/{cid}/json")[1]["Name"] for cid in ids]
        assert names.count("/contested") == 1, names
    finally:
        for cid in ids:
            ok(daemon, "rm", "-f", cid)


def test_the_daemon_honours_a_name_claimed_through_the_engine(daemon):
    from minidocker.engine.container import claim_name, release_name
    from minidocker.paths import state_roots

    roots = state_roots({"MINIDOCKER_ROOT": str(daemon.root)})
    holder = "f" * 64
    claim_name(roots, "claimed-elsewhere", holder)  # held while this process lives (engine/container.py)
    try:
        taken = docker(daemon, "create", "--name", "claimed-elsewhere", "busybox", "true")
        assert taken.returncode != 0 and f'The container name "/claimed-elsewhere" is already in use by ' \
            f'container "{holder}"' in taken.errors, taken.errors
        cid = ok(daemon, "create", "busybox", "true").strip()
        refused = api(daemon, "POST", f"/containers/{cid}/rename?name=claimed-elsewhere")
        assert refused[0] == 409, refused
        ok(daemon, "rm", cid)
    finally:
        release_name(roots.containers, "claimed-elsewhere", holder)


# -- top ---------------------------------------------------------------------------------------------

def test_top_lists_the_containers_processes_with_ps_columns(daemon, client):
    cid = sleeper(daemon, "top-host", "sh", "-c", "sleep 1000 & sleep 1001; true")
    try:
        wait_for(lambda: len(client.api.top(cid)["Processes"]) == 3, what="three processes")
        top = client.api.top(cid)
        assert top["Titles"] == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        commands = sorted(row[-1] for row in top["Processes"])
        assert commands == ["sh -c sleep 1000 & sleep 1001; true", "sleep 1000", "sleep 1001"], commands
        pid = int(ok(daemon, "inspect", "-f", "{{.State.Pid}}", cid))
        assert str(pid) in [row[1] for row in top["Processes"]]
        custom = client.api.top(cid, ps_args="-o pid,comm")
        assert custom["Titles"] == ["PID", "COMMAND"] and sorted(r[1] for r in custom["Processes"]) == \
            ["sh", "sleep", "sleep"]
        lines = ok(daemon, "top", "top-host", "aux").splitlines()
        assert lines[0].split()[:3] == ["USER", "PID", "%CPU"] and len(lines) == 4, lines
        bad = api(daemon, "GET", f"/containers/{cid}/top?ps_args=--no-such-option")
        assert bad[0] == 400 and bad[1]["message"].startswith("ps: "), bad
    finally:
        ok(daemon, "rm", "-f", cid)


def test_parse_ps_keeps_the_command_line_whole_and_thread_rows_with_their_process():
    from minidocker.engine.containers import parse_ps

    output = ("UID   PID  PPID  LWP CMD\n"
              "root  10   1     10  sh -c sleep 5\n"
              "root  -    -     11  thread of 10\n"
              "root  20   1     20  other\n"
              "root  -    -     21  thread of 20\n")
    assert parse_ps(output, {10}) == {"Titles": ["UID", "PID", "PPID", "LWP", "CMD"], "Processes": [
        ["root", "10", "1", "10", "sh -c sleep 5"], ["root", "-", "-", "11", "thread of 10"]]}
    from minidocker.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match="Couldn't find PID field in ps output"):
        parse_ps("USER COMMAND\nroot sh\n", {1})


# -- stats -------------------------------------------------------------------------------------------

def test_stats_no_stream_has_dockers_figures_from_the_cgroup(daemon, client):
    cid = sleeper(daemon, "busy-stats", "sh", "-c", "sleep 1000 & while true; do :; done")
    try:
        container = client.containers.get(cid)
        doc = container.stats(stream=False)
        for key in ("read", "preread", "pids_stats", "blkio_stats", "num_procs", "storage_stats", "cpu_stats",
                    "precpu_stats", "memory_stats", "name", "id"):
            assert key in doc, key
        assert (doc["name"], doc["id"]) == ("/busy-stats", cid)
        assert doc["pids_stats"]["current"] == 2  # sh and sleep
        cpu, pre = doc["cpu_stats"], doc["precpu_stats"]
        assert cpu["online_cpus"] >= 1 and cpu["system_cpu_usage"] > pre["system_cpu_usage"] > 0
        assert cpu["cpu_usage"]["total_usage"] > pre["cpu_usage"]["total_usage"], "a busy loop used no CPU"
        memory = doc["memory_stats"]
        assert memory["usage"] > 0 and memory["limit"] > memory["usage"]
        assert isinstance(doc["memory_stats"]["stats"], dict) and doc["memory_stats"]["stats"]
        assert doc["read"] > doc["preread"] != "0001-01-01T00:00:00Z"
        row = ok(daemon, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}} {{.CPUPerc}}", "busy-stats")
        name, pids, cpu_text = row.split()
        assert (name, pids) == ("busy-stats", "2") and float(cpu_text.rstrip("%")) > 0, row
    finally:
        ok(daemon, "rm", "-f", cid)


def test_the_stats_stream_sends_a_document_a_second_each_with_the_previous_as_precpu(daemon, client):
    cid = sleeper(daemon, "streamed-stats")
    try:
        stream = client.api.stats(cid, stream=True, decode=True)
        first, second = next(stream), next(stream)
        stream.close()
        assert second["precpu_stats"] == first["cpu_stats"] and second["preread"] == first["read"]
        from minidocker.engine.logfile import parse_rfc3339nano

        gap = (parse_rfc3339nano(second["read"]) - parse_rfc3339nano(first["read"])) / 1e9
        assert 0.8 < gap < 3, gap
    finally:
        ok(daemon, "rm", "-f", cid)


def test_stats_of_a_stopped_container_are_zeros(daemon):
    cid = ok(daemon, "create", "--name", "stopped-stats", "busybox", "true").strip()
    try:
        status, doc = api(daemon, "GET", f"/containers/{cid}/stats?stream=0")
        assert status == 200 and doc["read"] == "0001-01-01T00:00:00Z" and doc["memory_stats"] == {}
        assert doc["cpu_stats"]["cpu_usage"]["total_usage"] == 0 and doc["name"] == "/stopped-stats"
    finally:
        ok(daemon, "rm", cid)


def _write_tree(base: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = base / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_api_stats_reads_a_cgroup_v2_group(tmp_path):
    from minidocker.cgroups.v2 import CgroupV2
    from minidocker.engine.stats import api_stats

    _write_tree(tmp_path / "minidocker" / "c1", {
        "cpu.stat": "usage_usec 5000\nuser_usec 3000\nsystem_usec 2000\nnr_periods 4\nnr_throttled 1\n"
                    "throttled_usec 700\n",
        "memory.current": "1048576\n", "memory.max": "max\n", "memory.stat": "anon 4096\nfile 8192\n",
        "memory.events": "low 0\nhigh 0\nmax 0\noom 2\noom_kill 1\n",
        "pids.current": "3\n", "pids.max": "50\n",
        "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"})
    doc = api_stats(CgroupV2("/minidocker/c1", root=str(tmp_path)), "web", "c1" * 32)
    usage = doc["cpu_stats"]["cpu_usage"]
    assert (usage["total_usage"], usage["usage_in_usermode"], usage["usage_in_kernelmode"]) == (
        5000000, 3000000, 2000000)
    assert "percpu_usage" not in usage  # v2 has no per-CPU figures (dockerd leaves it out too)
    assert doc["cpu_stats"]["throttling_data"] == {"periods": 4, "throttled_periods": 1,
                                                   "throttled_time": 700000}
    memory = doc["memory_stats"]
    assert (memory["usage"], memory["stats"], memory["failcnt"]) == (1048576, {"anon": 4096, "file": 8192}, 2)
    assert memory["limit"] == os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")  # "max": the host's
    assert doc["pids_stats"] == {"current": 3, "limit": 50}
    assert doc["blkio_stats"]["io_service_bytes_recursive"] == [
        {"major": 8, "minor": 0, "op": "read", "value": 4096},
        {"major": 8, "minor": 0, "op": "write", "value": 8192}]
    assert doc["blkio_stats"]["io_serviced_recursive"][1]["value"] == 2
    assert doc["precpu_stats"]["cpu_usage"]["total_usage"] == 0 and doc["name"] == "/web"


def test_api_stats_reads_a_cgroup_v1_group(tmp_path):
    from minidocker.cgroups.v1 import CgroupV1
    from minidocker.engine.stats import api_stats

    ticks = os.sysconf("SC_CLK_TCK")
    for controller, files in {
        "cpuacct": {"cpuacct.usage": "9000\n", "cpuacct.usage_percpu": "4000 5000 \n",
                    "cpuacct.stat": f"user {ticks}\nsystem {2 * ticks}\n"},
        "cpu": {"cpu.stat": "nr_periods 3\nnr_throttled 2\nthrottled_time 123\n"},
        "memory": {"memory.usage_in_bytes": "2048\n", "memory.max_usage_in_bytes": "4096\n",
                   "memory.failcnt": "1\n", "memory.limit_in_bytes": "65536\n",
                   "memory.stat": "cache 1\nrss 2\n"},
        "pids": {"pids.current": "1\n", "pids.max": "max\n"},
        "blkio": {"blkio.throttle.io_service_bytes_recursive": "8:0 Read 10\n8:0 Write 20\nTotal 30\n"},
    }.items():
        _write_tree(tmp_path / controller / "minidocker" / "c1", files)
    doc = api_stats(CgroupV1("/minidocker/c1", root=str(tmp_path)), "db", "c1" * 32, previous={
        "read": "2026-01-01T00:00:00.000000000Z", "cpu_stats": {"cpu_usage": {"total_usage": 1}}})
    usage = doc["cpu_stats"]["cpu_usage"]
    assert usage == {"total_usage": 9000, "percpu_usage": [4000, 5000], "usage_in_kernelmode": 2000000000,
                     "usage_in_usermode": 1000000000}
    assert doc["cpu_stats"]["throttling_data"] == {"periods": 3, "throttled_periods": 2,
                                                   "throttled_time": 123}
    assert doc["memory_stats"] == {"usage": 2048, "max_usage": 4096, "stats": {"cache": 1, "rss": 2},
                                   "failcnt": 1, "limit": 65536}
    assert doc["pids_stats"] == {"current": 1}
    assert [e["op"] for e in doc["blkio_stats"]["io_service_bytes_recursive"]] == ["Read", "Write"]
    assert doc["precpu_stats"] == {"cpu_usage": {"total_usage": 1}}
    assert doc["preread"].startswith("2026-01-01")


# -- prune, wait, resize -------------------------------------------------------------------------------

def test_container_prune_removes_what_does_not_run(daemon, client):
    running = sleeper(daemon, "prune-running")
    paused = sleeper(daemon, "prune-paused")
    ok(daemon, "pause", "prune-paused")
    exited = ok(daemon, "run", "-d", "busybox", "true").strip()
    created = ok(daemon, "create", "busybox", "true").strip()
    try:
        assert ok(daemon, "wait", exited).strip() == "0"
        out = ok(daemon, "container", "prune", "-f")
        assert exited in out and created in out and running not in out and paused not in out, out
        remaining = {c.id for c in client.containers.list(all=True)}
        assert {running, paused} <= remaining and not {exited, created} & remaining
        again = client.containers.prune()
        assert again["ContainersDeleted"] is None and again["SpaceReclaimed"] == 0
    finally:
        docker(daemon, "rm", "-f", running, paused, exited, created)


def _wait_in_thread(daemon, cid: str, condition: str) -> tuple[threading.Thread, list]:
    answer: list = []

    def run() -> None:
        answer.append(api(daemon, "POST", f"/containers/{cid}/wait?condition={condition}"))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(0.2)
    return thread, answer


def test_wait_next_exit_and_removed(daemon):
    cid = ok(daemon, "create", "busybox", "sh", "-c", "exit 4").strip()
    try:
        next_exit, got = _wait_in_thread(daemon, cid, "next-exit")
        removed, gone = _wait_in_thread(daemon, cid, "removed")
        assert not got, "next-exit answered before the container ran"
        ok(daemon, "start", cid)
        next_exit.join(10)
        assert got == [(200, {"Error": None, "StatusCode": 4})]
        time.sleep(0.3)
        assert not gone, "removed answered before the removal"
        assert api(daemon, "POST", f"/containers/{cid}/wait")[1]["StatusCode"] == 4  # not-running: at once
        ok(daemon, "rm", cid)
        removed.join(10)
        assert gone and gone[0][0] == 200 and gone[0][1]["StatusCode"] == 4, gone
    finally:
        docker(daemon, "rm", "-f", cid)
    # SPEC: dockerd 20.10 reads an unknown condition as not-running; later dockerds (and we) refuse it
    assert api(daemon, "POST", "/containers/nope/wait?condition=bogus")[0] == 400


def test_resize_sets_the_size_of_a_containers_terminal(daemon, client):
    container = client.containers.create("busybox", ["sh", "-c", "sleep 0.5; stty size"], tty=True)
    try:
        container.start()
        container.resize(height=30, width=100)
        assert container.wait(timeout=20)["StatusCode"] == 0
        assert container.logs() == b"30 100\r\n"
        status, body = api(daemon, "POST", f"/containers/{container.id}/resize?h=10&w=10")
        assert (status, body) == (409, {"message": f"Container {container.id} is not running"})
    finally:
        container.remove(force=True)


# -- bad input -------------------------------------------------------------------------------------

def test_bad_input_gets_dockers_status_and_message(daemon):
    cid = ok(daemon, "create", "--name", "never-started", "busybox", "true").strip()
    other = ok(daemon, "create", "--name", "name-owner", "busybox", "true").strip()
    try:
        cases = [
            ("POST", "/containers/never-started/pause", 409, f"Container {cid} is not running"),
            ("POST", "/containers/never-started/unpause", 409, f"Container {cid} is not paused"),
            ("GET", "/containers/never-started/top", 409, f"Container {cid} is not running"),
            ("POST", "/containers/never-started/rename?name=name-owner", 409,
             'Error when allocating new name: Conflict. The container name "/name-owner" is already in use '
             f'by container "{other}". You have to remove (or rename) that container to be able to reuse '
             'that name.'),
            ("POST", "/containers/never-started/rename?name=never-started", 400,
             "Renaming a container with the same name as its current name"),
            ("POST", "/containers/never-started/rename?name=bad%20name", 400,
             "Error when allocating new name: Invalid container name (/bad name), only "
             "[a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
            ("POST", "/containers/never-started/rename", 400, "Neither old nor new names may be empty"),
            ("POST", "/containers/nope/pause", 404, "No such container: nope"),
            ("POST", "/containers/nope/rename?name=x1", 404, "No such container: nope"),
            ("GET", "/containers/nope/stats?stream=0", 404, "No such container: nope"),
            ("GET", "/exec/nope/json", 404, "No such exec instance: nope"),
            ("POST", "/exec/nope/start", 404, "No such exec instance: nope"),
            ("POST", "/exec/nope/resize?h=1&w=1", 404, "No such exec instance: nope"),
            ("POST", f"/containers/{cid}/exec", 409, f"Container {cid} is not running"),
        ]
        for method, path, status, message in cases:
            body = {"Cmd": ["true"]} if path.endswith("/exec") else None
            body = {"Detach": True} if "start" in path else body
            assert api(daemon, method, path, body) == (status, {"message": message}), (method, path)
        renamed = ok(daemon, "inspect", "-f", "{{.Name}}", cid).strip()
        assert renamed == "/never-started", "a refusal renamed it"
    finally:
        ok(daemon, "rm", cid, other)


# -- against a private dockerd ---------------------------------------------------------------------------

def _both(daemon, dockerd, method: str, path: str, body: object = None, ids: dict[str, str] | None = None):
    """The same request to both daemons: (status, message) each, container IDs replaced by their role."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data else None
    answers = []
    for target, socket_path in ((daemon, daemon.socket), (dockerd, str(dockerd.socket))):
        target_path = "/v1.41" + path.format(**(ids or {}).get(target, {}))
        status, _, raw = http_request(socket_path, method, target_path, data, headers)
        text = raw.decode(errors="replace")
        try:
            text = json.loads(raw)["message"]
        except (ValueError, KeyError, TypeError):
            pass
        for role, cid in (ids or {}).get(target, {}).items():
            text = text.replace(cid, f"<{role}>")
        answers.append((status, text))
    return answers


@pytest.mark.docker
def test_verbs_refuse_bad_input_as_dockerd_does(daemon, dockerd, busybox_in_dockerd):
    def pair(*args: str) -> dict:
        mine = ok(daemon, *args).strip()
        theirs = dockerd.docker(*args).strip()
        return {daemon: mine, dockerd: theirs}

    made = {daemon: [], dockerd: []}
    try:
        created = pair("create", "--network", "none", "--name", "diff-created", "busybox", "true")
        running = pair("run", "-d", "--network", "none", "--name", "diff-running", "busybox", "sleep", "100")
        for m in (created, running):
            made[daemon].append(m[daemon])
            made[dockerd].append(m[dockerd])
        ids = {t: {"created": created[t], "running": running[t]} for t in (daemon, dockerd)}
        cases = [
            ("POST", "/containers/{created}/pause"), ("POST", "/containers/{created}/unpause"),
            ("POST", "/containers/{running}/unpause"), ("GET", "/containers/{created}/top"),
            ("POST", "/containers/{created}/rename?name=diff-running"),
            ("POST", "/containers/{created}/rename?name=diff-created"),
            ("POST", "/containers/{created}/rename"), ("POST", "/containers/no-such/rename?name=zz"),
            ("POST", "/containers/no-such/pause"), ("GET", "/exec/no-such-exec/json"),
            ("POST", "/exec/no-such-exec/resize?h=1&w=1"), ("POST", "/containers/{created}/resize?h=1&w=1"),
            ("GET", "/containers/{running}/top?ps_args=--no-such-option"),
            ("GET", "/containers/{running}/top?ps_args=-o%20user=PID"),
        ]
        # dockerd 20.10 answers these client mistakes with a 500; ours are 4xx (the API's contract)
        client_errors = {"/containers/{created}/unpause", "/containers/{running}/unpause",
                         "/containers/{running}/top?ps_args=--no-such-option",
                         "/containers/{running}/top?ps_args=-o%20user=PID"}
        for method, path in cases:
            ours, theirs = _both(daemon, dockerd, method, path, ids=ids)
            if path in client_errors and theirs[0] == 500:
                assert 400 <= ours[0] < 500 and ours[1] == theirs[1], (method, path, ours, theirs)
            else:
                assert ours == theirs, (method, path)
        ok(daemon, "pause", "diff-running")
        dockerd.docker("pause", "diff-running")
        for method, path, body in (("POST", "/containers/{running}/pause", None),
                                   ("POST", "/containers/{running}/exec", {"Cmd": ["true"]}),
                                   ("DELETE", "/containers/{running}", None),
                                   ("POST", "/containers/{running}/start", None)):
            ours, theirs = _both(daemon, dockerd, method, path, body, ids=ids)
            assert ours == theirs, (method, path)
        assert _both(daemon, dockerd, "POST", "/containers/{running}/unpause", ids=ids) == [(204, "")] * 2
    finally:
        for target, cids in made.items():
            for cid in cids:
                if target is daemon:
                    docker(daemon, "rm", "-f", cid)
                else:
                    dockerd.docker("rm", "-f", cid, check=False)


@pytest.mark.docker
def test_top_stats_and_exec_inspect_have_dockerds_shape(daemon, dockerd, busybox_in_dockerd):
    import docker as docker_py

    ours = docker_py.DockerClient(base_url=daemon.host)
    theirs = docker_py.DockerClient(base_url=f"unix://{dockerd.socket}")
    made = []
    try:
        pair = [c.containers.run("busybox", ["sleep", "100"], detach=True, network_mode="none")
                for c in (ours, theirs)]
        made = list(zip((ours, theirs), pair))
        tops = [c.api.top(ctr.id) for c, ctr in made]
        assert tops[0]["Titles"] == tops[1]["Titles"]
        commands = [[row[-1] for row in top["Processes"]] for top in tops]
        assert commands[0] == commands[1] == ["sleep 100"], commands
        tops = [c.api.top(ctr.id, ps_args="-o pid,user,args") for c, ctr in made]
        assert tops[0]["Titles"] == tops[1]["Titles"]
        assert tops[0]["Processes"][0][1:] == tops[1]["Processes"][0][1:]
        docs = [ctr.stats(stream=False) for _, ctr in made]
        assert set(docs[0]) >= set(docs[1]) - {"networks"}, set(docs[1]) - set(docs[0])
        for key in ("cpu_stats", "precpu_stats", "memory_stats", "blkio_stats"):
            assert set(docs[0][key]) >= set(docs[1][key]) - {"percpu_usage"}, (key, docs)
        usages = [set(doc["cpu_stats"]["cpu_usage"]) for doc in docs]
        assert usages[0] >= usages[1] - {"percpu_usage"}, usages
        assert docs[0]["pids_stats"] == docs[1]["pids_stats"] == {"current": 1, **(
            {"limit": docs[1]["pids_stats"]["limit"]} if "limit" in docs[1]["pids_stats"] else {})}
        execs = [c.api.exec_create(ctr.id, ["sh", "-c", "exit 2"])["Id"] for c, ctr in made]
        before = [c.api.exec_inspect(eid) for (c, _), eid in zip(made, execs)]
        assert set(before[0]) >= set(before[1]), set(before[1]) - set(before[0])
        assert [(b["Running"], b["ExitCode"], b["Pid"]) for b in before] == [(False, None, 0)] * 2
        for (c, _), eid in zip(made, execs):
            c.api.exec_start(eid)
        after = [c.api.exec_inspect(eid) for (c, _), eid in zip(made, execs)]
        assert [(a["Running"], a["ExitCode"]) for a in after] == [(False, 2)] * 2
        stopped = [c.containers.create("busybox", ["true"], network_mode="none") for c in (ours, theirs)]
        made += list(zip((ours, theirs), stopped))
        zeros = [ctr.stats(stream=False) for ctr in stopped]
        assert set(zeros[0]) == set(zeros[1]) and zeros[0]["memory_stats"] == zeros[1]["memory_stats"] == {}
        assert zeros[0]["cpu_stats"] == zeros[1]["cpu_stats"] and zeros[0]["read"] == zeros[1]["read"]
    finally:
        for _, ctr in made:
            try:
                ctr.remove(force=True)
            except Exception:  # noqa: BLE001 - removed already
                pass
        ours.close()
        theirs.close()


def test_container_prune_filters_until_and_label_narrow_what_goes(daemon):
    doomed = ok(daemon, "create", "--label", "tier=scratch", "busybox", "true").strip()
    kept = ok(daemon, "create", "--label", "tier=precious", "busybox", "true").strip()
    try:
        assert ok(daemon, "container", "prune", "-f", "--filter", "until=1h") .count(doomed) == 0, \
            "until=1h removed a container created just now"
        out = ok(daemon, "container", "prune", "-f", "--filter", "label=tier=scratch")
        assert doomed in out and kept not in out, out
        assert ok(daemon, "container", "prune", "-f", "--filter", "label!=tier=precious").count(kept) == 0
        refused = docker(daemon, "container", "prune", "-f", "--filter", "colour=blue")
        assert refused.returncode == 1 and "invalid filter 'colour'" in refused.errors, refused.errors
        assert ok(daemon, "inspect", "-f", "{{.Id}}", kept).strip() == kept
    finally:
        docker(daemon, "rm", "-f", doomed, kept)


def test_a_paused_container_stays_paused_across_a_kill_9_of_the_daemon(tmp_path):
    import signal

    first = Minidockerd(tmp_path)
    try:
        sleeper(first, "frozen-through")
        ok(first, "pause", "frozen-through")
    finally:
        first.stop(signal.SIGKILL)
    with Minidockerd(tmp_path) as second:
        assert ok(second, "inspect", "-f", "{{.State.Status}}", "frozen-through").strip() == "paused"
        assert _freezer_state(second, "frozen-through") == "FROZEN"
        ok(second, "unpause", "frozen-through")
        assert ok(second, "exec", "frozen-through", "echo", "thawed") == "thawed\n"
        ok(second, "rm", "-f", "frozen-through")


def test_docker_py_pause_rename_top(client):
    container = client.containers.run("busybox", ["sleep", "1000"], detach=True, name="py-verbs")
    try:
        container.pause()
        container.reload()
        assert container.status == "paused" and container.attrs["State"]["Paused"] is True
        container.unpause()
        container.rename("py-verbs-renamed")
        container.reload()
        assert container.name == "py-verbs-renamed"
        assert container.top()["Processes"][0][-1] == "sleep 1000"
    finally:
        container.remove(force=True)


_GUEST_STATS = """
import json, os, sys, time
sys.path.insert(0, {repo!r})
from minidocker.cgroups import Resources, detect_mode, open_cgroup
from minidocker.engine.stats import api_stats

assert detect_mode() == "unified", detect_mode()
group = open_cgroup("/minidocker/stats-in-guest")
resources = Resources.from_oci({{"memory": {{"limit": 67108864}}, "pids": {{"limit": 20}}}})
group.create(resources.controllers() | {{"cpu"}})
group.apply(resources)
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.read(r, 1)
    data = bytearray(8 << 20)   # 8 MiB, touched
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        pass
    time.sleep(60)
    os._exit(0)
group.add_process(pid)
os.write(w, b"x")
time.sleep(0.2)
first = api_stats(group, "guest", "c" * 64)
time.sleep(0.6)
second = api_stats(group, "guest", "c" * 64, previous=first)
os.kill(pid, 9)
os.waitpid(pid, 0)
group.destroy()
print("STATS " + json.dumps(second))
"""


@pytest.mark.vm
@pytest.mark.slow
def test_stats_read_a_real_cgroup_v2_group_in_a_qemu_guest(tmp_path):
    """The v2 reading (api_stats) on a pure cgroup v2 kernel: these hosts' v2 mount has no controllers."""
    import shlex
    import sys

    from conftest import missing_feature
    from vm import Guest, GuestUnavailable

    try:
        guest = Guest.prepare()
    except GuestUnavailable as err:
        missing_feature(f"the cgroup v2 guest: {err}")
    repo = str(Path(__file__).resolve().parent.parent)
    program = tmp_path / "stats.py"
    program.write_text(_GUEST_STATS.format(repo=repo))
    script = tmp_path / "guest.sh"
    script.write_text(f"exec {shlex.quote(sys.executable)} -I -S {shlex.quote(str(program))}\n")
    result = guest.run(script, timeout=300)
    found = re.search(r"^STATS (.*)$", result.output, re.MULTILINE)
    report = f"guest output ({result.seconds:.0f} s):\n{result.output or result.console}"
    assert result.exit_code == 0 and found, report
    doc = json.loads(found.group(1))
    memory, cpu, pre = doc["memory_stats"], doc["cpu_stats"], doc["precpu_stats"]
    assert memory["limit"] == 64 << 20 and memory["usage"] >= 8 << 20 and "anon" in memory["stats"], memory
    assert doc["pids_stats"] == {"current": 1, "limit": 20}
    assert "percpu_usage" not in cpu["cpu_usage"] and cpu["cpu_usage"]["usage_in_usermode"] > 0
    assert cpu["cpu_usage"]["total_usage"] >= pre["cpu_usage"]["total_usage"] > 0
    assert cpu["system_cpu_usage"] > pre["system_cpu_usage"] and doc["preread"] != "0001-01-01T00:00:00Z"


@pytest.mark.docker
def test_stop_and_kill_of_a_paused_container_end_as_in_dockerd(daemon, dockerd, busybox_in_dockerd):
    trap = ["sh", "-c", "trap 'exit 7' TERM; echo ready; while true; do sleep 0.1; done"]
    # usr1: no StopSignal, so any signal thaws it (dockerd's kill.go); usr1-stopsig: one that is not
    # its StopSignal leaves it paused, the signal pending.
    cases = (("stop", ["stop", "-t", "5"], trap), ("kill", ["kill"], ["sleep", "100"]),
             ("usr1", ["kill", "-s", "USR1"], ["sleep", "100"]),
             ("usr1-stopsig", ["kill", "-s", "USR1"], ["--stop-signal", "USR2", "busybox", "sleep", "100"]))
    made = []
    try:
        for label, verb, command in cases:
            outcome = []
            for run, is_ours in ((lambda *a: ok(daemon, *a), True), (dockerd.docker, False)):
                name = f"paused-{label}"
                image = [] if "busybox" in command else ["busybox"]
                cid = run("run", "-d", "--network", "none", "--name", name, *image, *command).strip()
                made.append((is_ours, cid))
                if command is trap:  # frozen before its trap exists, PID 1 would never see the TERM
                    wait_for(lambda: "ready" in run("logs", name), what="the trap to be set")
                run("pause", name)
                run(*verb, name)
                if label.startswith("usr1"):  # not an ending signal: pending, it stays paused
                    time.sleep(0.3)
                else:
                    run("wait", name)
                outcome.append(run("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Paused}}",
                                   name).split())
            assert outcome[0] == outcome[1], (label, outcome)
    finally:
        for is_ours, cid in made:
            if is_ours:
                docker(daemon, "rm", "-f", cid)
            else:
                dockerd.docker("rm", "-f", cid, check=False)


def test_names_and_ps_args_cannot_reach_outside(daemon, tmp_path):
    """A name is a file under containers/.names and ps_args reach ps(1): neither may escape."""
    cid = sleeper(daemon, "attack-target")
    marker = tmp_path / "pwned"
    try:
        names = daemon.root / "lib" / "containers" / ".names"
        before = set(os.listdir(names.parent.parent))
        for evil in ("..%2F..%2Fescape", "..", ".names", "a%00b"):
            status, body = api(daemon, "POST", f"/containers/{cid}/rename?name={evil}")
            assert status == 400 and "Invalid container name" in body["message"], (evil, status, body)
        assert set(os.listdir(names.parent.parent)) == before and not (daemon.root / "escape").exists()
        assert ok(daemon, "inspect", "-f", "{{.Name}}", cid).strip() == "/attack-target"
        status, body = api(daemon, "GET", f"/containers/{cid}/top?ps_args=-ef%3B%20touch%20{marker}")
        assert status == 400 and not marker.exists(), (status, body)  # one argv for ps, no shell
        assert api(daemon, "GET", "/containers/..%2F..%2Fetc/json")[0] == 404
    finally:
        ok(daemon, "rm", "-f", cid)


@pytest.mark.parametrize("answer, body", [
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\n\r\n", b"hello!"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcEXTRA", b"abc"),
    (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", b"until the end"),
])
def test_the_clis_http_reader_takes_bodies_as_they_come(answer, body):
    """minidocker's own client (cli/remote.py) reads what the daemon sends, one byte per read at worst."""
    import socket

    from minidocker.cli.remote import _Response

    ours, theirs = socket.socketpair()

    def send() -> None:
        for i in range(len(answer)):
            theirs.send(answer[i:i + 1])
        theirs.close()

    sender = threading.Thread(target=send)
    sender.start()
    try:
        response = _Response(ours, "GET")
        assert response.read() == body
    finally:
        sender.join()
        ours.close()


@pytest.mark.parametrize("pieces", [
    [b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n\x01\0\0\0\0\0\0\x03hi\n"],
    [b"HTTP/1.1 101 UPGRADED\r\n\r", b"\n\x01\0\0\0", b"\0\0\0\x03hi\n"],  # the end of the head split
    [b"HTTP/1.1 10", b"1 UPGRADED\r\n", b"\r\n", b"\x01\0\0\0\0\0\0\x03hi\n"],
])
def test_the_attach_head_is_read_without_a_byte_of_the_stream(pieces):
    """The 101 head is peeked and taken alone (cli/remote.py): the container's first frame, sent in the
    same packet or split anywhere, stays for the stream reader."""
    import socket

    from minidocker.cli.remote import _read_head

    ours, theirs = socket.socketpair()

    def send() -> None:
        for piece in pieces:
            theirs.send(piece)
            time.sleep(0.01)
        theirs.close()

    sender = threading.Thread(target=send)
    sender.start()
    try:
        sent = b"".join(pieces)
        assert _read_head(ours) == sent[:sent.index(b"\r\n\r\n") + 4]
        rest = b""
        while chunk := ours.recv(100):
            rest += chunk
        assert rest == b"\x01\0\0\0\0\0\0\x03hi\n"
    finally:
        sender.join()
        ours.close()


def test_an_attach_connection_closed_before_its_head_is_an_error():
    import socket

    from minidocker.cli.remote import _read_head

    ours, theirs = socket.socketpair()
    theirs.sendall(b"HTTP/1.1 101 UPGRA")
    theirs.close()
    with pytest.raises(ConnectionError, match="closed the attach connection"):
        _read_head(ours)
    ours.close()


def test_the_client_sends_its_next_request_on_a_finished_responses_connection(tmp_path):
    """HTTP/1.1 persistence (cli/remote.py, Client.call): two requests, one connection, unless the
    answer said "Connection: close" or had no length (read to the end of the connection)."""
    import socket

    from minidocker.cli.remote import Client

    path = str(tmp_path / "fake.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    answers = [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
               b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]",
               b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnull"]
    connections = []

    def serve() -> None:
        while answers:
            conn, _ = server.accept()
            connections.append(conn)
            while answers and conn.recv(65536):  # one request per recv: they are small
                conn.sendall(answer := answers.pop(0))
                if b"close" in answer:
                    break
            conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        client = Client(path)
        assert [client.call("GET", "/a")[1], client.call("GET", "/b")[1], client.call("GET", "/c")[1]] == [
            {}, [], None]
    finally:
        thread.join(timeout=10)
        server.close()
    assert len(connections) == 2  # /a and /b on one; "Connection: close", so /c on a new one


def test_a_record_without_a_claim_still_holds_its_name(daemon):
    """Records written before claims existed (direct mode claimed only --name) have no claim file:
    the daemon knows their names all the same (it keeps the records' names, engine/containers.py)."""
    import shutil

    from minidocker.engine.container import Container
    from minidocker.paths import state_roots

    roots = state_roots({"MINIDOCKER_ROOT": str(daemon.root)})
    ok(daemon, "create", "busybox", "true")  # the daemon has read the records once already
    unclaimed = Container.new("unclaimed-name", "busybox", ["true"])
    unclaimed.save(roots)  # as direct mode wrote a record with a random name: no claim
    try:
        assert not (roots.containers / ".names" / "unclaimed-name").exists()
        taken = docker(daemon, "create", "--name", "unclaimed-name", "busybox", "true")
        assert taken.returncode != 0 and f'in use by container "{unclaimed.id}"' in taken.errors, taken.errors
        other = ok(daemon, "create", "busybox", "true").strip()
        refused = api(daemon, "POST", f"/containers/{other}/rename?name=unclaimed-name")
        assert refused[0] == 409, refused
    finally:
        shutil.rmtree(unclaimed.directory(roots))
        for cid in ok(daemon, "ps", "-aq").split():
            ok(daemon, "rm", "-f", cid)


def test_a_failed_direct_run_frees_its_name_and_random_names_are_claimed(daemon):
    """A direct run that fails after its claim (a bad --user) frees the name at once, even for the
    process that made it (a claim holds while its process lives); a random name is claimed too
    (engine/container.py: claim_random_name), so the daemon sees it by its claim file."""
    import sys

    from minidocker.paths import state_roots

    roots = state_roots({"MINIDOCKER_ROOT": str(daemon.root)})
    code = ("from minidocker.engine.run import RunOptions, run_container\n"
            "from minidocker.errors import InvalidArgument\n"
            "def run(**kw): return run_container(RunOptions(image='busybox', command=['true'], network='none', **kw))\n"
            "try:\n"
            "    run(name='failed-run', user='nosuch')\n"
            "except InvalidArgument as err:\n"
            "    print('refused:', str(err).splitlines()[0])\n"
            "print(run(name='failed-run', remove=True).exit_code)\n"
            "run(name=None)\n")
    result = subprocess.run([sys.executable, "-c", code], env={**os.environ, "MINIDOCKER_ROOT": str(daemon.root)},
                            capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0 and result.stdout == (
        "refused: invalid user 'nosuch': unable to find user nosuch: no matching entries in passwd file\n0\n"), \
        result.stdout + result.stderr
    try:
        assert not (roots.containers / ".names" / "failed-run").exists()
        random = ok(daemon, "ps", "-a", "--format", "{{.Names}} {{.ID}}").split()
        assert len(random) == 2, random
        claim = json.loads((roots.containers / ".names" / random[0]).read_text()).split()
        assert claim[0].startswith(random[1]), (claim, random)
        taken = docker(daemon, "create", "--name", random[0], "busybox", "true")
        assert taken.returncode != 0 and f'"/{random[0]}" is already in use' in taken.errors, taken.errors
    finally:
        for cid in ok(daemon, "ps", "-aq").split():
            ok(daemon, "rm", "-f", cid)
    assert not [n for n in os.listdir(roots.containers / ".names") if n != ".lock"]


def test_a_failed_create_leaves_no_claim_on_its_name(daemon):
    """Whatever refuses a create (unknown image, a bad option found before or after the claim),
    the name stays free: the next create with it succeeds."""
    from minidocker.paths import state_roots

    roots = state_roots({"MINIDOCKER_ROOT": str(daemon.root)})
    for bad in ({"Image": "no-such-image:v0"}, {"Image": "busybox", "WorkingDir": "relative"},
                {"Image": "busybox", "User": "nosuch"},
                {"Image": "busybox", "HostConfig": {"LogConfig": {"Type": "json-file", "Config": {"max-size": "bad"}}}},
                {"Image": "busybox", "HostConfig": {"Mounts": [{"Type": "volume", "Target": "/d",
                                                                "VolumeOptions": {"DriverConfig": {"Name": "x"}}}]}}):
        refused = api(daemon, "POST", "/containers/create?name=claim-me", bad)
        assert refused[0] in (400, 404), (bad, refused)
        assert not (roots.containers / ".names" / "claim-me").exists(), bad
    cid = ok(daemon, "create", "--name", "claim-me", "busybox", "true").strip()
    ok(daemon, "rm", cid)


def test_a_create_that_fills_a_volume_holds_up_no_other_request(daemon):
    """A create copies the image's directory into a new volume (copy-up) under that volume's lock only:
    ps, run -d and stop answer meanwhile. Holding the volume's lock here stands for a long copy."""
    import fcntl

    ok(daemon, "volume", "create", "slowfill")
    mountpoint = json.loads(ok(daemon, "volume", "inspect", "slowfill"))[0]["Mountpoint"]
    fd = os.open(os.path.dirname(mountpoint), os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)   # the lock storage/volumes.py takes around the copy
    results: list[subprocess.CompletedProcess] = []
    filling = threading.Thread(target=lambda: results.append(
        docker(daemon, "create", "--name", "filling", "-v", "slowfill:/etc", "busybox", "true", timeout=120)))
    filling.start()
    try:
        time.sleep(0.5)
        assert filling.is_alive(), results   # waiting for the volume, as it would during a long copy
        started = time.monotonic()
        assert "filling" not in ok(daemon, "ps", "-a", "--format", "{{.Names}}", timeout=10)
        other = ok(daemon, "run", "-d", "busybox", "sleep", "100", timeout=10).strip()
        ok(daemon, "stop", "-t", "0", other, timeout=10)
        ok(daemon, "rm", other, timeout=10)
        assert time.monotonic() - started < 10 and filling.is_alive()
    finally:
        os.close(fd)   # the copy goes on
        filling.join(60)
    try:
        assert results and results[0].returncode == 0, results
        assert os.path.exists(os.path.join(mountpoint, "passwd"))   # the image's /etc, copied up
        assert ok(daemon, "inspect", "-f", "{{.State.Status}}", "filling").strip() == "created"
    finally:
        docker(daemon, "rm", "-f", "filling")
        ok(daemon, "volume", "rm", "slowfill")


def test_a_detached_start_that_fails_is_reported_and_recorded(daemon):
    """run -d and start create and start in one request to the supervisor: a failed start still
    answers as dockerd's (the CLI's exit 127) and leaves an exited record with the error."""
    failed = docker(daemon, "run", "-d", "--name", "no-such-binary", "busybox", "no-such-command")
    try:
        assert failed.returncode == 127 and "executable file not found" in failed.errors, failed.errors
        wait_for(lambda: ok(daemon, "inspect", "-f", "{{.State.Status}}", "no-such-binary").strip() == "exited",
                 what="the failed container to be recorded as exited")
        state = json.loads(ok(daemon, "inspect", "-f", "{{json .State}}", "no-such-binary"))
        assert state["ExitCode"] == 127 and "executable file not found" in state["Error"], state
        again = docker(daemon, "start", "no-such-binary")
        assert again.returncode == 1 and "executable file not found" in again.errors, again.errors
        quick = ok(daemon, "run", "-d", "busybox", "sh", "-c", "exit 6").strip()
        assert ok(daemon, "wait", quick).strip() == "6"
        assert ok(daemon, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", quick).split() == ["exited", "6"]
        ok(daemon, "rm", quick)
    finally:
        docker(daemon, "rm", "-f", "no-such-binary")
