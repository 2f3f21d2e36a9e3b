"""Chapter 14: the volume endpoints of minidockerd, driven by the real docker CLI and docker-py.

``docker volume create|ls|inspect|rm|prune`` through the daemon reach chapter 10's volumes:
a volume created through the API is mounted by ``minidocker run -v NAME:/dir``. The JSON of
each answer is compared with a private dockerd's.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from daemonkit import daemon_fixture, ok

pytestmark = [pytest.mark.ch14, pytest.mark.root]


daemon = daemon_fixture("md-volumes")


def test_create_ls_inspect_rm_with_the_docker_cli(daemon):
    assert ok(daemon, "volume", "create", "--label", "course=ch14", "data").strip() == "data"
    listed = ok(daemon, "volume", "ls")
    assert listed.splitlines()[0].split() == ["DRIVER", "VOLUME", "NAME"]
    assert any(line.split() == ["local", "data"] for line in listed.splitlines()[1:]), listed
    assert ok(daemon, "volume", "ls", "-q", "--filter", "label=course=ch14").split() == ["data"]
    assert ok(daemon, "volume", "ls", "-q", "--filter", "label=course=other").split() == []
    inspected = json.loads(ok(daemon, "volume", "inspect", "data"))[0]
    assert inspected["Name"] == "data" and inspected["Labels"] == {"course": "ch14"}
    assert inspected["Mountpoint"] == str(daemon.root / "lib" / "volumes" / "data" / "_data")
    assert ok(daemon, "volume", "rm", "data").strip() == "data"
    missing = daemon.docker("volume", "inspect", "data")
    assert missing.returncode == 1 and b"no such volume" in missing.stderr.lower(), missing.stderr


def test_a_volume_made_through_the_api_is_the_one_run_mounts(daemon):
    ok(daemon, "volume", "create", "shared")
    # The engine's own run (direct mode), not the CLI: with a daemon on this root the CLI would ask it.
    code = ("from minidocker.engine.run import RunOptions, run_container; import sys; "
            "sys.exit(run_container(RunOptions(image='busybox', command=['sh', '-c', 'echo hi > /data/f'], "
            "volumes=['shared:/data'], network='none', remove=True)).exit_code)")
    run = subprocess.run([sys.executable, "-c", code], env=daemon.env, capture_output=True, timeout=60)
    assert run.returncode == 0, run.stderr
    mountpoint = json.loads(ok(daemon, "volume", "inspect", "shared"))[0]["Mountpoint"]
    assert open(f"{mountpoint}/f").read() == "hi\n"
    ok(daemon, "volume", "rm", "shared")


def test_bad_names_options_and_bodies_get_400(daemon):
    for body in (b'{"Name": "a"}', b'{"Name": "bad/name"}', b'{"DriverOpts": {"nope": "1"}}',
                 b'{"Driver": "nfs"}', b'{"Labels": ["x"]}', b'[1, 2]', b"{oops"):
        status, _, answer = daemon.request("POST", "/v1.41/volumes/create", body,
                                           {"Content-Type": "application/json"})
        assert status == 400, (body, status, answer)
        assert json.loads(answer)["message"], body
    assert json.loads(daemon.request("GET", "/v1.41/volumes")[2])["Volumes"] == []


def test_rm_of_an_unknown_volume_is_404_and_force_makes_it_a_no_op(daemon):
    assert daemon.request("DELETE", "/v1.41/volumes/nothing")[0] == 404
    assert daemon.request("DELETE", "/v1.41/volumes/nothing?force=1")[0] == 204


def test_prune_at_api_1_41_removes_every_unused_volume_like_dockerd_20_10(daemon):
    for name in ("p1", "p2"):
        ok(daemon, "volume", "create", name)
    status, _, body = daemon.request("POST", "/v1.41/volumes/prune")
    assert status == 200
    answer = json.loads(body)
    assert sorted(answer["VolumesDeleted"]) == ["p1", "p2"] and isinstance(answer["SpaceReclaimed"], int)
    assert json.loads(daemon.request("GET", "/v1.41/volumes")[2])["Volumes"] == []


def test_docker_py_volumes(daemon):
    import docker  # docker-py: requirements.txt
    client = docker.DockerClient(base_url=daemon.host)
    try:
        volume = client.volumes.create("pyvol", labels={"by": "docker-py"})
        assert volume.name == "pyvol" and volume.attrs["Labels"] == {"by": "docker-py"}
        assert [v.name for v in client.volumes.list(filters={"label": "by=docker-py"})] == ["pyvol"]
        assert client.volumes.get("pyvol").attrs["Driver"] == "local"
        volume.remove()
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get("pyvol")
    finally:
        client.close()


@pytest.mark.docker
def test_volume_json_has_dockerds_keys_and_types(daemon, dockerd):
    from daemonkit import http_request

    body = json.dumps({"Name": "same", "Labels": {"k": "v"}}).encode()
    headers = {"Content-Type": "application/json"}
    ours = daemon.request("POST", "/v1.41/volumes/create", body, headers)
    socket_path = dockerd.host.removeprefix("unix://")
    theirs = http_request(socket_path, "POST", "/v1.41/volumes/create", body, headers)
    try:
        assert ours[0] == theirs[0] == 201
        mine, docker_one = json.loads(ours[2]), json.loads(theirs[2])
        assert set(mine) == set(docker_one), (mine, docker_one)
        assert {k: type(v) for k, v in mine.items()} == {k: type(v) for k, v in docker_one.items()}
        listed_ours = json.loads(daemon.request("GET", "/v1.41/volumes")[2])
        listed_theirs = json.loads(http_request(socket_path, "GET", "/v1.41/volumes")[2])
        assert set(listed_ours) == set(listed_theirs)
        assert daemon.request("GET", "/v1.41/volumes/none-here")[0] == \
            http_request(socket_path, "GET", "/v1.41/volumes/none-here")[0] == 404
    finally:
        daemon.request("DELETE", "/v1.41/volumes/same")
        http_request(socket_path, "DELETE", "/v1.41/volumes/same")


@pytest.mark.docker
@pytest.mark.parametrize("name", ["nosuch", "q", "x:y", "bad/name"])
def test_docker_inspect_of_an_unknown_name_says_what_dockerd_says(daemon, dockerd, name):
    # The CLI asks for a container, an image, a network, then a volume: a name no volume can
    # have ("q" is too short) must be "no such volume" (404), not "invalid volume name" (400).
    # Not a hex digit: "a" can be the prefix of an image or container ID on either daemon.
    ours = daemon.docker("inspect", name)
    theirs = subprocess.run(["docker", "inspect", name], env=dockerd.env, capture_output=True, timeout=60)
    assert (ours.returncode, ours.stdout, ours.stderr) == (theirs.returncode, theirs.stdout, theirs.stderr)
    assert ours.stderr == f"Error: No such object: {name}\n".encode()
    from daemonkit import http_request

    socket_path = dockerd.host.removeprefix("unix://")
    for method in ("GET", "DELETE"):
        mine = daemon.request(method, f"/v1.41/volumes/{name}")
        docker_one = http_request(socket_path, method, f"/v1.41/volumes/{name}")
        assert mine[0] == docker_one[0] == 404, (method, mine, docker_one)
        assert json.loads(mine[2]) == json.loads(docker_one[2]), method
