"""Graded tests of chapter 14: the Engine API by hand.

Run: ``make grade CH=14`` (all tasks) or ``make grade CH=14 TASK=14_2`` (one task).
``tasks`` is your exercises/ch14/tasks.py (the reference with ``--solutions``).
Real peers are the oracles: the docker CLI's own ``filters`` (read from a minidockerd's
``--debug`` log), docker-py's frame reader and auth encoder, and a push to our registry
server through minidockerd that succeeds only when the daemon can read your header.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import struct
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "tests"))

from daemonkit import daemon_fixture  # noqa: E402

from minidocker.registry.server import RegistryServer  # noqa: E402

pytestmark = [pytest.mark.ch14]


daemon = daemon_fixture("ch14-daemon", "--debug", busybox=True)   # with busybox, a log line per request


# --- task 14.1: parse_filters --------------------------------------------------------------------

@pytest.mark.task14_1
@pytest.mark.parametrize("text, expected", [
    ('{"name":{"web":true}}', {"name": ["web"]}),
    ('{"name":["web","db"]}', {"name": ["web", "db"]}),
    ('{"dangling":{"true":true,"false":false},"label":{"a=b":true}}', {"dangling": ["true"], "label": ["a=b"]}),
    ('{}', {}),
    ("", {}),
    (None, {}),
])
def test_parse_filters_reads_both_shapes(tasks, text, expected):
    assert tasks.parse_filters(text) == expected, f"parse_filters({text!r}): expected {expected}"


@pytest.mark.task14_1
@pytest.mark.parametrize("text", ['{"name":', '["name"]', '{"name":"web"}', '{"name":[1]}', '{"name":{"web":1}}',
                                  '"web"', "null"])
def test_parse_filters_refuses_other_shapes_with_value_error(tasks, text):
    with pytest.raises(ValueError, match="invalid filters"):
        tasks.parse_filters(text)


@pytest.mark.task14_1
def test_parse_filters_reads_what_docker_py_sends(tasks):
    from docker.utils import convert_filters   # docker-py encodes filters for every list call this way

    sent = convert_filters({"reference": "busy*", "dangling": True, "label": ["a=b", "c"]})
    assert tasks.parse_filters(sent) == {"reference": ["busy*"], "dangling": ["true"], "label": ["a=b", "c"]}


@pytest.mark.task14_1
def test_parse_filters_reads_what_the_docker_cli_sends(tasks, daemon):
    result = daemon.docker("images", "--filter", "reference=busy*", "--filter", "dangling=false",
                           "--filter", "label=course=14")
    assert result.returncode == 0, result.stderr.decode()
    deadline = time.monotonic() + 5   # the daemon logs a request once its answer is sent: maybe after the CLI exits
    while not (lines := [line for line in daemon.log().splitlines()
                         if "GET /v1.41/images/json?" in line and "filters" in line]) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert lines, f"expected the CLI's GET /images/json?filters=... in the daemon's log, found:\n{daemon.log()}"
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(re.search(r"GET (\S+)", lines[-1]).group(1)).query)
    parsed = tasks.parse_filters(query["filters"][0])
    assert {k: sorted(v) for k, v in parsed.items()} == {
        "reference": ["busy*"], "dangling": ["false"], "label": ["course=14"]}, query["filters"][0]


# --- task 14.2: encode_frame, split_frames -------------------------------------------------------

@pytest.mark.task14_2
def test_encode_frame_is_the_documented_header(tasks):
    assert tasks.encode_frame(1, b"hi\n") == b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    assert tasks.encode_frame(2, b"") == b"\x02\x00\x00\x00\x00\x00\x00\x00"
    big = b"x" * 70_000   # more than 16 bits of length
    assert tasks.encode_frame(0, big)[:8] == bytes([0, 0, 0, 0, 0, 1, 0x11, 0x70])
    for bad in (3, -1, 255):
        with pytest.raises(ValueError):
            tasks.encode_frame(bad, b"x")


@pytest.mark.task14_2
def test_docker_py_demultiplexes_your_frames(tasks):
    from docker.utils.socket import frames_iter_no_tty

    frames = [(1, b"out one\n"), (2, b"err\n"), (1, b""), (1, b"y" * 100_000), (2, bytes(range(256)))]
    wire = b"".join(tasks.encode_frame(stream, data) for stream, data in frames)
    left, right = socket.socketpair()
    writer = threading.Thread(target=lambda: (left.sendall(wire), left.close()))
    writer.start()
    try:
        got = [(stream, bytes(data)) for stream, data in frames_iter_no_tty(right)]
    finally:
        writer.join()
        right.close()
    joined: dict[int, bytes] = {}
    for stream, data in got:
        joined[stream] = joined.get(stream, b"") + data
    assert joined == {1: b"out one\n" + b"y" * 100_000, 2: b"err\n" + bytes(range(256))}, "docker-py read other bytes"


@pytest.mark.task14_2
def test_split_frames_keeps_what_is_not_whole_yet(tasks):
    wire = struct.pack(">BxxxL", 1, 5) + b"hello" + struct.pack(">BxxxL", 2, 4) + b"oops" + struct.pack(">BxxxL", 1, 6)
    for cut in range(len(wire) + 1):   # every place a recv() could end
        frames, rest = tasks.split_frames(wire[:cut])
        consumed = sum(8 + len(d) for _, d in frames)
        assert wire[:consumed] + rest == wire[:cut], f"cut at {cut}: frames and rest do not add up to the input"
        assert len(rest) < 8 or len(rest) < 8 + struct.unpack(">L", rest[4:8])[0], f"cut at {cut}: a whole frame left"
    assert tasks.split_frames(wire + b"abcdef") == ([(1, b"hello"), (2, b"oops"), (1, b"abcdef")], b"")
    assert tasks.split_frames(b"") == ([], b"")


@pytest.mark.task14_2
@pytest.mark.parametrize("wire", [b"\x03\x00\x00\x00\x00\x00\x00\x01x", b"\x01\x00\x01\x00\x00\x00\x00\x01x",
                                  b"hello world, a tty\r\n"])
def test_split_frames_refuses_what_is_not_a_multiplexed_stream(tasks, wire):
    with pytest.raises(ValueError):
        tasks.split_frames(wire)


# --- task 14.3: encode_registry_auth, decode_registry_auth ---------------------------------------

@pytest.mark.task14_3
def test_decode_reads_the_cli_and_docker_py(tasks):
    from docker.auth import encode_header

    assert tasks.decode_registry_auth("e30=") == {}      # what the docker CLI sends before any login
    assert tasks.decode_registry_auth("") == {}
    auth = {"username": "bob", "password": "s3cr?t>>>~", "serveraddress": "127.0.0.1:5000"}
    header = encode_header(auth).decode()
    assert "_" in header or "-" in header, "this password must give a character of the URL-safe alphabet"
    assert tasks.decode_registry_auth(header) == auth
    assert tasks.decode_registry_auth(header.rstrip("=")) == auth, "padding is optional"


@pytest.mark.task14_3
@pytest.mark.parametrize("header", ["not base64!", base64.b64encode(b'{"password": "s3cr?t>>>~"}').decode(),
                                    base64.urlsafe_b64encode(b"not json").decode(),
                                    base64.urlsafe_b64encode(b'["bob"]').decode()])
def test_decode_refuses_what_is_not_base64url_json(tasks, header):
    with pytest.raises(ValueError, match="invalid X-Registry-Auth"):
        tasks.decode_registry_auth(header)


@pytest.mark.task14_3
def test_encode_round_trips_and_uses_the_url_safe_alphabet(tasks):
    header = tasks.encode_registry_auth("bob", "s3cr?t>>>~", "127.0.0.1:5000")
    assert re.fullmatch(r"[A-Za-z0-9_-]+=*", header), f"expected base64url, found {header!r}"
    assert json.loads(base64.urlsafe_b64decode(header)) == {
        "username": "bob", "password": "s3cr?t>>>~", "serveraddress": "127.0.0.1:5000"}
    assert json.loads(base64.urlsafe_b64decode(tasks.encode_registry_auth("bob", "x"))) == {
        "username": "bob", "password": "x"}


@pytest.mark.task14_3
def test_minidockerd_pushes_with_your_header(tasks, daemon, tmp_path):
    from registrykit import htpasswd_line

    (tmp_path / "htpasswd").write_text(htpasswd_line("bob", "s3cr?t>>>~") + "\n")
    with RegistryServer(tmp_path / "registry", ("127.0.0.1", 0), htpasswd=tmp_path / "htpasswd") as registry:
        name = f"{registry.address}/course/auth"
        status, _, body = daemon.request("POST", f"/v1.41/images/busybox/tag?repo={urllib.parse.quote(name)}&tag=v1")
        assert status == 201, body
        try:
            for password, works in (("wrong", False), ("s3cr?t>>>~", True)):
                header = tasks.encode_registry_auth("bob", password, registry.address)
                status, _, body = daemon.request("POST", f"/v1.41/images/{name}/push?tag=v1",
                                                 headers={"X-Registry-Auth": header}, timeout=60)
                lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                failed = status != 200 or any("error" in line for line in lines)
                assert failed != works, f"push with password {password!r}: status {status}, {lines[-2:]}"
            assert registry.tags("course/auth") == ["v1"]
        finally:
            daemon.request("DELETE", f"/v1.41/images/{name}:v1")


# --- task 14.4: match_route ----------------------------------------------------------------------

ROUTES = [   # as dockerd's router declares them (api/server/router/*), in this order
    ("HEAD", "/_ping", "ping-head"),
    ("GET", "/_ping", "ping"),
    ("GET", "/version", "version"),
    ("GET", "/images/json", "image-list"),
    ("POST", "/images/create", "image-create"),
    ("GET", "/images/{name:.*}/json", "image-inspect"),
    ("POST", "/images/{name:.*}/push", "image-push"),
    ("POST", "/images/{name:.*}/tag", "image-tag"),
    ("DELETE", "/images/{name:.*}", "image-delete"),
    ("GET", "/containers/{id}/logs", "container-logs"),
    ("POST", "/containers/{id}/start", "container-start"),
    ("DELETE", "/volumes/{name}", "volume-delete"),
]


@pytest.mark.task14_4
@pytest.mark.parametrize("method, path, expected", [
    ("HEAD", "/_ping", ("ping-head", {}, None)),
    ("GET", "/_ping", ("ping", {}, None)),
    ("GET", "/v1.41/version", ("version", {}, "1.41")),
    ("GET", "/v1.24/images/json?all=1", ("image-list", {}, "1.24")),
    ("HEAD", "/v1.41/images/json", ("image-list", {}, "1.41")),
    ("GET", "/v1.41/images/busybox/json", ("image-inspect", {"name": "busybox"}, "1.41")),
    ("POST", "/v1.41/images/127.0.0.1:5000/course/busybox/push?tag=v1",
     ("image-push", {"name": "127.0.0.1:5000/course/busybox"}, "1.41")),
    ("DELETE", "/v1.41/images/127.0.0.1:5000/course/busybox:v1",
     ("image-delete", {"name": "127.0.0.1:5000/course/busybox:v1"}, "1.41")),
    ("GET", "/v1.9/containers/web/logs?stdout=1", ("container-logs", {"id": "web"}, "1.9")),
    ("DELETE", "/volumes/notes", ("volume-delete", {"name": "notes"}, None)),
])
def test_match_route_finds_the_handler_and_its_parameters(tasks, method, path, expected):
    assert tasks.match_route(ROUTES, method, path) == expected, f"{method} {path}"


@pytest.mark.task14_4
@pytest.mark.parametrize("method, path", [
    ("GET", "/v1.41/nothing"), ("POST", "/v1.41/version"), ("GET", "/containers/web/start"),
    ("DELETE", "/volumes/a/b"), ("GET", "/v1.41"), ("GET", "/version/extra"), ("PUT", "/_ping"),
])
def test_match_route_answers_page_not_found(tasks, method, path):
    with pytest.raises(LookupError, match="^page not found$"):
        tasks.match_route(ROUTES, method, path)


@pytest.mark.task14_4
def test_match_route_refuses_a_version_too_new_in_dockers_words(tasks):
    with pytest.raises(ValueError, match=r"^client version 1\.99 is too new\. Maximum supported API version is 1\.41$"):
        tasks.match_route(ROUTES, "GET", "/v1.99/version")
    assert tasks.match_route(ROUTES, "GET", "/v1.50/version", max_version="1.50") == ("version", {}, "1.50")
    with pytest.raises(ValueError, match="1.100 is too new"):
        tasks.match_route(ROUTES, "GET", "/v1.100/version", max_version="1.50")


@pytest.mark.task14_4
def test_match_route_agrees_with_minidockerd_on_what_is_not_found(tasks, daemon):
    """The daemon's 404 and your LookupError for the same requests (its table has more routes than ROUTES)."""
    for method, path in (("GET", "/v1.41/nothing"), ("POST", "/v1.41/version"), ("PUT", "/_ping")):
        status, _, body = daemon.request(method, path)
        assert (status, json.loads(body)) == (404, {"message": "page not found"})
        with pytest.raises(LookupError, match="page not found"):
            tasks.match_route(ROUTES, method, path)
