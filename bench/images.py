#!/usr/bin/env python3
"""Image load/unpack throughput and snapshot cost (chapters 05-06).

    sudo .venv/bin/python bench/images.py              # ~100 MiB image, 5 runs per format
    sudo .venv/bin/python bench/images.py --mib 200 --runs 7

What is timed (wall clock, medians; each run loads into a fresh store after a sync, formats
interleaved, all removed at the end):

| line | what |
|---|---|
| `load docker-archive` | `minidocker load -i img.tar` of a ``docker save`` tar (uncompressed layers): hash, unpack for overlay, keep a tar-split instead of the blob |
| `load oci gzip` | `minidocker load -i DIR` of an OCI layout with gzip layers: the same plus decompression |
| `load oci zstd` | the same with zstd layers |
| `docker load` | `docker load -i img.tar` of the same archive through a private dockerd 20.10 per run (tests/dockerd.py, overlay2; its start not timed), only when `dockerd` is installed |
| `snapshot` | `Snapshot.create` + overlay mount + unmount + remove of a 3-layer image, in-process (ms) |

The image: 3 layers, together about ``--mib`` MiB uncompressed: a "distro" layer of
many small files (4-64 KiB, half of them compressible text), a layer of a few large
files, and a small top layer with whiteouts. MiB/s = uncompressed bytes / median time.
Results go to bench/results/images.json (not committed).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _layer(entries: list[tuple[str, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_layers(mib: int, seed: int = 1) -> list[bytes]:
    """Three layers, about ``mib`` MiB of tar in all: small files, big files, whiteouts."""
    rng = random.Random(seed)
    text = (b"the quick brown fox jumps over the lazy dog; " * 2000)
    small_budget, entries, used = int(mib * 0.45) << 20, [], 0
    for d in range(40):
        entries.append((f"usr/lib/pkg{d:02d}", None))
    i = 0
    while used < small_budget:
        size = rng.choice((4, 8, 16, 32, 64)) << 10
        data = text[:size] if i % 2 else rng.randbytes(size)
        entries.append((f"usr/lib/pkg{i % 40:02d}/file{i:05d}", data))
        used += size
        i += 1
    big_total = (mib << 20) - used - (1 << 20)
    big = [("opt", None)] + [(f"opt/blob{j}", rng.randbytes(big_total // 4)) for j in range(4)]
    top = [("usr", None), ("usr/lib", None), ("usr/lib/.wh.pkg00", b""), ("etc", None),
           ("etc/app.conf", b"setting=1\n" * 1000)]
    return [_layer(entries), _layer(big), _layer(top)]


def write_images(layers: list[bytes], directory: Path) -> dict[str, Path]:
    """The same image as a docker-save tar and as OCI layouts with gzip and zstd layers."""
    sys_path_image = REPO / "tests"
    sys.path.insert(0, str(sys_path_image))
    from imagekit import write_layout  # the test helper writes valid OCI layouts

    from minidocker.image import ImageStore
    from minidocker.image.archive import save_archive
    from minidocker.image.oci import load_oci_layout

    paths = {"oci gzip": directory / "oci-gzip", "oci zstd": directory / "oci-zstd"}
    write_layout(paths["oci gzip"], layers, compression="gzip")
    write_layout(paths["oci zstd"], layers, compression="zstd")
    store = ImageStore(directory / "scratch-store")
    load_oci_layout(store, paths["oci zstd"], name="bench/image")
    paths["docker-archive"] = directory / "image.tar"
    with open(paths["docker-archive"], "wb") as out:
        save_archive(store, ["bench/image"], out)
    return paths   # the scratch store stays until the end: see probe_creates


def time_loads(minidocker: list[str], sources: dict[str, Path], runs: int, work: Path) -> dict[str, list[float]]:
    """Load each format ``runs`` times into fresh stores, formats interleaved (a slow moment of
    the machine hits them alike), each after a sync(2); round 0 warms the page cache and is not
    counted. Stores stay until the end: deleting them would slow the next creations (probe_creates)."""
    times: dict[str, list[float]] = {name: [] for name in sources}
    for r in range(runs + 1):
        for name, source in sources.items():
            root = work / f"store-{name.replace(' ', '-')}-{r}"
            env = {**os.environ, "MINIDOCKER_ROOT": str(root)}
            os.sync()   # the previous loads' writeback (GiBs after a few rounds) is not this load's
            start = time.perf_counter()
            subprocess.run([*minidocker, "load", "-q", "-i", str(source), "--name", "bench/image"], env=env,
                           check=True, cwd=REPO)   # python -m puts the working directory first on sys.path
            elapsed = time.perf_counter() - start
            if r:
                times[name].append(elapsed)
    return times


def probe_creates(work: Path, count: int = 500) -> float:
    """Microseconds to create one empty file in ``work`` (the files stay until the end).

    ext4 without a journal (the course machine's root) skips inodes freed in the last
    60 s (6 min while their inode-table block is dirty) and rescans them at every
    creation: after a big ``rm -rf`` nearby, each new file costs 0.1-0.3 ms more. The
    loads' stores are therefore removed only at the very end, never between runs.
    See: recently_deleted() in linux/fs/ext4/ialloc.c
    """
    directory = work / "probe"
    directory.mkdir()
    start = time.perf_counter()
    for i in range(count):
        os.close(os.open(directory / str(i), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return (time.perf_counter() - start) / count * 1e6


def time_docker_load(source: Path, runs: int, work: Path) -> list[float] | None:
    """``docker load`` through a private dockerd per run (tests/dockerd.py, its start not timed,
    its files kept until the end like the stores); None without dockerd."""
    sys.path.insert(0, str(REPO / "tests"))
    from dockerd import Dockerd, available

    if available() is not None:
        return None
    times = []
    for r in range(runs + 1):
        daemon = Dockerd(parent=str(work.parent))   # a short path: unix sockets allow 108 bytes
        try:
            os.sync()
            start = time.perf_counter()
            subprocess.run(["docker", "load", "-q", "-i", str(source)], env=daemon.env, check=True,
                           capture_output=True)
            elapsed = time.perf_counter() - start
        finally:
            daemon.stop(remove=False)
        os.rename(daemon.base, work / f"dockerd-{r}")   # removed with the rest at the end
        if r:
            times.append(elapsed)
    return times


def time_snapshots(layout: Path, work: Path, rounds: int = 200) -> list[float]:
    """create + mount + unmount + remove of a snapshot of the 3-layer image, in a private mount ns."""
    from minidocker.forked import call_in_child
    from minidocker.image import ImageStore
    from minidocker.image.oci import load_oci_layout

    store = ImageStore(work / "snap-store")
    load_oci_layout(store, layout, name="bench/image")
    lowers = store.get("bench/image").layers

    def child() -> list[float]:
        from minidocker.linux import CloneFlag, unshare
        from minidocker.rootfs import make_mounts_private
        from minidocker.storage import Snapshot

        unshare(CloneFlag.CLONE_NEWNS)
        make_mounts_private()
        times = []
        for i in range(rounds):
            start = time.perf_counter()
            snap = Snapshot.create(lowers, work / f"c{i}")
            snap.mount()
            snap.unmount()
            snap.remove()
            times.append(time.perf_counter() - start)
        return times

    try:
        return call_in_child(child, timeout=120)
    finally:
        shutil.rmtree(work / "snap-store")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=100, help="uncompressed image size (default 100)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--minidocker", help="command to time (default: .venv/bin/minidocker, "
                        "else minidocker on PATH)")
    parser.add_argument("--dir", default="/var/lib", help="where the stores are made (default /var/lib)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (layers keep their owners; snapshots mount overlays)")
    from startup import find_minidocker

    minidocker = [find_minidocker(args.minidocker)]   # what `make setup` installs and users run
    # Under /var/lib like the default state root: /tmp and /work are where tests keep deleting
    # files, which slows file creation there (see probe_creates).
    work = Path(tempfile.mkdtemp(prefix="minidocker-bench-images-", dir=args.dir))
    os.environ["PYTHONPATH"] = str(REPO)
    try:
        layers = make_layers(args.mib)
        size = sum(len(layer) for layer in layers)
        paths = write_images(layers, work)
        os.sync()   # the inputs' writeback (~400 MiB) would otherwise land in the first format's runs
        files = sum(1 for layer in layers for _ in tarfile.open(fileobj=io.BytesIO(layer)))
        print(f"image: 3 layers, {size / (1 << 20):.1f} MiB uncompressed, {files} tar entries; "
              f"gzip {sum(f.stat().st_size for f in (paths['oci gzip'] / 'blobs/sha256').iterdir()) >> 20} MiB")
        create_us = probe_creates(work)
        print(f"file creation in {work.parent}: {create_us:.0f} µs per file (10-20 normally; more "
              "shortly after a big deletion on ext4 without a journal: see probe_creates)")
        results = {}
        print(f"{'command':24} {'median s':>9} {'min s':>7} {'MiB/s':>7}   (n={args.runs})")
        formats = ("docker-archive", "oci gzip", "oci zstd")
        loads = time_loads(minidocker, {name: paths[name] for name in formats}, args.runs, work)
        for name in formats:
            times = loads[name]
            results[f"load {name}"] = times
            median = statistics.median(times)
            print(f"{'load ' + name:24} {median:>9.3f} {min(times):>7.3f} {size / (1 << 20) / median:>7.0f}")
        docker = time_docker_load(paths["docker-archive"], args.runs, work)
        if docker:
            results["docker load"] = docker
            print(f"{'docker load':24} {statistics.median(docker):>9.3f} {min(docker):>7.3f} "
                  f"{size / (1 << 20) / statistics.median(docker):>7.0f}")
        else:
            print(f"{'docker load':24} (dockerd not installed: skipped; apt-get install docker.io)")
        snaps = time_snapshots(paths["oci zstd"], work)
        results["snapshot"] = snaps
        print(f"{'snapshot (ms)':24} {statistics.median(snaps) * 1e3:>9.2f} {min(snaps) * 1e3:>7.2f}"
              f"   create+mount+unmount+remove, 3 lowers, n={len(snaps)}")
        out = REPO / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / "images.json").write_text(json.dumps({
            "bytes": size, "entries": files, "runs": results, "create_us": create_us, "kernel": platform.release(),
            "cpus": os.cpu_count(), "load": os.getloadavg()[0]}, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        os.sync()   # written inode tables stop counting as "recently deleted" after 60 s, not 6 min


if __name__ == "__main__":
    main()

