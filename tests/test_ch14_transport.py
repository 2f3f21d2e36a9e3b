"""Chapter 14: the Engine API's transport security: who may connect, over what, and how much they may send.

- The unix socket is mode 0660, group ``minidocker`` (``-G``) when it exists: a real
  unprivileged user (``nobody``, through ``setpriv``) outside the group gets EACCES; the
  same user with the group gets answers.
- TCP only with ``--tlsverify`` (mutual TLS, as dockerd): certificates made here with
  ``openssl``; the real docker CLI with ``--tlsverify`` works (attach too); a client without
  a certificate, with one another CA signed, or speaking plain HTTP gets no HTTP at all.
  Plain TCP is refused at start, with what to do instead.
- Limits: a 10 GiB JSON body (Content-Length or chunked) is a 413 before it is read; header
  blocks over 1 MiB are a 431; a build context with unsafe names is refused and writes
  nothing outside (chapter 05's extraction checks); a client holding every descriptor
  (``prlimit --nofile``) or every thread (a pids cgroup) delays others, never ends the daemon.
See: dockerd(8) "Daemon socket option"; unix(7) (connect needs write permission on the
socket); RFC 9110 §15.5.14 (413), RFC 6585 §5 (431).
"""

from __future__ import annotations

import io
import json
import os
import socket
import ssl
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest
from daemonkit import REPO, Minidockerd

pytestmark = [pytest.mark.ch14, pytest.mark.root]

TLS_PORT = 15420
NOBODY = 65534
USERS_GID = 100   # Debian's "users": nobody is not in it


def _openssl(*args: str, cwd: Path) -> None:
    out = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"openssl {' '.join(args)}:\n{out.stderr}"


def _make_ca(d: Path, name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}-key.pem", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}", cwd=d)


def _make_cert(d: Path, name: str, ca: str, usage: str, san: str | None = None) -> None:
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout",
             f"{name}-key.pem", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
    (d / f"{name}.ext").write_text(f"extendedKeyUsage={usage}\n" + (f"subjectAltName={san}\n" if san else ""))
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}-key.pem",
             "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tls")
    _make_ca(d, "ca")
    _make_cert(d, "server", "ca", "serverAuth", "IP:127.0.0.1,DNS:localhost")
    _make_cert(d, "client", "ca", "clientAuth")
    _make_ca(d, "rogue-ca")
    _make_cert(d, "rogue", "rogue-ca", "clientAuth")
    return d


@pytest.fixture(scope="module")
def tls_daemon(tmp_path_factory, certs):
    root = tmp_path_factory.mktemp("md-tls")
    with Minidockerd(root, "-H", f"tcp://127.0.0.1:{TLS_PORT}", "--tlsverify", "--tlscacert", str(certs / "ca.pem"),
                     "--tlscert", str(certs / "server.pem"), "--tlskey", str(certs / "server-key.pem")) as d:
        yield d


def _tls_docker(daemon, certs: Path, *args: str, tls: bool = True, timeout: float = 60):
    env = {k: v for k, v in daemon.env.items() if k != "DOCKER_HOST"}
    flags = ["--tlsverify", "--tlscacert", str(certs / "ca.pem"), "--tlscert", str(certs / "client.pem"),
             "--tlskey", str(certs / "client-key.pem")] if tls else []
    return subprocess.run(["docker", *flags, "-H", f"tcp://127.0.0.1:{TLS_PORT}", *args], env=env,
                          capture_output=True, timeout=timeout)


# -- the unix socket: mode, group, a real unprivileged user -------------------------------------------

_CONNECT = ("import socket, sys\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            "try:\n"
            "    s.connect(sys.argv[1])\n"
            "except OSError as err:\n"
            "    print('errno', err.errno); sys.exit(0)\n"
            "s.sendall(b'GET /_ping HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n')\n"
            "print(s.recv(64).split(b'\\r\\n')[0].decode())\n")


def _as_nobody(socket_path: str, *groups: int) -> str:
    group_flags = ["--groups", ",".join(map(str, groups))] if groups else ["--clear-groups"]
    out = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", *group_flags, "/usr/bin/python3",
                          "-c", _CONNECT, socket_path], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_socket_is_0660_of_its_group_and_a_real_user_outside_it_gets_eacces(tmp_path):
    import errno

    run_dir = Path(tempfile.mkdtemp(prefix="mdsock.", dir="/tmp"))   # traversable by nobody, unlike tmp_path
    try:
        os.chmod(run_dir, 0o755)
        path = str(run_dir / "md.sock")
        with Minidockerd(tmp_path, "--group", "users", socket_path=path):
            st = os.stat(path)
            assert stat.S_ISSOCK(st.st_mode) and st.st_mode & 0o777 == 0o660 and (st.st_uid, st.st_gid) == (0, USERS_GID)
            assert _as_nobody(path) == f"errno {errno.EACCES}"            # not in the group: refused by the kernel
            assert _as_nobody(path, USERS_GID) == "HTTP/1.1 200 OK"     # the same user in the group: served
    finally:
        for name in os.listdir(run_dir):
            os.unlink(run_dir / name)
        os.rmdir(run_dir)


def test_without_the_group_the_socket_is_root_only(tmp_path):
    from minidocker.api.server import _listen

    sock = _listen(str(tmp_path / "s.sock"), "no-such-group-here")
    try:
        st = os.stat(tmp_path / "s.sock")
        assert st.st_mode & 0o777 == 0o660 and st.st_gid == 0
    finally:
        sock.close()


# -- TCP: mutual TLS only ----------------------------------------------------------------------------

def test_plain_tcp_is_refused_at_start_with_what_to_do_instead(tmp_path, certs):
    env = {**os.environ, "MINIDOCKER_ROOT": str(tmp_path)}

    def start(*args):
        return subprocess.run([sys.executable, "-m", "minidocker.cli.daemon", *args], env=env, capture_output=True,
                              text=True, timeout=30, cwd=REPO)

    out = start("-H", f"tcp://127.0.0.1:{TLS_PORT + 1}")
    assert out.returncode == 1 and "only unix:///path sockets are supported without --tlsverify" in out.stderr
    assert "--tlsverify --tlscacert" in out.stderr, out.stderr
    out = start("-H", f"tcp://127.0.0.1:{TLS_PORT + 1}", "--tlsverify", "--tlscert", str(certs / "server.pem"))
    assert out.returncode == 1 and "--tlsverify needs --tlscacert --tlskey" in out.stderr, out.stderr
    out = start("-H", "tcp://127.0.0.1", "--tlsverify")
    assert out.returncode == 1 and "expected tcp://ADDRESS:PORT" in out.stderr, out.stderr
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    out = start("-H", f"tcp://127.0.0.1:{TLS_PORT + 1}", "--tlsverify", "--tlscacert", str(bad), "--tlscert",
                str(bad), "--tlskey", str(bad))
    assert out.returncode == 1 and "failed to load the TLS certificates" in out.stderr, out.stderr
    assert not (tmp_path / "run" / "minidocker.sock").exists()


def test_the_docker_cli_with_tlsverify_works_over_tcp_attach_included(tls_daemon, certs):
    version = _tls_docker(tls_daemon, certs, "version", "--format", "{{.Server.Os}} {{.Server.APIVersion}}")
    assert version.returncode == 0 and version.stdout.decode().split() == ["linux", "1.41"], version.stderr
    run = _tls_docker(tls_daemon, certs, "run", "--rm", "--network", "none", "busybox", "sh", "-c",
                      "echo hello over tls; echo to stderr >&2; exit 3")
    assert run.returncode == 3, run.stderr
    assert run.stdout == b"hello over tls\n" and b"to stderr" in run.stderr
    piped = _tls_docker(tls_daemon, certs, "run", "--rm", "-i", "--network", "none", "busybox", "wc", "-c")
    assert piped.returncode == 0 and piped.stdout.strip() == b"0", piped.stderr
    assert _tls_docker(tls_daemon, certs, "ps", "-a", "-q").stdout == b""


def test_exec_and_a_followed_log_stream_over_tls(tls_daemon, certs):
    started = _tls_docker(tls_daemon, certs, "run", "-d", "--network", "none", "busybox", "sh", "-c",
                          "for i in 1 2 3; do echo line $i; sleep 0.3; done; sleep 30")
    assert started.returncode == 0, started.stderr
    cid = started.stdout.decode().strip()
    try:
        executed = _tls_docker(tls_daemon, certs, "exec", cid, "sh", "-c", "echo in $HOSTNAME")
        assert executed.returncode == 0 and executed.stdout == f"in {cid[:12]}\n".encode(), executed.stderr
        follow = subprocess.Popen(["docker", "--tlsverify", "--tlscacert", str(certs / "ca.pem"), "--tlscert",
                                   str(certs / "client.pem"), "--tlskey", str(certs / "client-key.pem"), "-H",
                                   f"tcp://127.0.0.1:{TLS_PORT}", "logs", "-f", cid], stdout=subprocess.PIPE,
                                  env={k: v for k, v in tls_daemon.env.items() if k != "DOCKER_HOST"})
        try:
            lines = [follow.stdout.readline() for _ in range(3)]
            assert lines == [b"line 1\n", b"line 2\n", b"line 3\n"], lines
        finally:
            follow.terminate()
            follow.wait(10)
    finally:
        assert _tls_docker(tls_daemon, certs, "rm", "-f", cid).returncode == 0


def test_docker_py_with_tls_works_too(tls_daemon, certs, monkeypatch):
    import docker

    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's own CA (psf/requests#3829)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)

    tls = docker.tls.TLSConfig(client_cert=(str(certs / "client.pem"), str(certs / "client-key.pem")),
                               ca_cert=str(certs / "ca.pem"), verify=True)
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{TLS_PORT}", tls=tls, version="1.41")
    try:
        assert client.ping()
        out = client.containers.run("busybox", ["echo", "docker-py over tls"], network_mode="none", remove=True)
        assert out == b"docker-py over tls\n"
    finally:
        client.close()


def test_minidocker_daemon_start_passes_the_tls_flags_on(tmp_path, certs, cli):
    env = {"MINIDOCKER_ROOT": str(tmp_path)}
    port = TLS_PORT + 2
    started = cli("daemon", "start", "-H", f"unix://{tmp_path}/run/minidocker.sock", "-H", f"tcp://127.0.0.1:{port}",
                  "--tlsverify", "--tlscacert", str(certs / "ca.pem"), "--tlscert", str(certs / "server.pem"),
                  "--tlskey", str(certs / "server-key.pem"), env=env)
    try:
        assert started.code == 0, started
        ping = _first_bytes_over_tls(_tls_client(certs, "client"), port)
        assert ping.startswith(b"HTTP/1.1 200"), ping
    finally:
        stopped = cli("daemon", "stop", env=env)
    assert stopped.code == 0, stopped
    assert "(mutual TLS)" in (tmp_path / "run" / "minidockerd.log").read_text()


def _tls_client(certs: Path, cert: str | None, ca: str = "ca"):
    context = ssl.create_default_context(cafile=str(certs / f"{ca}.pem"))
    if cert:
        context.load_cert_chain(str(certs / f"{cert}.pem"), str(certs / f"{cert}-key.pem"))
    return context


def _first_bytes_over_tls(context, port: int = TLS_PORT) -> bytes:
    """Handshake, send a ping, return what comes back; a refused handshake raises ssl.SSLError or ends empty."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return tls.recv(64)


def test_a_client_without_a_certificate_is_refused_before_any_http(tls_daemon, certs):
    assert _first_bytes_over_tls(_tls_client(certs, "client")).startswith(b"HTTP/1.1 200")   # the control
    for cert in (None, "rogue"):   # none at all; one another CA signed
        try:
            answer = _first_bytes_over_tls(_tls_client(certs, cert))
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            answer = b""
        assert answer == b"", (cert, answer)
    no_flags = _tls_docker(tls_daemon, certs, "version", tls=False)
    assert no_flags.returncode != 0 and b"Server:" not in no_flags.stdout, no_flags.stdout
    assert tls_daemon.answers()


def test_plain_http_on_the_tls_port_gets_no_http_answer(tls_daemon):
    with socket.create_connection(("127.0.0.1", TLS_PORT), timeout=10) as s:
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        try:
            while chunk := s.recv(4096):
                data += chunk
        except ConnectionResetError:
            pass
    assert b"HTTP/1.1" not in data and b"OK" not in data, data


# -- limits -------------------------------------------------------------------------------------------

def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _send_and_read(socket_path: str, head: bytes, body_part: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(socket_path)
        try:
            s.sendall(head)
            s.sendall(body_part)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon answered and closed before it took everything: the answer is still there
        data = b""
        try:
            while b"\r\n\r\n" not in data or len(data) < 200:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return data


def test_a_10_gib_json_body_is_refused_with_413_before_it_is_read(tls_daemon):
    rss = _rss_kb(tls_daemon.proc.pid)
    started = time.monotonic()
    declared = _send_and_read(tls_daemon.socket, b"POST /v1.41/containers/create HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (10 << 30),
                              b'{"Image": "' + b"a" * (1 << 20))
    chunked = _send_and_read(tls_daemon.socket, b"POST /v1.41/networks/create HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
                             b"%x\r\n" % (10 << 30) + b'{"Name": "' + b"a" * (1 << 20))
    for answer in (declared, chunked):
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        message = json.loads(answer.partition(b"\r\n\r\n")[2].split(b"\n")[0])["message"]
        assert "larger than the limit of 33554432 bytes" in message
    assert time.monotonic() - started < 5
    assert _rss_kb(tls_daemon.proc.pid) - rss < 20 * 1024, "the daemon read the body into memory"
    assert tls_daemon.request("GET", "/_ping")[0] == 200


def test_small_chunks_adding_up_past_the_limit_are_a_413_too(tls_daemon):
    piece = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(20)
        s.connect(tls_daemon.socket)
        s.sendall(b"POST /v1.41/volumes/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(40):
                s.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = s.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]


def _ask(daemon, request: bytes) -> socket.socket:
    """A connection to the daemon's unix socket with ``request`` sent on it (5 s for each read)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(daemon.socket)
    s.sendall(request)
    return s


def _read_answer(s: socket.socket) -> bytes:
    """One answer: its head, and its body by Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += s.recv(4096)
    return head + b"\r\n\r\n" + body


def test_expect_100_continue_gets_its_interim_answer_before_the_body_is_sent(tls_daemon):
    """curl -T, or curl with a body over 1 MB, sends "Expect: 100-continue" and holds the body back
    for a second unless the server answers 100 first (RFC 9110 §10.1.1)."""
    body = b'{"Name": "expect-continue"}'
    with _ask(tls_daemon, b"POST /v1.41/volumes/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)) as s:
        started = time.monotonic()
        assert s.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
        assert time.monotonic() - started < 0.5
        s.sendall(body)
        created = _read_answer(s)
        assert created.startswith(b"HTTP/1.1 201 "), created
        s.sendall(b"DELETE /v1.41/volumes/expect-continue HTTP/1.1\r\nHost: x\r\n\r\n")  # the same connection
        assert _read_answer(s).startswith(b"HTTP/1.1 204 "), "the connection went on after the body"


def test_a_request_answered_without_its_held_back_body_closes_the_connection(tls_daemon):
    """The body was never asked for, so the client may never send it: the daemon answers, sends no
    100, and closes rather than wait for the body to drain."""
    with _ask(tls_daemon, b"POST /v1.41/containers/no-such-container/kill HTTP/1.1\r\nHost: x\r\n"
              b"Expect: 100-continue\r\nContent-Length: 100\r\n\r\n") as s:
        answer = _read_answer(s)
        assert answer.startswith(b"HTTP/1.1 404 ") and b"100 Continue" not in answer, answer
        assert s.recv(4096) == b""  # closed


def test_an_expectation_other_than_100_continue_is_a_417(tls_daemon):
    with _ask(tls_daemon, b"POST /v1.41/volumes/create HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n"
              b"Content-Length: 2\r\n\r\n{}") as s:
        answer = _read_answer(s)
    assert answer.startswith(b"HTTP/1.1 417 Expectation Failed"), answer
    assert "unsupported expectation '200-ok'" in json.loads(answer.partition(b"\r\n\r\n")[2])["message"]
    assert tls_daemon.request("GET", "/volumes")[0] == 200


def test_a_client_that_takes_every_descriptor_does_not_end_the_daemon(tmp_path):
    """accept(2) failing with EMFILE is retried (Go's net/http does the same), not the daemon's end."""
    with Minidockerd(tmp_path, prefix=("prlimit", "--nofile=96", "--")) as d:
        held = []
        try:
            for _ in range(120):   # more than the daemon has descriptors for
                s = socket.socket(socket.AF_UNIX)
                s.connect(d.socket)  # the kernel queues it (backlog 512) whether or not accept succeeds
                held.append(s)
            time.sleep(0.5)
            assert d.proc.poll() is None, d.log()
        finally:
            for s in held:
                s.close()
        deadline = time.monotonic() + 20
        while not d.answers() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert d.request("GET", "/_ping")[0] == 200 and d.proc.poll() is None
        assert "accept failed: Too many open files" in d.log()


@pytest.mark.cgroup_v1
def test_a_client_that_takes_every_thread_does_not_end_the_daemon(tmp_path):
    """No thread to be had for a connection (the pids controller's limit): that client is closed, the daemon serves on."""
    cgroup = Path(f"/sys/fs/cgroup/pids/mdtest-apisec-{os.getpid()}")
    with Minidockerd(tmp_path) as d:
        cgroup.mkdir()
        try:
            (cgroup / "cgroup.procs").write_text(str(d.proc.pid))
            (cgroup / "pids.max").write_text(str(int((cgroup / "pids.current").read_text()) + 4))
            held = []
            try:
                for _ in range(30):
                    s = socket.socket(socket.AF_UNIX)
                    s.connect(d.socket)
                    held.append(s)
                deadline = time.monotonic() + 10
                while "cannot serve a connection" not in d.log() and time.monotonic() < deadline:
                    time.sleep(0.1)
                assert d.proc.poll() is None, d.log()
            finally:
                for s in held:
                    s.close()
            deadline = time.monotonic() + 20
            while not d.answers() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert d.request("GET", "/_ping")[0] == 200
            assert "cannot serve a connection: can't start new thread" in d.log()
        finally:
            try:
                Path("/sys/fs/cgroup/pids/cgroup.procs").write_text(str(d.proc.pid))
            except ProcessLookupError:
                pass  # the daemon is gone (the bug this test is about)
            cgroup.rmdir()


def test_header_blocks_over_a_mib_are_431(tls_daemon):
    for head in (b"GET /_ping HTTP/1.1\r\n" + b"X-A: b\r\n" * 200_000 + b"\r\n",
                 b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\n\r\n"):
        answer = _send_and_read(tls_daemon.socket, head, b"")
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
        assert json.loads(answer.partition(b"\r\n\r\n")[2])["message"]
    assert tls_daemon.request("GET", "/_ping")[0] == 200


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    """A context that builds (FROM busybox) but for ``members``: they alone can make it fail."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info, data = _entry("Dockerfile", b"FROM busybox\nCOPY . /ctx\n")
        tar.addfile(info, io.BytesIO(data))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def _entry(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, link: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mode = kind, link, len(data), 0o644
    if kind == tarfile.CHRTYPE:
        info.devmajor, info.devminor = 1, 3
    return info, data


def test_a_build_context_with_unsafe_names_is_refused_and_writes_nothing_outside(tls_daemon, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    cases = {
        "dot-dot": [_entry("../../../../../../../../" + str(outside / "dotdot").lstrip("/"), b"x")],
        "symlink then through it": [_entry("out", kind=tarfile.SYMTYPE, link=str(outside)), _entry("out/via", b"x")],
        "hard link to a host file": [_entry("passwd", kind=tarfile.LNKTYPE, link="/etc/passwd")],
        "device node": [_entry("null", kind=tarfile.CHRTYPE)],
    }
    for label, members in cases.items():
        status, _, body = tls_daemon.request("POST", "/v1.41/build?t=unsafe:1", _tar(*members),
                                             {"Content-Type": "application/x-tar"}, timeout=60)
        assert status == 400, (label, status, body)
        assert json.loads(body)["message"], (label, body)
        assert os.listdir(outside) == [], (label, os.listdir(outside))
    images = json.loads(tls_daemon.request("GET", "/images/json")[2])
    assert not any("unsafe:1" in (i.get("RepoTags") or []) for i in images)
