"""Chapter 09: container networking — veth, bridge, IPAM, NAT, published ports, names.

Everything that touches the kernel runs in a fresh network+mount namespace (see
minidocker/coursenet.py), with its own MINIDOCKER_ROOT: hermetic, and blind to a dockerd's
rules on the host. After each test the sandbox must hold no veth, endpoint, container
rule, named netns or process; at the end ``system prune`` must leave nothing at all.
The firewall's behaviours (published ports, outbound NAT, isolation, dockerd's FORWARD DROP)
run with both backends, each in its own sandbox: ``[nft]`` and ``[iptables]``
(MINIDOCKER_FIREWALL=iptables: the MINIDOCKER chains, with the host's iptables-nft).
"""

from __future__ import annotations

import ipaddress
import json
import re
import time

import pytest

from minidocker.errors import Conflict, InvalidArgument
from minidocker.network import ipam, names
from minidocker.network.ports import PortMapping, clashes, parse_publish
from minidocker.coursenet import Sandbox

pytestmark = pytest.mark.ch09

# -- pure functions: no kernel -------------------------------------------------------------------

def test_allocate_skips_network_gateway_and_used_addresses() -> None:
    subnet = ipam.parse_subnet("10.9.0.0/29")
    assert ipam.gateway_of(subnet) == "10.9.0.1"
    assert ipam.allocate(subnet, []) == "10.9.0.2"
    assert ipam.allocate(subnet, ["10.9.0.2", "10.9.0.4"]) == "10.9.0.3"
    used = [f"10.9.0.{i}" for i in range(2, 7)]
    with pytest.raises(Conflict, match="no available IPv4 addresses on subnet 10.9.0.0/29"):
        ipam.allocate(subnet, used)  # .7 is the broadcast address


def test_allocate_never_returns_a_custom_gateway() -> None:
    subnet = ipam.parse_subnet("10.9.0.0/24")
    assert ipam.allocate(subnet, [], gateway="10.9.0.2") == "10.9.0.1"
    assert ipam.allocate(subnet, ["10.9.0.1"], gateway="10.9.0.2") == "10.9.0.3"


@pytest.mark.parametrize("text, why", [
    ("10.0.0.0/33", "invalid subnet"), ("10.0.0.1/24", "host bits set"), ("8.8.8.0/24", "not a private"),
    ("banana", "invalid subnet"), ("10.0.0.0/31", "too small"),
])
def test_parse_subnet_rejects_bad_input(text: str, why: str) -> None:
    with pytest.raises(InvalidArgument, match=why):
        ipam.parse_subnet(text)


def test_free_subnet_skips_overlapping_ones() -> None:
    pool = ipaddress.IPv4Network("10.214.0.0/16")
    taken = [ipaddress.IPv4Network("10.214.0.0/24"), ipaddress.IPv4Network("10.214.1.128/25")]
    assert str(ipam.free_subnet(pool, taken)) == "10.214.2.0/24"


@pytest.mark.parametrize("spec, expected", [
    ("8080:80", PortMapping("", 8080, 80, "tcp")),
    ("127.0.0.1:8080:80/udp", PortMapping("127.0.0.1", 8080, 80, "udp")),
    ("0.0.0.0:8080:80", PortMapping("", 8080, 80, "tcp")),
    ("127.0.0.1::80", PortMapping("127.0.0.1", 0, 80, "tcp")),
    ("80", PortMapping("", 0, 80, "tcp")),
])
def test_parse_publish_reads_docker_forms(spec: str, expected: PortMapping) -> None:
    assert parse_publish(spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("99999:80", "invalid port '99999'"), ("8080:0", "invalid port '0'"), ("x:80", "invalid port 'x'"),
    ("8080:80/sctp", "invalid protocol 'sctp'"), ("300.1.1.1:80:80", "invalid host address"),
])
def test_parse_publish_rejects_bad_input(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=re.escape(message)):
        parse_publish(spec)


def test_any_address_clashes_with_a_specific_one() -> None:
    assert clashes(PortMapping("", 80, 1), PortMapping("127.0.0.1", 80, 2))
    assert not clashes(PortMapping("127.0.0.1", 80, 1), PortMapping("127.0.0.2", 80, 2))
    assert not clashes(PortMapping("", 80, 1, "tcp"), PortMapping("", 80, 1, "udp"))


def test_resolv_conf_drops_loopback_servers() -> None:
    assert names.resolv_conf("nameserver 127.0.0.53\nsearch lan\n") == (
        "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n")
    assert names.resolv_conf("nameserver 10.1.1.1\n") == "nameserver 10.1.1.1\n"


def test_interface_names_longer_than_15_characters_are_refused() -> None:
    from minidocker.network.netlink import _name

    assert _name("md0123456789abc") == b"md0123456789abc\0"
    with pytest.raises(ValueError, match="1 to 15 characters"):
        _name("md0123456789abcd")


def test_plan_endpoint_puts_aliases_and_the_mac_on_user_network_plans_only() -> None:
    from minidocker.engine.networks import plan_endpoint, plan_network

    plan = plan_endpoint(plan_network("front", [], []), ["api", "db"], "02-42-0A-00-00-09")
    assert (plan.aliases, plan.mac) == (["api", "db"], "02:42:0a:00:00:09")
    assert plan_endpoint(plan_network("bridge", [], []), [], "02:42:0a:00:00:09").mac == "02:42:0a:00:00:09"
    assert plan_endpoint(plan_network("front", [], [])).mac is None   # the one of its address, at attach
    for mode in ("bridge", "none", "host", "container:web"):
        with pytest.raises(InvalidArgument, match="network-scoped alias is supported only"):
            plan_endpoint(plan_network(mode, [], []), ["api"])
    for mode in ("host", "container:web"):
        with pytest.raises(InvalidArgument, match="conflicting options: mac-address and the network mode"):
            plan_endpoint(plan_network(mode, [], []), [], "02:42:0a:00:00:09")
    with pytest.raises(InvalidArgument, match="invalid network alias 'a b'"):
        plan_endpoint(plan_network("front", [], []), ["a b"])


def test_run_sends_aliases_and_the_mac_to_the_daemon_as_the_docker_cli_does() -> None:
    from minidocker.cli.flags import parse
    from minidocker.cli.parsers import build_commands
    from minidocker.cli.remote import _create_body

    def body(*argv: str) -> dict:
        return _create_body(parse(build_commands(), ["run", *argv, "busybox"])[1])

    sent = body("--network", "front", "--network-alias", "api", "--network-alias", "db",
                "--mac-address", "02:42:0a:00:00:09")
    assert sent["NetworkingConfig"] == {"EndpointsConfig": {"front": {"Aliases": ["api", "db"]}}}
    assert sent["MacAddress"] == "02:42:0a:00:00:09"
    assert body("--network-alias", "api")["NetworkingConfig"] == {"EndpointsConfig": {"default":
                                                                                   {"Aliases": ["api"]}}}
    assert "NetworkingConfig" not in body() and "MacAddress" not in body()


# -- the sandbox ---------------------------------------------------------------------------------

def test_firewall_backend_is_nft_unless_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    from minidocker.network import nat

    monkeypatch.delenv(nat.ENV, raising=False)
    assert nat.firewall() == "nft"  # installed here (Makefile APT_PACKAGES)
    monkeypatch.setenv(nat.ENV, "iptables")
    assert nat.firewall() == "iptables"
    monkeypatch.setenv(nat.ENV, "ipchains")
    with pytest.raises(InvalidArgument, match="invalid MINIDOCKER_FIREWALL 'ipchains': expected nft or iptables"):
        nat.firewall()
    monkeypatch.delenv(nat.ENV)  # a host without nft (its lookup stubbed; the backends run for real below)
    monkeypatch.setattr(nat, "which", lambda name: None if name == "nft" else f"/usr/sbin/{name}")
    assert nat.firewall() == "iptables"


def _sandbox(tmp_path_factory: pytest.TempPathFactory, firewall: str):
    box = Sandbox(tmp_path_factory.mktemp(f"ch09-state-{firewall}"), firewall=firewall)
    try:
        yield box
        pruned = box.md("system", "prune", "-f")
        assert pruned.returncode == 0, pruned.stderr
        problems = box.wait_clean(allow_networks=False)
        links = [link["ifname"] for link in box.links()]
        assert not problems and links == ["lo"], f"after system prune: {problems}, links {links}"
    finally:
        box.close()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory):
    """The sandbox of most tests, with the default firewall backend, nft."""
    yield from _sandbox(tmp_path_factory, "nft")


@pytest.fixture(scope="module")
def iptables_sandbox(tmp_path_factory: pytest.TempPathFactory):
    """A second sandbox whose minidocker uses the iptables backend."""
    yield from _sandbox(tmp_path_factory, "iptables")


@pytest.fixture
def box(sandbox: Sandbox):
    """The sandbox; fails the test if it left a container's network state behind."""
    yield sandbox
    problems = sandbox.wait_clean()
    assert not problems, f"left in the sandbox: {problems}"


@pytest.fixture(params=["nft", "iptables"])
def fbox(request: pytest.FixtureRequest, sandbox: Sandbox, iptables_sandbox: Sandbox):
    """Like ``box``, once per firewall backend. (Both sandboxes are arguments: module-scoped, they
    are then set up before the leak detector's snapshot.)"""
    box = sandbox if request.param == "nft" else iptables_sandbox
    yield box
    problems = box.wait_clean()
    assert not problems, f"left in the sandbox: {problems}"


def no_dnat_left(box: Sandbox, timeout: float = 5) -> bool:
    """No DNAT rule in either backend (removed at exit off the critical path: may take a moment)."""
    deadline = time.monotonic() + timeout
    while any("dnat" in rule.lower() for rule in box.firewall_rules()):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def ok(result) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result.stdout


def start(box: Sandbox, *args: str, timeout: float = 20) -> tuple[object, str]:
    """Start a long-running container; return (process, its IP on the first network)."""
    proc = box.md_background("run", *args)
    name = args[args.index("--name") + 1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for net in box.networks().values():
            for ep in net["endpoints"].values():
                if ep["name"] == name and ep["owner"][0] != 0 and _running(box, name):
                    return proc, ep["ip"]
        if proc.poll() is not None:
            raise AssertionError(f"container {name} exited: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"container {name} did not start in {timeout} s")


def _running(box: Sandbox, name: str) -> bool:
    return name in box.md("ps").stdout


def remove(box: Sandbox, names_: list[str], procs: list) -> None:
    """rm -f the containers and wait for their run processes to finish."""
    box.md("rm", "-f", *names_)
    for proc in procs:
        try:
            proc.wait(timeout=20)
        finally:
            for stream in (proc.stdout, proc.stderr):
                stream.close()


@pytest.mark.root
@pytest.mark.netns
def test_none_has_only_lo(box: Sandbox) -> None:
    out = ok(box.md("run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"))
    assert [line.split(":")[1].strip() for line in out.splitlines()] == ["lo"]


@pytest.mark.root
@pytest.mark.netns
def test_bridge_gives_address_default_route_and_name_files(box: Sandbox) -> None:
    out = ok(box.md("run", "--rm", "--hostname", "web1", "busybox", "sh", "-c",
                    "ip -o -4 addr show eth0; ip route; echo ---; cat /etc/hosts /etc/hostname; echo ---;"
                    " cat /etc/resolv.conf; ping -c1 -W2 10.213.0.1 >/dev/null && echo gateway-ok"))
    address = re.search(r"inet (10\.213\.\d+\.\d+)/16", out)
    assert address and address.group(1) != "10.213.0.1", out
    assert "default via 10.213.0.1 dev eth0" in out
    assert f"{address.group(1)}\tweb1" in out and "\nweb1\n" in out
    assert "nameserver" in out and "127.0.0." not in out.split("---")[2]
    assert "gateway-ok" in out
    bridge = [link for link in box.links() if link["ifname"] == "mdbr0"]
    assert bridge and bridge[0]["linkinfo"]["info_kind"] == "bridge"


@pytest.mark.root
@pytest.mark.netns
def test_two_containers_on_one_bridge_ping_each_other(box: Sandbox) -> None:
    a, ip_a = start(box, "--name", "pa", "busybox", "sleep", "60")
    try:
        out = ok(box.md("run", "--rm", "busybox", "ping", "-c1", "-W2", ip_a))
        assert "1 packets received" in out
    finally:
        remove(box, ["pa"], [a])


@pytest.mark.root
@pytest.mark.netns
def test_user_networks_resolve_names_and_are_isolated(fbox: Sandbox) -> None:
    box = fbox
    ok(box.md("network", "create", "front"))
    ok(box.md("network", "create", "--subnet", "10.230.0.0/24", "back"))
    a, ip_a = start(box, "--name", "api", "--network", "front", "busybox", "sleep", "60")
    try:
        same = ok(box.md("run", "--rm", "--name", "client", "--network", "front", "busybox", "sh", "-c",
                         "ping -c1 -W2 api && grep api /etc/hosts"))
        assert "1 packets received" in same and ip_a in same
        other = box.md("run", "--rm", "--network", "back", "busybox", "sh", "-c",
                       f"ip -o -4 addr show eth0; ping -c1 -W1 {ip_a}; ping -c1 -W1 api")
        assert other.returncode != 0 and "10.230.0.2/24" in other.stdout
        assert "0 packets received" in other.stdout  # routed through the host, dropped by isolation
        assert "bad address 'api'" in other.stderr  # not a name on this network
    finally:
        remove(box, ["api"], [a])
    ok(box.md("network", "rm", "front", "back"))
    assert not [n for n in box.links() if n["ifname"].startswith("md-")]


@pytest.mark.root
@pytest.mark.netns
def test_hosts_files_follow_containers_joining_and_leaving(box: Sandbox) -> None:
    ok(box.md("network", "create", "team"))
    a, _ = start(box, "--name", "alice", "--network", "team", "busybox", "sleep", "60")
    b, ip_b = start(box, "--name", "bob", "--network", "team", "busybox", "sleep", "60")
    try:
        assert ip_b in ok(box.md("exec", "alice", "cat", "/etc/hosts"))  # rewritten in place
        remove(box, ["bob"], [b])
        assert "bob" not in ok(box.md("exec", "alice", "cat", "/etc/hosts"))
    finally:
        remove(box, ["alice", "bob"], [a] + ([b] if b.returncode is None else []))
    ok(box.md("network", "rm", "team"))


@pytest.mark.root
@pytest.mark.netns
def test_direct_run_aliases_resolve_in_peers_hosts_and_the_mac_is_the_one_asked_for(box: Sandbox) -> None:
    ok(box.md("network", "create", "pals"))
    a, ip_a = start(box, "--name", "db", "--network", "pals", "--network-alias", "database",
                    "--network-alias", "pg", "--mac-address", "02:42:0a:00:00:09", "busybox", "sleep", "60")
    try:
        assert ok(box.md("exec", "db", "cat", "/sys/class/net/eth0/address")).strip() == "02:42:0a:00:00:09"
        [(cid, endpoint)] = [(c, ep) for c, ep in box.networks()["pals"]["endpoints"].items()
                             if ep["name"] == "db"]
        assert (endpoint["aliases"], endpoint["mac"]) == (["database", "pg"], "02:42:0a:00:00:09"), endpoint
        out = ok(box.md("run", "--rm", "--network", "pals", "busybox", "sh", "-c",
                        "ping -c1 -W2 pg >/dev/null && echo reached; grep -w db /etc/hosts"))
        assert "reached" in out, out
        assert f"{ip_a}\tdb {cid[:12]} database pg\n" in out, out
    finally:
        remove(box, ["db"], [a])
    ok(box.md("network", "rm", "pals"))


HTTPD = "mkdir /www && echo hello-from-container > /www/index.html && exec httpd -f -p 80 -h /www"


@pytest.mark.root
@pytest.mark.netns
def test_published_port_answers_on_loopback_and_from_an_outside_namespace(fbox: Sandbox) -> None:
    box = fbox
    # an "outside client": a named namespace joined to the sandbox's root by a veth
    ok(box.sh("ip netns add md-outside && ip link add md-o0 type veth peer name md-o1 netns md-outside"
              " && ip addr add 192.168.77.1/24 dev md-o0 && ip link set md-o0 up"
              " && ip -n md-outside addr add 192.168.77.2/24 dev md-o1 && ip -n md-outside link set md-o1 up"
              " && ip -n md-outside link set lo up"))
    web, _ = start(box, "--name", "web", "-p", "8080:80", "busybox", "sh", "-c", HTTPD)
    try:
        # its DNAT rules are in its endpoint's record (not in one process's memory): any rm deletes them
        assert [ep["rules"] for net in box.networks().values() for ep in net["endpoints"].values()
                if ep["name"] == "web"] != [[]]
        assert box.fetch("http://127.0.0.1:8080/").strip() == "hello-from-container"
        outside = box.fetch("http://192.168.77.1:8080/", netns="md-outside")
        assert outside.strip() == "hello-from-container"
        if box.env["MINIDOCKER_FIREWALL"] == "iptables":  # our chains only, no nft table of ours
            assert [r for r in box.iptables_rules() if r.startswith("-A MINIDOCKER ") and "--dport 8080" in r]
            assert not [t for t in box.nft_tables() if "minidocker" in t]
        else:
            assert not box.iptables_rules()
        again = box.md("run", "--rm", "-p", "8080:80", "busybox", "true")
        assert again.returncode == 125 and "port is already allocated" in again.stderr, again.stderr
    finally:
        remove(box, ["web"], [web])
        box.sh("ip link del md-o0; ip netns del md-outside")
    assert no_dnat_left(box), box.firewall_rules()


@pytest.mark.root
@pytest.mark.netns
def test_publish_all_picks_ephemeral_ports_for_exposed_ones(box: Sandbox) -> None:
    web, _ = start(box, "--name", "webp", "-P", "--expose", "80", "busybox", "sh", "-c", HTTPD)
    try:
        endpoint = next(ep for n in box.networks().values() for ep in n["endpoints"].values() if ep["name"] == "webp")
        port = endpoint["ports"][0]["host_port"]
        assert 32768 <= port < 61000
        assert box.fetch(f"http://127.0.0.1:{port}/").strip() == "hello-from-container"
    finally:
        remove(box, ["webp"], [web])


@pytest.mark.root
@pytest.mark.netns
def test_outbound_traffic_is_masqueraded_to_an_internet_namespace(fbox: Sandbox) -> None:
    box = fbox
    # "the internet": a namespace that knows nothing of 10.213.0.0/16, reached via the sandbox's root
    ok(box.sh("ip netns add md-inet && ip link add md-i0 type veth peer name md-i1 netns md-inet"
              " && ip addr add 192.168.200.1/24 dev md-i0 && ip link set md-i0 up"
              " && ip -n md-inet addr add 192.168.200.2/24 dev md-i1 && ip -n md-inet link set md-i1 up"))
    try:
        assert "10.213" not in ok(box.sh("ip -n md-inet route"))
        out = ok(box.md("run", "--rm", "busybox", "ping", "-c1", "-W2", "192.168.200.2"))
        assert "1 packets received" in out
    finally:
        box.sh("ip link del md-i0; ip netns del md-inet")


@pytest.mark.root
@pytest.mark.netns
@pytest.mark.slow
def test_twenty_concurrent_runs_get_twenty_distinct_addresses(box: Sandbox) -> None:
    procs = [box.md_background("run", "--rm", "busybox", "sh", "-c", "ip -o -4 addr show eth0; sleep 4")
             for _ in range(20)]
    outs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outs.append(out)
    addresses = [re.search(r"inet ([\d.]+)/", o).group(1) for o in outs]
    assert len(set(addresses)) == 20, addresses
    assert "10.213.0.1" not in addresses


@pytest.mark.root
@pytest.mark.netns
def test_host_and_container_modes_share_namespaces(box: Sandbox) -> None:
    host = ok(box.md("run", "--rm", "--network", "host", "busybox", "ip", "-o", "link"))
    assert "mdbr0" in host  # the sandbox's own links
    a, ip_a = start(box, "--name", "shared", "busybox", "sleep", "60")
    try:
        joined = ok(box.md("run", "--rm", "--network", "container:shared", "busybox", "ip", "-o", "-4", "addr"))
        assert f"inet {ip_a}/16" in joined
    finally:
        remove(box, ["shared"], [a])


@pytest.mark.root
@pytest.mark.netns
def test_connect_and_disconnect_a_running_container(box: Sandbox) -> None:
    ok(box.md("network", "create", "--subnet", "10.231.0.0/24", "extra"))
    a, _ = start(box, "--name", "multi", "busybox", "sleep", "60")
    try:
        ok(box.md("network", "connect", "extra", "multi"))
        assert "inet 10.231.0.2/24" in ok(box.md("exec", "multi", "ip", "-o", "-4", "addr", "show", "eth1"))
        in_use = box.md("network", "rm", "extra")
        assert in_use.returncode != 0 and "has active endpoints (multi)" in in_use.stderr
        ok(box.md("network", "disconnect", "extra", "multi"))
        assert "eth1" not in ok(box.md("exec", "multi", "ip", "-o", "link"))
    finally:
        remove(box, ["multi"], [a])
    ok(box.md("network", "rm", "extra"))


@pytest.mark.root
@pytest.mark.netns
def test_a_killed_run_leaks_no_address(box: Sandbox) -> None:
    a, ip_a = start(box, "--name", "victim", "busybox", "sleep", "60")
    a.kill()  # SIGKILL the runtime process: no detach runs; the container dies of PDEATHSIG
    a.wait()
    for stream in (a.stdout, a.stderr):
        stream.close()
    # the next allocation reclaims the stale endpoint: its address is handed out again
    out = ok(box.md("run", "--rm", "busybox", "ip", "-o", "-4", "addr", "show", "eth0"))
    assert f"inet {ip_a}/16" in out
    box.md("rm", "-f", "victim")


@pytest.mark.root
@pytest.mark.netns
@pytest.mark.parametrize("args, message", [
    (("run", "--rm", "-p", "99999:80", "busybox", "true"), "invalid port '99999'"),
    (("run", "--rm", "-p", "8080:80/sctp", "busybox", "true"), "invalid protocol 'sctp'"),
    (("run", "--rm", "--network", "nosuch", "busybox", "true"), "network nosuch not found"),
    (("run", "--rm", "--network", "none", "-p", "80", "busybox", "true"), "cannot publish ports"),
    (("run", "--rm", "--network-alias", "api", "busybox", "true"),
     "network-scoped alias is supported only for containers in user defined networks"),
    (("run", "--rm", "--network", "none", "--network-alias", "api", "busybox", "true"),
     "network-scoped alias is supported only for containers in user defined networks"),
    (("run", "--rm", "--network", "host", "--mac-address", "02:42:0a:00:00:09", "busybox", "true"),
     "conflicting options: mac-address and the network mode"),
    (("run", "--rm", "--mac-address", "02:42:zz:00:00:09", "busybox", "true"), "invalid MAC address"),
    (("run", "--rm", "--mac-address", "01:00:5e:00:00:01", "busybox", "true"), "a multicast address"),
    (("network", "create", "--subnet", "10.0.0.0/33", "bad"), "invalid subnet '10.0.0.0/33'"),
    (("network", "create", "--subnet", "8.8.8.0/24", "bad"), "not a private address range"),
    (("network", "create", "bridge"), "network with name bridge already exists"),
    (("network", "create", "bad/name"), "invalid network name"),
    (("network", "rm", "nosuch"), "network nosuch not found"),
    (("network", "connect", "nosuch", "nobody"), "no such container: nobody"),
])
def test_bad_input_is_a_clear_error_and_creates_nothing(box: Sandbox, args, message) -> None:
    before = (sorted(box.networks()), [link["ifname"] for link in box.links()], box.firewall_rules())
    containers = box.md("ps", "-a", "-q").stdout
    result = box.md(*args)
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert (sorted(box.networks()), [link["ifname"] for link in box.links()], box.firewall_rules()) == before
    assert box.md("ps", "-a", "-q").stdout == containers


@pytest.mark.root
@pytest.mark.netns
def test_overlapping_subnet_is_refused_and_nothing_is_created(box: Sandbox) -> None:
    ok(box.md("network", "create", "--subnet", "10.240.0.0/16", "wide"))
    try:
        links = [link["ifname"] for link in box.links()]
        clash = box.md("network", "create", "--subnet", "10.240.5.0/24", "narrow")
        assert clash.returncode == 125 and "overlaps 10.240.0.0/16" in clash.stderr, clash.stderr
        assert "narrow" not in box.networks() and [link["ifname"] for link in box.links()] == links
    finally:
        ok(box.md("network", "rm", "wide"))


@pytest.mark.root
@pytest.mark.netns
def test_network_ls_and_inspect_show_predefined_and_user_networks(box: Sandbox) -> None:
    ok(box.md("network", "create", "--subnet", "10.241.0.0/24", "listed"))
    try:
        listing = ok(box.md("network", "ls"))
        for name in ("bridge", "host", "none", "listed"):
            assert re.search(rf"\s{name}\s", listing), listing
        data = json.loads(ok(box.md("network", "inspect", "listed")))[0]
        assert data["subnet"] == "10.241.0.0/24" and data["gateway"] == "10.241.0.1"
        assert data["bridge"] == f"md-{data['id'][:12]}" and len(data["bridge"]) <= 15
    finally:
        ok(box.md("network", "rm", "listed"))


@pytest.mark.root
@pytest.mark.netns
def test_beside_dockerd_forward_drop_our_bridge_is_accepted_in_docker_user(fbox: Sandbox) -> None:
    box = fbox
    # What dockerd does to a host (https://docs.docker.com/engine/network/firewall-iptables/):
    # FORWARD policy DROP, a DOCKER-USER chain for its users, br_netfilter on. Done here inside the
    # sandbox, with iptables itself.
    ok(box.sh("iptables -w -N DOCKER-USER && iptables -w -A FORWARD -j DOCKER-USER && iptables -w -P FORWARD DROP"
              " && sysctl -qw net.bridge.bridge-nf-call-iptables=1"))
    try:
        ok(box.md("network", "create", "--subnet", "10.231.0.0/24", "besidedocker"))
        a, ip_a = start(box, "--name", "target", "--network", "besidedocker", "busybox", "sleep", "60")
        try:
            out = ok(box.md("run", "--rm", "--network", "besidedocker", "busybox", "ping", "-c1", "-W2", ip_a))
            assert "1 packets received" in out
            rules = ok(box.sh("iptables -w -S DOCKER-USER"))
            assert rules.count("minidocker:net:") == 2, rules
            assert "-P FORWARD DROP" in ok(box.sh("iptables -w -S FORWARD"))  # the host's policy is untouched
        finally:
            remove(box, ["target"], [a])
        ok(box.md("network", "rm", "besidedocker"))
        assert "minidocker" not in ok(box.sh("iptables -w -S DOCKER-USER"))
    finally:
        box.sh("iptables -w -P FORWARD ACCEPT; iptables -w -D FORWARD -j DOCKER-USER; iptables -w -X DOCKER-USER")


@pytest.mark.root
@pytest.mark.netns
def test_the_hosts_own_rules_are_never_touched(fbox: Sandbox) -> None:
    # the "host's" rules, as any firewall would have them; last in the module: it prunes everything
    box = fbox
    host_rules = ("iptables -w -t nat -A POSTROUTING -s 192.0.2.0/24 -j MASQUERADE"
                  " && iptables -w -A FORWARD -s 192.0.2.1 -j ACCEPT && iptables -w -A INPUT -p tcp --dport 22 -j ACCEPT"
                  " && nft add table ip hostfw && nft 'add chain ip hostfw input { type filter hook input priority 0; }'"
                  " && nft add rule ip hostfw input tcp dport 22 accept")
    ok(box.sh(host_rules))

    def theirs() -> tuple[list[str], str]:
        saved = [line for line in ok(box.sh("iptables-save")).splitlines()
                 if "minidocker" not in line.lower() and not line.startswith("#")]
        return saved, ok(box.sh("nft list table ip hostfw"))

    before = theirs()
    try:
        ok(box.md("network", "create", "--subnet", "10.232.0.0/24", "hostcheck"))
        web, _ = start(box, "--name", "hc", "--network", "hostcheck", "-p", "127.0.0.1:8081:80", "busybox", "sh", "-c",
                       HTTPD)
        try:
            assert box.fetch("http://127.0.0.1:8081/").strip() == "hello-from-container"
            assert theirs() == before
        finally:
            remove(box, ["hc"], [web])
        ok(box.md("network", "rm", "hostcheck"))
        ok(box.md("system", "prune", "-f"))
        assert box.wait_clean(allow_networks=False) == []
        assert theirs() == before
    finally:
        box.sh("iptables -w -t nat -D POSTROUTING -s 192.0.2.0/24 -j MASQUERADE; iptables -w -D FORWARD -s 192.0.2.1"
               " -j ACCEPT; iptables -w -D INPUT -p tcp --dport 22 -j ACCEPT; nft delete table ip hostfw")
