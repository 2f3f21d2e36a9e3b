"""Chapters 13 and 14: networks and volumes of minidockerd, through the real docker CLI and docker-py.

The daemon runs in a network sandbox (minidocker/network/sandbox.py: its own network and
mount namespaces, its own firewall), so its default bridge ``mdbr0``, user networks and
DNAT rules never touch the host; a published port is fetched on the sandbox's 127.0.0.1.
After each test the sandbox holds no veth, endpoint or container rule (``box.wait_clean``).
A private dockerd (tests/dockerd.py, no bridge of its own) gives the shapes of inspect's
NetworkSettings and Mounts to compare with.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from daemonkit import Minidockerd, assert_clean, docker, ok, sandbox_fixture, wait_for

from minidocker.coursenet import Sandbox

pytestmark = [pytest.mark.ch13, pytest.mark.root, pytest.mark.netns, pytest.mark.overlay]

PORT = 15100   # this file's host ports: 15100-15199


sandbox = sandbox_fixture("netvol")


@pytest.fixture(scope="module")
def daemon(sandbox):
    with Minidockerd.in_sandbox(sandbox, "--debug") as d:
        d.env["DOCKER_BUILDKIT"] = "0"
        yield d
    assert_clean(sandbox)   # the daemon gone, its idle supervisor too: no process, no veth, no rule


@pytest.fixture
def box(sandbox, daemon):
    """The sandbox; after the test, no container, veth, endpoint or container rule may be left in it."""
    yield sandbox
    daemon.remove_all()
    assert_clean(sandbox, processes=False)


def inspect(daemon, ref: str) -> dict:
    return json.loads(ok(daemon, "inspect", ref))[0]


def endpoints(box: Sandbox) -> list[str]:
    return [ep["name"] for net in box.networks().values() for ep in net["endpoints"].values()]


# -- bridge networking --------------------------------------------------------------------------

def test_run_d_is_on_the_default_bridge_and_inspect_shows_its_address(daemon, box):
    cid = ok(daemon, "run", "-d", "--name", "web", "busybox", "sleep", "100").strip()
    settings = inspect(daemon, cid)["NetworkSettings"]
    bridge = settings["Networks"]["bridge"]
    assert settings["IPAddress"] == bridge["IPAddress"] and settings["IPAddress"].startswith("10.213.")
    assert settings["Gateway"] == bridge["Gateway"] == "10.213.0.1" and settings["IPPrefixLen"] == 16
    inside = ok(daemon, "exec", "web", "sh", "-c", "cat /sys/class/net/eth0/address; ip -o -4 addr show eth0; "
                                                   "ip route; cat /etc/hosts").splitlines()
    assert inside[0] == settings["MacAddress"] == bridge["MacAddress"]   # the real one, read from its netns
    assert f"inet {settings['IPAddress']}/16" in inside[1]
    assert "default via 10.213.0.1" in inside[2]
    assert any(line.split()[:2] == [settings["IPAddress"], cid[:12]] for line in inside[3:]), inside
    assert endpoints(box) == ["web"]
    since = str(time.time() - 60)
    ok(daemon, "stop", "-t", "1", "web")
    assert endpoints(box) == []   # detached at the exit: the address is free again
    events = ok(daemon, "events", "--since", since, "--until", str(time.time() + 1), "--filter", "type=network",
                "--format", "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.container}}").splitlines()
    assert [e for e in events if e.endswith(cid)] == [f"connect bridge {cid}", f"disconnect bridge {cid}"], events
    stopped = inspect(daemon, "web")["NetworkSettings"]
    assert (stopped["IPAddress"], stopped["Ports"], list(stopped["Networks"])) == ("", {}, ["bridge"])
    ok(daemon, "rm", "web")


def test_a_published_port_answers_on_loopback_and_port_and_ps_show_it(daemon, box):
    ok(daemon, "run", "-d", "--name", "httpd", "-p", f"127.0.0.1:{PORT + 1}:80", "-p", f"{PORT + 2}:80",
       "busybox", "sh", "-c", "echo hello > /www; exec httpd -f -p 80 -h /")
    assert box.fetch(f"http://127.0.0.1:{PORT + 1}/www") == "hello\n"
    assert box.fetch(f"http://127.0.0.1:{PORT + 2}/www") == "hello\n"
    assert sorted(ok(daemon, "port", "httpd").splitlines()) == [f"80/tcp -> 0.0.0.0:{PORT + 2}",
                                                                f"80/tcp -> 127.0.0.1:{PORT + 1}"]
    assert sorted(ok(daemon, "port", "httpd", "80").splitlines()) == [f"0.0.0.0:{PORT + 2}", f"127.0.0.1:{PORT + 1}"]
    row = json.loads(ok(daemon, "ps", "--format", "{{json .}}").splitlines()[0])
    assert sorted(row["Ports"].split(", ")) == [f"0.0.0.0:{PORT + 2}->80/tcp", f"127.0.0.1:{PORT + 1}->80/tcp"], row
    assert row["Networks"] == "bridge"
    assert [r for r in box.firewall_rules() if "ctr:" in r]   # the DNAT rules, while it runs
    ok(daemon, "rm", "-f", "httpd")
    wait_for(lambda: not [r for r in box.firewall_rules() if "ctr:" in r], what="its DNAT rules to go")


def test_restart_wires_the_container_again(daemon, box):
    ok(daemon, "run", "-d", "--name", "again", "-p", f"{PORT + 11}:80", "busybox", "sh", "-c",
       "hostname -i > /www; exec httpd -f -p 80 -h /")
    assert box.fetch(f"http://127.0.0.1:{PORT + 11}/www").strip().startswith("10.213.")
    ok(daemon, "restart", "-t", "1", "again")   # a new namespace: a new veth, address and DNAT rule
    address = inspect(daemon, "again")["NetworkSettings"]["IPAddress"]
    assert box.fetch(f"http://127.0.0.1:{PORT + 11}/www") == address + "\n"
    assert endpoints(box) == ["again"]


def test_a_restart_policy_rewires_each_life_and_stop_leaves_no_rule(daemon, box):
    ok(daemon, "run", "-d", "--name", "loop", "--restart", "always", "-p", f"{PORT + 13}:80", "busybox", "sh", "-c",
       "echo up > /www; httpd -p 80 -h /; sleep 2; exit 1")
    wait_for(lambda: inspect(daemon, "loop")["RestartCount"] >= 2, timeout=30, what="two restarts")
    assert box.fetch(f"http://127.0.0.1:{PORT + 13}/www") == "up\n"   # the last life's DNAT rule
    ok(daemon, "stop", "-t", "1", "loop")
    wait_for(lambda: not [r for r in box.firewall_rules() if "ctr:" in r], what="no container rule")
    assert endpoints(box) == []


def test_P_publishes_the_exposed_ports_on_ephemeral_host_ports(daemon, box):
    ok(daemon, "run", "-d", "--name", "pub", "--expose", "80", "-P", "busybox", "sh", "-c",
       "echo all > /www; exec httpd -f -p 80 -h /")
    (line,) = ok(daemon, "port", "pub").splitlines()
    key, _, address = line.partition(" -> ")
    host_port = int(address.rpartition(":")[2])
    assert key == "80/tcp" and address.startswith("0.0.0.0:") and 32768 <= host_port < 61000
    assert box.fetch(f"http://127.0.0.1:{host_port}/www") == "all\n"


def test_a_user_network_resolves_container_names_and_isolates_from_the_default(daemon, box):
    ok(daemon, "network", "create", "--subnet", "10.214.77.0/24", "app")
    try:
        ok(daemon, "run", "-d", "--name", "db", "--network", "app", "busybox", "sleep", "100")
        db = inspect(daemon, "db")["NetworkSettings"]
        assert db["IPAddress"] == "" and db["Networks"]["app"]["IPAddress"].startswith("10.214.77.")
        assert db["Networks"]["app"]["DNSNames"] == ["db", inspect(daemon, "db")["Id"][:12]]
        out = ok(daemon, "run", "--rm", "--network", "app", "busybox", "ping", "-c", "1", "-W", "2", "db")
        assert db["Networks"]["app"]["IPAddress"] in out
        network_id = json.loads(ok(daemon, "network", "inspect", "app"))[0]["Id"]
        by_id = ok(daemon, "run", "--rm", "--network", network_id[:12], "busybox", "ping", "-c", "1", "-W", "2", "db")
        assert db["Networks"]["app"]["IPAddress"] in by_id   # a network by its ID prefix, as dockerd takes it
        fixed = ok(daemon, "run", "--rm", "--network", "app", "--ip", "10.214.77.50", "busybox", "ip", "-o", "-4",
                   "addr", "show", "eth0")
        assert "inet 10.214.77.50/24" in fixed
        taken = docker(daemon, "run", "--rm", "--network", "app", "--ip", db["Networks"]["app"]["IPAddress"],
                       "busybox", "true")
        assert taken.returncode == 125 and "Address already in use" in taken.errors, taken.errors
        for ip, network, message in (("10.99.0.5", "app", "does not belong to any of this network's subnets"),
                                     ("10.213.0.50", "bridge", "supported on user defined networks only")):
            bad = docker(daemon, "run", "--rm", "--network", network, "--ip", ip, "busybox", "true")
            assert bad.returncode == 125 and message in bad.errors, bad.errors
        other = docker(daemon, "run", "--rm", "busybox", "ping", "-c", "1", "-W", "1", "db")
        assert other.returncode != 0   # the default bridge resolves no names (as Docker's)
        ok(daemon, "rm", "-f", "db")
    finally:
        docker(daemon, "rm", "-f", "db")
        ok(daemon, "network", "rm", "app")


def _mac_of(ip: str) -> str:
    return "02:42:" + ":".join(f"{int(b):02x}" for b in ip.split("."))


def test_network_aliases_resolve_through_the_peers_hosts_files_and_show_in_inspect(daemon, box):
    ok(daemon, "network", "create", "--subnet", "10.214.79.0/24", "aliased")
    ok(daemon, "network", "create", "--subnet", "10.214.80.0/24", "aliased2")
    try:
        cid = ok(daemon, "run", "-d", "--name", "db", "--network", "aliased", "--network-alias", "database",
                 "--network-alias", "pg", "busybox", "sleep", "100").strip()
        db = inspect(daemon, "db")["NetworkSettings"]["Networks"]["aliased"]
        assert db["Aliases"] == ["database", "pg", cid[:12]]   # dockerd 20.10's: as given, then the short ID
        for name in ("database", "pg", "db"):
            out = ok(daemon, "run", "--rm", "--network", "aliased", "busybox", "ping", "-c", "1", "-W", "2", name)
            assert db["IPAddress"] in out, (name, out)
        hosts = ok(daemon, "run", "--rm", "--network", "aliased", "busybox", "cat", "/etc/hosts")
        assert f"{db['IPAddress']}\tdb {cid[:12]} database pg" in hosts, hosts
        for name in ("database", "db"):   # itself too, by its name and aliases, as dockerd's DNS answers
            out = ok(daemon, "exec", "db", "ping", "-c", "1", "-W", "2", name)
            assert db["IPAddress"] in out, (name, out)
        # network connect --alias: the aliases on that network only
        ok(daemon, "network", "connect", "--alias", "db-two", "aliased2", "db")
        second = inspect(daemon, "db")["NetworkSettings"]["Networks"]["aliased2"]
        assert second["Aliases"] == ["db-two", cid[:12]]
        out = ok(daemon, "run", "--rm", "--network", "aliased2", "busybox", "ping", "-c", "1", "-W", "2", "db-two")
        assert second["IPAddress"] in out
        unknown = docker(daemon, "run", "--rm", "--network", "aliased2", "busybox", "ping", "-c", "1", "-W", "1",
                         "database")
        assert unknown.returncode != 0   # an alias is one network's name for it
        refused = daemon.request("POST", "/v1.41/networks/bridge/connect", json.dumps(
            {"Container": "db", "EndpointConfig": {"Aliases": ["x1"]}}).encode(), {"Content-Type": "application/json"})
        assert refused[0] == 400 and b"supported only for containers in user defined networks" in refused[2], refused
        for bad in ("two words", "x\n10.0.0.1 evil", "#"):   # each would break the peers' hosts lines
            status, _, body = daemon.request("POST", "/v1.41/containers/create", json.dumps(
                {"Image": "busybox", "HostConfig": {"NetworkMode": "aliased"},
                 "NetworkingConfig": {"EndpointsConfig": {"aliased": {"Aliases": [bad]}}}}).encode(),
                {"Content-Type": "application/json"})
            assert status == 400 and b"invalid network alias" in body, (bad, status, body)
            connected = daemon.request("POST", "/v1.41/networks/aliased2/connect", json.dumps(
                {"Container": "db", "EndpointConfig": {"Aliases": [bad]}}).encode(),
                {"Content-Type": "application/json"})
            assert connected[0] == 400, (bad, connected)
        created = ok(daemon, "create", "--name", "later", "--network", "aliased", "--network-alias", "cache",
                     "busybox", "sleep", "100").strip()
        assert inspect(daemon, created)["NetworkSettings"]["Networks"]["aliased"]["Aliases"] == ["cache"]
    finally:
        docker(daemon, "rm", "-f", "db", "later")
        ok(daemon, "network", "rm", "aliased", "aliased2")


def test_the_mac_address_is_02_42_and_the_ipv4_address_or_the_one_asked_for(daemon, box):
    ok(daemon, "network", "create", "--subnet", "10.214.81.0/24", "macs")
    try:
        ok(daemon, "run", "-d", "--name", "derived", "busybox", "sleep", "100")
        settings = inspect(daemon, "derived")["NetworkSettings"]
        assert settings["MacAddress"] == settings["Networks"]["bridge"]["MacAddress"] == _mac_of(settings["IPAddress"])
        inside = ok(daemon, "exec", "derived", "cat", "/sys/class/net/eth0/address").strip()
        assert inside == settings["MacAddress"]
        ok(daemon, "network", "connect", "macs", "derived")
        second = inspect(daemon, "derived")["NetworkSettings"]["Networks"]["macs"]
        assert second["MacAddress"] == _mac_of(second["IPAddress"])
        assert ok(daemon, "exec", "derived", "cat", "/sys/class/net/eth1/address").strip() == second["MacAddress"]
        members = json.loads(ok(daemon, "network", "inspect", "macs"))[0]["Containers"]
        assert [m["MacAddress"] for m in members.values()] == [second["MacAddress"]]
        # Config.MacAddress: CLI 28 sends --mac-address per network (API 1.44) unless --network none, so by hand
        status, _, body = daemon.request("POST", "/v1.41/containers/create?name=asked", json.dumps(
            {"Image": "busybox", "Cmd": ["cat", "/sys/class/net/eth0/address"], "MacAddress": "02:42:AB:CD:00:07",
             "HostConfig": {"NetworkMode": "macs"}}).encode(), {"Content-Type": "application/json"})
        assert status == 201, body
        assert ok(daemon, "start", "-a", "asked").strip() == "02:42:ab:cd:00:07"
        assert inspect(daemon, "asked")["Config"]["MacAddress"] == "02:42:AB:CD:00:07"   # as given, as dockerd's
        bad = daemon.request("POST", "/v1.41/containers/create", json.dumps(
            {"Image": "busybox", "MacAddress": "01:00:5e:00:00:01"}).encode(), {"Content-Type": "application/json"})
        assert bad[0] == 400 and b"invalid MAC address" in bad[2], bad
        for mode in ("host", "container:derived"):   # no interface of its own: dockerd's create refuses
            bad = daemon.request("POST", "/v1.41/containers/create", json.dumps(
                {"Image": "busybox", "MacAddress": "02:42:ab:cd:00:08", "HostConfig": {"NetworkMode": mode}}
            ).encode(), {"Content-Type": "application/json"})
            assert bad[0] == 400 and b"conflicting options: mac-address and the network mode" in bad[2], bad
    finally:
        docker(daemon, "rm", "-f", "derived", "asked")
        ok(daemon, "network", "rm", "macs")


def test_network_connect_and_disconnect_of_a_daemon_container(daemon, box):
    ok(daemon, "network", "create", "--subnet", "10.214.78.0/24", "side")
    try:
        ok(daemon, "run", "-d", "--name", "multi", "busybox", "sleep", "100")
        ok(daemon, "network", "connect", "side", "multi")
        networks = inspect(daemon, "multi")["NetworkSettings"]["Networks"]
        assert sorted(networks) == ["bridge", "side"] and networks["side"]["IPAddress"].startswith("10.214.78.")
        assert networks["side"]["IPAddress"] in ok(daemon, "exec", "multi", "ip", "-o", "-4", "addr", "show", "eth1")
        ok(daemon, "network", "disconnect", "side", "multi")
        assert list(inspect(daemon, "multi")["NetworkSettings"]["Networks"]) == ["bridge"]
        ok(daemon, "network", "connect", "side", "multi")
        ok(daemon, "stop", "-t", "1", "multi")   # its exit detaches it from both
        assert endpoints(box) == []
        ok(daemon, "rm", "multi")
    finally:
        docker(daemon, "rm", "-f", "multi")
        ok(daemon, "network", "rm", "side")


def test_network_host_none_and_container(daemon, box):
    ok(daemon, "run", "-d", "--name", "owner", "busybox", "sleep", "100")   # on the bridge: mdbr0 exists
    address = inspect(daemon, "owner")["NetworkSettings"]["IPAddress"]
    joined = ok(daemon, "run", "--rm", "--network", "container:owner", "busybox", "ip", "-o", "-4", "addr", "show",
                "eth0")
    assert f"inet {address}/16" in joined   # the other container's namespace, its address
    host = ok(daemon, "run", "--rm", "--network", "host", "busybox", "ip", "-o", "link")
    assert "mdbr0" in host   # the sandbox's own links: its network namespace is the host's here
    none = ok(daemon, "run", "--rm", "--network", "none", "busybox", "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in none.splitlines()] == ["lo"]
    assert inspect(daemon, ok(daemon, "create", "--network", "none", "busybox").strip())["NetworkSettings"][
        "Networks"].keys() == {"none"}


def test_twenty_concurrent_run_d_get_twenty_distinct_addresses(daemon, box):
    results: list[subprocess.CompletedProcess] = []

    def one(i: int) -> None:
        results.append(docker(daemon, "run", "-d", "--name", f"c{i}", "busybox", "sleep", "100", timeout=120))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0] * 20, [r.errors for r in results if r.returncode]
    addresses = [inspect(daemon, f"c{i}")["NetworkSettings"]["IPAddress"] for i in range(20)]
    assert len(set(addresses)) == 20 and all(a.startswith("10.213.") for a in addresses), addresses
    assert sorted(endpoints(box)) == sorted(f"c{i}" for i in range(20))
    ok(daemon, "rm", "-f", *[f"c{i}" for i in range(20)], timeout=120)


def test_bad_network_input_gets_dockers_message_and_leaves_nothing(daemon, box):
    unknown = docker(daemon, "run", "--rm", "--network", "nosuch", "busybox", "true")
    assert unknown.returncode == 125 and "network nosuch not found" in unknown.errors, unknown.errors
    assert "Unable to find image" not in unknown.errors   # a 400, not the 404 the CLI reads as a missing image
    assert ok(daemon, "ps", "-aq") == ""
    ok(daemon, "run", "-d", "--name", "holder", "-p", f"{PORT + 3}:80", "busybox", "sleep", "100")
    taken = docker(daemon, "run", "--name", "second", "-p", f"{PORT + 3}:80", "busybox", "true")
    assert taken.returncode == 125, taken.errors
    assert "driver failed programming external connectivity" in taken.errors
    assert "port is already allocated" in taken.errors
    assert endpoints(box) == ["holder"]   # the failed start left no endpoint, rule or veth
    # a host process (of the sandbox) listening on the port: dockerd's proxy would fail to bind it
    listener = subprocess.Popen(box.argv(sys.executable, "-c", "import socket, sys; s = socket.socket(); "
                                         f"s.bind(('0.0.0.0', {PORT + 4})); s.listen(); print('up', flush=True); "
                                         "sys.stdin.read()"), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert listener.stdout.readline() == b"up\n"
        busy = docker(daemon, "run", "--rm", "-p", f"{PORT + 4}:80", "busybox", "true")
        assert busy.returncode == 125 and "address already in use" in busy.errors, busy.errors
    finally:
        listener.stdin.close()
        listener.wait(10)
    status, _, body = daemon.request("POST", "/v1.41/containers/create", json.dumps(
        {"Image": "busybox", "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": "99999"}]}}}).encode(),
        {"Content-Type": "application/json"})
    assert status == 400 and "invalid port '99999'" in json.loads(body)["message"]
    status, _, body = daemon.request("POST", "/v1.41/containers/create", json.dumps(
        {"Image": "busybox", "HostConfig": {"NetworkMode": "none", "PortBindings": {"80/tcp": [{}]}}}).encode(),
        {"Content-Type": "application/json"})
    assert status == 400 and "cannot publish ports with --network none" in json.loads(body)["message"]
    ok(daemon, "rm", "-f", "holder", "second")
    assert ok(daemon, "ps", "-aq") == ""


def test_the_minidocker_cli_publishes_through_the_daemon(daemon, box):
    env = {**box.env, "MINIDOCKER_HOST": daemon.host}
    run = subprocess.run(box.argv(sys.executable, "-m", "minidocker", "run", "-d", "--name", "mdcli", "-p",
                                  f"{PORT + 5}:80", "-v", "mdvol:/data", "busybox", "sh", "-c",
                                  "echo via-cli > /data/f; cp /data/f /www; exec httpd -f -p 80 -h /"),
                         env=env, capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent)
    assert run.returncode == 0, run.stderr
    assert box.fetch(f"http://127.0.0.1:{PORT + 5}/www") == "via-cli\n"
    assert ok(daemon, "port", "mdcli") == f"80/tcp -> 0.0.0.0:{PORT + 5}\n"
    assert [m["Name"] for m in inspect(daemon, "mdcli")["Mounts"]] == ["mdvol"]
    ok(daemon, "rm", "-f", "mdcli")
    ok(daemon, "volume", "rm", "mdvol")


def test_the_minidocker_cli_sends_what_the_docker_cli_sends(daemon, box, tmp_path):
    flags = ["-p", f"127.0.0.1:{PORT + 12}:80/udp", "-p", "81", "--expose", "82", "-P", "-v", f"{tmp_path}:/h:ro",
             "-v", "/anon", "-v", "flagvol:/n:nocopy",
             "--mount", f"type=bind,src={tmp_path},dst=/m,readonly,bind-nonrecursive",
             "--mount", "type=volume,src=flaglbl,dst=/lv,volume-label=a=b",
             "--mount", "type=volume,dst=/mv,volume-nocopy", "--mount", "type=tmpfs,dst=/mt,tmpfs-size=1048576",
             "--tmpfs", "/t:size=1m"]
    env = {**box.env, "MINIDOCKER_HOST": daemon.host}
    ours = subprocess.run(box.argv(sys.executable, "-m", "minidocker", "run", "-d", "--name", "ours", *flags,
                                   "busybox", "sleep", "100"),
                          env=env, capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent)
    assert ours.returncode == 0, ours.stderr
    ok(daemon, "create", "--name", "theirs", *flags, "busybox", "sleep", "100")   # created: no port clash
    mine, docker_s = inspect(daemon, "ours"), inspect(daemon, "theirs")
    for section, key in (("HostConfig", "PortBindings"), ("HostConfig", "PublishAllPorts"),
                         ("HostConfig", "Tmpfs"), ("Config", "ExposedPorts"), ("Config", "Volumes")):
        assert mine[section].get(key) == docker_s[section].get(key), (section, key)
    assert sorted(mine["HostConfig"]["Binds"]) == sorted(docker_s["HostConfig"]["Binds"])   # Go sends a map's order
    strip = ("Consistency",)
    assert [{k: v for k, v in m.items() if k not in strip} for m in mine["HostConfig"]["Mounts"]] == \
        [{k: v for k, v in m.items() if k not in strip} for m in docker_s["HostConfig"]["Mounts"]]
    assert [m.get("TmpfsOptions") for m in mine["HostConfig"]["Mounts"]] == \
        [m.get("TmpfsOptions") for m in docker_s["HostConfig"]["Mounts"]]
    assert sorted((m["Destination"], m["Type"], m["RW"]) for m in mine["Mounts"]) == \
        sorted((m["Destination"], m["Type"], m["RW"]) for m in docker_s["Mounts"])
    ok(daemon, "rm", "-fv", "ours", "theirs")
    assert json.loads(ok(daemon, "volume", "inspect", "flaglbl"))[0]["Labels"] == {"a": "b"}
    ok(daemon, "volume", "rm", "flagvol", "flaglbl")


def test_docker_py_ports_and_volumes(daemon, box, tmp_path):
    import docker  # docker-py: requirements.txt

    (tmp_path / "index.html").write_text("from the host\n")
    client = docker.DockerClient(base_url=daemon.host)
    try:
        c = client.containers.run("busybox", ["httpd", "-f", "-p", "80", "-h", "/srv"], detach=True, name="py",
                                  ports={"80/tcp": ("127.0.0.1", PORT + 6)},
                                  volumes={str(tmp_path): {"bind": "/srv", "mode": "ro"}})
        c.reload()
        assert c.ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(PORT + 6)}]}
        assert c.attrs["Mounts"][0]["Source"] == str(tmp_path) and c.attrs["Mounts"][0]["RW"] is False
        assert box.fetch(f"http://127.0.0.1:{PORT + 6}/index.html") == "from the host\n"
        assert c.exec_run(["touch", "/srv/x"]).exit_code != 0   # read-only bind
        c.remove(force=True)
    finally:
        client.close()


# -- volumes --------------------------------------------------------------------------------------

def _mounts_in(daemon, *run_args: str, script: str) -> str:
    return ok(daemon, "run", "--rm", "--network", "none", *run_args, "busybox", "sh", "-c", script)


def test_v_mount_and_tmpfs_through_the_daemon(daemon, box, tmp_path):
    host_dir = tmp_path / "h"
    host_dir.mkdir()
    (host_dir / "f").write_text("host file\n")
    volumes_before = ok(daemon, "volume", "ls", "-q").split()
    assert _mounts_in(daemon, "-v", f"{tmp_path}/made:/made", script="touch /made/x && echo made") == "made\n"
    assert (tmp_path / "made" / "x").is_file()   # -v creates a missing host directory (--mount refuses)
    out = _mounts_in(daemon, "-v", f"{host_dir}:/h:ro", "-v", "named1:/n", "-v", "/anon",
                     "--mount", f"type=bind,src={host_dir},dst=/m", "--mount", "type=tmpfs,dst=/mt,tmpfs-size=2m",
                     "--tmpfs", "/t:size=1m,mode=1777",
                     script="cat /h/f; echo kept > /n/f; touch /h/x 2>/dev/null || echo ro; cat /m/f; "
                            "grep -E ' /(t|mt) ' /proc/mounts | cut -d' ' -f2-4; stat -c %a /t")
    lines = out.splitlines()
    assert lines[:3] == ["host file", "ro", "host file"], out
    assert "/mt tmpfs rw,nosuid,nodev,noexec,relatime,size=2048k" in lines
    assert "/t tmpfs rw,nosuid,nodev,noexec,relatime,size=1024k" in lines and lines[-1] == "1777", out
    # --rm took the anonymous volume; the named one keeps its data
    assert sorted(ok(daemon, "volume", "ls", "-q").split()) == sorted([*volumes_before, "named1"])
    assert _mounts_in(daemon, "-v", "named1:/n", script="cat /n/f") == "kept\n"
    ok(daemon, "volume", "rm", "named1")


def test_image_volumes_are_anonymous_and_rm_v_removes_them(daemon, box, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM busybox\nRUN mkdir /data && echo from-image > /data/seed\n"
                                         "VOLUME /data\n")
    ok(daemon, "build", "-q", "-t", "withvol", str(tmp_path), timeout=180)
    try:
        cid = ok(daemon, "create", "--network", "none", "--name", "vol", "withvol", "cat", "/data/seed").strip()
        assert inspect(daemon, cid)["Config"]["Volumes"] == {"/data": {}}   # the image's, as dockerd shows it
        (mount,) = inspect(daemon, cid)["Mounts"]
        assert (mount["Type"], mount["Destination"], mount["Driver"], mount["RW"]) == ("volume", "/data", "local",
                                                                                      True)
        assert len(mount["Name"]) == 64 and mount["Name"] in ok(daemon, "volume", "ls", "-q")
        ok(daemon, "start", cid)
        assert ok(daemon, "wait", cid).strip() == "0"
        assert ok(daemon, "logs", cid) == "from-image\n"   # copied up into the new volume at create
        ok(daemon, "rm", "-v", cid)
        assert mount["Name"] not in ok(daemon, "volume", "ls", "-q")
    finally:
        docker(daemon, "rm", "-f", "vol")
        docker(daemon, "rmi", "-f", "withvol")


def test_volumes_from_and_read_only(daemon, box):
    ok(daemon, "run", "-d", "--network", "none", "--name", "src", "-v", "shared1:/d", "busybox", "sleep", "100")
    try:
        out = _mounts_in(daemon, "--volumes-from", "src:ro", "--read-only", "--tmpfs", "/tmp",
                         script="touch /d/x 2>/dev/null || echo d-ro; touch /x 2>/dev/null || echo root-ro; "
                                "touch /tmp/x && echo tmp-rw")
        assert out.splitlines() == ["d-ro", "root-ro", "tmp-rw"]
        assert _mounts_in(daemon, "--volumes-from", "src", script="echo hi > /d/y && cat /d/y") == "hi\n"
        (mount,) = inspect(daemon, "src")["Mounts"]
        assert mount["Name"] == "shared1"
        busy = docker(daemon, "volume", "rm", "shared1")
        assert busy.returncode == 1 and "in use" in busy.errors, busy.errors
    finally:
        docker(daemon, "rm", "-f", "src")
        docker(daemon, "volume", "rm", "shared1")


@pytest.mark.parametrize("args, message", [
    (["-v", "/x:rel"], "mount path must be absolute"),
    (["--mount", "type=bind,src=/no/such/dir,dst=/x"], "bind source path does not exist: /no/such/dir"),
    (["--mount", "type=volume,src=/abs,dst=/x"], "a volume's source is a name"),
    (["-v", "/tmp:/"], "destination can't be '/'"),
    (["--volumes-from", "nosuchcontainer"], "No such container: nosuchcontainer"),
    (["--tmpfs", "/t:size=lots"], "is not a size"),
    (["--mount", "type=tmpfs,src=x,dst=/t"], "Source must not be specified"),
])
def test_bad_volume_input_gets_a_400_and_creates_nothing(daemon, box, args, message):
    volumes = ok(daemon, "volume", "ls", "-q")
    out = docker(daemon, "create", "--network", "none", *args, "busybox", "true")
    assert out.returncode != 0 and message in out.errors, out.errors
    assert "Unable to find image" not in out.errors
    assert ok(daemon, "ps", "-aq") == "" and ok(daemon, "volume", "ls", "-q") == volumes


def test_bad_mounts_in_the_api_get_a_400(daemon, box):
    for host, message in (({"Binds": ["aa:/x", "bb:/x"]}, "duplicate mount point: /x"),
                          # a relative source is a volume's name, never a host path (the docker CLI makes
                          # ./dir absolute itself, against its own working directory)
                          ({"Binds": ["../etc:/x"]}, "includes invalid characters for a local volume name"),
                          ({"Binds": "aa:/x"}, "invalid Binds"),
                          ({"Mounts": [{"Type": "nfs", "Target": "/x"}]}, "Type must be bind, volume or tmpfs"),
                          ({"Tmpfs": {"/t": "size=lots"}}, "is not a size"),
                          ({"PortBindings": {"80/tcp": "8080"}}, "invalid PortBindings")):
        status, _, body = daemon.request("POST", "/v1.41/containers/create", json.dumps(
            {"Image": "busybox", "HostConfig": {"NetworkMode": "none", **host}}).encode(),
            {"Content-Type": "application/json"})
        assert status == 400 and message in json.loads(body)["message"], (host, status, body)
    assert ok(daemon, "ps", "-aq") == "" and "aa" not in ok(daemon, "volume", "ls", "-q").split()


# -- faults: nothing leaks ----------------------------------------------------------------------

def test_kill_9_of_the_daemon_keeps_the_port_then_restart_stop_rm_leave_nothing(tmp_path):
    box = Sandbox(tmp_path / "state")
    try:
        first = Minidockerd.in_sandbox(box)
        ok(first, "run", "-d", "--name", "survivor", "-p", f"{PORT + 7}:80", "busybox", "sh", "-c",
           "echo alive > /www; exec httpd -f -p 80 -h /")
        ok(first, "run", "-d", "--name", "dies", "-p", f"{PORT + 8}:80", "busybox", "sleep", "100")
        assert box.fetch(f"http://127.0.0.1:{PORT + 7}/www") == "alive\n"
        pid = inspect(first, "dies")["State"]["Pid"]
        first.stop(signal.SIGKILL)
        assert box.fetch(f"http://127.0.0.1:{PORT + 7}/www") == "alive\n"   # live restore: still served
        os.kill(pid, signal.SIGKILL)   # exits while no daemon listens: the supervisor detaches it
        deadline = time.monotonic() + 10
        while sorted(endpoints(box)) != ["survivor"]:
            assert time.monotonic() < deadline, endpoints(box)
            time.sleep(0.1)
        with Minidockerd.in_sandbox(box) as second:
            assert inspect(second, "dies")["State"]["Status"] == "exited"
            assert ok(second, "port", "survivor") == f"80/tcp -> 0.0.0.0:{PORT + 7}\n"
            ok(second, "stop", "-t", "1", "survivor")
            assert endpoints(box) == []
            ok(second, "rm", "survivor", "dies")
        assert_clean(box)
    finally:
        box.close()


def test_kill_9_of_the_supervisor_detaches_its_containers(tmp_path):
    box = Sandbox(tmp_path / "state")
    try:
        with Minidockerd.in_sandbox(box) as d:
            ok(d, "run", "-d", "--name", "orphan", "-p", f"{PORT + 9}:80", "busybox", "sleep", "100")
            supervisor = _supervisor_pid(box.state_root / "run" / "supervisor.sock")
            os.kill(supervisor, signal.SIGKILL)
            deadline = time.monotonic() + 15
            while inspect(d, "orphan")["State"]["Status"] == "running":
                assert time.monotonic() < deadline
                time.sleep(0.1)
            assert_clean(box, processes=False)
            ok(d, "rm", "orphan")
        assert_clean(box)
    finally:
        box.close()


def _supervisor_pid(socket_path: Path) -> int:
    """The PID of the supervisor this test's daemon started (its command line names its socket)."""
    for name in os.listdir("/proc"):
        try:
            argv = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"minidocker.engine.supervisor" in argv and str(socket_path).encode() in argv:
            return int(name)
    raise AssertionError(f"no supervisor for {socket_path}")


# -- the shapes, against dockerd -----------------------------------------------------------------

def _shape(value):
    """Keys and JSON types, recursively (values dropped)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def _missing(theirs, ours, path="") -> list[str]:
    """Keys of dockerd's that ours lacks, and keys whose JSON type differs (null matches anything)."""
    problems = []
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [f"{path}: {type(ours).__name__}, dockerd has an object"]
        for key, value in theirs.items():
            if key not in ours:
                problems.append(f"{path}.{key} missing")
            else:
                problems += _missing(value, ours[key], f"{path}.{key}")
    elif theirs != "NoneType" and ours != "NoneType" and not isinstance(theirs, list) and theirs != ours:
        problems.append(f"{path}: {ours}, dockerd has {theirs}")
    return problems


@pytest.mark.docker
def test_network_settings_mounts_and_port_have_dockerds_shapes(daemon, box, dockerd, busybox_in_dockerd, tmp_path):
    args = ["create", "-p", f"{PORT + 10}:80", "-p", "127.0.0.1::81/udp", "-v", "shape1:/n", "-v",
            f"{tmp_path}:/h:ro", "-v", "/anon", "--tmpfs", "/t:size=1m", "--name", "shape", "busybox", "true"]
    ours = inspect(daemon, ok(daemon, *args).strip())
    theirs = json.loads(dockerd.docker("inspect", dockerd.docker(*args).strip()))[0]
    try:
        # a created container: NetworkSettings (with its default network's entry) and HostConfig's ports
        # as dockerd's; dockerd 28 adds GwPriority (API 1.48), that an API 1.41 client never reads
        problems = _missing(_shape(theirs["NetworkSettings"]), _shape(ours["NetworkSettings"]), "NetworkSettings")
        assert [p for p in problems if "GwPriority" not in p] == []
        assert ours["HostConfig"]["PortBindings"] == theirs["HostConfig"]["PortBindings"]
        assert ours["HostConfig"]["Tmpfs"] == theirs["HostConfig"]["Tmpfs"] == {"/t": "size=1m"}
        assert ours["Config"]["ExposedPorts"] == theirs["Config"]["ExposedPorts"]
        assert ours["Config"]["Volumes"] == theirs["Config"]["Volumes"] == {"/anon": {}}
        by_target = {m["Destination"]: m for m in ours["Mounts"]}
        for mount in theirs["Mounts"]:
            mine = by_target[mount["Destination"]]
            assert set(mine) == set(mount), (mine, mount)
            same = ("Type", "Destination", "Driver", "RW", "Mode") + (("Name",) if mount.get("Name") == "shape1"
                                                                      else ()) + \
                (("Source",) if mount["Type"] == "bind" else ())
            assert {k: mine.get(k) for k in same} == {k: mount.get(k) for k in same}
        # docker port of a created container: nothing, exit 0, on both
        assert docker(daemon, "port", "shape").text == dockerd.docker("port", "shape") == ""
        row = json.loads(ok(daemon, "ps", "-a", "--format", "{{json .}}").splitlines()[0])
        their_row = json.loads(dockerd.docker("ps", "-a", "--format", "{{json .}}").splitlines()[0])
        assert (row["Ports"], row["Networks"]) == (their_row["Ports"], their_row["Networks"])
    finally:
        ok(daemon, "rm", "-v", "shape")
        ok(daemon, "volume", "rm", "shape1")
        dockerd.docker("rm", "-v", "shape")
        dockerd.docker("volume", "rm", "shape1")


def test_a_start_on_a_taken_port_leaves_the_container_created_with_the_error_as_dockerd(daemon, box):
    taken_port = 15940   # from the fixes branch's range (15900-15949)
    ok(daemon, "run", "-d", "--name", "owner", "-p", f"{taken_port}:80", "busybox", "sleep", "100")
    failed = docker(daemon, "run", "-d", "--name", "late", "-p", f"{taken_port}:80", "busybox", "sleep", "100")
    assert failed.returncode == 125 and "port is already allocated" in failed.errors, failed.errors
    ok(daemon, "create", "--name", "policy", "--restart", "always", "-p", f"{taken_port}:80", "busybox", "sleep",
       "100")
    assert docker(daemon, "start", "policy").returncode == 1
    for name in ("late", "policy"):   # dockerd: never started, so "created", with the error and exit code 128
        wait_for(lambda: inspect(daemon, name)["State"]["Error"], what=f"{name}'s error to be recorded")
        state = inspect(daemon, name)["State"]
        assert (state["Status"], state["Running"], state["ExitCode"]) == ("created", False, 128), state
        assert "driver failed programming external connectivity" in state["Error"], state
        assert state["FinishedAt"] == "0001-01-01T00:00:00Z", state
    time.sleep(0.5)   # no restart of a start that failed (dockerd's restart manager never saw it run)
    assert inspect(daemon, "policy")["State"]["Status"] == "created"
    rows = ok(daemon, "ps", "-a", "--filter", "name=late", "--format", "{{.Status}}").split()
    assert rows == ["Created"], rows
    removed = docker(daemon, "run", "--rm", "--name", "gone", "-p", f"{taken_port}:80", "busybox", "true")
    assert removed.returncode == 125
    wait_for(lambda: "gone" not in ok(daemon, "ps", "-a", "--format", "{{.Names}}").split(),
             what="--rm to remove it")
    assert endpoints(box) == ["owner"]
    ok(daemon, "rm", "-f", "owner")
    ok(daemon, "start", "late")   # the port is free now: the same container starts
    assert inspect(daemon, "late")["State"]["Status"] == "running"
    assert ok(daemon, "port", "late") == f"80/tcp -> 0.0.0.0:{taken_port}\n"
    ok(daemon, "rm", "-f", "late", "policy")


@pytest.mark.docker
def test_aliases_and_mac_address_of_a_created_container_as_dockerd(daemon, box, dockerd, busybox_in_dockerd):
    """Nothing runs: a created container keeps its aliases and MacAddress as given (dockerd 20.10), and
    its start refuses aliases off a user-defined network with dockerd's status and words."""
    from daemonkit import http_request

    body = json.dumps({"Image": "busybox", "Cmd": ["true"], "MacAddress": "02:42:0a:00:00:09",
                       "HostConfig": {"NetworkMode": "none"},
                       "NetworkingConfig": {"EndpointsConfig": {"none": {"Aliases": ["foo", "bar"]}}}}).encode()
    headers = {"Content-Type": "application/json"}
    two = json.dumps({"Image": "busybox", "NetworkingConfig": {"EndpointsConfig": {"none": {}, "other": {}}}}).encode()
    answers = []
    for request in (daemon.request, lambda *a: http_request(str(dockerd.socket), *a)):
        status, _, created = request("POST", "/v1.41/containers/create?name=aliased", body, headers)
        assert status == 201, created
        cid = json.loads(created)["Id"]
        try:
            inspected = json.loads(request("GET", f"/v1.41/containers/{cid}/json")[2])
            started = request("POST", f"/v1.41/containers/{cid}/start")
            refused = request("POST", "/v1.41/containers/create", two, headers)
            answers.append((inspected["NetworkSettings"]["Networks"]["none"]["Aliases"],
                            inspected["NetworkSettings"]["MacAddress"], inspected["Config"]["MacAddress"],
                            started[0], json.loads(started[2])["message"], refused[0],
                            json.loads(refused[2])["message"].split(":")[0]))
        finally:
            request("DELETE", f"/v1.41/containers/{cid}?force=1")
    assert answers[0] == answers[1], answers
    assert answers[0][:5] == (["foo", "bar"], "", "02:42:0a:00:00:09", 400,
                              "network-scoped alias is supported only for containers in user defined networks")
