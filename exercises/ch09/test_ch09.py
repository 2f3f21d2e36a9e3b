"""Graded tests of chapter 09: networking.

Run: ``make grade CH=09`` (all tasks) or ``make grade CH=09 TASK=9_2`` (one task).
``tasks`` is your exercises/ch09/tasks.py (the reference with ``--solutions``).
Everything that touches the network happens in namespaces made for the test: parked
children in new network namespaces (task 9.2), a sandbox with its own network and
mounts (task 9.3, minidocker.coursenet). The host's links and rules are never used.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from minidocker.forked import call_in_child
from minidocker.linux import CloneFlag, set_pdeathsig, unshare

pytestmark = [pytest.mark.ch09]


# -- task 9.1: IPAM ------------------------------------------------------------------------------

@pytest.mark.task9_1
def test_first_address_after_the_gateway(tasks) -> None:
    assert tasks.allocate("10.9.0.0/24", []) == "10.9.0.2", "expected .2: .0 is the network, .1 the gateway"


@pytest.mark.task9_1
def test_used_addresses_are_skipped_and_holes_filled(tasks) -> None:
    assert tasks.allocate("10.9.0.0/24", ["10.9.0.2", "10.9.0.3"]) == "10.9.0.4"
    assert tasks.allocate("10.9.0.0/24", {"10.9.0.2", "10.9.0.4"}) == "10.9.0.3"


@pytest.mark.task9_1
def test_full_subnet_raises_and_broadcast_is_never_given(tasks) -> None:
    assert tasks.allocate("10.9.0.0/29", [f"10.9.0.{i}" for i in range(2, 6)]) == "10.9.0.6"
    with pytest.raises(ValueError):
        tasks.allocate("10.9.0.0/29", [f"10.9.0.{i}" for i in range(2, 7)])  # .7 is the broadcast address


@pytest.mark.task9_1
def test_bad_subnet_raises_value_error(tasks) -> None:
    for bad in ("10.9.0.1/24", "10.9.0.0/33", "nonsense"):
        with pytest.raises(ValueError):
            tasks.allocate(bad, [])


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


# -- task 9.3: the DNAT rule of a published port --------------------------------------------------

@pytest.fixture(scope="module")
def published():
    """A sandbox with a 'container' namespace serving HTTP on 10.99.0.2:80 and an outside client."""
    from minidocker.coursenet import Sandbox

    with Sandbox(tempfile.mkdtemp(prefix="ch09-ex-")) as box:
        setup = box.sh(
            "set -e; ip netns add md-c; ip link add md-h type veth peer name md-c0 netns md-c;"
            " ip addr add 10.99.0.1/24 dev md-h; ip link set md-h up; ip -n md-c link set lo up;"
            " ip -n md-c addr add 10.99.0.2/24 dev md-c0; ip -n md-c link set md-c0 up;"
            " ip -n md-c route add default via 10.99.0.1;"
            " ip netns add md-o; ip link add md-o0 type veth peer name md-o1 netns md-o;"
            " ip addr add 192.168.77.1/24 dev md-o0; ip link set md-o0 up;"
            " ip -n md-o addr add 192.168.77.2/24 dev md-o1; ip -n md-o link set md-o1 up;"
            " sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.md-h.route_localnet=1")
        assert setup.returncode == 0, setup.stderr
        www = tempfile.mkdtemp(prefix="ch09-www-")
        with open(os.path.join(www, "index.html"), "w") as f:
            f.write("hello-from-container")
        server = subprocess.Popen(box.argv("ip", "netns", "exec", "md-c", sys.executable, "-m", "http.server",
                                           "80", "-b", "10.99.0.2", "-d", www),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            yield box
        finally:
            server.kill()
            server.wait()
            box.sh("ip netns del md-c; ip netns del md-o")


def _apply(box, rule: str) -> subprocess.CompletedProcess[str]:
    script = f"""table ip ex9 {{
  chain pre  {{ type nat hook prerouting priority dstnat; }}
  chain out  {{ type nat hook output priority -100; }}
  chain post {{ type nat hook postrouting priority srcnat; ip saddr 127.0.0.0/8 oifname "md-h" masquerade; }}
}}
add rule ip ex9 pre {rule}
add rule ip ex9 out {rule}
"""
    box.sh("nft delete table ip ex9 2>/dev/null; true")
    return box.sh(f"nft -f - <<'EOF'\n{script}EOF")


def _get(box, url: str, netns: str | None = None) -> str | None:
    try:
        return box.fetch(url, netns=netns, tries=5)
    except AssertionError:
        return None


@pytest.mark.task9_3
@pytest.mark.root
def test_published_port_reaches_the_container_from_loopback_and_outside(tasks, published) -> None:
    rule = tasks.dnat_rule(8080, "10.99.0.2", 80)
    applied = _apply(published, rule)
    assert applied.returncode == 0, f"nft refused your rule {rule!r}: {applied.stderr}"
    assert _get(published, "http://127.0.0.1:8080/") == "hello-from-container", \
        f"expected 127.0.0.1:8080 to reach the container with rule {rule!r}"
    assert _get(published, "http://192.168.77.1:8080/", netns="md-o") == "hello-from-container", \
        f"expected 192.168.77.1:8080 from another namespace to reach the container with rule {rule!r}"


@pytest.mark.task9_3
@pytest.mark.root
def test_host_ip_limits_the_rule_to_that_address(tasks, published) -> None:
    rule = tasks.dnat_rule(8081, "10.99.0.2", 80, host_ip="127.0.0.1")
    applied = _apply(published, rule)
    assert applied.returncode == 0, f"nft refused your rule {rule!r}: {applied.stderr}"
    assert _get(published, "http://127.0.0.1:8081/") == "hello-from-container"
    assert _get(published, "http://192.168.77.1:8081/", netns="md-o") is None, \
        f"expected 192.168.77.1:8081 NOT to be published by {rule!r} (host_ip 127.0.0.1)"


@pytest.mark.task9_3
def test_the_rule_names_the_protocol(tasks) -> None:
    rule = tasks.dnat_rule(5353, "10.99.0.2", 53, proto="udp")
    assert "udp dport 5353" in rule and "10.99.0.2:53" in rule, f"expected a udp rule, found {rule!r}"
