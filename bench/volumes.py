"""Volume benchmark (chapter 10): what a mount adds to ``run``, and copy-up against ``cp -a``.

Two measurements, rounds interleaved so that the machine's drift hits every line alike::

    run --rm busybox true                  no mount (whole runs: start-up, namespaces, mounts, exit)
    ... -v DIR:/mN  x N                    N bind mounts of host directories
    ... -v volN:/mN x N                    N named volumes (already created, empty images dirs: no copy-up)
    engine side                            the engine's own work per mount, in process
    copy_up(src, dst)                      minidocker.storage.volumes.copy_up of a 10,000-file tree
    cp -a src/. dst/                       coreutils, the same tree

The per-mount figure is (median with N mounts - median without) / N. The minidocker
timed is this checkout's (``python -m minidocker`` with the repository first on
sys.path), so a branch can be measured before it is installed. Everything lives under
one temporary directory, removed at the end.

Run as root: ``sudo .venv/bin/python bench/volumes.py [--runs 30] [--mounts 5] [--files 10000]``.
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


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    if done.returncode != 0:
        sys.exit(f"bench: {' '.join(command)} failed:\n{done.stderr.decode(errors='replace')}")
    return (time.perf_counter() - start) * 1000


def make_tree(root: Path, files: int) -> None:
    """``files`` files of 100 bytes in directories of 100, with owners and modes that must be kept."""
    for index in range(files):
        directory = root / f"d{index // 100:03d}"
        if index % 100 == 0:
            directory.mkdir(parents=True)
            os.chown(directory, 1000, 1000)
        path = directory / f"f{index:05d}"
        path.write_bytes(b"x" * 100)
        if index % 7 == 0:
            os.chmod(path, 0o600)
            os.chown(path, 33, 33)


def engine_side(base: Path, env: dict[str, str], mounts: int, runs: int) -> None:
    """The engine's own work per mount, in this process (parse, plan, OCI entries, prepare, release):
    steadier than whole runs on a busy machine, where a run's noise is larger than a mount."""
    os.environ["MINIDOCKER_ROOT"] = env["MINIDOCKER_ROOT"]
    from minidocker.engine import volumes as v
    from minidocker.paths import state_roots
    from minidocker.runtime import default_spec

    roots = state_roots()
    forms = {"bind": lambda n: f"{base}/h{n}:/m{n}", "named volume": lambda n: f"vol{n}:/m{n}",
             "anonymous volume, --rm": lambda n: f"/m{n}"}
    print(f"\n{'engine side, per mount':<28}{'median ms':>10}")
    for name, form in forms.items():
        times = []
        for r in range(runs):
            directory = base / f"engine-{len(times)}-{name[:4]}"
            directory.mkdir()
            start = time.perf_counter()
            plan = v.plan_mounts(roots, {}, [v.parse_volume(form(n)) for n in range(mounts)])
            plan.apply(default_spec("/rootfs", ["true"]))
            plan.prepare(base / "no-rootfs", directory, durable=False)
            plan.release("0" * 64, remove_anonymous=True)
            times.append((time.perf_counter() - start) * 1000 / mounts)
        print(f"{name:<28}{statistics.median(times):>10.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--mounts", type=int, default=5)
    parser.add_argument("--files", type=int, default=10_000)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (containers and chown)")
    sys.path.insert(0, str(REPO))
    from minidocker.storage.volumes import copy_up

    base = Path(tempfile.mkdtemp(prefix="md-bench-volumes."))
    # Compiled once, as an installed package is: a checkout run with PYTHONDONTWRITEBYTECODE would
    # time the compiler on every run.
    env = {**os.environ, "MINIDOCKER_ROOT": str(base / "state"), "MINIDOCKER_BRIDGE": "none",
           "PYTHONPATH": str(REPO), "PYTHONPYCACHEPREFIX": str(base / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    md = [sys.executable, "-m", "minidocker"]
    try:
        subprocess.run([*md, "run", "--rm", "busybox", "true"], env=env, check=True, cwd=REPO)
        binds, volumes = [], []
        for n in range(args.mounts):
            (base / f"h{n}").mkdir()
            binds += ["-v", f"{base}/h{n}:/m{n}"]
            volumes += ["-v", f"vol{n}:/m{n}"]
            subprocess.run([*md, "volume", "create", f"vol{n}"], env=env, check=True, cwd=REPO,
                           stdout=subprocess.DEVNULL)
        lines = {"run, no mount": [*md, "run", "--rm", "busybox", "true"],
                 f"run, {args.mounts} binds": [*md, "run", "--rm", *binds, "busybox", "true"],
                 f"run, {args.mounts} named volumes": [*md, "run", "--rm", *volumes, "busybox", "true"]}
        times: dict[str, list[float]] = {name: [] for name in lines}
        for command in lines.values():
            timed(command, env)   # compile and warm the caches
        for _ in range(args.runs):
            for name, command in lines.items():
                times[name].append(timed(command, env))
        none = statistics.median(times["run, no mount"])
        print(f"{'line':<28}{'median ms':>10}{'per mount ms':>14}")
        for name, values in times.items():
            median = statistics.median(values)
            per = "" if name == "run, no mount" else f"{(median - none) / args.mounts:+.2f}"
            print(f"{name:<28}{median:>10.1f}{per:>14}")

        engine_side(base, env, args.mounts, args.runs)

        source = base / "tree"
        make_tree(source, args.files)
        copies = {"copy_up": [], "cp -a": []}
        for round_ in range(max(5, args.runs // 6)):
            for name in copies:
                dest = base / f"copy-{name[:2]}-{round_}"
                dest.mkdir()
                subprocess.run(["sync"], check=True)
                start = time.perf_counter()
                if name == "copy_up":
                    copy_up(source, dest)
                else:
                    subprocess.run(["cp", "-a", f"{source}/.", f"{dest}/"], check=True)
                copies[name].append((time.perf_counter() - start) * 1000)
        print(f"\n{'copy of ' + str(args.files) + ' files':<28}{'median ms':>10}")
        for name, values in copies.items():
            print(f"{name:<28}{statistics.median(values):>10.1f}")
        ratio = statistics.median(copies["copy_up"]) / statistics.median(copies["cp -a"])
        print(f"{'copy_up / cp -a':<28}{ratio:>10.2f}x")
    finally:
        subprocess.run([*md, "system", "prune"], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
