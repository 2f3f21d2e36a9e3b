"""``docker cp``, ``diff``, ``export`` and ``commit`` through minidockerd, side by side with a private dockerd.

What it times, the same docker CLI command against each daemon, on a created container::

    cp 100 MiB in / out      one file, host -> container and back (PUT and GET .../archive)
    cp 1000 files in         a directory of 1000 small files
    diff                     after those copies
    export                   the whole filesystem as a tar, to a file
    commit                   the upper directory becomes a layer

Medians of ``--runs`` (each run on a fresh container). Everything lives in temporary
directories removed at the end. Run as root:
``sudo .venv/bin/python bench/archive.py [--runs 5] [--no-dockerd]``.
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
sys.path.insert(0, str(REPO))   # this checkout's package, not an installed one


def docker(env: dict, *args: str) -> str:
    return subprocess.run(["docker", *args], env=env, capture_output=True, check=True, timeout=600).stdout.decode()


def timed(env: dict, *args: str) -> float:
    started = time.perf_counter()
    subprocess.run(["docker", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   timeout=600)
    return time.perf_counter() - started


def measure(env: dict, data: Path, runs: int) -> dict[str, float]:
    times: dict[str, list[float]] = {}
    for run in range(runs):
        name = f"bench-{os.getpid()}-{run}"
        docker(env, "create", "--name", name, "--network", "none", "busybox", "sh")
        out = data / f"out-{run}"
        out.mkdir()
        steps = [("cp 100 MiB in", ("cp", str(data / "big"), f"{name}:/big")),
                 ("cp 100 MiB out", ("cp", f"{name}:/big", str(out / "big"))),
                 ("cp 1000 files in", ("cp", str(data / "many"), f"{name}:/many")),
                 ("diff", ("diff", name)),
                 ("export", ("export", "-o", str(out / "fs.tar"), name)),
                 ("commit", ("commit", name, f"{name}:v1"))]
        for label, args in steps:
            times.setdefault(label, []).append(timed(env, *args))
        docker(env, "rm", name)
        docker(env, "rmi", f"{name}:v1")
        shutil.rmtree(out)
    return {label: statistics.median(values) for label, values in times.items()}


def main() -> int:
    from daemonkit import Minidockerd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-dockerd", action="store_true", help="only minidockerd")
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mdbench."))
    data = Path(tempfile.mkdtemp(prefix="mdbench-data."))
    os.environ["MINIDOCKER_BRIDGE"] = "none"
    with open(data / "big", "wb") as f:
        f.write(os.urandom(100 << 20))
    (data / "many").mkdir()
    for i in range(1000):
        (data / "many" / f"f{i:04d}").write_bytes(os.urandom(512))
    results: dict[str, dict[str, float]] = {}
    try:
        from minidocker.engine.images import local_image
        from minidocker.image import ImageStore

        local_image(ImageStore(root / "lib" / "images"), "busybox")
        with Minidockerd(root) as daemon:
            results["minidockerd"] = measure(daemon.env, data, options.runs)
            docker(daemon.env, "save", "-o", str(data / "bb.tar"), "busybox")
        if not options.no_dockerd:
            from dockerd import Dockerd

            with Dockerd() as peer:
                peer.docker("load", "-i", str(data / "bb.tar"))
                results["dockerd"] = measure(peer.env, data, options.runs)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)
    names = list(results)
    print(f"{'seconds (median of ' + str(options.runs) + ')':<26}" + "".join(f"{n:>13}" for n in names)
          + ("        ratio" if len(names) == 2 else ""))
    for label in results[names[0]]:
        row = [results[n][label] for n in names]
        ratio = f"{row[0] / row[1]:12.2f}x" if len(row) == 2 and row[1] else ""
        print(f"{label:<26}" + "".join(f"{v:13.3f}" for v in row) + ratio)
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "archive.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
