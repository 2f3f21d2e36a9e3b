"""Build benchmark: minidocker build next to dockerd's legacy builder, in one run.

Three builds of the same 3-step Dockerfile (FROM busybox, COPY a small tree, RUN a command), each timed
as the user's command (``minidocker build`` / ``DOCKER_BUILDKIT=0 docker build``) and reported as medians:

    cold        --no-cache: every step runs (a container for RUN, layers committed)
    cached      the same context again: every step a cache hit
    1000 files  a COPY of 1,000 small files, --no-cache (the checksums and the copy dominate)

The private dockerd (tests/dockerd.py) loads our busybox first (``minidocker save`` | ``docker load``),
so both start from the same image; its start is not timed.

Run: ``sudo .venv/bin/python bench/build.py [--runs 7]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = "FROM busybox\nCOPY tree /tree\nRUN ls /tree > /listing\n"
MANY = "FROM busybox\nCOPY many /many\n"


def make_contexts(work: Path) -> dict[str, Path]:
    small = work / "small"
    for i in range(10):
        (small / "tree" / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (small / "tree" / f"d{i % 3}" / f"f{i}").write_bytes(os.urandom(2048))
    (small / "Dockerfile").write_text(DOCKERFILE)
    many = work / "many"
    for i in range(1000):
        (many / "many" / f"d{i % 20}").mkdir(parents=True, exist_ok=True)
        (many / "many" / f"d{i % 20}" / f"f{i}").write_bytes(os.urandom(512))
    (many / "Dockerfile").write_text(MANY)
    return {"small": small, "many": many}


def timed(command: list[str], env: dict[str, str]) -> float:
    os.sync()
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def series(build: list[str], env: dict[str, str], contexts: dict[str, Path], runs: int) -> dict[str, list[float]]:
    """cold, cached and 1000-file timings of one builder; the first run of each is a warm-up."""
    result: dict[str, list[float]] = {"cold": [], "cached": [], "1000 files": []}
    for r in range(runs + 1):
        cold = timed([*build, "--no-cache", "-t", "bench/build:cold", str(contexts["small"])], env)
        cached = timed([*build, "-t", "bench/build:cold", str(contexts["small"])], env)
        many = timed([*build, "--no-cache", "-t", "bench/build:many", str(contexts["many"])], env)
        if r:
            result["cold"].append(cold)
            result["cached"].append(cached)
            result["1000 files"].append(many)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--minidocker", help="command to time (default: .venv/bin/minidocker, else on PATH)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (builds run containers)")
    sys.path.insert(0, str(REPO / "bench"))
    sys.path.insert(0, str(REPO / "tests"))
    from dockerd import Dockerd, available
    from startup import find_minidocker

    minidocker = [find_minidocker(args.minidocker), "build"]
    work = Path(tempfile.mkdtemp(prefix="minidocker-bench-build-", dir="/var/tmp"))
    env = {**os.environ, "MINIDOCKER_ROOT": str(work / "state"), "MINIDOCKER_BRIDGE": "none",
           "PYTHONPATH": str(REPO)}
    daemon = None
    try:
        contexts = make_contexts(work)
        ours = series([*minidocker, "--network", "none"], env, contexts, args.runs)
        theirs = None
        if available() is None:
            daemon = Dockerd(parent="/tmp")
            subprocess.run([minidocker[0], "save", "-o", str(work / "busybox.tar"), "busybox"], env=env, check=True)
            subprocess.run(["docker", "load", "-q", "-i", str(work / "busybox.tar")], env=daemon.env, check=True,
                           capture_output=True)
            theirs = series(["docker", "build", "--network", "none"], {**daemon.env, "DOCKER_BUILDKIT": "0"},
                            contexts, args.runs)
        print(f"{'build':12} {'minidocker s':>13} {'docker s':>9}   (medians, n={args.runs})")
        for name, times in ours.items():
            other = f"{statistics.median(theirs[name]):9.3f}" if theirs else "   (none)"
            print(f"{name:12} {statistics.median(times):13.3f} {other}")
    finally:
        if daemon is not None:
            daemon.stop()
        subprocess.run([sys.executable, "-m", "minidocker", "system", "prune", "-f"], env=env, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
