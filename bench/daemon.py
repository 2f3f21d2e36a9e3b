"""minidockerd benchmark: memory per idle container, and container start through the daemon.

What it measures, side by side in one run::

    PSS per idle container    (PSS of minidockerd + its supervisor with N idle containers
                               - the same with none) / N; the containers' own processes excluded
                               (Docker's shim: ~2.6 MB per container)
    run -d x N                N sequential ``docker run -d busybox sleep 1000`` against minidockerd
                              (and against a private dockerd with --dockerd)
    docker run --rm true      the real docker CLI: ``docker run --rm --network none busybox true``
    minidocker run --rm true  our CLI through the daemon, and in direct mode

Medians of ``--runs`` for the timed lines. Everything lives in a temporary MINIDOCKER_ROOT,
removed at the end (containers removed, daemon stopped, its idle supervisor with it).
Run as root: ``sudo .venv/bin/python bench/daemon.py [--containers 50] [--runs 10] [--dockerd]``.
See: proc(5) /proc/PID/smaps_rollup (Pss).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))


def pss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def minidocker_pids(root: Path) -> list[int]:
    """minidockerd and the supervisor of this root (by their command lines), not the containers."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(root) in cmdline and ("minidocker.cli.daemon" in cmdline or "minidocker.engine.supervisor" in cmdline):
            found.append(int(name))
    return found


def timed(argv: list[str], env: dict, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    from daemonkit import Minidockerd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--dockerd", action="store_true", help="also time a private dockerd (tests/dockerd.py)")
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mdbench."))
    results: dict[str, float] = {}
    os.environ["MINIDOCKER_BRIDGE"] = "none"
    try:
        with Minidockerd(root) as daemon:
            env = daemon.env
            subprocess.run(["docker", "run", "--rm", "busybox", "true"], env=env, check=True)  # warm
            time.sleep(0.5)
            base = sum(pss_kb(p) for p in minidocker_pids(root))
            started = time.perf_counter()
            for _ in range(options.containers):
                subprocess.run(["docker", "run", "-d", "--network", "none", "busybox", "sleep", "1000"], env=env,
                               stdout=subprocess.DEVNULL, check=True)
            results["run -d x N, minidockerd (s)"] = time.perf_counter() - started
            time.sleep(1.0)
            loaded = sum(pss_kb(p) for p in minidocker_pids(root))
            results["PSS daemon+supervisor, 0 containers (MB)"] = base / 1024
            results[f"PSS daemon+supervisor, {options.containers} containers (MB)"] = loaded / 1024
            results["PSS per idle container (MB)"] = (loaded - base) / 1024 / options.containers
            daemon.remove_all()
            results["docker run --rm true, minidockerd (s)"] = timed(
                ["docker", "run", "--rm", "--network", "none", "busybox", "true"], env, options.runs)
            results["minidocker run --rm true, via daemon (s)"] = timed(
                [sys.executable, "-m", "minidocker", "run", "--rm", "--network", "none", "busybox", "true"],
                {**env, "PYTHONPATH": str(REPO)}, options.runs)
        direct_env = {**os.environ, "MINIDOCKER_ROOT": str(root), "PYTHONPATH": str(REPO)}
        results["minidocker run --rm true, direct (s)"] = timed(
            [sys.executable, "-m", "minidocker", "run", "--rm", "--network", "none", "busybox", "true"],
            direct_env, options.runs)
        if options.dockerd:
            from dockerd import Dockerd

            from minidocker.image import ImageStore
            from minidocker.image.archive import save_archive
            from minidocker.paths import state_roots

            store = ImageStore(state_roots({"MINIDOCKER_ROOT": str(root)}).images)
            with open(root / "bb.tar", "wb") as out:
                save_archive(store, ["busybox"], out)
            with Dockerd() as peer:
                peer.docker("load", "-i", str(root / "bb.tar"))
                results["docker run --rm true, dockerd (s)"] = timed(
                    ["docker", "run", "--rm", "--network", "none", "busybox", "true"], peer.env, options.runs)
                started = time.perf_counter()
                ids = []
                for _ in range(options.containers):
                    ids.append(peer.docker("run", "-d", "--network", "none", "busybox", "sleep", "1000").strip())
                results["run -d x N, dockerd (s)"] = time.perf_counter() - started
                peer.docker("rm", "-f", *ids, timeout=300)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value:8.3f}")
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "daemon.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
