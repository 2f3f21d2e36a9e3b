"""Chapter 14: the network endpoints of minidockerd, driven by the real docker CLI and docker-py.

The daemon runs inside a network sandbox (minidocker/coursenet.py: its own network
namespace and firewall), so the bridges and rules that ``docker network create`` makes never
touch the host. A container started in the sandbox by ``minidocker run`` is connected and
disconnected through the API. dockerd's answers give the keys and types to compare.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from daemonkit import Minidockerd, ok, sandbox_fixture

pytestmark = [pytest.mark.ch14, pytest.mark.root, pytest.mark.netns]


box = sandbox_fixture("ch14-net", check=True)   # a prune at the end leaves nothing, not even a network


@pytest.fixture(scope="module")
def daemon(box):
    with Minidockerd.in_sandbox(box) as d:
        yield d


def test_ls_shows_the_predefined_networks(daemon):
    rows = [line.split() for line in ok(daemon, "network", "ls").splitlines()]
    assert rows[0] == ["NETWORK", "ID", "NAME", "DRIVER", "SCOPE"]
    assert [(r[1], r[2], r[3]) for r in rows[1:]] == [("bridge", "bridge", "local"), ("host", "host", "local"),
                                                     ("none", "null", "local")]


def test_create_inspect_and_rm_a_bridge_network(daemon, box):
    network_id = ok(daemon, "network", "create", "--subnet", "10.214.40.0/24", "app").strip()
    assert len(network_id) == 64
    inspected = json.loads(ok(daemon, "network", "inspect", "app"))[0]
    assert inspected["Id"] == network_id and inspected["Driver"] == "bridge"
    assert inspected["IPAM"]["Config"] == [{"Subnet": "10.214.40.0/24", "Gateway": "10.214.40.1"}]
    bridge = inspected["Options"]["com.docker.network.bridge.name"]
    assert bridge in [link["ifname"] for link in box.links()]
    assert ok(daemon, "network", "ls", "-q", "--filter", "name=app").strip() == network_id[:12]
    assert ok(daemon, "network", "rm", "app").strip() == "app"
    assert bridge not in [link["ifname"] for link in box.links()]


def test_bad_requests_get_dockers_status(daemon):
    assert ok(daemon, "network", "create", "dup").strip()
    try:
        again = daemon.docker("network", "create", "dup")
        assert again.returncode == 1 and b"already exists" in again.stderr, again.stderr
    finally:
        ok(daemon, "network", "rm", "dup")
    status, _, body = daemon.request("DELETE", "/v1.41/networks/bridge")
    assert status == 403 and "pre-defined" in json.loads(body)["message"]
    assert daemon.request("GET", "/v1.41/networks/nothing-here")[0] == 404
    for body in (b'{"Name": "x", "Driver": "overlay"}', b'{"Name": "bad name"}', b"{}", b"[]",
                 b'{"Name": "v6", "EnableIPv6": true}', b'{"Name": "two", "IPAM": {"Config": [{"Subnet": '
                 b'"10.214.50.0/24"}, {"Subnet": "10.214.51.0/24"}]}}'):
        status, _, answer = daemon.request("POST", "/v1.41/networks/create", body,
                                           {"Content-Type": "application/json"})
        assert status == 400, (body, status, answer)
    overlap = daemon.request("POST", "/v1.41/networks/create",
                             b'{"Name": "clash", "IPAM": {"Config": [{"Subnet": "10.213.0.0/24"}]}}',
                             {"Content-Type": "application/json"})
    assert overlap[0] == 409, overlap


def test_connect_and_disconnect_a_running_container(daemon, box):
    ok(daemon, "network", "create", "--subnet", "10.214.41.0/24", "side")
    # The engine's own run (direct mode), not the CLI: with a daemon on this root the CLI would ask it,
    # and minidockerd has no bridge network yet.
    code = ("from minidocker.engine.run import RunOptions, run_container; "
            "run_container(RunOptions(image='busybox', command=['sleep', '30'], name='web', remove=True))")
    run = subprocess.Popen(box.argv(sys.executable, "-c", code), env=box.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            if box.md("exec", "web", "true").returncode == 0:
                break
            time.sleep(0.1)
        ok(daemon, "network", "connect", "side", "web")
        addresses = box.md("exec", "web", "ip", "-o", "-4", "addr", "show", "eth1")
        assert "10.214.41." in addresses.stdout, addresses
        inspected = json.loads(ok(daemon, "network", "inspect", "side"))[0]
        assert [c["Name"] for c in inspected["Containers"].values()] == ["web"]
        again = daemon.docker("network", "connect", "side", "web")
        assert again.returncode == 1 and b"already connected" in again.stderr, again.stderr
        ok(daemon, "network", "disconnect", "side", "web")
        assert box.md("exec", "web", "ip", "link", "show", "eth1").returncode != 0
    finally:
        run.kill()
        run.communicate(timeout=30)
        box.md("rm", "-f", "web")
        daemon.docker("network", "rm", "side")


def test_prune_removes_networks_without_endpoints(daemon):
    for name in ("p1", "p2"):
        ok(daemon, "network", "create", name)
    status, _, body = daemon.request("POST", "/v1.41/networks/prune")
    assert status == 200 and sorted(json.loads(body)["NetworksDeleted"]) == ["p1", "p2"]


def test_docker_py_networks(daemon):
    import docker  # docker-py: requirements.txt
    client = docker.DockerClient(base_url=daemon.host)
    try:
        network = client.networks.create("pynet", driver="bridge")
        assert client.networks.get(network.id).name == "pynet"
        assert "pynet" in [n.name for n in client.networks.list()]
        network.remove()
        with pytest.raises(docker.errors.NotFound):
            client.networks.get("pynet")
    finally:
        client.close()


@pytest.mark.docker
def test_network_json_has_dockerds_keys_and_types(daemon, dockerd):
    from daemonkit import http_request

    socket_path = dockerd.host.removeprefix("unix://")
    ours = json.loads(daemon.request("GET", "/v1.41/networks/none")[2])
    theirs = json.loads(http_request(socket_path, "GET", "/v1.41/networks/none")[2])
    assert set(theirs) <= set(ours), set(theirs) - set(ours)
    for key in theirs:
        if theirs[key] is not None and ours[key] is not None:
            assert type(ours[key]) is type(theirs[key]), key
    assert ours["Driver"] == theirs["Driver"] == "null"
