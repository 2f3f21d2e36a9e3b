#!/usr/bin/env python3
"""Pull throughput from a local registry, next to skopeo (chapter 07).

    sudo .venv/bin/python bench/registry.py              # ~100 MiB, 3 layers, 5 runs
    sudo .venv/bin/python bench/registry.py --mib 200 --runs 7

Debian's docker-registry (distribution 2.8) runs on a free 127.0.0.1 port with its storage
in a temporary directory; skopeo pushes the image of bench/images.py into it (gzip layers,
~100 MiB uncompressed: many small files, a few big ones, a small top layer with whiteouts).
Then, each run into a fresh destination (wall clock, medians, the first run untimed):

| line | what is timed |
|---|---|
| `minidocker pull` | `minidocker pull 127.0.0.1:PORT/bench/image:latest` into an empty store (the command users run: `.venv/bin/minidocker`): manifest, config, 3 layers in parallel forked children, each in one pass as it arrives: hashed, stored, gunzipped, hashed again and unpacked for overlay |
| `minidocker fetch` | the download half of `minidocker pull` alone (a process running `pull.download_blob` for manifest, config and the 3 layers in parallel threads, each hashed and written through a BlobWriter, fsync and rename), no unpacking: the same work as skopeo's |
| `skopeo copy` | `skopeo copy docker://… oci:DIR:latest`: the same blobs, hashed and written as files (no unpacking) |
| `docker pull` | `docker pull -q` through a private dockerd 20.10 (tests/dockerd.py: overlay2, its data root in `--dir`, no firewall or bridge), the image removed between runs: download, gunzip, unpack into overlay2; only when `dockerd` is installed (docker.io) |

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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))


def _timed(command: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def time_minidocker(minidocker: list[str], ref: str, runs: int, work: Path) -> list[float]:
    times = []
    for r in range(runs + 1):
        root = work / f"pull-{r}"
        env = {**os.environ, "MINIDOCKER_ROOT": str(root)}
        elapsed = _timed([*minidocker, "pull", "-q", ref], env)
        shutil.rmtree(root)
        if r:
            times.append(elapsed)
    return times


def fetch_only(ref: str, directory: str) -> None:
    """The download half of a pull: manifest, config and layer blobs into a BlobStore, verified."""
    from concurrent.futures import ThreadPoolExecutor

    from minidocker.image.blobs import BlobStore
    from minidocker.image.reference import parse_reference
    from minidocker.registry.client import RegistryClient
    from minidocker.registry.pull import download_blob, fetch_manifest

    reference = parse_reference(ref)
    client = RegistryClient(reference.domain)
    body, _, _ = fetch_manifest(client, reference.path, reference.tag)
    manifest = json.loads(body)
    blobs = BlobStore(Path(directory) / "blobs")
    descriptors = [manifest["config"], *manifest["layers"]]
    with ThreadPoolExecutor(3) as pool:
        for future in [pool.submit(download_blob, client, reference.path, d["digest"], d["size"], blobs)
                       for d in descriptors]:
            future.result()


def time_fetch(ref: str, runs: int, work: Path) -> list[float]:
    times = []
    for r in range(runs + 1):
        out = work / f"fetch-{r}"
        elapsed = _timed([sys.executable, __file__, "--fetch-only", ref, str(out)])
        shutil.rmtree(out)
        if r:
            times.append(elapsed)
    return times


def time_skopeo(ref: str, runs: int, work: Path) -> list[float]:
    times = []
    for r in range(runs + 1):
        out = work / f"oci-{r}"
        elapsed = _timed(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
                          f"oci:{out}:latest"])
        shutil.rmtree(out)
        if r:
            times.append(elapsed)
    return times


def time_docker(ref: str, runs: int, work: Path) -> list[float] | None:
    """``docker pull`` through a private dockerd started for the occasion; None without dockerd."""
    from dockerd import Dockerd, available

    if available() is not None:
        return None
    times = []
    with Dockerd(parent=str(work)) as daemon:
        for r in range(runs + 1):
            elapsed = _timed(["docker", "pull", "-q", ref], daemon.env)
            daemon.docker("rmi", ref)
            if r:
                times.append(elapsed)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=100, help="uncompressed image size (default 100)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--minidocker", help="command to time (default: .venv/bin/minidocker, "
                        "else python -m minidocker)")
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
    from images import make_layers
    from registrykit import DistributionRegistry

    launcher = REPO / ".venv" / "bin" / "minidocker"   # what `make setup` installs and users run
    minidocker = [args.minidocker] if args.minidocker else \
        [str(launcher)] if launcher.exists() else [sys.executable, "-m", "minidocker"]
    os.environ["PYTHONPATH"] = str(REPO)
    work = Path(tempfile.mkdtemp(prefix="minidocker-bench-registry-", dir=args.dir))
    registry = None
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
        results = {"minidocker pull": time_minidocker(minidocker, ref, args.runs, work),
                   "minidocker fetch": time_fetch(ref, args.runs, work),
                   "skopeo copy": time_skopeo(ref, args.runs, work)}
        docker = time_docker(ref, args.runs, work)
        if docker:
            results["docker pull"] = docker
        base = statistics.median(results["skopeo copy"])
        print(f"{'command':18} {'median s':>9} {'min s':>7} {'MiB/s':>7} {'vs skopeo':>10}   (n={args.runs})")
        for name, times in results.items():
            median = statistics.median(times)
            print(f"{name:18} {median:>9.3f} {min(times):>7.3f} {size / (1 << 20) / median:>7.0f} "
                  f"{median / base:>9.2f}x")
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
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
