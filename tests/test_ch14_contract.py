"""Chapter 14: the Engine API's contract: the OpenAPI document, and a fuzzer driven by it.

``minidocker/api/openapi.yaml`` describes the subset minidockerd serves. The first tests keep
it true (every route the router serves is documented, every documented route is served).
The fuzzer (hypothesis, derandomized: the same requests on every run) reads the document
and sends malformed and boundary requests: bad JSON, wrong types, huge numbers, unicode,
bad query values, unknown IDs, odd methods, junk on the wire. The daemon must stay up,
answer no client's request with a 5xx, give every 4xx a ``{"message": ...}`` body, log no
traceback, and leave nothing behind (tests/leaks.py).

Kept from reaching out, by design (network traffic stays on loopback): ImageCreate is fuzzed
as an import only (``fromSrc=-``, never a pull), ImagePush never with its real method, and the
operations marked ``x-minidocker-contacts-registry`` (login) or ``x-minidocker-changes-host-links``
(a network create adds a bridge to the host) get only bodies that cannot be valid.
See: the OpenAPI Specification 3.0.3; the Hypothesis documentation.
"""

from __future__ import annotations

import json
import os
import re
import time
from urllib.parse import quote

import pytest
from daemonkit import REPO, Minidockerd, UnixHTTPConnection, raw_request

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.ch14]

SPEC_PATH = REPO / "minidocker" / "api" / "openapi.yaml"
_METHODS = ("get", "head", "post", "put", "delete", "patch", "options", "trace")


def _spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


def _served() -> set[tuple[str, str]]:
    """(METHOD, /path/{param}) for every route the daemon's router serves."""
    from minidocker.api.daemon import _route_modules

    routes = set()
    for module in _route_modules():
        for method, pattern, _handler in module.ROUTES:
            routes.add((method, re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)))
    return routes


def _documented(spec: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item if method in _METHODS}


# -- the document is true ---------------------------------------------------------------------------

def test_every_served_route_is_documented_and_every_documented_route_is_served():
    served, documented = _served(), _documented(_spec())
    missing = sorted(served - documented)
    extra = sorted(documented - served)
    lines = [f"  served, not in openapi.yaml: {m} {p}" for m, p in missing]
    lines += [f"  in openapi.yaml, not served: {m} {p}" for m, p in extra]
    assert not lines, f"{SPEC_PATH.relative_to(REPO)} is out of date with the router:\n" + "\n".join(lines)


def test_the_document_is_well_formed():
    spec = _spec()
    assert spec["openapi"].startswith("3.0") and spec["info"]["title"]
    ids, problems = set(), []
    for path, item in spec["paths"].items():
        declared_in_path = set(re.findall(r"\{(\w+)\}", path))
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            if not op.get("operationId"):
                problems.append(f"{where}: no operationId")
            elif op["operationId"] in ids:
                problems.append(f"{where}: operationId {op['operationId']} used twice")
            ids.add(op.get("operationId"))
            params = [_follow(spec, p) for p in op.get("parameters", [])]
            in_path = {p["name"] for p in params if p["in"] == "path"}
            if in_path != declared_in_path:
                problems.append(f"{where}: path parameters {sorted(in_path)} != {sorted(declared_in_path)}")
            for status, answer in op.get("responses", {}).items():
                answer = _follow(spec, answer)
                if status.startswith(("4", "5")) and answer is not spec["components"]["responses"]["Error"]:
                    problems.append(f"{where}: {status} is not the Error answer")
    assert not problems, "\n".join(problems)


def test_the_document_names_the_api_version_we_serve():
    from minidocker.engine.system import API_VERSION

    spec = _spec()
    assert spec["info"]["version"] == API_VERSION and spec["servers"][0]["url"].endswith(f"/v{API_VERSION}")


def _follow(spec: dict, node):
    """``{"$ref": "#/components/..."}`` to the node it names (as many times as it takes)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node, seen = target, seen + 1
        assert seen < 20, "a $ref loop"
    return node


# -- the fuzzer ---------------------------------------------------------------------------------------

_SPEC = _spec()
_OPERATIONS = sorted((path, method, op) for path, item in _SPEC["paths"].items()
                     for method, op in item.items() if method in _METHODS)
_STREAMS = {"SystemEvents", "ContainerWait", "ContainerAttach", "ContainerLogs", "ExecStart", "ImageGet",
            "ImageGetAll", "ImageLoad", "ImageBuild", "ImageCreate", "ImagePush", "ContainerStats",
            "ContainerExport", "ContainerArchive"}
# Blocking until a container ends (wait), or holding its stdio (attach, exec start): unknown IDs only.
_UNKNOWN_IDS_ONLY = {"ContainerWait", "ContainerAttach", "ExecStart", "ImageDelete", "ContainerStats"}  # and busybox stays

_HUGE = st.sampled_from([2**31, -2**31 - 1, 2**63, -2**63 - 1, 2**64, 10**30, -1, 0])
_TEXT = st.text(max_size=40) | st.sampled_from(["", " ", "..", "../../etc/passwd", "/", "%00", "\x00", "\u202e",
                                                 "💥" * 20, "a" * 300, "true", "null", "-1", "1e309"])
_JUNK_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _HUGE | st.floats(allow_nan=False, allow_infinity=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4), max_leaves=8)
_ODD_METHODS = st.sampled_from(["PUT", "PATCH", "OPTIONS", "TRACE", "CONNECT", "FOO", "get", "DELETE", "POST"])


# Properties whose random values would never reach the handler's deeper code: some good values too.
_HINTS = {"Image": st.sampled_from(["busybox", "busybox:latest", "busybox@sha256:" + "0" * 64, "nosuch:1"]),
          "Cmd": st.sampled_from([["true"], ["sh", "-c", "exit 3"], ["/no/such"], [], ["\x00"]]),
          "Container": st.sampled_from(["fuzzee", "nosuch"])}


def _value(schema: dict, depth: int = 0, name: str = "", junk: bool = True) -> st.SearchStrategy:
    """Values of ``schema``; with ``junk``, some of them of the wrong type or out of range (the fuzzer's point)."""
    schema = _follow(_SPEC, schema)
    kind = schema.get("type")
    if name in _HINTS:
        good = _HINTS[name] | _value(schema, depth, junk=junk)
    elif "enum" in schema:
        good = st.sampled_from(schema["enum"])
    elif kind == "object" and "properties" in schema and depth < 3:
        good = st.fixed_dictionaries({}, optional={k: _value(v, depth + 1, k, junk)
                                                   for k, v in schema["properties"].items()})
    elif kind == "object":
        good = st.dictionaries(_TEXT, _TEXT, max_size=3)
    elif kind == "array":
        good = st.lists(_value(schema.get("items", {}), depth + 1, junk=junk), max_size=3)
    elif kind == "integer":
        good = st.integers(-1000, 1000) | _HUGE
    elif kind == "boolean":
        good = st.booleans()
    else:
        good = _TEXT
    return st.one_of(*[good] * 6, _JUNK_JSON) if depth and junk else good


def _body(schema: dict) -> st.SearchStrategy:
    """Half of the bodies well-typed (they reach the engine), half with junk somewhere."""
    return st.booleans().flatmap(lambda junk: _value(schema, junk=junk))


def _query_text(schema: dict) -> st.SearchStrategy:
    schema = _follow(_SPEC, schema)
    kind = schema.get("type")
    if kind == "boolean":
        good = st.sampled_from(["1", "0", "true", "false", "yes", "", "TRUE", "2"])
    elif kind == "integer":
        good = (st.integers(-10, 100) | _HUGE).map(str)
    elif "enum" in schema:
        good = st.sampled_from(schema["enum"])
    else:
        good = st.sampled_from(['{"status":["running"]}', '{"label":{"a=b":true}}', '{"name":{"x":1}}', "{}",
                                '{"status":"x"}', "[1]", '{"dangling":["true"]}', "1700000000.5"])
    return st.one_of(good, _TEXT)


@st.composite
def _requests(draw, known_ids: tuple[str, ...]):
    """(method, target, headers, body bytes, operation id) for one operation of the document."""
    path, method, op = draw(st.sampled_from(_OPERATIONS))
    op_id = op["operationId"]
    params = [_follow(_SPEC, p) for p in op.get("parameters", [])]
    target = path
    for p in params:
        if p["in"] == "path":
            pool = _TEXT if op_id in _UNKNOWN_IDS_ONLY else st.sampled_from(known_ids) | _TEXT
            value = draw(pool.filter(lambda v: v not in known_ids) if op_id in _UNKNOWN_IDS_ONLY else pool) or "x"
            target = target.replace("{" + p["name"] + "}", quote(value, safe=""))
    query, headers = [], {}
    for p in params:
        if p["in"] == "query" and draw(st.booleans()):
            query.append(f"{quote(p['name'])}={quote(draw(_query_text(p['schema'])), safe='')}")
        elif p["in"] == "header" and draw(st.booleans()):
            headers[p["name"]] = draw(st.sampled_from(["e30=", "not base64!", "W10=", "eyJ1c2VybmFtZSI6MX0="]))
    if op_id == "ImageCreate":   # an import of the body only (fromSrc=-): a pull would reach out
        query = ["fromSrc=-"] + [q for q in query if q.startswith(("repo=", "tag=", "message="))]
    if draw(st.integers(0, 9)) == 0:
        query.append(draw(st.sampled_from(["%zz=1", "a=%ff%fe", "=", "&&", "x=" + "9" * 400, "all=1&all=0"])))
    version = draw(st.sampled_from(["", "", "", "/v1.41", "/v1.41", "/v1.24", "/v1.99", "/v0.1", "/v1.x"]))
    target = version + target + ("?" + "&".join(query) if query else "")
    body, content = b"", op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        schema = content["application/json"]["schema"]
        guarded = op.get("x-minidocker-contacts-registry") or op.get("x-minidocker-changes-host-links")
        choice = draw(st.integers(0, 5))
        if choice <= 2 and not guarded:
            document = draw(_body(schema))
        elif choice <= 3:
            document = draw(st.lists(_JUNK_JSON, max_size=3) | st.integers() | _TEXT | st.none())
        else:
            document = None
            body = draw(st.sampled_from([b"{", b"{\"Image\": ", b"\xff\xfe", b"[1,2", b"{}}", b"NaN",
                                         b'{"a":' * 500, b" "]))
        if document is not None:
            body = json.dumps(document).encode()
        headers["Content-Type"] = draw(st.sampled_from(["application/json"] * 4 + ["text/plain", ""]))
    elif content or op_id == "ImageCreate":
        body = draw(st.binary(max_size=600) | st.sampled_from([b"", b"\0" * 1024]))
    real_method = method.upper()
    if draw(st.integers(0, 11)) == 0:
        real_method = draw(_ODD_METHODS)
    if op_id in ("ImagePush",) and real_method == "POST":
        real_method = "PUT"   # never the real push: a name the fuzzer tagged would be pushed to its registry
    return real_method, target, headers, body, op_id


def _ask(socket_path: str, method: str, target: str, headers: dict, body: bytes, op_id: str):
    """Send one request; a stream's answer is only looked at up to its status (the stream is not read)."""
    conn = UnixHTTPConnection(socket_path, timeout=30)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in {"Host": "fuzz", "Content-Length": str(len(body)), **headers}.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        response = conn.getresponse()
        if response.status in (101,) or (response.status == 200 and op_id in _STREAMS) or method == "HEAD":
            return response.status, response.getheader("Content-Type", ""), b""
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    root = tmp_path_factory.mktemp("md-fuzz")
    with Minidockerd(root) as daemon:
        status, _, body = daemon.request("POST", "/containers/create?name=fuzzee",
                                         json.dumps({"Image": "busybox", "Cmd": ["true"]}).encode(),
                                         {"Content-Type": "application/json"}, timeout=60)
        assert status == 201, body
        daemon.threads_at_start = _threads(daemon.proc.pid)
        yield daemon, ("fuzzee", json.loads(body)["Id"], "busybox", "bridge", "none", "0" * 64)


def _threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


_BY_ID = {op["operationId"]: op for _path, _method, op in _OPERATIONS}


def _check(daemon, request, answer) -> None:
    status, ctype, body = answer
    documented = _BY_ID[request[4]].get("responses", {})   # a 5xx only where dockerd answers one too, documented
    assert status < 500 or (str(status) in documented and json.loads(body).get("message")), \
        f"{request[:3]} got {status}: {body[:300]!r}"
    if request[1].startswith("/v0.1/"):
        return  # a client older than API 1.24 gets its error as text, as dockerd writes it (it predates JSON errors)
    if 400 <= status < 500 and request[0] != "HEAD":
        assert ctype.startswith("application/json"), f"{request[:3]} got {status} as {ctype}: {body[:200]!r}"
        message = json.loads(body).get("message")
        assert isinstance(message, str) and message, f"{request[:3]} got {status} without a message: {body!r}"


@pytest.mark.root
@pytest.mark.slow
@settings(max_examples=4000, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzed_requests_get_4xx_with_a_message_never_5xx(fuzzed, data):
    daemon, known = fuzzed
    request = data.draw(_requests(known))
    answer = _ask(daemon.socket, *request)
    _check(daemon, request, answer)
    if request[4] in ("ContainerPrune", "ContainerDelete") and answer[0] < 300:
        daemon.request("POST", "/containers/create?name=fuzzee", json.dumps({"Image": "busybox"}).encode(),
                       {"Content-Type": "application/json"}, timeout=60)  # the next ones have it again


@pytest.mark.root
@settings(max_examples=500, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(junk=st.one_of(
    st.binary(max_size=200),
    st.tuples(st.sampled_from([b"GET", b"POST", b"G\x00T", b"", b"\xff" * 8, b"GET GET"]),
              st.sampled_from([b"/_ping", b"/containers/json", b"*", b"", b"/\xff\xfe", b"http://x/_ping", b"/%"]),
              st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2", b"", b"HTTP/1.1 extra"]),
              st.lists(st.sampled_from([b"Host: x", b"Content-Length: -1", b"Content-Length: 99999999999999999999",
                                        b"Content-Length: 1, 2", b"Transfer-Encoding: chunked", b": empty",
                                        b"Transfer-Encoding: chunked, gzip", b"X:\xff", b"bad header",
                                        b" Folded: x", b"Content-Length: 3"]), max_size=4),
              st.sampled_from([b"", b"abc", b"zz\r\n", b"5\r\nabc", b"0\r\n\r\n"]))
    .map(lambda t: b" ".join(x for x in t[:3] if x) + b"\r\n" + b"".join(h + b"\r\n" for h in t[3]) + b"\r\n" + t[4])))
def test_junk_on_the_wire_gets_a_4xx_and_the_daemon_keeps_serving(fuzzed, junk):
    daemon, _ = fuzzed
    answer = raw_request(daemon.socket, junk, timeout=5)
    if answer:
        status = int(answer.split(b" ", 2)[1])
        assert status < 500 or status == 501, (junk, answer[:200])
        if status >= 400:
            head, _, rest = answer.partition(b"\r\n\r\n")
            length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # the first answer only
            assert b"application/json" in head and json.loads(rest[:length])["message"], (junk, answer[:300])


def _context(dockerfile_name: str) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size = 13
        tar.addfile(info, io.BytesIO(b"FROM busybox\n"))
    return buf.getvalue()


# What the fuzzer found (each was a 500), kept as plain cases: a change of the generator cannot lose them.
FOUND = [
    ("POST", "/build", b"", 400, "not a tar archive"),                                 # an empty context
    ("POST", "/build", b"\x01" * 1024, 400, "not a tar archive"),                      # junk
    ("POST", "/build", b"\x00" * 1024, 404, "stat Dockerfile"),                        # an empty tar: no Dockerfile
    ("POST", "/build?dockerfile=" + "a" * 300, _context("Dockerfile"), 400, "file name too long"),
    ("DELETE", "/volumes/" + "a" * 300, b"", (400, 404), ""),   # ENAMETOOLONG (404 while there is no volume)
    ("GET", "/containers/fuzzee/logs?stdout=1&since=1e309", b"", 400, "invalid value for since"),   # inf
    ("GET", "/containers/fuzzee/logs?stdout=1&until=nan", b"", 400, "invalid value for since"),
    ("GET", "/events?since=1e309", b"", 400, "not a Unix timestamp"),
]


@pytest.mark.root
@pytest.mark.parametrize("method, target, body, status, message", FOUND,
                         ids=[f"{m} {t[:40]} {len(b)}" for m, t, b, _, _ in FOUND])
def test_what_the_fuzzer_found_stays_a_4xx(fuzzed, method, target, body, status, message):
    daemon, _ = fuzzed
    got, _, answer = daemon.request(method, target, body, {"Content-Type": "application/x-tar"}, timeout=60)
    assert got in (status if isinstance(status, tuple) else (status,)), (got, answer[:300])
    assert message in json.loads(answer)["message"], answer[:300]


@pytest.mark.root
def test_after_the_fuzzing_the_daemon_is_up_and_logged_no_traceback(fuzzed):
    from minidocker.mountinfo import read_mountinfo

    daemon, _ = fuzzed
    assert daemon.proc.poll() is None and daemon.answers()
    log = daemon.log()
    assert "Traceback" not in log, log[-3000:]   # an exception no handler raised on purpose: a bug
    deadline = time.monotonic() + 15   # streams the fuzzer left (events, logs) end once their client is gone
    while _threads(daemon.proc.pid) > daemon.threads_at_start + 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _threads(daemon.proc.pid) <= daemon.threads_at_start + 1, "handler threads are stuck"
    running = json.loads(daemon.request("GET", "/containers/json")[2])
    assert running == [], [c["Names"] for c in running]
    mounts = [m.mount_point for m in read_mountinfo() if m.mount_point.startswith(str(daemon.root))]
    assert mounts == [], mounts   # no container is running: none of their root filesystems may stay mounted


@settings(max_examples=150, derandomize=True, deadline=None, database=None)
@given(payloads=st.lists(st.binary(max_size=40) | st.text(max_size=20).map(str.encode), min_size=1, max_size=8))
def test_the_log_reader_docker_logs_streams_agrees_with_json(tmp_path_factory, payloads):
    """engine/logfile.py cuts its own lines apart without json.loads (docker logs' speed): same entries."""
    from minidocker.engine.logfile import LogScan, LogWriter

    path = str(tmp_path_factory.mktemp("log") / "c-json.log")
    writer = LogWriter(path)
    for i, payload in enumerate(payloads):
        writer.write("stdout" if i % 2 else "stderr", payload)
    writer.close()
    with open(path, "rb") as f:
        expected = [json.loads(line) for line in f]
    got = list(LogScan(path))
    assert [(e.stream, e.time, e.data) for e in got] == [(d["stream"], d["time"], d["log"].encode()) for d in expected]
