"""Start-up benchmark: ``minidocker run --rm busybox true`` side by side with runc and unshare(1).

What it times (each a fresh process, stdout and stderr to /dev/null)::

    minidocker run --rm busybox true     direct mode: image, overlay snapshot, cgroup, namespaces, pivot_root, exec
    ... +limits                          the same with --memory 64m --pids-limit 50 --cpus 1 (chapter 04)
    ... -security                        without seccomp and with every capability (chapter 11)
    runc run                             the same busybox root filesystem as an OCI bundle, same namespaces
    unshare --fork --pid --mount ...     util-linux: namespaces and a fresh /proc, no root filesystem
    minidocker --help                    interpreter start and the argument parser
    python -I -S -c pass                 the floor under any Python command

Medians over ``--runs`` runs (default 30, at least 20), with ``hyperfine -N`` when it is
installed, else an in-process loop (time.perf_counter around subprocess.run).
Everything happens under a temporary directory: ``MINIDOCKER_ROOT``, the runc bundle
and runc's state root; it is removed at the end (runc delete, unmount check, rm -r).
Results: a table on stdout and ``bench/results/startup.json``.

Run as root: ``sudo make bench`` or ``sudo .venv/bin/python bench/startup.py``.
See bench/README.md for how to read the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "startup.json"
RUNC_ID = "minidocker-bench"
# Our default namespaces (minidocker.runtime.spec.default_spec), given to runc too.
NAMESPACES = ("pid", "network", "ipc", "uts", "mount", "cgroup")
# Missing from root's bounding set on the course machine (CapBnd in /proc/self/status;
# capabilities(7)): runc refuses a capability set that names it ("unable to apply caps").
MISSING_CAPABILITIES = ("CAP_SYS_RESOURCE",)
# The resource flags of the "+limits" line (chapter 04).
LIMITS = ("--memory", "64m", "--pids-limit", "50", "--cpus", "1")
# What the "-security" line turns off (chapter 11): the seccomp filter and the capability drop.
NO_SECURITY = ("--security-opt", "seccomp=unconfined", "--cap-add", "ALL")


@dataclass
class Timing:
    """One benchmarked command and its wall-clock times in milliseconds."""

    name: str
    command: list[str]
    times_ms: list[float] = field(default_factory=list)
    error: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    def summary(self) -> dict:
        data = asdict(self)
        if self.times_ms:
            data.update(median_ms=self.median, mean_ms=statistics.fmean(self.times_ms),
                        min_ms=min(self.times_ms), max_ms=max(self.times_ms),
                        stdev_ms=statistics.stdev(self.times_ms) if len(self.times_ms) > 1 else 0.0)
        return data


def find_minidocker(given: str | None) -> str:
    """The command to time: --minidocker, else the venv's, else the one on PATH."""
    if given:
        return given
    venv = REPO / ".venv" / "bin" / "minidocker"
    if venv.exists():
        return str(venv)
    found = shutil.which("minidocker")
    if not found:
        sys.exit("bench: minidocker is not installed: run 'make venv' first")
    return found


def prepare_image(minidocker: str, env: dict[str, str]) -> Path:
    """Run one container so that the busybox image exists; return its root filesystem."""
    subprocess.run([minidocker, "run", "--rm", "--network", "none", "busybox", "true"], env=env, check=True)
    sys.path.insert(0, str(REPO))
    from minidocker.engine.images import local_image
    from minidocker.image import ImageStore

    rootfs = local_image(ImageStore(Path(env["MINIDOCKER_ROOT"]) / "lib" / "images"), "busybox").layers[0]
    if not rootfs.is_dir():
        sys.exit(f"bench: the busybox image is not where expected: {rootfs}")
    return rootfs


def make_runc_bundle(rootfs: Path, bundle: Path) -> None:
    """An OCI bundle of the busybox rootfs whose config matches what minidocker runs.

    ``runc spec`` writes the defaults; we run ``true`` without a terminal, with a
    writable root (ours is a writable overlay) and our namespace list.
    """
    bundle.mkdir()
    shutil.copytree(rootfs, bundle / "rootfs", symlinks=True)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    process = config["process"]
    process["args"] = ["true"]
    process["terminal"] = False
    process["env"] = [e for e in process["env"] if not e.startswith("TERM=")]
    for kind, names in process.get("capabilities", {}).items():
        process["capabilities"][kind] = [n for n in names if n not in MISSING_CAPABILITIES]
    config["root"] = {"path": "rootfs", "readonly": False}
    config["hostname"] = "bench"
    config["linux"]["namespaces"] = [{"type": t} for t in NAMESPACES]
    config_path.write_text(json.dumps(config, indent=2))


def commands(minidocker: str, bundle: Path | None, runc_root: Path) -> list[tuple[str, list[str]]]:
    """(name, argv) of everything to time, the container runs first."""
    # --network none: what runc gets (an empty netns); the bridge is timed in bench/network.py
    plain = [minidocker, "run", "--rm", "--network", "none"]
    found = [("minidocker run", [*plain, "busybox", "true"]),
             # chapter 04: the same run with limits; every run has a cgroup, this adds the limit files
             ("minidocker run +limits", [*plain, *LIMITS, "busybox", "true"]),
             # chapter 11: without the default security profile (no seccomp filter, every capability)
             ("minidocker run -security", [*plain, *NO_SECURITY, "busybox", "true"])]
    if bundle is not None:
        runc = ["runc", "--root", str(runc_root), "run", "--bundle", str(bundle), RUNC_ID]
        found.append(("runc run", runc))
    if shutil.which("unshare"):
        found.append(("unshare", ["unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--net",
                                  "--mount-proc", "true"]))
    found.append(("minidocker --help", [minidocker, "--help"]))
    venv_python = REPO / ".venv" / "bin" / "python"
    interpreter = str(venv_python) if venv_python.exists() else sys.executable
    found.append(("python -I -S -c pass", [interpreter, "-I", "-S", "-c", "pass"]))
    return found


def time_with_hyperfine(timing: Timing, runs: int, warmup: int, env: dict[str, str], scratch: Path) -> None:
    """Fill ``timing.times_ms`` from ``hyperfine -N --export-json``."""
    export = scratch / "hyperfine.json"

    result = subprocess.run(
        ["hyperfine", "-N", "--style", "none", "--warmup", str(warmup), "--runs", str(runs),
         "--export-json", str(export), shlex.join(timing.command)],
        env=env, capture_output=True, text=True,
    )
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        timing.error = lines[-1] if lines else f"hyperfine exited with status {result.returncode}"
        return
    timing.times_ms = [t * 1000 for t in json.loads(export.read_text())["results"][0]["times"]]


def time_with_loop(timing: Timing, runs: int, warmup: int, env: dict[str, str]) -> None:
    """Fill ``timing.times_ms`` with our own loop: fork, exec and wait per run."""
    for i in range(warmup + runs):
        start = time.perf_counter()
        result = subprocess.run(timing.command, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = (time.perf_counter() - start) * 1000
        if result.returncode != 0:
            timing.error = f"exit status {result.returncode}: {result.stderr.decode().strip()[-200:]}"
            timing.times_ms = []
            return
        if i >= warmup:
            timing.times_ms.append(elapsed)


def cleanup(scratch: Path, runc_root: Path) -> None:
    """runc delete, check that nothing is mounted under ``scratch``, then remove it."""
    if shutil.which("runc") and runc_root.exists():
        subprocess.run(["runc", "--root", str(runc_root), "delete", "--force", RUNC_ID],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    prefix = str(scratch) + "/"
    with open("/proc/self/mountinfo") as f:
        mounted = [line.split()[4] for line in f if line.split()[4].startswith(prefix)]
    for mount_point in sorted(mounted, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount_point], check=False)
    if mounted:
        print(f"bench: warning: unmounted leftovers: {', '.join(mounted)}", file=sys.stderr)
    shutil.rmtree(scratch, ignore_errors=True)


def print_table(timings: list[Timing], reference: str = "runc run") -> None:
    """One line per command: median, mean, min, max, and the ratio to runc's median."""
    ref = next((t for t in timings if t.name == reference and t.times_ms), None)
    print(f"{'command':<22}{'median':>9}{'mean':>9}{'min':>9}{'max':>9}{'vs runc':>9}   (ms, n runs)")
    for t in timings:
        if not t.times_ms:
            print(f"{t.name:<22}  failed: {t.error}")
            continue
        ratio = f"{t.median / ref.median:>8.2f}x" if ref else f"{'-':>9}"
        print(f"{t.name:<22}{t.median:>9.1f}{statistics.fmean(t.times_ms):>9.1f}{min(t.times_ms):>9.1f}"
              f"{max(t.times_ms):>9.1f}{ratio}   n={len(t.times_ms)}")


def machine() -> dict:
    """What the figures depend on."""
    return {
        "kernel": platform.release(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_before": os.getloadavg(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per command (>= 20; default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first (default 3)")
    parser.add_argument("--minidocker", help="the minidocker command (default: .venv/bin/minidocker)")
    parser.add_argument("--loop", action="store_true", help="time with our own loop even if hyperfine exists")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default: {RESULTS})")
    args = parser.parse_args(argv)
    if args.runs < 20:
        parser.error("--runs must be at least 20: medians of fewer runs are noise here")
    if os.geteuid() != 0:
        sys.exit("bench: run as root (containers need it): sudo make bench")

    minidocker = find_minidocker(args.minidocker)
    use_hyperfine = bool(shutil.which("hyperfine")) and not args.loop
    scratch = Path(tempfile.mkdtemp(prefix="minidocker-bench-"))
    runc_root = scratch / "runc-state"
    env = {**os.environ, "MINIDOCKER_ROOT": str(scratch / "state")}
    info = machine()
    timings: list[Timing] = []
    try:
        rootfs = prepare_image(minidocker, env)
        bundle = None
        if shutil.which("runc"):
            bundle = scratch / "bundle"
            make_runc_bundle(rootfs, bundle)
        for name, command in commands(minidocker, bundle, runc_root):
            timing = Timing(name, command)
            if use_hyperfine:
                time_with_hyperfine(timing, args.runs, args.warmup, env, scratch)
            else:
                time_with_loop(timing, args.runs, args.warmup, env)
            timings.append(timing)
    finally:
        cleanup(scratch, runc_root)

    tool = "hyperfine -N" if use_hyperfine else "perf_counter loop"
    print(f"medians of {args.runs} runs ({tool}); kernel {info['kernel']}, {info['cpus']} CPUs, "
          f"load {info['loadavg_before'][0]:.2f}")
    print_table(timings)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"tool": tool, "runs": args.runs, "machine": info,
                                       "results": [t.summary() for t in timings]}, indent=2) + "\n")
    print(f"written: {args.output}")
    return 1 if any(t.error for t in timings) else 0


if __name__ == "__main__":
    sys.exit(main())
