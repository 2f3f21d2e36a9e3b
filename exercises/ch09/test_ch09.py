"""Graded tests of chapter 09: networking.

Run: ``make grade CH=09`` (all tasks) or ``make grade CH=09 TASK=9_2`` (one task).
``tasks`` is your exercises/ch09/tasks.py (the reference with ``--solutions``).
Everything that touches the network happens in namespaces made for the test: sandboxes
with their own network and mounts (tasks 9.1 and 9.3, minidocker.coursenet) and
parked children in new network namespaces (task 9.2). The host's links and rules are never used.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from minidocker.forked import call_in_child
from minidocker.linux import CloneFlag, set_pdeathsig, unshare

pytestmark = [pytest.mark.ch09]


# -- task 9.1: your container's network namespace, plugged into a bridge --------------------------

@pytest.fixture
def bridged(tmp_path):
    """A sandbox (its own network and mounts) with a bridge mdexbr0 at 10.98.0.1/24, up."""
    from minidocker.coursenet import Sandbox

    with Sandbox(tmp_path / "sandbox-state") as box:
        made = box.sh("ip link add mdexbr0 type bridge && ip addr add 10.98.0.1/24 dev mdexbr0 "
                      "&& ip link set mdexbr0 up")
        assert made.returncode == 0, made.stderr
        yield box


@contextmanager
def plugged(tasks, box, host_end: str, address: str) -> Iterator[int]:
    """A forked child that joined the sandbox, called your ``plug_in``, and waits; yields its PID."""
    from minidocker.linux import setns

    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(report_r)
            set_pdeathsig(signal.SIGKILL)
            for name, flag in (("net", CloneFlag.CLONE_NEWNET), ("mnt", CloneFlag.CLONE_NEWNS)):
                fd = os.open(f"/proc/{box.pid}/ns/{name}", os.O_RDONLY)
                setns(fd, flag)
                os.close(fd)
            try:
                tasks.plug_in("mdexbr0", host_end, address, "10.98.0.1")
                os.write(report_w, b"ok")
            except BaseException:  # noqa: BLE001 - the traceback goes to the test
                os.write(report_w, traceback.format_exc().encode())
            os.close(report_w)
            signal.pause()
        finally:
            os._exit(0)
    os.close(report_w)
    try:
        with os.fdopen(report_r, "rb") as report:
            answer = report.read().decode()
        if answer != "ok":
            raise AssertionError(f"plug_in('mdexbr0', {host_end!r}, {address!r}, '10.98.0.1') failed:\n{answer}")
        yield pid
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


@pytest.mark.task9_1
@pytest.mark.root
def test_plug_in_gives_the_container_eth0_a_route_and_its_gateway(tasks, bridged) -> None:
    with plugged(tasks, bridged, "mdexh0", "10.98.0.2") as pid:
        addr = in_netns(pid, "ip", "-o", "-4", "addr", "show", "eth0").stdout
        route = in_netns(pid, "ip", "route", "show", "default").stdout
        lo = in_netns(pid, "ip", "-o", "link", "show", "lo").stdout
        ping = in_netns(pid, "busybox", "ping", "-c1", "-W2", "10.98.0.1")
        host_end = bridged.sh("ip -o link show mdexh0").stdout
        own_netns = os.readlink(f"/proc/{pid}/ns/net") != os.readlink(f"/proc/{bridged.pid}/ns/net")
    assert own_netns, "plug_in must give the caller a network namespace of its own"
    assert "10.98.0.2/24" in addr, f"expected eth0 with 10.98.0.2/24 in the container, found {addr!r}"
    assert route.startswith("default via 10.98.0.1 dev eth0"), f"expected a default route via 10.98.0.1: {route!r}"
    assert "UP" in lo.split(">")[0], f"expected lo up in the container, found {lo!r}"
    assert "master mdexbr0" in host_end and "state UP" in host_end, (
        f"expected the host end mdexh0 on the bridge mdexbr0 and up, found {host_end!r}")
    assert ping.returncode == 0, f"the container should ping its gateway 10.98.0.1:\n{ping.stdout}{ping.stderr}"


@pytest.mark.task9_1
@pytest.mark.root
def test_plug_in_two_containers_on_one_bridge_reach_each_other(tasks, bridged) -> None:
    with plugged(tasks, bridged, "mdexh1", "10.98.0.11"), plugged(tasks, bridged, "mdexh2", "10.98.0.12") as b:
        ping = in_netns(b, "busybox", "ping", "-c1", "-W2", "10.98.0.11")
    assert ping.returncode == 0, f"10.98.0.12 should reach 10.98.0.11 over the bridge:\n{ping.stdout}{ping.stderr}"


@pytest.mark.task9_1
@pytest.mark.root
def test_plug_in_leaves_nothing_when_the_container_ends(tasks, bridged) -> None:
    with plugged(tasks, bridged, "mdexh3", "10.98.0.13"):
        assert "mdexh3" in bridged.sh("ip -o link").stdout
    deadline = time.monotonic() + 5
    while "mdexh3" in bridged.sh("ip -o link").stdout and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "mdexh3" not in bridged.sh("ip -o link").stdout, "the host end should die with the container's netns"


# -- task 9.2: a veth between two namespaces ------------------------------------------------------

@contextmanager
def parked_netns(count: int) -> Iterator[list[int]]:
    """``count`` children, each in a new network namespace with lo up, waiting to be killed."""
    pids = []
    try:
        for _ in range(count):
            ready_r, ready_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                try:
                    os.close(ready_r)
                    set_pdeathsig(signal.SIGKILL)
                    unshare(CloneFlag.CLONE_NEWNET)
                    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
                    os.write(ready_w, b"x")
                    signal.pause()
                finally:
                    os._exit(0)
            os.close(ready_w)
            assert os.read(ready_r, 1) == b"x", "a parked child failed to create its network namespace"
            os.close(ready_r)
            pids.append(pid)
        yield pids
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def in_netns(pid: int, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", "-t", str(pid), "-n", *argv], capture_output=True, text=True, timeout=20)


def _connect_in_scratch_netns(tasks, *args, **kwargs) -> None:
    unshare(CloneFlag.CLONE_NEWNET)  # the grader's own netns stays untouched
    tasks.connect_namespaces(*args, **kwargs)


@pytest.mark.task9_2
@pytest.mark.root
def test_two_namespaces_ping_each_other_over_the_veth(tasks) -> None:
    with parked_netns(2) as (a, b):
        call_in_child(_connect_in_scratch_netns, tasks, a, b, "10.77.0.1", "10.77.0.2", 24)
        ping = in_netns(a, "busybox", "ping", "-c1", "-W2", "10.77.0.2")
        assert ping.returncode == 0, f"expected a ping from A to 10.77.0.2 to work, found:\n{ping.stdout}{ping.stderr}"
        back = in_netns(b, "busybox", "ping", "-c1", "-W2", "10.77.0.1")
        assert back.returncode == 0, f"expected a ping from B to 10.77.0.1 to work, found:\n{back.stdout}{back.stderr}"


@pytest.mark.task9_2
@pytest.mark.root
def test_each_end_has_its_name_address_and_is_up(tasks) -> None:
    with parked_netns(2) as (a, b):
        call_in_child(_connect_in_scratch_netns, tasks, a, b, "10.78.0.1", "10.78.0.2", 16,
                      names=("mdleft", "mdright"))
        left = in_netns(a, "ip", "-o", "-4", "addr", "show", "mdleft").stdout
        right = in_netns(b, "ip", "-o", "-4", "addr", "show", "mdright").stdout
        assert "10.78.0.1/16" in left, f"expected mdleft with 10.78.0.1/16 in A, found {left!r}"
        assert "10.78.0.2/16" in right, f"expected mdright with 10.78.0.2/16 in B, found {right!r}"
        for pid, dev in ((a, "mdleft"), (b, "mdright")):
            state = in_netns(pid, "ip", "-o", "link", "show", dev).stdout
            assert ",UP" in state or "<UP" in state, f"expected {dev} to be up, found {state!r}"


# -- task 9.3: your runtime's NAT: the way out and published ports --------------------------------

@pytest.fixture(scope="module")
def published():
    """A sandbox with a bridge md-br0 (10.99.0.1/24), a 'container' namespace on it serving HTTP on
    10.99.0.2:80, and an 'outside' namespace md-o (192.168.77.2, the sandbox is 192.168.77.1) serving
    on port 8000 the address a request came from. Nothing is NATed yet: that is your part."""
    from minidocker.coursenet import Sandbox

    with Sandbox(tempfile.mkdtemp(prefix="ch09-ex-")) as box:
        setup = box.sh(
            "set -e; ip link add md-br0 type bridge; ip addr add 10.99.0.1/24 dev md-br0; ip link set md-br0 up;"
            " ip netns add md-c; ip link add md-h type veth peer name md-c0 netns md-c;"
            " ip link set md-h master md-br0 up; ip -n md-c link set lo up;"
            " ip -n md-c addr add 10.99.0.2/24 dev md-c0; ip -n md-c link set md-c0 up;"
            " ip -n md-c route add default via 10.99.0.1;"
            " ip netns add md-o; ip link add md-o0 type veth peer name md-o1 netns md-o;"
            " ip addr add 192.168.77.1/24 dev md-o0; ip link set md-o0 up;"
            " ip -n md-o addr add 192.168.77.2/24 dev md-o1; ip -n md-o link set md-o1 up")
        assert setup.returncode == 0, setup.stderr
        www = tempfile.mkdtemp(prefix="ch09-www-")
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("hello-from-container")
        server = subprocess.Popen(box.argv("ip", "netns", "exec", "md-c", sys.executable, "-m", "http.server",
                                           "80", "-b", "10.99.0.2", "-d", www),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        outside = subprocess.Popen(box.argv("ip", "netns", "exec", "md-o", sys.executable, "-c", WHO_ASKS),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield box
        finally:
            for process in (server, outside):
                process.kill()
                process.wait()
            box.sh("ip netns del md-c; ip netns del md-o")


WHO_ASKS = """
import http.server
class Who(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = self.client_address[0].encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("192.168.77.2", 8000), Who).serve_forever()
"""


def _publish(tasks, box, *args) -> None:
    """Your ``publish_ports(*args)`` in a forked child that joined the sandbox's network and mounts."""
    from minidocker.linux import setns

    def inside() -> None:
        for name, flag in (("net", CloneFlag.CLONE_NEWNET), ("mnt", CloneFlag.CLONE_NEWNS)):
            fd = os.open(f"/proc/{box.pid}/ns/{name}", os.O_RDONLY)
            setns(fd, flag)
            os.close(fd)
        tasks.publish_ports(*args)

    box.sh("nft delete table ip mdex9 2>/dev/null; true")
    call_in_child(inside, timeout=30)


def _get(box, url: str, netns: str | None = None) -> str | None:
    try:
        return box.fetch(url, netns=netns, tries=5)
    except AssertionError:
        return None


@pytest.mark.task9_3
@pytest.mark.root
def test_publish_ports_reaches_the_container_from_loopback_and_outside(tasks, published) -> None:
    _publish(tasks, published, "mdex9", "md-br0", "10.99.0.0/24", [(8080, "10.99.0.2", 80), (8081, "10.99.0.2", 80)])
    for url, netns in (("http://127.0.0.1:8080/", None), ("http://192.168.77.1:8080/", "md-o"),
                       ("http://10.99.0.1:8081/", None)):
        found = _get(published, url, netns)
        assert found == "hello-from-container", (
            f"expected {url} {'from ' + netns if netns else 'from the host'} to reach the container's "
            f"10.99.0.2:80, found {found!r}\n{published.sh('nft list table ip mdex9').stdout}")
    tables = published.nft_tables()
    assert tables == ["table ip mdex9"], f"expected your rules in the one table ip mdex9, found {tables}"


@pytest.mark.task9_3
@pytest.mark.root
def test_publish_ports_masquerades_the_container_on_its_way_out(tasks, published) -> None:
    _publish(tasks, published, "mdex9", "md-br0", "10.99.0.0/24", [])
    seen = _get(published, "http://192.168.77.2:8000/", netns="md-c")
    assert seen == "192.168.77.1", (
        f"the outside has no route to 10.99.0.0/24: the container's request must leave with the host's "
        f"address 192.168.77.1 (masquerade), found {seen!r}")
    direct = _get(published, "http://192.168.77.2:8000/")
    assert direct == "192.168.77.1", f"the host's own traffic is not the container's: {direct!r}"


@pytest.mark.task9_3
@pytest.mark.root
def test_publish_ports_leaves_nothing_outside_its_table(tasks, published) -> None:
    _publish(tasks, published, "mdex9", "md-br0", "10.99.0.0/24", [(8082, "10.99.0.2", 80)])
    assert _get(published, "http://127.0.0.1:8082/") == "hello-from-container"
    published.sh("nft delete table ip mdex9")
    assert _get(published, "http://127.0.0.1:8082/") is None, (
        "after nft delete table ip mdex9 the port must be closed again: every rule belongs in your table")
