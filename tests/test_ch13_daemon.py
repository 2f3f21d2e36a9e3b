"""Chapter 13: minidockerd, the Engine API's transport and system endpoints.

Driven with the real ``docker`` CLI (DOCKER_HOST=unix://...) and docker-py; where dockerd
does the same thing, the same request goes to a private dockerd (tests/dockerd.py) and the
shapes of the two answers are compared (status, headers, JSON keys and types).
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from daemonkit import REPO, Minidockerd, daemon_fixture, http_request, raw_request

pytestmark = [pytest.mark.ch13, pytest.mark.root]


daemon = daemon_fixture(None, "--debug")


def _json_types(value):
    """The shape of a JSON value: dicts by key, lists by their first item, scalars by type name."""
    if isinstance(value, dict):
        return {k: _json_types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_types(value[0])] if value else []
    return "number" if isinstance(value, (int, float)) and not isinstance(value, bool) else type(value).__name__


_NAMED_MAPS = ("Runtimes", "IndexConfigs")


def _missing_keys(ours: dict, theirs: dict, where: str = "") -> list[str]:
    """Keys dockerd sends that we do not, or whose JSON type differs (null is compatible with anything)."""
    problems = []
    for key, value in theirs.items():
        path = f"{where}.{key}"
        if key not in ours:
            problems.append(f"{path}: missing")
        elif value is None or ours[key] is None:
            continue
        elif isinstance(value, dict) and isinstance(ours[key], dict) and key in _NAMED_MAPS:
            continue  # keyed by names (runtimes, registries): only the type must match
        elif isinstance(value, dict) and isinstance(ours[key], dict) and where.count(".") < 1:
            problems += _missing_keys(ours[key], value, path)
        elif _json_types(value).__class__ is not _json_types(ours[key]).__class__ or (
                not isinstance(value, (dict, list)) and _json_types(value) != _json_types(ours[key])):
            problems.append(f"{path}: ours {ours[key]!r}, dockerd's {value!r}")
    return problems


# -- the docker CLI -----------------------------------------------------------------------------

def test_docker_version_talks_to_minidockerd_at_api_1_41(daemon):
    out = daemon.docker("version")
    assert out.returncode == 0, out.stderr.decode()
    text = out.stdout.decode()
    # CLI 28 says "1.41 (downgraded from 1.50)"; Debian's 20.10 client speaks 1.41 itself
    assert "Server: minidocker" in text and "API version:       1.41" in text, text


def test_docker_info_prints_our_counts_and_cgroup_facts(daemon):
    out = daemon.docker("info", "--format", "{{.ServerVersion}} {{.CgroupDriver}} {{.Swarm.LocalNodeState}}"
                        " {{.Containers}} {{.OSType}}")
    assert out.returncode == 0, out.stderr.decode()
    from minidocker import __version__

    assert out.stdout.decode().split() == [__version__, "cgroupfs", "inactive", "0", "linux"]


@pytest.mark.docker
@pytest.mark.parametrize("path", ["/v1.41/info", "/v1.41/version", "/version"])
def test_info_and_version_have_every_key_dockerd_has(daemon, dockerd, path):
    status, _, ours = daemon.request("GET", path)
    theirs = http_request(str(dockerd.socket), "GET", path)
    assert status == theirs[0] == 200
    problems = _missing_keys(json.loads(ours), json.loads(theirs[2]))
    assert problems == [], f"GET {path} differs from dockerd's:\n  " + "\n  ".join(problems)


@pytest.mark.docker
@pytest.mark.parametrize("method", ["HEAD", "GET"])
def test_ping_answers_like_dockerd(daemon, dockerd, method):
    ours = daemon.request(method, "/_ping")
    theirs = http_request(str(dockerd.socket), method, "/_ping")
    assert ours[0] == theirs[0] == 200
    for header in ("api-version", "ostype", "docker-experimental", "cache-control", "pragma", "content-type",
                   "content-length"):
        assert ours[1].get(header) == theirs[1].get(header), (header, ours[1], theirs[1])
    assert ours[2] == theirs[2] == (b"" if method == "HEAD" else b"OK")


# Where dockerd 20.10 says 500 and Docker 23+ says 400 (moby's "invalid JSON" and filters fixes), we say 400.
@pytest.mark.docker
@pytest.mark.parametrize("method, path, status", [
    ("GET", "/nope", 404),
    ("GET", "/v1.41/nope", 404),
    ("POST", "/_ping", 404),
    ("DELETE", "/version", 404),
    ("GET", "/v1.99/version", 400),
    ("GET", "/v1.11/version", 400),
    ("GET", "/v1.41/events?filters=xx", (400, 500)),
    ("GET", "/v1.41/events?since=yesterday", (400, 500)),
])
def test_bad_requests_get_dockerds_status_and_message_shape(daemon, dockerd, method, path, status):
    ours = daemon.request(method, path)
    theirs = http_request(str(dockerd.socket), method, path, timeout=5)
    ours_status, theirs_status = (status, status) if isinstance(status, int) else status
    assert (ours[0], theirs[0]) == (ours_status, theirs_status), (ours, theirs)
    assert ours[1]["content-type"].split(";")[0] == theirs[1]["content-type"].split(";")[0]
    if ours[1]["content-type"] == "application/json":
        assert set(json.loads(ours[2])) == set(json.loads(theirs[2])) == {"message"}
    if ours[0] == 404:
        assert ours[2] == theirs[2]  # {"message":"page not found"}
    if path.startswith("/v1.99"):
        assert json.loads(ours[2]) == json.loads(theirs[2])


def test_every_route_answers_with_and_without_the_version_prefix(daemon):
    for path in ("/_ping", "/v1.41/_ping", "/v1.24/_ping", "/info", "/v1.30/info"):
        status, headers, _ = daemon.request("GET", path)
        assert status == 200 and headers["api-version"] == "1.41", path


# -- docker-py ----------------------------------------------------------------------------------

def test_docker_py_version_ping_info(daemon):
    import docker  # docker-py: requirements.txt
    client = docker.DockerClient(base_url=daemon.host)
    try:
        assert client.ping() is True
        assert client.version()["ApiVersion"] == "1.41"
        assert client.info()["Swarm"]["LocalNodeState"] == "inactive"
        assert client.api.api_version == "1.41"
    finally:
        client.close()


def test_docker_py_events_with_until_ends_and_sees_the_daemon_start(daemon):
    import docker  # docker-py: requirements.txt
    client = docker.DockerClient(base_url=daemon.host)
    try:
        now = time.time()
        events = list(client.events(since=now - 600, until=now + 0.5, decode=True))
    finally:
        client.close()
    assert any(e["Type"] == "daemon" and e["Action"] == "start" for e in events), events


# -- events -------------------------------------------------------------------------------------

def test_docker_system_events_streams_a_reload_as_it_happens(daemon):
    proc = subprocess.Popen(["docker", "system", "events", "--format", "{{json .}}", "--filter", "type=daemon"],
                            env=daemon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while '"/v1.41/events' not in daemon.log() and time.monotonic() < deadline:
            time.sleep(0.02)  # the CLI has subscribed
        time.sleep(0.1)
        os.kill(daemon.proc.pid, signal.SIGHUP)
        line = proc.stdout.readline()
    finally:
        proc.terminate()
        proc.wait(10)
    event = json.loads(line)
    assert (event["Type"], event["Action"]) == ("daemon", "reload"), line


def test_events_stream_is_chunked_and_flushed_per_event(daemon):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(daemon.socket)
        s.sendall(b"GET /v1.41/events?filters=%7B%22type%22%3A%7B%22daemon%22%3Atrue%7D%7D HTTP/1.1\r\n"
                  b"Host: x\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert b"Transfer-Encoding: chunked" in head and head.startswith(b"HTTP/1.1 200"), head
        os.kill(daemon.proc.pid, signal.SIGHUP)
        data = head.partition(b"\r\n\r\n")[2]
        while b"\r\n" not in data or not data.rstrip().endswith(b"}"):
            data += s.recv(4096)
        size, _, rest = data.partition(b"\r\n")
        assert int(size, 16) == len(rest.split(b"\r\n")[0]), data
        assert json.loads(rest.split(b"\r\n")[0])["Action"] == "reload"


# -- transport: bad bytes, stalls, load ---------------------------------------------------------

def test_garbage_gets_400_and_the_daemon_keeps_serving(daemon):
    for junk in (b"\x00\x01\x02 nonsense\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9\r\n\r\n",
                 b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                 b"POST /_ping HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"):
        answer = raw_request(daemon.socket, junk)
        assert answer.split(b" ")[1] in (b"400", b"501"), (junk, answer)
    assert daemon.answers()


def test_huge_headers_get_431(daemon):
    answer = raw_request(daemon.socket, b"GET /_ping HTTP/1.1\r\nX: " + b"a" * (1 << 20) + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]


def test_half_a_request_then_a_stall_blocks_no_other_client(daemon):
    with socket.socket(socket.AF_UNIX) as staller:
        staller.connect(daemon.socket)
        staller.sendall(b"POST /v1.41/containers/create HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{\"Im")
        with socket.socket(socket.AF_UNIX) as header_staller:
            header_staller.connect(daemon.socket)
            header_staller.sendall(b"GET /_ping HTTP/1.1\r\nHost: x")
            started = time.monotonic()
            for _ in range(20):
                assert daemon.request("GET", "/_ping", timeout=2)[0] == 200
            assert daemon.docker("version").returncode == 0
            assert time.monotonic() - started < 10


def test_keep_alive_carries_several_requests_on_one_connection(daemon):
    data = b"".join(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n" for _ in range(5))
    answer = raw_request(daemon.socket, data + b"GET /v1.41/version HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 OK") == 6, answer


def test_chunked_request_body_is_decoded():
    from minidocker.api.server import _Body

    body = _Body(io.BufferedReader(io.BytesIO(b"4\r\n{\"a\"\r\n5;ext=1\r\n: 42}\r\n0\r\nTrailer: x\r\n\r\nNEXT")),
                 None, True)
    assert body.read() == b'{"a": 42}'
    assert body.read(10) == b""


def test_100_concurrent_connections_half_of_them_long_streams(daemon):
    streams = []
    try:
        for _ in range(50):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(10)
            s.connect(daemon.socket)
            s.sendall(b"GET /v1.41/events HTTP/1.1\r\nHost: x\r\n\r\n")
            streams.append(s)
        for s in streams:
            assert s.recv(12) == b"HTTP/1.1 200"
        results: list[int] = []

        def ping():
            results.append(daemon.request("GET", "/v1.41/_ping", timeout=10)[0])

        threads = [threading.Thread(target=ping) for _ in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == [200] * 50
        info = json.loads(daemon.request("GET", "/info")[2])
        assert info["NEventsListener"] >= 50
    finally:
        for s in streams:
            s.close()
    deadline = time.monotonic() + 5
    while json.loads(daemon.request("GET", "/info")[2])["NEventsListener"] > 0 and time.monotonic() < deadline:
        time.sleep(0.1)  # each stream notices its client left within half a second
    assert json.loads(daemon.request("GET", "/info")[2])["NEventsListener"] == 0


# -- the process: socket, pidfile, config, logging ----------------------------------------------

def test_socket_is_0660_and_pidfile_holds_the_pid(daemon, state_root):
    assert os.stat(daemon.socket).st_mode & 0o777 == 0o660
    assert int((state_root / "run" / "minidockerd.pid").read_text()) == daemon.proc.pid


def test_debug_logs_one_line_per_request(daemon):
    daemon.request("GET", "/v1.41/version?probe=debuglog")
    deadline = time.monotonic() + 5
    while "probe=debuglog" not in daemon.log() and time.monotonic() < deadline:
        time.sleep(0.02)  # the line is written once the answer is out
    time.sleep(0.1)
    lines = [line for line in daemon.log().splitlines() if "probe=debuglog" in line]
    assert len(lines) == 1 and "level=debug" in lines[0] and "-> 200" in lines[0], lines


def _start_failing(tmp_path, *args, config: dict | str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MINIDOCKER_ROOT": str(tmp_path)}
    if config is not None:
        (tmp_path / "daemon.json").write_text(config if isinstance(config, str) else json.dumps(config))
    return subprocess.run([sys.executable, "-m", "minidocker.cli.daemon", *args], env=env, capture_output=True,
                          text=True, timeout=30, cwd=REPO)


@pytest.mark.parametrize("config, expected", [
    ({"debug": True, "registry-mirors": ["x"]}, "don't match any configuration option: registry-mirors"),
    ({"debug": "yes"}, "debug must be a boolean"),
    ({"log-driver": "syslog"}, "log-driver 'syslog' is not supported"),
    ({"log-opts": {"max-size": "1m", "compress": "true"}}, "unknown log opt 'compress'"),
    ({"hosts": ["tcp://0.0.0.0:2375"]}, "only unix:///path sockets are supported"),
    ("{not json", "invalid JSON"),
    ("[1, 2]", "must hold a JSON object"),
])
def test_bad_config_file_is_refused_with_the_key_named(tmp_path, config, expected):
    out = _start_failing(tmp_path, config=config)
    assert out.returncode == 1 and expected in out.stderr, out.stderr
    assert not (tmp_path / "run" / "minidocker.sock").exists()


def test_flag_and_file_giving_one_setting_twice_are_refused(tmp_path):
    out = _start_failing(tmp_path, "--pidfile", str(tmp_path / "a.pid"), config={"pidfile": str(tmp_path / "b.pid")})
    assert out.returncode == 1 and "specified both as a flag and in the configuration file: pidfile" in out.stderr


def test_tcp_host_is_refused(tmp_path):
    out = _start_failing(tmp_path, "-H", "tcp://127.0.0.1:15800")
    assert out.returncode == 1 and "only unix:///path sockets" in out.stderr, out.stderr


def test_second_daemon_on_the_same_root_is_refused(daemon, state_root):
    out = _start_failing(state_root, "-H", f"unix://{state_root}/run/second.sock")
    assert out.returncode == 1 and "another minidockerd uses the state root" in out.stderr, out.stderr
    assert daemon.answers()


def test_config_file_settings_show_in_info_and_reload_on_sighup(tmp_path):
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"registry-mirrors": ["http://127.0.0.1:15801"], "live-restore": True}))
    with Minidockerd(tmp_path, "--group", "nogroup") as d:
        info = json.loads(d.request("GET", "/info")[2])
        assert info["RegistryConfig"]["Mirrors"] == ["http://127.0.0.1:15801"] and info["LiveRestoreEnabled"]
        import grp

        assert os.stat(d.socket).st_gid == grp.getgrnam("nogroup").gr_gid
        config.write_text(json.dumps({"registry-mirrors": [], "debug": True}))
        os.kill(d.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "configuration reloaded" not in d.log() and time.monotonic() < deadline:
            time.sleep(0.02)
        info = json.loads(d.request("GET", "/info")[2])
        assert info["RegistryConfig"]["Mirrors"] == [] and info["Debug"] is True
        config.write_text("{broken")
        os.kill(d.proc.pid, signal.SIGHUP)
        time.sleep(0.2)
        assert d.answers() and "failed to reload the configuration" in d.log()
    assert d.proc.returncode == 0
    assert not os.path.exists(d.socket) and not (tmp_path / "run" / "minidockerd.pid").exists()


def test_minidocker_daemon_start_status_stop(tmp_path, cli):
    env = {"MINIDOCKER_ROOT": str(tmp_path)}
    assert cli("daemon", "status", env=env).code == 3
    started = cli("daemon", "start", env=env)
    assert started.code == 0 and "minidockerd started" in started.out, started
    try:
        status = cli("daemon", "status", env=env)
        assert status.code == 0 and "is running" in status.out, status
        again = cli("daemon", "start", env=env)
        assert again.code != 0 and "already running" in again.err, again
    finally:
        stopped = cli("daemon", "stop", env=env)
    assert stopped.code == 0 and "stopped" in stopped.out, stopped
    assert cli("daemon", "status", env=env).code == 3
    assert "API listen on" in (tmp_path / "run" / "minidockerd.log").read_text()


def test_sigkill_leaves_a_stale_socket_and_pidfile_that_the_next_daemon_replaces(tmp_path):
    first = Minidockerd(tmp_path)
    first.stop(signal.SIGKILL)
    assert os.path.exists(first.socket)
    with Minidockerd(tmp_path) as second:
        assert second.answers()


def test_events_since_and_until_in_the_past_are_replayed(daemon):
    since = time.time()
    os.kill(daemon.proc.pid, signal.SIGHUP)
    time.sleep(0.3)
    out = daemon.docker("events", "--since", str(since), "--until", str(time.time()), "--filter", "type=daemon",
                        "--format", "{{.Action}}")
    assert out.returncode == 0 and out.stdout.decode().split() == ["reload"], out
