"""Graded tests of the runtime of your own (exercises/mydocker/tasks.py), one task per stage.

Run: ``make grade CH=mydocker`` (every stage) or ``make grade CH=mydocker TASK=4_5`` (one).
``tasks`` is your exercises/mydocker/tasks.py (the reference with ``--solutions``). Each stage
runs real containers from a busybox root filesystem (built from this machine's static busybox
into a temporary image store); nothing here changes the mounts, hostname or cgroups of your machine
for longer than a test, and the leak check fails a test that leaves something behind.

Each stage calls the stage before through ``previous_stage`` and your chapter pieces through
``previous`` (3.6: tasks 2.2, 2.3, 3.1; 4.5: 4.1, 4.2; 6.5: 5.1; 9.4: 9.1, 9.3): if one is not done
yet, continue from the reference, ``MINIDOCKER_CHECKPOINT=ch03`` (see exercises/README.md).
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from minidocker.cgroups import detect_mode
from minidocker.doctor import cgroup_layout

pytestmark = [pytest.mark.root]


@pytest.fixture(scope="module")
def busybox(tmp_path_factory) -> str:
    """A busybox root filesystem (one image layer) in a private image store."""
    from minidocker.engine.images import local_image
    from minidocker.image import ImageStore

    store = ImageStore(tmp_path_factory.mktemp("mydocker-store") / "images")
    return str(local_image(store, "busybox").layers[0])


def _lines(out: bytes) -> list[str]:
    return out.decode(errors="replace").splitlines()


def _our_groups() -> list[str]:
    """Cgroups named mydocker-* in any hierarchy: what a stage must not leave behind."""
    layout = cgroup_layout()
    bases = [layout.v2_path] if detect_mode() == "unified" else list(layout.v1_paths.values())
    return sorted(f"{base}/{e.name}" for base in bases if base for e in os.scandir(base)
                  if e.is_dir() and e.name.startswith("mydocker-"))


# --- stage 03: namespaces, pivot_root, PID 1 --------------------------------------------------

QUESTIONS = 'echo "pid $$"; hostname; echo "procs $(ls /proc | grep -c "^[0-9]")"; ls /'


@pytest.mark.task3_6
def test_stage03_the_command_is_pid_1_with_its_own_hostname_and_root(tasks, busybox):
    code, out = tasks.container(["sh", "-c", QUESTIONS], busybox, "box")
    lines = _lines(out)
    assert code == 0, f"expected exit code 0, found {code}; output: {lines}"
    assert lines[:2] == ["pid 1", "box"], f"expected PID 1 and hostname box first, found {lines[:2]}"
    procs = int(lines[2].split()[1])
    assert procs <= 5, f"a fresh /proc of the new PID namespace shows the shell and its pipe, found {procs}"
    root = set(lines[3:])
    assert {"bin", "proc", "etc"} <= root, f"expected the busybox root filesystem at /, found {sorted(root)}"
    host_only = {p for p in os.listdir("/") if p not in os.listdir(busybox)}
    assert not (root & host_only), f"the host's root is visible in the container: {sorted(root & host_only)}"


@pytest.mark.task3_6
def test_stage03_exit_codes_follow_docker(tasks, busybox):
    assert tasks.container(["sh", "-c", "exit 3"], busybox)[0] == 3
    assert tasks.container(["/no/such/program"], busybox)[0] == 127
    devices = "ls -l /dev/null /dev/zero | cut -c1; head -c 3 /dev/zero | wc -c"
    code, out = tasks.container(["sh", "-c", devices], busybox)
    assert (code, _lines(out)) == (0, ["c", "c", "3"]), f"expected /dev with null and zero: {_lines(out)}"


@pytest.mark.task3_6
def test_stage03_leaves_the_host_as_it_was(tasks, busybox):
    before = (socket.gethostname(), os.readlink("/proc/self/ns/mnt"), os.readlink("/proc/self/ns/pid"))
    tasks.container(["hostname", "elsewhere"], busybox)
    after = (socket.gethostname(), os.readlink("/proc/self/ns/mnt"), os.readlink("/proc/self/ns/pid"))
    assert after == before, f"the caller's hostname or namespaces changed: {before} -> {after}"


@pytest.mark.task3_6
def test_stage03_prepare_runs_in_the_container_and_chooses_the_root(tasks, busybox, tmp_path):
    seen = tmp_path / "seen"

    def prepare(root: str) -> str:
        seen.write_text(f"{os.readlink('/proc/self/ns/mnt')} {os.readlink('/proc/self/ns/uts')}")
        return root

    code, _ = tasks.container(["true"], busybox, "box", prepare)
    mnt, uts = seen.read_text().split()
    assert code == 0
    assert mnt != os.readlink("/proc/self/ns/mnt") and uts != os.readlink("/proc/self/ns/uts"), (
        "prepare must run after unshare, in the container's mount and UTS namespaces")


# --- stage 04: a cgroup with limits ------------------------------------------------------------

@pytest.mark.task4_5
def test_stage04_the_memory_limit_kills_a_process_that_exceeds_it(tasks, busybox):
    script = "dd if=/dev/zero of=/dev/null bs=100M count=1 2>/dev/null; echo dd $?"
    code, out = tasks.run_limited(["sh", "-c", script], busybox, memory="32m")
    assert code == 0 and _lines(out) == ["dd 137"], (
        f"dd needs a 100 MiB buffer: under 32m the OOM killer must kill it (137): {code}, {_lines(out)}")
    code, out = tasks.run_limited(["sh", "-c", script], busybox, memory="256m")
    assert _lines(out) == ["dd 0"], f"with 256m dd should succeed, found {_lines(out)}"
    dd = ["dd", "if=/dev/zero", "of=/dev/null", "bs=100M", "count=1"]
    code, _ = tasks.run_limited(dd, busybox, memory="32m")
    assert code == 137, f"dd as PID 1, killed by the OOM killer's SIGKILL: expected 128 + 9, found {code}"


@pytest.mark.task4_5
def test_stage04_the_pids_limit_refuses_forks(tasks, busybox):
    script = "exec 2>&1; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 1 & done; wait; echo done"
    code, out = tasks.run_limited(["sh", "-c", script], busybox, pids=5)
    text = out.decode(errors="replace")
    assert "can't fork" in text, f"expected busybox sh's \"can't fork\" under pids=5, found {text!r}"
    code, out = tasks.run_limited(["sh", "-c", script], busybox, pids=50)
    assert "can't fork" not in out.decode(errors="replace")


@pytest.mark.task4_5
def test_stage04_still_a_container_and_no_group_is_left(tasks, busybox):
    before = _our_groups()
    code, out = tasks.run_limited(["sh", "-c", QUESTIONS], busybox, memory="64m", pids=20, hostname="limited")
    assert code == 0 and _lines(out)[:2] == ["pid 1", "limited"], _lines(out)
    assert _our_groups() == before, f"cgroups left behind: {sorted(set(_our_groups()) - set(before))}"


# --- stage 06: an image's layers -----------------------------------------------------------------

@pytest.fixture
def top_layer(tmp_path) -> Path:
    layer = tmp_path / "top"
    (layer / "etc").mkdir(parents=True)
    (layer / "hello.txt").write_text("hello from the top layer\n")
    (layer / "etc" / "motd").write_text("a layer on top of busybox\n")
    return layer


@pytest.mark.task6_5
def test_stage06_the_layers_are_merged_top_first(tasks, busybox, top_layer):
    look = "cat /hello.txt /etc/motd; ls /bin/busybox"
    code, out = tasks.run_image(["sh", "-c", look], [str(top_layer), busybox])
    assert code == 0, f"exit code {code}: {_lines(out)}"
    assert _lines(out) == ["hello from the top layer", "a layer on top of busybox", "/bin/busybox"]


@pytest.mark.task6_5
def test_stage06_writes_go_to_the_containers_layer_only(tasks, busybox, top_layer):
    script = ("echo new > /new.txt; echo changed > /hello.txt; rm /bin/ls; "
              "cat /new.txt /hello.txt; ls /bin/ls 2>&1")
    code, out = tasks.run_image(["sh", "-c", script], [str(top_layer), busybox])
    assert _lines(out)[:2] == ["new", "changed"], _lines(out)
    assert "No such file" in out.decode(), f"ls of the deleted /bin/ls should fail: {_lines(out)}"
    assert (top_layer / "hello.txt").read_text() == "hello from the top layer\n", "a lower layer was written"
    assert not (top_layer / "new.txt").exists() and os.path.lexists(Path(busybox) / "bin" / "ls"), (
        "the container's writes and deletions must stay in its own upper directory")
    code, out = tasks.run_image(["cat", "/new.txt"], [str(top_layer), busybox])
    assert code == 1, "a new container starts from the image again: /new.txt is gone"


@pytest.mark.task6_5
def test_stage06_the_limits_still_hold(tasks, busybox, top_layer):
    script = "dd if=/dev/zero of=/dev/null bs=100M count=1 2>/dev/null; echo dd $?; hostname"
    code, out = tasks.run_image(["sh", "-c", script], [str(top_layer), busybox], memory="32m", hostname="img")
    assert _lines(out) == ["dd 137", "img"], _lines(out)


# --- stage 09: a bridge, NAT and a published port ------------------------------------------------

FETCH = """
import sys, time, urllib.request
deadline = time.monotonic() + 40
while time.monotonic() < deadline:
    try:
        print(urllib.request.urlopen(sys.argv[1], timeout=1).read().decode(), end="")
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
print("no answer from", sys.argv[1])
"""


@pytest.fixture
def sandbox(tmp_path):
    """A network + mount namespace of its own (minidocker.coursenet): the host's network is never touched."""
    from minidocker.coursenet import Sandbox

    box = Sandbox(tmp_path / "sandbox-state")
    yield box
    box.close()


def _in_sandbox(box, fn):
    """``fn()`` in a forked child that joined the sandbox's network and mount namespaces."""
    from minidocker.forked import call_in_child
    from minidocker.linux import CloneFlag, setns

    def inside():
        for name, flag in (("net", CloneFlag.CLONE_NEWNET), ("mnt", CloneFlag.CLONE_NEWNS)):
            fd = os.open(f"/proc/{box.pid}/ns/{name}", os.O_RDONLY)
            setns(fd, flag)
            os.close(fd)
        return fn()

    return call_in_child(inside, timeout=150)


@pytest.mark.task9_4
def test_stage09_the_container_has_an_address_a_route_and_reaches_its_gateway(tasks, busybox, sandbox):
    script = ("ip -o -4 addr show eth0 | awk '{print $4}'; ip route | grep default; "
              "ping -c1 -W2 10.99.0.1 >/dev/null && echo gateway answers; hostname")
    code, out = _in_sandbox(sandbox, lambda: tasks.run_networked(["sh", "-c", script], [busybox], "10.99.0.7",
                                                                  hostname="net"))
    lines = [line.strip() for line in _lines(out)]
    assert code == 0, f"exit code {code}: {lines}"
    assert lines[0] == "10.99.0.7/24", f"expected eth0 with 10.99.0.7/24, found {lines}"
    assert lines[1].startswith("default via 10.99.0.1 dev eth0"), f"expected a default route, found {lines}"
    assert lines[2:] == ["gateway answers", "net"], lines


@pytest.mark.task9_4
def test_stage09_a_published_port_reaches_the_container(tasks, busybox, sandbox):
    import subprocess
    import sys

    fetcher = subprocess.Popen(sandbox.argv(sys.executable, "-c", FETCH, "http://10.99.0.1:8080/"),
                               stdout=subprocess.PIPE, text=True)
    serve = "mkdir /www && echo hello-from-mydocker > /www/index.html && timeout 8 httpd -f -p 80 -h /www; true"
    try:
        code, _ = _in_sandbox(sandbox, lambda: tasks.run_networked(["sh", "-c", serve], [busybox], "10.99.0.8",
                                                                    publish=[(8080, 80)]))
    finally:
        fetched = fetcher.communicate(timeout=60)[0]
    assert code == 0
    assert fetched.strip() == "hello-from-mydocker", (
        f"the host's port 8080 should reach the container's httpd on port 80 (DNAT), found {fetched!r}")


@pytest.mark.task9_4
def test_stage09_leaves_no_bridge_or_rule_behind(tasks, busybox, sandbox):
    code, _ = _in_sandbox(sandbox, lambda: tasks.run_networked(["true"], [busybox], publish=[(8081, 80)]))
    assert code == 0
    # The host end goes with the container's network namespace, which the kernel tears down a
    # moment later, in a work queue (net/core/net_namespace.c: cleanup_net): wait up to 3 s.
    deadline = time.monotonic() + 3
    while "mdmy" in (links := sandbox.sh("ip -o link").stdout) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "mdmy" not in links, f"links left behind:\n{links}"
    assert not [t for t in sandbox.nft_tables() if "mydocker" in t], sandbox.nft_tables()
