"""minidockerd's networks: what the bridge costs a ``docker run``, and ``docker ps`` of bridged containers.

What it measures, side by side in one run, in a network sandbox (minidocker/network/sandbox.py:
its own network namespace and firewall, so that nothing touches the host's)::

    docker run --rm true           the docker CLI against minidockerd: --network none, the default
                                   bridge, the bridge with -p (a DNAT rule in, one out)
    minidocker run --rm true       direct mode in a second sandbox (no daemon), none and bridge: the
                                   same engine functions (engine/networks.py) in one process
    GET /containers/json           with N running containers, none then bridged with -p

Medians of ``--runs``. Run as root: ``sudo .venv/bin/python bench/daemon_network.py [--runs 15]
[--containers 30]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))


def median_ms(work, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 1)


def main() -> int:
    from daemonkit import Minidockerd

    from minidocker.network.sandbox import Sandbox

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--containers", type=int, default=30)
    options = parser.parse_args()
    direct_box = Sandbox(tempfile.mkdtemp(prefix="bench-net-direct."))
    daemon_box = Sandbox(tempfile.mkdtemp(prefix="bench-net-daemon."))
    rows = []
    try:
        def direct(*args: str) -> None:
            result = direct_box.md("run", "--rm", *args, "busybox", "true")
            assert result.returncode == 0, result.stderr

        direct()   # the image and the bridge exist before the clock starts
        rows += [("minidocker run --rm --network none (direct)", median_ms(lambda: direct("--network", "none"),
                                                                            options.runs)),
                 ("minidocker run --rm, bridge (direct)", median_ms(direct, options.runs))]
        with Minidockerd(daemon_box.state_root, prefix=tuple(daemon_box.argv()), env=daemon_box.env) as d:
            def docker(*args: str) -> None:
                result = d.docker(*args)
                assert result.returncode == 0, result.stderr

            docker("run", "--rm", "busybox", "true")
            for label, args in (("--network none", ("--network", "none")), ("bridge", ()),
                                ("bridge -p 15199:80", ("-p", "15199:80"))):
                rows.append((f"docker run --rm {label} (minidockerd)",
                             median_ms(lambda: docker("run", "--rm", *args, "busybox", "true"), options.runs)))
            for label, args in (("--network none", ("--network", "none")), ("bridged, -p", ("-P", "--expose", "80"))):
                for _ in range(options.containers):
                    docker("run", "-d", *args, "busybox", "sleep", "1000")
                rows.append((f"GET /containers/json, {options.containers} running {label}",
                             median_ms(lambda: d.request("GET", "/v1.41/containers/json"), options.runs)))
                d.remove_all()
        for box in (direct_box, daemon_box):
            left = box.wait_clean()
            assert not left, left
    finally:
        direct_box.close()
        daemon_box.close()
        for box in (direct_box, daemon_box):
            shutil.rmtree(box.state_root, ignore_errors=True)
    width = max(len(label) for label, _ in rows)
    load = Path("/proc/loadavg").read_text().split()[0]
    print(f"{'':<{width}}  median ms  (load {load}, {options.runs} runs)")
    for label, value in rows:
        print(f"{label:<{width}}  {value:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
