"""Chapter 14: ``POST /build`` of minidockerd, driven by the docker CLI's legacy builder and docker-py.

The context is uploaded as a tar; the daemon runs chapter 08's builder in a process of its
own and streams its steps. What the CLI prints, what it exits with for a Dockerfile that
does not parse and for a RUN that fails, and the image that results are checked.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from daemonkit import daemon_fixture

pytestmark = [pytest.mark.ch14, pytest.mark.ch08, pytest.mark.root]


daemon = daemon_fixture("md-build", busybox=True, env={"DOCKER_BUILDKIT": "0"})


def _context(tmp_path, dockerfile: str, files: dict[str, str] | None = None):
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (context / name).write_text(text)
    return context


def test_docker_build_streams_the_steps_and_tags_the_image(daemon, tmp_path):
    context = _context(tmp_path, "FROM busybox\nCOPY greeting /etc/greeting\nRUN cat /etc/greeting > /copy\n"
                                 "ENV WHO=world\nCMD [\"cat\", \"/copy\"]\n", {"greeting": "hello\n"})
    result = daemon.docker("build", "-t", "built/app:v1", str(context), timeout=180)
    out = result.stdout.decode()
    assert result.returncode == 0, out + result.stderr.decode()
    assert "Step 1/5 : FROM busybox" in out and "Step 5/5 : CMD" in out
    assert "Successfully built" in out and "Successfully tagged built/app:v1" in out
    inspected = json.loads(daemon.docker("image", "inspect", "built/app:v1").stdout)[0]
    assert inspected["Config"]["Cmd"] == ["cat", "/copy"] and "WHO=world" in inspected["Config"]["Env"]
    again = daemon.docker("build", "-t", "built/app:v1", str(context), timeout=180)
    assert again.stdout.decode().count("Using cache") == 4, again.stdout.decode()   # every step after FROM
    daemon.docker("rmi", "built/app:v1")


def test_quiet_build_prints_only_the_id(daemon, tmp_path):
    context = _context(tmp_path, "FROM busybox\nLABEL quiet=yes\n")
    result = daemon.docker("build", "-q", str(context), timeout=180)
    assert result.returncode == 0, result.stderr
    image_id = result.stdout.decode().strip()
    assert image_id.startswith("sha256:") and len(image_id) == 71
    assert daemon.docker("rmi", image_id).returncode == 0


def test_a_dockerfile_that_does_not_parse_is_dockers_400(daemon, tmp_path):
    context = _context(tmp_path, "FROM busybox\nFOOBAR nothing\n")
    result = daemon.docker("build", str(context), timeout=120)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "Error response from daemon" in err and "FOOBAR" in err.upper(), err


def test_a_failing_run_exits_with_its_code_and_leaves_no_image(daemon, tmp_path):
    context = _context(tmp_path, "FROM busybox\nRUN echo about to fail; exit 3\n")
    before = daemon.docker("images", "-aq").stdout
    result = daemon.docker("build", "-t", "broken:v1", str(context), timeout=180)
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert b"about to fail" in result.stdout
    assert b"returned a non-zero code: 3" in result.stderr, result.stderr
    assert daemon.docker("images", "-aq").stdout == before
    assert daemon.docker("image", "inspect", "broken:v1").returncode == 1


def test_build_args_target_and_labels_reach_the_builder(daemon, tmp_path):
    context = _context(tmp_path, "FROM busybox AS base\nARG WHO=nobody\nRUN echo $WHO > /who\n"
                                 "FROM base AS final\nRUN false\n")
    result = daemon.docker("build", "--target", "base", "--build-arg", "WHO=ada", "--label", "k=v",
                           "-t", "args/app:v1", str(context), timeout=180)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    inspected = json.loads(daemon.docker("image", "inspect", "args/app:v1").stdout)[0]
    assert inspected["Config"]["Labels"] == {"k": "v"}
    daemon.docker("rmi", "args/app:v1")


def test_unsupported_options_are_refused_clearly(daemon):
    for query in ("remote=https://example.invalid/repo.git", "version=2", "networkmode=container:x",
                  "buildargs=[1]"):
        status, _, body = daemon.request("POST", f"/v1.41/build?{query}", b"", {"Content-Type": "application/x-tar"})
        assert status == 400, (query, status, body)
        assert json.loads(body)["message"], query


def test_docker_py_builds_and_finds_the_image(daemon, tmp_path):
    import docker  # docker-py: requirements.txt
    context = _context(tmp_path, "FROM busybox\nRUN echo built by docker-py > /f\n")
    client = docker.DockerClient(base_url=daemon.host)
    try:
        image, logs = client.images.build(path=str(context), tag="py/built:v1")
        assert "py/built:v1" in image.tags
        assert any("Successfully built" in line.get("stream", "") for line in logs)
        with pytest.raises(docker.errors.BuildError):
            (tmp_path / "context" / "Dockerfile").write_text("FROM busybox\nRUN exit 7\n")
            client.images.build(path=str(context))
        client.images.remove("py/built:v1")
    finally:
        client.close()


def test_the_cli_uploads_a_context_from_stdin(daemon, tmp_path):
    result = subprocess.run(["docker", "build", "-t", "stdin/app:v1", "-"], input=b"FROM busybox\nENV FROM=stdin\n",
                            env=daemon.env, capture_output=True, timeout=180)
    assert result.returncode == 0, result.stderr
    inspected = json.loads(daemon.docker("image", "inspect", "stdin/app:v1").stdout)[0]
    assert "FROM=stdin" in inspected["Config"]["Env"]
    daemon.docker("rmi", "stdin/app:v1")
