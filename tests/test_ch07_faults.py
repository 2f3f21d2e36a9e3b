"""Chapter 07: a pull that meets a bad registry fails clearly and leaves the store consistent.

A tiny faulty registry (tests/registrykit.py) serves one image with one fault: a layer whose
bytes do not match its digest, a manifest naming a blob it lacks, a manifest that is not
JSON, a manifest whose digest header lies, a connection dropped halfway through a layer.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from imagekit import layer_tar
from registrykit import FaultyRegistry, free_port, make_image

from minidocker.errors import DigestMismatch, InvalidArgument, NotFound
from minidocker.image import ImageStore
from minidocker.registry.client import RegistryError
from minidocker.registry.progress import Progress
from minidocker.registry.pull import pull

pytestmark = [pytest.mark.ch07, pytest.mark.root]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> ImageStore:
    store = ImageStore(tmp_path_factory.mktemp("faults") / "store")
    big = bytes(range(256)) * 4096   # 1 MiB: the drop happens mid-blob
    make_image(store, "app:v1", [layer_tar([("file", "base.txt", b"base\n")]),
                                 layer_tar([("file", "big.bin", big)])], compression="none")
    return store


def _pull(store, reference, **kw):
    return pull(store, reference, progress=kw.pop("progress", None) or Progress(quiet=True), backoff=0.05, **kw)


def _serve(source, fault, **kw) -> FaultyRegistry:
    return FaultyRegistry(source, "app:v1", fault=fault, **kw)


def _leftovers(store: ImageStore) -> list[str]:
    """Temporary files and staging directories: a consistent store has none after a pull."""
    found = [p.name for p in store.blobs.root.glob(".tmp-*")] if store.blobs.root.is_dir() else []
    tmp = store.root / "tmp"
    return found + ([p.name for p in tmp.iterdir()] if tmp.is_dir() else [])


@pytest.fixture
def target(tmp_path) -> ImageStore:
    return ImageStore(tmp_path / "target")


def test_a_blob_whose_bytes_do_not_match_is_refused_and_not_stored(source, target):
    registry = _serve(source, "bad-blob")
    try:
        with pytest.raises(DigestMismatch, match=f"failed to verify layer blob {registry.layer}: it hashes to sha256:"):
            _pull(target, registry.reference)
    finally:
        registry.stop()
    assert not target.blobs.exists(registry.layer)
    assert _leftovers(target) == []
    assert target.refs() == {}


def test_a_manifest_naming_a_missing_blob_fails_with_the_digest(source, target):
    registry = _serve(source, "missing-blob")
    try:
        with pytest.raises(NotFound, match=f"blob {registry.layer} not found: blob unknown"):
            _pull(target, registry.reference)
    finally:
        registry.stop()
    assert _leftovers(target) == [] and target.refs() == {}


def test_malformed_manifest_json_is_a_clear_error(source, target):
    registry = _serve(source, "bad-json")
    try:
        with pytest.raises(InvalidArgument, match="failed to parse manifest demo/app:v1"):
            _pull(target, registry.reference)
    finally:
        registry.stop()


def test_a_manifest_whose_digest_header_lies_is_refused(source, target):
    registry = _serve(source, "bad-manifest-digest")
    try:
        with pytest.raises(DigestMismatch, match="failed to verify manifest demo/app:v1"):
            _pull(target, registry.reference)
    finally:
        registry.stop()


@pytest.mark.parametrize("ranges", [True, False], ids=["resumed-with-range", "restarted"])
def test_a_dropped_connection_is_retried_then_succeeds(source, target, ranges):
    registry = _serve(source, "drop", drops=1, ranges=ranges)
    statuses = []
    progress = Progress(quiet=True)
    progress.update = lambda ident, status, *a: statuses.append(status)
    try:
        image = _pull(target, registry.reference, progress=progress)
    finally:
        registry.stop()
    assert image.id == source.resolve("app:v1")
    assert any(s.startswith("Retrying") for s in statuses), statuses
    assert _leftovers(target) == []
    half = len(source.read_blob(registry.layer)) // 2
    assert registry.range_requests == ([half] if ranges else [])


def test_a_connection_dropped_every_time_fails_then_a_rerun_resumes(source, target):
    registry = _serve(source, "drop")
    try:
        with pytest.raises(RegistryError, match="failed to download blob .*connection closed after .* bytes.*gave up after 3 attempts"):
            _pull(target, registry.reference)
        assert _leftovers(target) == [] and not target.blobs.exists(registry.layer)
        complete = [d for d in target.blobs.digests()]
        assert complete, "the layer that downloaded fine should be kept for the next pull"
        registry.fault = None
        before = dict(registry.hits)
        _pull(target, registry.reference)
        again = {path: n - before.get(path, 0) for path, n in registry.hits.items() if n - before.get(path, 0)}
        assert all(d[7:] not in "".join(again) for d in complete if d != source.resolve("app:v1")), again
    finally:
        registry.stop()


@pytest.mark.parametrize("layers", [1, 2], ids=["one-layer-main-thread", "two-layers-forked"])
def test_ctrl_c_in_the_middle_of_a_pull_leaves_nothing(source, tmp_path, layers):
    """SIGINT to the terminal's process group, as Ctrl-C sends it, while a layer is half-way:
    the pull (and its per-layer children) end, and the store keeps no temporary file or name."""
    if layers == 1:
        source = ImageStore(tmp_path / "one-layer")
        make_image(source, "app:v1", [layer_tar([("file", "big.bin", bytes(range(256)) * 4096)])],
                   compression="none")
    registry = _serve(source, "stall")
    root = tmp_path / "root"
    proc = subprocess.Popen([sys.executable, "-m", "minidocker", "pull", registry.reference],
                            env={**os.environ, "MINIDOCKER_ROOT": str(root)}, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert registry.stalled.wait(20), "the pull never reached the layer"
        time.sleep(0.2)   # the child is now waiting for the rest of the layer
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        registry.stop()
    assert proc.returncode == 130, (proc.returncode, out, err)
    store = ImageStore(root / "lib" / "images")
    assert _leftovers(store) == [] and store.refs() == {}
    assert not store.blobs.exists(registry.layer)


def test_an_unreachable_registry_fails_fast_naming_the_address(target):
    address = f"127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(RegistryError, match=f"failed to connect to registry {address}: connection refused"):
        pull(target, f"{address}/demo/app:v1", progress=Progress(quiet=True))
    assert time.monotonic() - start < 2


def test_a_registry_that_never_answers_times_out(target):
    with socket.socket() as listener:   # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        from minidocker.registry.client import RegistryClient

        client = RegistryClient(address, timeout=0.5)
        start = time.monotonic()
        with pytest.raises(RegistryError, match="timed out"):
            pull(target, f"{address}/demo/app:v1", client=client, progress=Progress(quiet=True))
        assert time.monotonic() - start < 3
