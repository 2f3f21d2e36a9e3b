"""minidockerd benchmark: memory per idle container, and container start through the daemon.

What it measures, side by side in one run::

    PSS per idle container    (PSS of minidockerd + its supervisor with N idle containers
                               - the same with none) / N; the containers' own processes excluded
                               (Docker's shim: ~2.6 MB per container)
    run -d x N                N sequential ``docker run -d busybox sleep 1000`` against minidockerd
                              and (--dockerd) a private dockerd, both up, one run on each in
                              turn (a busy spell of a shared machine hits both); the sums and
                              their ratio (target: at most 0.2x)
    docker run --rm true      the real docker CLI: ``docker run --rm --network none busybox true``
    minidocker run --rm true  our CLI (the launcher ``make venv`` installs) through the daemon,
                              and in direct mode
    runc run                  ``runc run`` of the same busybox root filesystem (bench/startup.py's
                              bundle): the reference of the line above (target: at most 1.0x)
    where the time goes       the daemon's own time per request (its ``--debug`` log: one line per
                              request with its duration), medians per endpoint, for the run -d loop

The three single-container lines run interleaved (a round runs each once), so that a busy
spell of a shared machine hits them alike; medians of ``--runs`` rounds. Everything lives
in a temporary directory (MINIDOCKER_ROOT, the runc bundle and state; in /dev/shm unless
``--dir`` says otherwise), removed at the end (containers removed, daemon stopped, its idle
supervisor with it).
Run as root: ``sudo .venv/bin/python bench/daemon.py [--containers 50] [--runs 10] [--dockerd] [--dir DIR]``.
See bench/README.md, "minidockerd"; proc(5) /proc/PID/smaps_rollup (Pss).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))
RUNC_ID = "minidocker-bench-daemon"
RUN_TRUE = ["run", "--rm", "--network", "none", "busybox", "true"]
RUN_SLEEPER = ["run", "-d", "--network", "none", "busybox", "sleep", "1000"]


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
        ours = "minidocker.cli.daemon" in cmdline or "minidocker.engine.supervisor" in cmdline
        if str(root) in cmdline and ours:
            found.append(int(name))
    return found


def cpu_ms(pids: list[int]) -> dict[str, float]:
    """CPU time used so far (ms) by each process and by its reaped children, from /proc/PID/stat.

    The supervisor's children are the containers' stage-1 processes (runtime create) and PID 1s:
    their CPU shows in its cutime/cstime once reaped. See: proc(5) /proc/PID/stat fields 14-17.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        name = "supervisor" if b"supervisor" in cmdline else "daemon"
        used[name] = (int(fields[11]) + int(fields[12])) * 1000 / ticks
        used[name + " children"] = (int(fields[13]) + int(fields[14])) * 1000 / ticks
    return used


def run_quiet(argv: list[str], env: dict) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def interleaved(lines: dict[str, tuple[list[str], dict]], runs: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds of each command, the commands taking turns round by round."""
    times: dict[str, list[float]] = {name: [] for name in lines}
    for round_ in range(warmup + runs):
        for name, (argv, env) in lines.items():
            elapsed = run_quiet(argv, env)
            if round_ >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(values) for name, values in times.items()}


def request_times(log: str, since: int) -> dict[str, tuple[int, float]]:
    """From minidockerd's --debug log after offset ``since``: endpoint -> (count, median ms)."""
    per: dict[str, list[float]] = {}
    for match in re.finditer(r'msg="(\w+) (\S+) -> (\S+) \(([\d.]+) ms\)"', log[since:]):
        path = re.sub(r"/v1\.\d+", "", re.sub(r"[0-9a-f]{64}", "{id}", match.group(2)).split("?")[0])
        per.setdefault(f"{match.group(1)} {path}", []).append(float(match.group(4)))
    return {key: (len(values), statistics.median(values)) for key, values in sorted(per.items())}


def main() -> int:
    import contextlib

    from daemonkit import Minidockerd
    from runtime import write_launchers
    from startup import make_runc_bundle

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=50)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--dockerd", action="store_true",
                        help="also time a private dockerd (tests/dockerd.py), turn about with ours")
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where the scratch directory goes (default: /dev/shm, a tmpfs like /run)")
    options = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root")
    # In a tmpfs, as bench/runtime.py: the runtime state of both (ours under run/, runc's) lives in /run
    # in real use; on this machine's ext4 each file created or renamed costs ~30 us more, and a run of
    # ours makes about 25 such changes (records, bundle, state, exit file) to runc's 6.
    root = Path(tempfile.mkdtemp(prefix="mdbench.", dir=options.dir))
    runc_root = root / "runc-state"
    results: dict[str, float] = {}
    breakdown: dict[str, tuple[int, float]] = {}
    os.environ["MINIDOCKER_BRIDGE"] = "none"
    try:
        minidocker, _ = write_launchers(root, REPO, "this")
        with contextlib.ExitStack() as stack:
            daemon = stack.enter_context(Minidockerd(root, "--debug"))
            env = daemon.env
            ours_env = {**env, "MINIDOCKER_HOST": daemon.host}
            subprocess.run(["docker", "run", "--rm", "busybox", "true"], env=env, check=True)  # warm, pulls
            from minidocker.image import ImageStore
            from minidocker.paths import state_roots

            store = ImageStore(state_roots({"MINIDOCKER_ROOT": str(root)}).images)
            make_runc_bundle(store.get("busybox").layers[0], root / "bundle")
            peer = None
            if options.dockerd:  # both daemons up at once: a run on each in turn, so that load hits both
                from dockerd import Dockerd

                from minidocker.image.archive import save_archive

                with open(root / "bb.tar", "wb") as out:
                    save_archive(store, ["busybox"], out)
                peer = stack.enter_context(Dockerd(parent=options.dir or "/tmp"))  # its state beside ours
                peer.docker("load", "-i", str(root / "bb.tar"))
                subprocess.run(["docker", *RUN_TRUE], env=peer.env, check=True, stdout=subprocess.DEVNULL)
            # The single-container lines first, on a settled machine: after the run -d phase the kernel
            # tears down the N containers' network namespaces for seconds (its cleanup_net work), and
            # that load delays the hand-offs of the daemon's three processes more than runc's one chain.
            runc = ["runc", "--root", str(runc_root), "run", "--bundle", str(root / "bundle"), RUNC_ID]
            lines = {"docker run --rm true, minidockerd": (["docker", *RUN_TRUE], env),
                     "minidocker run --rm true, via daemon": ([minidocker, *RUN_TRUE], ours_env),
                     "runc run true": (runc, env)}
            if peer is not None:
                lines["docker run --rm true, dockerd"] = (["docker", *RUN_TRUE], peer.env)
            results.update({f"{name} (s)": value for name, value in interleaved(lines, options.runs).items()})
            time.sleep(0.5)
            base = sum(pss_kb(p) for p in minidocker_pids(root))
            log_start = len(daemon.log())
            cpu_before = cpu_ms(minidocker_pids(root))
            spent = {"minidockerd": 0.0, "dockerd": 0.0}
            for _ in range(options.containers):
                spent["minidockerd"] += run_quiet(["docker", *RUN_SLEEPER], env)
                if peer is not None:
                    spent["dockerd"] += run_quiet(["docker", *RUN_SLEEPER], peer.env)
            results["run -d x N, minidockerd (s)"] = spent["minidockerd"]
            for name, value in cpu_ms(minidocker_pids(root)).items():
                per_run = (value - cpu_before.get(name, 0)) / options.containers
                results[f"CPU per run -d, {name} (ms)"] = per_run
            breakdown = request_times(daemon.log(), log_start)
            time.sleep(1.0)
            loaded = sum(pss_kb(p) for p in minidocker_pids(root))
            results["PSS daemon+supervisor, 0 containers (MB)"] = base / 1024
            results[f"PSS daemon+supervisor, {options.containers} containers (MB)"] = loaded / 1024
            results["PSS per idle container (MB)"] = (loaded - base) / 1024 / options.containers
            daemon.remove_all()
            if peer is not None:
                results["run -d x N, dockerd (s)"] = spent["dockerd"]
                ids = peer.docker("ps", "-aq").split()
                peer.docker("rm", "-f", *ids, timeout=300)
        direct_env = {**os.environ, "MINIDOCKER_ROOT": str(root)}
        direct = interleaved({"direct": ([minidocker, *RUN_TRUE], direct_env)}, options.runs)
        results["minidocker run --rm true, direct (s)"] = direct["direct"]
        results["via daemon / runc run (ratio)"] = (results["minidocker run --rm true, via daemon (s)"]
                                                    / results["runc run true (s)"])
        if options.dockerd:
            results["run -d x N, minidockerd / dockerd (ratio)"] = (results["run -d x N, minidockerd (s)"]
                                                                   / results["run -d x N, dockerd (s)"])
            results["docker run --rm true, minidockerd / dockerd (ratio)"] = (
                results["docker run --rm true, minidockerd (s)"]
                / results["docker run --rm true, dockerd (s)"])
    finally:
        subprocess.run(["runc", "--root", str(runc_root), "delete", "--force", RUNC_ID],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(root, ignore_errors=True)
    width = max(len(k) for k in results)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    for key, value in results.items():
        print(f"{key:<{width}}  {value:8.3f}")
    print(f"\nminidockerd's time per request during run -d x {options.containers} (its --debug log):")
    for key, (count, median) in breakdown.items():
        print(f"  {key:<40} n={count:<4} median {median:6.1f} ms")
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    report = {"results": results, "requests_ms": breakdown}
    (out / "daemon.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
