"""Engine API benchmark: everyday docker CLI commands against minidockerd and a private dockerd, one run.

What it times (the real docker CLI, medians of ``--runs``; the same command against each daemon)::

    docker ps              with 100 running containers (``--containers``)
    docker images          with 50 images (``--images``: distinct one-layer images, loaded into both)
    docker logs            of a container that wrote 100 MB (``--log-mb``) to its json-file log
    docker pull            of a 100 MiB image (``--pull-mib``, one incompressible layer) from Debian's
                           docker-registry on loopback; the image is removed before each pull
    docker build           of bench/build.py's 3-step Dockerfile, ``--no-cache``, legacy builder

Everything lives in temporary directories removed at the end (containers removed, daemons
stopped). Containers run with ``--network none``. Run as root:
``.venv/bin/python bench/api.py [--runs 5] [--containers 100] [--images 50] [--log-mb 100] [--pull-mib 100]``.
The figures go to bench/results/api.json and the table below them to stdout.
See: the Docker CLI reference (docker ps, images, logs, pull, build).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))   # this checkout's package, as the daemon it starts (cwd=REPO) runs it

REGISTRY_PORT = 15410   # this benchmark's loopback port for docker-registry


def timed(argv: list[str], env: dict, runs: int, before=None) -> float:
    """The median wall time of ``argv`` (stdout to /dev/null); ``before()`` runs untimed before each."""
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        started = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def docker(env: dict, *args: str, timeout: float = 600) -> str:
    out = subprocess.run(["docker", *args], env=env, capture_output=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: exit {out.returncode}: {out.stderr.decode()[-2000:]}")
    return out.stdout.decode()


def one_file_layer(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_images(root: Path, count: int, pull_mib: int) -> Path:
    """``count`` small images ``bench/img{i}:latest`` and ``bench/big:latest`` in our store; a tar of the small ones."""
    from registrykit import make_image

    from minidocker.image import ImageStore
    from minidocker.image.archive import save_archive
    from minidocker.image.busybox import create_busybox
    from minidocker.paths import state_roots

    store = ImageStore(state_roots({"MINIDOCKER_ROOT": str(root)}).images)
    create_busybox(store)
    names = []
    for i in range(count):
        make_image(store, f"bench/img{i}:latest", [one_file_layer(f"file{i}", f"image {i}\n".encode())])
        names.append(f"bench/img{i}:latest")
    make_image(store, "bench/big:latest", [one_file_layer("blob", os.urandom(pull_mib << 20))])
    archive = root / "images.tar"
    with open(archive, "wb") as out:
        save_archive(store, ["busybox", *names], out)
    return archive


def measure(env: dict, who: str, options, context: Path, registry: str, results: dict) -> None:
    """Every figure for one daemon (``env`` points the CLI at it)."""
    runs = options.runs
    ids = [docker(env, "run", "-d", "--network", "none", "busybox", "sleep", "1000").strip()
           for _ in range(options.containers)]
    try:
        results[f"docker ps, {options.containers} running, {who} (s)"] = timed(["docker", "ps"], env, runs)
        results[f"docker ps -a --no-trunc, {who} (s)"] = timed(["docker", "ps", "-a", "--no-trunc"], env, runs)
    finally:
        docker(env, "rm", "-f", *ids)
    results[f"docker images, {options.images}+ images, {who} (s)"] = timed(["docker", "images"], env, runs)
    line = "0123456789" * 9 + "abcdefghi"   # 99 characters and a newline: 1e6 lines for 100 MB
    writer = docker(env, "run", "-d", "--network", "none", "busybox", "sh", "-c",
                    f"yes {line} | head -n {options.log_mb * 10000}").strip()
    try:
        docker(env, "wait", writer)
        results[f"docker logs, {options.log_mb} MB, {who} (s)"] = timed(["docker", "logs", writer], env, runs)
    finally:
        docker(env, "rm", "-f", writer)
    big = f"{registry}/bench/big:latest"

    def forget() -> None:
        subprocess.run(["docker", "rmi", "-f", big], env=env, capture_output=True)
        subprocess.run(["docker", "image", "prune", "-f"], env=env, capture_output=True)

    results[f"docker pull, {options.pull_mib} MiB, {who} (s)"] = timed(["docker", "pull", "-q", big], env, runs,
                                                                      before=forget)
    build_env = {**env, "DOCKER_BUILDKIT": "0"}
    results[f"docker build, 3 steps, no cache, {who} (s)"] = timed(
        ["docker", "build", "-q", "--no-cache", "-t", "bench/built", str(context)], build_env, runs)


def _bench_build():
    """bench/build.py, for its Dockerfile (its name would clash with other ``build`` modules on the path)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_build", REPO / "bench" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    import registrykit
    from daemonkit import Minidockerd
    from dockerd import Dockerd


    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--log-mb", type=int, default=100)
    parser.add_argument("--pull-mib", type=int, default=100)
    parser.add_argument("--only", choices=("minidockerd", "dockerd"), help="time one daemon only")
    options = parser.parse_args()
    os.environ["MINIDOCKER_BRIDGE"] = "none"
    work = Path(tempfile.mkdtemp(prefix="mdapib."))
    results: dict[str, float] = {}
    try:
        context = work / "context"
        (context / "tree" / "sub").mkdir(parents=True)
        (context / "Dockerfile").write_text(_bench_build().DOCKERFILE)
        for i in range(5):
            (context / "tree" / f"f{i}").write_text(f"file {i}\n")
        root = work / "md"
        archive = make_images(root, options.images, options.pull_mib)
        registrykit.free_port = lambda: REGISTRY_PORT
        registry = registrykit.DistributionRegistry(work / "registry")
        try:
            with Minidockerd(root) as daemon:
                address = registry.address
                docker(daemon.env, "tag", "bench/big:latest", f"{address}/bench/big:latest")
                docker(daemon.env, "push", f"{address}/bench/big:latest")
                docker(daemon.env, "rmi", f"{address}/bench/big:latest", "bench/big:latest")  # its layer too
                if options.only != "dockerd":
                    measure(daemon.env, "minidockerd", options, context, address, results)
            if options.only != "minidockerd":
                with Dockerd() as peer:
                    peer.docker("load", "-i", str(archive), timeout=600)
                    measure(peer.env, "dockerd", options, context, registry.address, results)
        finally:
            registry.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value:8.3f}")
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "api.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
