"""Runtime benchmark (chapter 12): the OCI lifecycle and ``run``, side by side with runc in one run.

What it times (each a fresh process tree, stdout and stderr to /dev/null)::

    minidocker-runc create+start+delete   three commands, as containerd's shim calls them, one bundle
    runc create+start+delete              the same three with runc, the same bundle
    minidocker-runc run                   one command: create, start, wait, delete
    runc run                              the same with runc
    minidocker run --rm busybox true      the engine: image, overlay, then the same lifecycle in-process
    ... (main)                            the same command from another checkout (--before), if given

The three-command lines go through ``sh -c 'A && B && C'`` for both runtimes (the
shell costs about 1 ms to each). The bundle is busybox's root filesystem with the
config ``runc spec`` writes, adjusted as in bench/startup.py. Our commands are the
launchers ``make venv`` writes (python -I -S), written here into the scratch
directory for this checkout. Medians of ``--runs`` runs with ``hyperfine -N``.

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
    for name, module in pairs[:1] if tag == "before" else pairs:  # an older checkout has no runc front end
        target = scratch / f"{name}-{tag}"
        subprocess.run([sys.executable, "-m", "minidocker.cli.launcher", str(target),
                        *([module] if tag != "before" else [])], cwd=repo,
                       check=True, stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(repo)})
        made.append(str(target))
    return made[0], made[-1]


def lifecycle(runtime: str, root: Path, bundle: Path, container_id: str) -> list[str]:
    base = shlex.join([runtime, "--root", str(root)])
    return ["sh", "-c", f"{base} create --bundle {shlex.quote(str(bundle))} {container_id} && "
                        f"{base} start {container_id} && {base} delete --force {container_id}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed runs per command (default 30)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout whose `minidocker run` to time too")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("bench: run as root")
    if not shutil.which("hyperfine") or not shutil.which("runc"):
        sys.exit("bench: needs hyperfine and runc")
    scratch = Path(tempfile.mkdtemp(prefix="minidocker-bench-rt-"))
    env = {**os.environ, "MINIDOCKER_ROOT": str(scratch / "state"), "MINIDOCKER_BRIDGE": "none"}
    runc_root, our_root = scratch / "runc-state", scratch / "our-state"
    timings: list[startup.Timing] = []
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
            before, _ = write_launchers(scratch, args.before, "before")
            lines.append(("minidocker run (before)", [before, "run", "--rm", "--network", "none", "busybox", "true"]))
        for name, command in lines:
            timing = startup.Timing(name, command)
            startup.time_with_hyperfine(timing, args.runs, args.warmup, env, scratch)
            timings.append(timing)
    finally:
        for name in ("bench-runc", "bench-runc-run"):
            subprocess.run(["runc", "--root", str(runc_root), "delete", "--force", name],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        startup.cleanup(scratch, runc_root)
    print(f"medians of {args.runs} runs (hyperfine -N); kernel {info['kernel']}, {info['cpus']} CPUs, "
          f"load {info['loadavg_before'][0]:.2f}")
    startup.print_table(timings[:2], reference="runc create+start+delete")
    startup.print_table(timings[2:], reference="runc run")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"tool": "hyperfine -N", "runs": args.runs, "machine": info,
                                       "results": [t.summary() for t in timings]}, indent=2) + "\n")
    print(f"written: {args.output}")
    return 1 if any(t.error for t in timings) else 0


if __name__ == "__main__":
    sys.exit(main())
