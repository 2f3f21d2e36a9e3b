"""Network benchmark: ``run --rm busybox true`` with ``--network none`` vs ``bridge`` (chapter 09).

The budget: a bridged run adds at most 40 ms (median) over ``--network none``
on the same machine in the same run (Docker's bridge adds ~60 ms on the project's machine).
Publishing a port (``-p``) is timed with both firewall backends: nft (the default) and
iptables (``MINIDOCKER_FIREWALL=iptables``, the fallback without nft); each starts one
process at the container's start and one at its exit.

Both are timed inside a fresh network+mount namespace (the same sandbox as the
tests), so the host's links and firewall are never touched and a dockerd's rules do
not interfere: the kernel work (bridge, veth, netns teardown) is the same. The
default bridge is created by a warm-up run, as docker0 exists before ``docker run``.
Medians of ``--runs`` runs with ``hyperfine -N`` (or an in-process loop without it).
Results: a table on stdout and ``bench/results/network.json``.

Run as root: ``sudo .venv/bin/python bench/network.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "network.json"
# What the installed command does (minidocker/cli/launcher.py): -I -S, this checkout first;
# stderr joins stdout, which hyperfine writes to a file: a failed run's message can be shown.
LAUNCH = [sys.executable, "-I", "-S", "-c",
          f"import os, sys; os.dup2(1, 2); sys.path.insert(0, {str(REPO)!r}); "
          "from minidocker.cli.main import main_and_exit; main_and_exit()"]
CASES = {
    "none": ["run", "--rm", "--network", "none", "busybox", "true"],
    "bridge": ["run", "--rm", "--network", "bridge", "busybox", "true"],
    "bridge -p 8080:80": ["run", "--rm", "-p", "8080:80", "busybox", "true"],
    "bridge -p (iptables)": ["run", "--rm", "-p", "8080:80", "busybox", "true"],
}
ENV = {"bridge -p (iptables)": {"MINIDOCKER_FIREWALL": "iptables"}}  # the fallback backend, forced


def inside(runs: int, warmup: int) -> dict:
    """Time the cases; we are already in the sandbox."""
    subprocess.run(["mount", "-t", "sysfs", "sysfs", "/sys"], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    scratch = Path(tempfile.mkdtemp(prefix="minidocker-netbench-"))
    env = {**os.environ, "MINIDOCKER_ROOT": str(scratch)}
    env.pop("MINIDOCKER_BRIDGE", None)
    results = {}
    try:
        subprocess.run([*LAUNCH, *CASES["bridge"]], env=env, check=True)  # image + default bridge
        for name, args in CASES.items():
            if name in ENV:  # the other backend: its own rules for the default network
                subprocess.run([*LAUNCH, "system", "prune", "-f"], env=env, check=True, capture_output=True)
                subprocess.run([*LAUNCH, *CASES["bridge"]], env={**env, **ENV[name]}, check=True)
            results[name] = _time([*LAUNCH, *args], runs, warmup, {**env, **ENV.get(name, {})}, scratch)
        subprocess.run([*LAUNCH, "system", "prune", "-f"], env=env, check=True, capture_output=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return results


def _time(argv: list[str], runs: int, warmup: int, env: dict[str, str], scratch: Path) -> list[float]:
    if shutil.which("hyperfine"):
        out, log = scratch / "hyperfine.json", scratch / "output.txt"
        done = subprocess.run(["hyperfine", "-N", "--style", "none", "-w", str(warmup), "-r", str(runs),
                               "--output", str(log), "--export-json", str(out), shlex.join(argv)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:  # say why: a run's own error message, not only hyperfine's
            said = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"failed to time {shlex.join(argv)}: {done.stderr.strip()}\n{said}")
        return [t * 1000 for t in json.loads(out.read_text())["results"][0]["times"]]
    for _ in range(warmup):
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1000)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inside:
        print(json.dumps(inside(args.runs, args.warmup)))
        return 0
    if os.geteuid() != 0:
        sys.exit("bench: run as root (it creates namespaces)")
    proc = subprocess.run(["unshare", "--net", "--mount", "--propagation", "private", sys.executable,
                           __file__, "--inside", "--runs", str(args.runs), "--warmup", str(args.warmup)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"bench: failed: {proc.stderr}")
    times = json.loads(proc.stdout.splitlines()[-1])
    medians = {name: statistics.median(t) for name, t in times.items()}
    print(f"{'case':<22}{'median ms':>10}{'min':>8}{'max':>8}{'vs none':>10}")
    for name, t in times.items():
        print(f"{name:<22}{medians[name]:>10.1f}{min(t):>8.1f}{max(t):>8.1f}"
              f"{medians[name] - medians['none']:>+10.1f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "runs": args.runs, "medians_ms": medians, "bridge_overhead_ms": medians["bridge"] - medians["none"],
        "budget_ms": 40, "times_ms": times, "kernel": os.uname().release,
    }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
