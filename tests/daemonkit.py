"""minidockerd for tests: start one on a private socket, talk HTTP to it, stop it by PID.

    with Minidockerd(root) as daemon:        # ~0.3 s to answer
        daemon.docker("version")              # the real docker CLI, DOCKER_HOST=unix://<socket>
        daemon.request("GET", "/_ping")       # (status, headers, body) over a fresh connection
        daemon.env                            # DOCKER_HOST and DOCKER_CONFIG for subprocesses

``raw_request(socket, bytes)`` sends bytes as they are and returns what came back: the
tests of bad requests use it.

What the daemon's test modules share, so that each sets up the same way::

    daemon = daemon_fixture("md-archive", busybox=True)   # the module's ``daemon``: a root of its own
    sandbox = sandbox_fixture("netvol")                   # a network sandbox (minidocker/coursenet.py)
    Minidockerd.in_sandbox(sandbox, "--debug")            # a daemon in it (its bridges and rules too)
    assert_clean(sandbox)                                 # nothing left in it: links, rules, processes
    with busybox_in_dockerd(dockerd, images, tmp):        # our busybox, loaded into the private dockerd
    ok(daemon, "run", "--rm", "busybox", "true")          # the docker CLI's stdout; a failure shows all
    wait_for(lambda: ..., what="the exit")

Stopping a Minidockerd removes every container a test left (``remove_all``); the leak
detector of conftest.py checks each test's mounts, links, cgroups and processes.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

__all__ = ["Minidockerd", "UnixHTTPConnection", "assert_clean", "busybox_in_dockerd", "daemon_fixture",
           "docker", "http_request", "ok", "raw_request", "sandbox_fixture", "seed_busybox", "wait_for"]


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 10) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def http_request(path_to_socket: str, method: str, path: str, body: bytes | None = None,
                 headers: dict[str, str] | None = None, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    conn = UnixHTTPConnection(path_to_socket, timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = b"" if method == "HEAD" else response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def raw_request(path_to_socket: str, data: bytes, timeout: float = 5, half_close: bool = True) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path_to_socket)
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            pass
        return b"".join(chunks)


class Minidockerd:
    """A minidockerd on its own socket (under ``root``/run), started as a subprocess; ``stop()`` ends it by PID."""

    def __init__(self, root: str | os.PathLike[str], *args: str, socket_path: str | None = None,
                 timeout: float = 20, prefix: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:
        """``prefix`` runs the daemon under another command (a network sandbox's nsenter), with ``env``
        as its environment's base instead of this one's."""
        self.root = Path(root)
        self.socket = socket_path or str(self.root / "run" / "minidocker.sock")
        self.host = f"unix://{self.socket}"
        self.client_config = tempfile.mkdtemp(prefix="mdcfg.")
        self.env = {**(os.environ if env is None else env), "MINIDOCKER_ROOT": str(self.root),
                    "DOCKER_HOST": self.host, "DOCKER_CONFIG": self.client_config}
        self.env.pop("DOCKER_CONTEXT", None)
        self.log_path = self.root / "minidockerd.test.log"
        self.root.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        argv = [*prefix, sys.executable, "-m", "minidocker.cli.daemon", "-H", self.host, *args]
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=self.env, cwd=REPO,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while not (self.answers() and self._is_ours()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"minidockerd did not start (exit {self.proc.returncode}):\n{self.log()}")
            time.sleep(0.02)

    @classmethod
    def in_sandbox(cls, box, *args: str, **kw) -> Minidockerd:
        """A daemon in the network sandbox ``box`` (minidocker/coursenet.py), on its state root."""
        return cls(box.state_root, *args, prefix=tuple(box.argv()), env=box.env, **kw)

    def _is_ours(self) -> bool:
        """The answering daemon is this process (its pidfile), not another one on the same socket."""
        try:
            return int((self.root / "run" / "minidockerd.pid").read_text()) == self.proc.pid
        except (OSError, ValueError):
            return False

    def answers(self) -> bool:
        try:
            return http_request(self.socket, "GET", "/_ping", timeout=1)[0] == 200
        except OSError:
            return False

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                timeout: float = 10):
        return http_request(self.socket, method, path, body, headers, timeout)

    def docker(self, *args: str, timeout: float = 60, input: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", *args], env=self.env, capture_output=True, timeout=timeout, input=input,
                              check=False)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def remove_all(self) -> None:
        """``docker rm -f`` of every container (a test's leftovers), so that the supervisor ends with the daemon."""
        import json

        if self.proc.poll() is not None:
            return
        status, _, body = self.request("GET", "/containers/json?all=1")
        for row in json.loads(body) if status == 200 else []:
            self.request("DELETE", f"/containers/{row['Id']}?force=1", timeout=60)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20, clean: bool = True) -> int | None:
        if clean and sig == signal.SIGTERM:
            try:
                self.remove_all()
            except OSError:
                pass
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._log.closed:
            self._log.close()
        import shutil

        shutil.rmtree(self.client_config, ignore_errors=True)
        return self.proc.returncode

    def __enter__(self) -> Minidockerd:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# -- what the test modules of the daemon share ------------------------------------------------------


def seed_busybox(root: str | os.PathLike[str]) -> None:
    """The built-in busybox in the image store under the state root ``root`` (engine/images.local_image)."""
    from minidocker.engine.images import local_image
    from minidocker.image import ImageStore

    local_image(ImageStore(Path(root) / "lib" / "images"), "busybox")


def daemon_fixture(name: str | None = None, *args: str, busybox: bool = False,
                   env: dict[str, str] | None = None):
    """A module's ``daemon`` fixture: ``daemon = daemon_fixture("md-archive", busybox=True)``.

    A Minidockerd (``args``: its flags) on a new state root named after ``name``, or on the
    session's ``state_root`` if None; ``busybox``: made in its store first (what lists or
    saves images wants it there); ``env``: added to the docker CLI's environment. As with
    :func:`sandbox_fixture`, pytest names the fixture after the module attribute it is.
    """
    import pytest

    @pytest.fixture(scope="module")
    def daemon(request, tmp_path_factory):
        # state_root only when asked for: exercises/ have no such fixture
        root = request.getfixturevalue("state_root") if name is None else tmp_path_factory.mktemp(name)
        if busybox:
            seed_busybox(root)
        with Minidockerd(root, *args) as d:
            d.env.update(env or {})
            yield d

    return daemon


def sandbox_fixture(name: str, check: bool = False):
    """A module's network sandbox fixture (minidocker/coursenet.py: Sandbox) on a new state root.

    ``sandbox = sandbox_fixture("netvol")``: pytest names the fixture after the module attribute
    (``box = ...`` makes a ``box`` fixture). ``check``: at the end, prune (``minidocker system
    prune -f``) and fail if anything is left.
    """
    import pytest

    @pytest.fixture(scope="module")
    def sandbox(tmp_path_factory):
        from minidocker.coursenet import Sandbox

        with Sandbox(tmp_path_factory.mktemp(name)) as box:
            yield box
            if check:
                box.md("system", "prune", "-f")
                assert_clean(box, allow_networks=False)

    return sandbox


def assert_clean(box, processes: bool = True, allow_networks: bool = True) -> None:
    """Fail unless the sandbox has no container veth, endpoint or rule left (``processes``: nor process)."""
    problems = [p for p in box.wait_clean(allow_networks=allow_networks)
                if processes or not p.startswith("process ")]
    assert not problems, f"left in the sandbox: {problems}"


@contextmanager
def busybox_in_dockerd(dockerd, images: str | os.PathLike[str], directory: str | os.PathLike[str]):
    """Our busybox (the store at ``images``, made there if missing) in the private dockerd while it lasts.

    ``docker load`` of its ``docker save`` archive: the same config, so the same image ID in
    both daemons. Removed from dockerd at the end.
    """
    from minidocker.engine.images import local_image
    from minidocker.image import ImageStore
    from minidocker.image.archive import save_archive

    store = ImageStore(Path(images))
    local_image(store, "busybox")
    archive = Path(directory) / "busybox.tar"
    with open(archive, "wb") as out:
        save_archive(store, ["busybox"], out)
    dockerd.docker("load", "-i", str(archive))
    try:
        yield "busybox"
    finally:
        dockerd.docker("rmi", "-f", "busybox", check=False)


def docker(daemon: Minidockerd, *args: str, input: bytes | None = None,
           timeout: float = 60) -> subprocess.CompletedProcess:
    """``docker ARGS`` against ``daemon``, with ``.text`` and ``.errors``: its stdout and stderr decoded."""
    out = daemon.docker(*args, input=input, timeout=timeout)
    out.text = out.stdout.decode(errors="replace")  # type: ignore[attr-defined]
    out.errors = out.stderr.decode(errors="replace")  # type: ignore[attr-defined]
    return out


def ok(daemon: Minidockerd, *args: str, **kw) -> str:
    """The stdout of ``docker ARGS``, which must succeed; else the failure with the command and its output."""
    out = docker(daemon, *args, **kw)
    assert out.returncode == 0, f"$ docker {' '.join(args)}: exit {out.returncode}\n{out.text}{out.errors}"
    return out.text


def wait_for(predicate, timeout: float = 10, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
