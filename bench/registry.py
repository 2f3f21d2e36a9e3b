#!/usr/bin/env python3
"""Pull throughput from a local registry, next to skopeo (chapter 07).

    sudo .venv/bin/python bench/registry.py              # ~100 MiB, 3 layers, 5 runs
    sudo .venv/bin/python bench/registry.py --mib 200 --runs 7

Debian's docker-registry (distribution 2.8) runs on a free 127.0.0.1 port with its storage
in a temporary directory; skopeo pushes the image of bench/images.py into it (gzip layers,
~100 MiB uncompressed: many small files, a few big ones, a small top layer with whiteouts).
Then rounds of every command, interleaved, each run into a fresh destination after a sync(2)
(wall clock, medians, round 0 untimed). Nothing is deleted before the end: on ext4 without a
journal (this machine's root) files created shortly after a big deletion cost 0.1-0.3 ms more
each (bench/images.py probe_creates), which would charge one run's cleanup to the next pull.

| line | what is timed |
|---|---|
| `minidocker pull` | `minidocker pull 127.0.0.1:PORT/bench/image:latest` into an empty store (the command users run: `.venv/bin/minidocker`): manifest, config, 3 layers in parallel forked children, each in one pass as it arrives: hashed, stored, gunzipped, hashed again and unpacked for overlay |
| `minidocker fetch` | the download half of `minidocker pull` alone (a process reading manifest, config and the 3 layers with `pull.BlobDownload` in parallel threads, each hashed and written through a BlobWriter, fsync and rename), no unpacking: the same work as skopeo's |
| `skopeo copy` | `skopeo copy docker://… oci:DIR:latest`: the same blobs, hashed and written as files (no unpacking) |
| `docker pull` | `docker pull -q` through a private dockerd 20.10 started for each run (tests/dockerd.py: overlay2, its data root in `--dir`, no firewall or bridge; its start is not timed): download, gunzip, unpack into overlay2; only when `dockerd` is installed (docker.io) |

Results go to bench/results/registry.json (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))


def _timed(command: list[str], env: dict[str, str] | None = None) -> float:
    os.sync()   # the previous run's writeback is not this run's
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def fetch_only(ref: str, directory: str) -> None:
    """The download half of a pull: manifest, config and layer blobs into a BlobStore, each
    hashed as it arrives (BlobDownload, as the pull reads it) and renamed into place if right."""
    from concurrent.futures import ThreadPoolExecutor

    from minidocker.image.blobs import BlobStore
    from minidocker.image.reference import parse_reference
    from minidocker.registry.client import RegistryClient
    from minidocker.registry.pull import BlobDownload, fetch_manifest

    reference = parse_reference(ref)
    client = RegistryClient(reference.domain)
    body, _, _ = fetch_manifest(client, reference.path, reference.tag)
    manifest = json.loads(body)
    blobs = BlobStore(Path(directory) / "blobs")

    def download(descriptor: dict) -> None:
        digest, size = descriptor["digest"], descriptor["size"]
        with blobs.writer() as writer, BlobDownload(client, reference.path, digest, size) as source:
            while chunk := source.read(1 << 20):
                writer.write(chunk)
            writer.commit(digest, size)   # verifies the digest and the size

    with ThreadPoolExecutor(3) as pool:
        for future in [pool.submit(download, d) for d in [manifest["config"], *manifest["layers"]]]:
            future.result()


def pull_commands(minidocker: list[str], ref: str, leftovers: list[Path]) -> dict[str, Callable[[Path], float]]:
    """Each line of the table: a function that pulls ``ref`` into a fresh directory and times it
    (dockerd's directories, which need short paths, go to ``leftovers`` for the end)."""
    commands = {
        "minidocker pull": lambda out: _timed([*minidocker, "pull", "-q", ref], {**os.environ, "MINIDOCKER_ROOT": str(out)}),
        "minidocker fetch": lambda out: _timed([sys.executable, __file__, "--fetch-only", ref, str(out)]),
        "skopeo copy": lambda out: _timed(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
                                           f"oci:{out}:latest"]),
    }
    from dockerd import Dockerd, available

    if available() is None:
        def docker_pull(out: Path) -> float:
            """A private dockerd per run, its files kept until the end like everyone's."""
            daemon = Dockerd(parent=str(out.parent.parent))   # unix socket paths: 108 bytes at most
            leftovers.append(daemon.base)
            try:
                return _timed(["docker", "pull", "-q", ref], daemon.env)
            finally:
                daemon.stop(remove=False)
        commands["docker pull"] = docker_pull
    return commands


def time_rounds(commands: dict[str, Callable[[Path], float]], runs: int, work: Path) -> dict[str, list[float]]:
    """``runs`` rounds of every command, interleaved (a slow moment of the machine hits them
    alike); round 0 warms the caches and is not counted. Nothing is deleted before the end:
    see probe_creates."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for r in range(runs + 1):
        for name, pull_into in commands.items():
            elapsed = pull_into(work / f"{name.replace(' ', '-')}-{r}")
            if r:
                times[name].append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=100, help="uncompressed image size (default 100)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--minidocker", help="command to time (default: .venv/bin/minidocker, "
                        "else minidocker on PATH)")
    parser.add_argument("--dir", default="/var/lib", help="where stores and copies are made (default /var/lib)")
    parser.add_argument("--fetch-only", nargs=2, metavar=("REF", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fetch_only:
        fetch_only(*args.fetch_only)
        return
    if os.geteuid() != 0:
        sys.exit("bench: run as root (layers keep their owners)")
    for tool in ("docker-registry", "skopeo"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is missing (make apt)")
    from imagekit import write_layout
    from images import make_layers, probe_creates
    from registrykit import DistributionRegistry
    from startup import find_minidocker

    minidocker = [find_minidocker(args.minidocker)]   # what `make setup` installs and users run
    os.environ["PYTHONPATH"] = str(REPO)
    work = Path(tempfile.mkdtemp(prefix="minidocker-bench-registry-", dir=args.dir))
    registry = None
    leftovers = [work]
    try:
        layers = make_layers(args.mib)
        write_layout(work / "layout", layers, compression="gzip")
        registry = DistributionRegistry(work / "registry")
        ref = f"{registry.address}/bench/image:latest"
        subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{work / 'layout'}:latest",
                        f"docker://{ref}"], check=True)
        blobs = sum(f.stat().st_size for f in (work / "layout" / "blobs" / "sha256").iterdir())
        size = sum(len(layer) for layer in layers)
        print(f"image: 3 layers, {size / (1 << 20):.1f} MiB uncompressed, {blobs / (1 << 20):.1f} MiB of blobs "
              f"(gzip), registry {registry.address}")
        os.sync()
        print(f"file creation in {work.parent}: {probe_creates(work):.0f} µs per file (10-20 normally; more "
              "shortly after a big deletion on ext4 without a journal: see bench/images.py probe_creates)")
        results = time_rounds(pull_commands(minidocker, ref, leftovers), args.runs, work)
        docker = "docker pull" in results
        base = results["skopeo copy"]
        print(f"{'command':18} {'median s':>9} {'min s':>7} {'MiB/s':>7} {'vs skopeo':>10} {'paired':>7}   "
              f"(n={args.runs}; paired: median of the per-round ratios)")
        for name, times in results.items():
            median = statistics.median(times)
            paired = statistics.median(t / b for t, b in zip(times, base))
            print(f"{name:18} {median:>9.3f} {min(times):>7.3f} {size / (1 << 20) / median:>7.0f} "
                  f"{median / statistics.median(base):>9.2f}x {paired:>6.2f}x")
        if not docker:
            print(f"{'docker pull':18} (dockerd not installed: skipped; apt-get install docker.io)")
        out = REPO / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / "registry.json").write_text(json.dumps({
            "mib": size / (1 << 20), "blob_mib": blobs / (1 << 20), "runs": results,
            "kernel": platform.release(), "cpus": os.cpu_count()}, indent=2))
    finally:
        if registry is not None:
            registry.stop()
        for directory in leftovers:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
