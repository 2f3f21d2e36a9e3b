"""Chapter 07: ``minidocker run`` pulls a missing image first, as ``docker run`` does (``--pull``).

Our own registry server on a free 127.0.0.1 port, seeded by pushing the local busybox; each
test runs containers with a fresh, empty MINIDOCKER_ROOT (the "student"), so the image is
missing there until ``run`` pulls it. The server's access log tells whether a run asked it
anything.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from minidocker.engine.images import local_image
from minidocker.image import ImageStore
from minidocker.registry.progress import Progress
from minidocker.registry.push import push
from minidocker.registry.server import RegistryServer

pytestmark = [pytest.mark.ch07, pytest.mark.root]


@pytest.fixture
def server(tmp_path):
    requests: list[str] = []
    srv = RegistryServer(tmp_path / "registry", ("127.0.0.1", 0), log=requests.append)
    srv.requests = requests
    srv.start()
    yield srv
    if srv.requests is not None:   # not stopped by the test
        srv.stop()


def _stop(srv: RegistryServer) -> None:
    srv.stop()
    srv.requests = None


@pytest.fixture
def image(server, tmp_path) -> str:
    """``ADDR/demo/bb:v1`` in the registry: the local busybox, pushed from a teacher's store."""
    teacher = ImageStore(tmp_path / "teacher" / "lib" / "images")
    local_image(teacher, "busybox")   # built from the host's busybox
    ref = f"{server.address}/demo/bb:v1"
    teacher.tag("busybox", ref)
    server.digest = push(teacher, ref, progress=Progress(quiet=True))
    server.requests.clear()
    return ref


@pytest.fixture
def student(cli, tmp_path):
    """``minidocker ARGS`` with a fresh MINIDOCKER_ROOT of its own."""
    root = tmp_path / "student"

    def run(*args: str):
        return cli(*args, env={"MINIDOCKER_ROOT": str(root)})

    run.root = root
    yield run
    assert _containers(root) == [], "a container record was left behind"


def _containers(root) -> list[str]:
    """The container directories (not the name claims in .names/)."""
    directory = root / "lib" / "containers"
    return sorted(n for n in os.listdir(directory) if not n.startswith(".")) if directory.is_dir() else []


def test_run_pulls_a_missing_image_then_runs_it_and_the_next_run_does_not_pull(server, image, student):
    first = student("run", "--rm", image, "echo", "hi")
    assert first.code == 0 and first.out == "hi\n", first
    lines = first.err.splitlines()
    assert lines[0] == f"Unable to find image '{image}' locally", first
    assert lines[1] == "v1: Pulling from demo/bb", first
    assert any(line.endswith(": Pull complete") for line in lines), first
    assert f"Digest: {server.digest}" in lines and f"Status: Downloaded newer image for {image}" in lines, first
    assert any("/manifests/v1" in r for r in server.requests)

    server.requests.clear()
    second = student("run", "--rm", image, "echo", "hi")
    assert (second.code, second.out, second.err) == (0, "hi\n", ""), second
    assert server.requests == []
    assert image.rsplit(":", 1)[0] in student("images").out


def test_pull_never_refuses_a_missing_image_and_asks_no_registry(server, image, student):
    result = student("run", "--rm", "--pull", "never", image, "echo", "hi")
    assert (result.code, result.out) == (125, ""), result
    assert result.err == f"minidocker: No such image: {image}\n", result
    assert server.requests == []
    bad = student("run", "--rm", "--pull", "sometimes", image, "true")
    assert bad.code == 125 and "invalid pull option: 'sometimes'" in bad.err, bad


def test_pull_always_pulls_a_present_image_and_fails_when_the_registry_is_down(server, image, student):
    assert student("run", "--rm", image, "true").code == 0
    server.requests.clear()
    again = student("run", "--rm", "--pull", "always", image, "echo", "hi")
    assert again.code == 0 and again.out == "hi\n", again
    assert "Unable to find" not in again.err and f"Status: Image is up to date for {image}" in again.err, again
    assert any("/manifests/v1" in r for r in server.requests)

    address = server.address
    _stop(server)
    down = student("run", "--rm", "--pull", "always", image, "echo", "hi")
    assert (down.code, down.out) == (125, ""), down
    assert f"minidocker: failed to connect to registry {address}: connection refused" in down.err, down
    present = student("run", "--rm", image, "echo", "hi")   # missing (the default): no registry needed
    assert (present.code, present.out, present.err) == (0, "hi\n", ""), present


def test_an_unknown_repository_fails_with_the_registrys_message_and_leaves_nothing(server, image, student):
    missing = image.replace("/demo/bb:v1", "/demo/nope:v1")
    result = student("run", missing, "echo", "hi")   # no --rm: a record would stay if one were made
    assert (result.code, result.out) == (125, ""), result
    lines = result.err.splitlines()
    assert lines[0] == f"Unable to find image '{missing}' locally", result
    assert lines[-1] == "minidocker: manifest for demo/nope:v1 not found: manifest unknown: manifest unknown", result
    assert student("ps", "-a", "-q").out.strip() == ""
    assert student("images", "-q").out.strip() == ""   # no half image either


def test_an_image_named_by_digest_is_pulled_by_that_digest(server, image, student):
    pinned = f"{image.rsplit(':', 1)[0]}@{server.digest}"
    first = student("run", "--rm", pinned, "echo", "hi")
    assert first.code == 0 and first.out == "hi\n", first
    assert first.err.startswith(f"Unable to find image '{pinned}' locally\n"), first
    assert any(f"/manifests/{server.digest}" in r for r in server.requests), server.requests
    assert not any("/manifests/v1" in r for r in server.requests), server.requests
    server.requests.clear()
    second = student("run", "--rm", pinned, "echo", "hi")
    assert (second.code, second.out, second.err) == (0, "hi\n", ""), second
    assert server.requests == []


def test_running_a_local_image_imports_no_registry_module(state_root):
    """The start-up path stays what it was: the pull machinery is imported only to pull."""
    code = ("import sys\nfrom minidocker.cli.main import main\ncode = main(['run', '--rm', 'busybox', 'true'])\n"
            "print(code, sorted(m for m in sys.modules if m.startswith(('minidocker.registry', "
            "'minidocker.engine.pulling'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "MINIDOCKER_ROOT": str(state_root)})
    assert out.stdout.strip() == "0 []", out
