#!/usr/bin/env python3
"""Push throughput into our registry server, next to Debian's docker-registry 2.8 (chapter 07).

    sudo .venv/bin/python bench/registry_push.py              # ~100 MiB, 3 gzip layers, 5 runs
    sudo .venv/bin/python bench/registry_push.py --mib 200 --runs 7

skopeo pushes the image of bench/images.py (an OCI layout, gzip layers) with
``skopeo copy oci:… docker://…`` into a fresh, empty registry for every run: ours
(``minidocker registry serve``, the launcher users run) and distribution 2.8's
(``docker-registry serve``), each started before its run and not timed. Rounds are
interleaved; round 0 warms the caches and is not counted; a sync(2) before each run.
What is timed is the whole upload as skopeo sees it: HEAD, POST, PATCH streams, PUT with
the digest (the server hashes every byte and renames the blob into place), the manifest.

Results go to bench/results/registry_push.json (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
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


class OurRegistry:
    """``minidocker registry serve`` on a free loopback port, its storage in ``root``."""

    def __init__(self, minidocker: str, root: Path) -> None:
        from registrykit import free_port

        self.address = f"127.0.0.1:{free_port()}"
        self.proc = subprocess.Popen([minidocker, "registry", "serve", "-q", "--addr", self.address, "--root",
                                      str(root)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.proc.stdout.readline()   # "listening on ...": it accepts connections from now on
        host, port = self.address.split(":")
        with socket.create_connection((host, int(port)), timeout=5):
            pass

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def push_once(name: str, minidocker: str, layout: Path, root: Path) -> float:
    from registrykit import DistributionRegistry

    registry = OurRegistry(minidocker, root) if name == "registry serve" else DistributionRegistry(root)
    try:
        os.sync()
        start = time.perf_counter()
        subprocess.run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:latest",
                        f"docker://{registry.address}/bench/image:latest"], check=True, stdout=subprocess.DEVNULL)
        return time.perf_counter() - start
    finally:
        registry.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=100, help="uncompressed image size (default 100)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--minidocker", help="command to time (default: .venv/bin/minidocker, else on PATH)")
    parser.add_argument("--dir", default="/var/lib", help="where the registries store (default /var/lib)")
    args = parser.parse_args()
    for tool in ("docker-registry", "skopeo"):
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is missing (make apt)")
    from imagekit import write_layout
    from images import make_layers
    from startup import find_minidocker

    minidocker = find_minidocker(args.minidocker)
    work = Path(tempfile.mkdtemp(prefix="minidocker-bench-push-", dir=args.dir))
    try:
        layers = make_layers(args.mib)
        write_layout(work / "layout", layers, compression="gzip")
        blobs = sum(f.stat().st_size for f in (work / "layout" / "blobs" / "sha256").iterdir())
        print(f"image: 3 layers, {sum(map(len, layers)) / (1 << 20):.1f} MiB uncompressed, "
              f"{blobs / (1 << 20):.1f} MiB of blobs (gzip)")
        names = ("registry serve", "docker-registry 2.8")
        times: dict[str, list[float]] = {name: [] for name in names}
        for r in range(args.runs + 1):
            for name in names:
                elapsed = push_once(name, minidocker, work / "layout", work / f"{name.split()[0]}-{r}")
                if r:
                    times[name].append(elapsed)
        base = times["docker-registry 2.8"]
        print(f"{'skopeo copy into':22} {'median s':>9} {'min s':>7} {'MiB/s':>7} {'vs 2.8':>7} {'paired':>7}   "
              f"(n={args.runs}; paired: median of the per-round ratios)")
        for name, values in times.items():
            median = statistics.median(values)
            paired = statistics.median(t / b for t, b in zip(values, base))
            print(f"{name:22} {median:>9.3f} {min(values):>7.3f} {blobs / (1 << 20) / median:>7.0f} "
                  f"{median / statistics.median(base):>6.2f}x {paired:>6.2f}x")
        out = REPO / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / "registry_push.json").write_text(json.dumps({"blob_mib": blobs / (1 << 20), "runs": times},
                                                           indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
