"""Runtime benchmark (chapter 12): the OCI lifecycle and ``run``, side by side with runc in one run.

What it times (each a fresh process tree, stdout and stderr to /dev/null)::

    minidocker-runc create+start+delete   three commands, as containerd's shim calls them, one bundle
    runc create+start+delete              the same three with runc, the same bundle
    minidocker-runc run                   one command: create, start, wait, delete
    runc run                              the same with runc
    minidocker run --rm busybox true      the engine: image, overlay, then the same lifecycle in-process
    ... (before)                          the same commands from another checkout (--before), if given

The three-command lines go through ``sh -c 'A && B && C'`` for both runtimes (the
shell costs about 1 ms to each). The bundle is busybox's root filesystem with the
config ``runc spec`` writes, adjusted as in bench/startup.py. Our commands are the
launchers ``make venv`` writes (python -I -S), written here into the scratch
directory for this checkout. Rounds are interleaved (each round runs every command
once, in order), so that a slow spell of a shared machine hits every line alike;
each run's wall time and CPU time (user + system of the whole process tree, from
getrusage(RUSAGE_CHILDREN)) are kept, and the table shows medians of both: on a
loaded machine the CPU column is the steadier one.

Run as root: ``sudo .venv/bin/python bench/runtime.py [--before /work/main]``.
See bench/README.md, "OCI runtime".
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import startup  # noqa: E402 - the shared helpers of the start-up benchmark

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "runtime.json"


def write_launchers(scratch: Path, repo: Path, tag: str) -> tuple[str, str]:
    """minidocker and minidocker-runc launchers for the checkout ``repo`` (as make venv writes them)."""
    made = []
    pairs = (("minidocker", "minidocker.cli.main"), ("minidocker-runc", "minidocker.cli.runc"))
    has_runc = (repo / "minidocker" / "cli" / "runc.py").exists()  # a checkout before chapter 12 has none
    for name, module in pairs if has_runc else pairs[:1]:
        target = scratch / f"{name}-{tag}"
        subprocess.run([sys.executable, "-m", "minidocker.cli.launcher", str(target),
                        *([module] if has_runc else [])], cwd=repo,
                       check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(repo)})
        made.append(str(target))
    return made[0], made[-1]


def lifecycle(runtime: str, root: Path, bundle: Path, container_id: str) -> list[str]:
    base = shlex.join([runtime, "--root", str(root)])
    return ["sh", "-c", f"{base} create --bundle {shlex.quote(str(bundle))} {container_id} && "
                        f"{base} start {container_id} && {base} delete --force {container_id}"]


def _run_once(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """One run: (wall ms, CPU ms of it and its descendants). Raises on a non-zero exit."""
    import resource
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, check=False)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.decode(errors="replace").strip()[-300:])
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, used


def _print(timings: list[startup.Timing], cpu: dict[str, list[float]]) -> None:
    import statistics

    refs = {"ours create+start+delete": "runc create+start+delete",
            "ours create+start+delete (before)": "runc create+start+delete"}
    by_name = {t.name: t for t in timings}
    print(f"{'command':<36}{'wall':>9}{'cpu':>9}{'wall vs runc':>14}{'cpu vs runc':>13}   (medians, ms)")
    for t in timings:
        ref = by_name.get(refs.get(t.name, "runc create+start+delete" if "create" in t.name else "runc run"))
        wall, used = t.median, statistics.median(cpu[t.name])
        ratio = f"{wall / ref.median:>13.2f}x{used / statistics.median(cpu[ref.name]):>12.2f}x" if ref else ""
        print(f"{t.name:<36}{wall:>9.1f}{used:>9.1f}{ratio}")


def phases(rootfs: Path, root: Path, runs: int) -> dict[str, float]:
    """Median ms of each verb of an in-process lifecycle (imports done): where `run`'s time goes."""
    import statistics
    import time

    sys.path.insert(0, str(REPO))
    from minidocker.runtime import ContainerProcess, default_spec

    spec = default_spec(str(rootfs), ["true"])
    spec["linux"]["cgroupsPath"] = "/minidocker/bench-phases"
    devnull = os.open(os.devnull, os.O_RDWR)
    times: dict[str, list[float]] = {"create": [], "start": [], "wait": [], "delete": []}
    for _ in range(runs):
        proc = ContainerProcess(spec, (devnull, devnull, devnull), root=str(root), container_id="phases")
        marks = [time.perf_counter()]
        proc.create()
        marks.append(time.perf_counter())
        proc.start()
        marks.append(time.perf_counter())
        proc.wait()
        marks.append(time.perf_counter())
        proc.destroy()
        marks.append(time.perf_counter())
        for name, a, b in zip(times, marks, marks[1:]):
            times[name].append((b - a) * 1000)
    os.close(devnull)
    return {name: statistics.median(values) for name, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per command (default 30)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout whose `minidocker run` to time too")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--phases", action="store_true", help="also time each verb in-process (no imports)")
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None,
                        help="where the scratch directory goes (default: /dev/shm, a tmpfs like /run)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("bench: run as root")
    if not shutil.which("runc"):
        sys.exit("bench: needs runc")
    # In a tmpfs, as /run is where runc's and our state live by default (MINIDOCKER_ROOT moves
    # lib and run together; on this ext4 each file created or unlinked costs 0.5-3 ms).
    scratch = Path(tempfile.mkdtemp(prefix="minidocker-bench-rt-", dir=args.dir))
    env = {**os.environ, "MINIDOCKER_ROOT": str(scratch / "state"), "MINIDOCKER_BRIDGE": "none"}
    runc_root, our_root = scratch / "runc-state", scratch / "our-state"
    timings: list[startup.Timing] = []
    failures: dict[str, int] = {}
    info = startup.machine()
    try:
        minidocker, ours = write_launchers(scratch, REPO, "this")
        rootfs = startup.prepare_image(minidocker, env)
        bundle = scratch / "bundle"
        startup.make_runc_bundle(rootfs, bundle)
        lines = [
            ("ours create+start+delete", lifecycle(ours, our_root, bundle, "bench-ours")),
            ("runc create+start+delete", lifecycle("runc", runc_root, bundle, "bench-runc")),
            ("ours run", [ours, "--root", str(our_root), "run", "--bundle", str(bundle), "bench-ours-run"]),
            ("runc run", ["runc", "--root", str(runc_root), "run", "--bundle", str(bundle), "bench-runc-run"]),
            ("minidocker run --rm", [minidocker, "run", "--rm", "--network", "none", "busybox", "true"]),
        ]
        if args.before:
            before, before_runc = write_launchers(scratch, args.before, "before")
            if before_runc != before:
                lines.insert(2, ("ours create+start+delete (before)",
                                 lifecycle(before_runc, our_root, bundle, "bench-before")))
            lines.append(("minidocker run (before)", [before, "run", "--rm", "--network", "none", "busybox", "true"]))
        timings = [startup.Timing(name, command) for name, command in lines]
        cpu: dict[str, list[float]] = {t.name: [] for t in timings}
        failures: dict[str, int] = {}
        for round_ in range(args.warmup + args.runs):
            for timing in timings:
                try:
                    wall, used = _run_once(timing.command, env)
                except RuntimeError as err:  # counted, not timed: a failed run is no measurement
                    failures[timing.name] = failures.get(timing.name, 0) + 1
                    timing.error = str(err)
                    continue
                if round_ >= args.warmup:
                    timing.times_ms.append(wall)
                    cpu[timing.name].append(used)
        if args.phases:
            from minidocker.forked import call_in_child

            sys.path.insert(0, str(REPO))
            split = call_in_child(phases, rootfs, our_root, args.runs)
    finally:
        for name in ("bench-runc", "bench-runc-run"):
            subprocess.run(["runc", "--root", str(runc_root), "delete", "--force", name],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        startup.cleanup(scratch, runc_root)
    by_error = {t.name: t.error for t in timings}
    print(f"medians of {args.runs} interleaved rounds; kernel {info['kernel']}, {info['cpus']} CPUs, "
          f"load {info['loadavg_before'][0]:.2f}")
    _print(timings, cpu)
    if args.phases:
        print("in-process lifecycle, medians (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in split.items()))
    for name, count in failures.items():
        print(f"{name}: {count} failed runs, the last: {by_error[name]}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"tool": "interleaved loop", "runs": args.runs, "machine": info,
                                       "results": [{**t.summary(), "cpu_ms": cpu[t.name]} for t in timings]},
                                      indent=2) + "\n")
    print(f"written: {args.output}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
