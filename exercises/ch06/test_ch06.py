"""Graded tests of chapter 06: references, digests, manifests and config merging.

Run: ``make grade CH=06`` (all tasks) or ``make grade CH=06 TASK=6_3`` (one task).
``tasks`` is your exercises/ch06/tasks.py (the reference with ``--solutions``).
minidocker's own store and formats are the oracle: what they compute, yours must too.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from minidocker.engine.images import local_image
from minidocker.image import ImageStore, parse_reference
from minidocker.image.oci import save_oci_layout

pytestmark = [pytest.mark.ch06]


# --- task 6.1: normalize_reference --------------------------------------------------------------

CASES = ["busybox", "busybox:1.36", "library/busybox", "docker.io/busybox:musl", "index.docker.io/user/app:v1",
         "user/app", "localhost/app", "localhost:5000/app:dev", "host.example/ns/deep/name:tag",
         "busybox@sha256:" + "c" * 64, "host:5000/app@sha256:" + "d" * 64]


@pytest.mark.task6_1
@pytest.mark.parametrize("text", CASES)
def test_normalize_reference_agrees_with_docker(tasks, text):
    assert tasks.normalize_reference(text) == str(parse_reference(text))


# --- task 6.2: diff_id_of -----------------------------------------------------------------------

def _layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i in range(50):
            data = f"file {i}\n".encode() * (i + 1)
            info = tarfile.TarInfo(f"dir/f{i}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.task6_2
@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_diff_id_is_the_same_for_every_compression(tasks, tmp_path, compression):
    tar = _layer()
    if compression == "gzip":
        blob = gzip.compress(tar)
    elif compression == "zstd":
        import zstandard

        blob = zstandard.ZstdCompressor().compress(tar)
    else:
        blob = tar
    (tmp_path / "blob").write_bytes(blob)
    expected = "sha256:" + hashlib.sha256(tar).hexdigest()
    assert tasks.diff_id_of(tmp_path / "blob") == expected, f"{compression}: expected {expected}"


# --- task 6.3: resolve_tag ----------------------------------------------------------------------

@pytest.fixture
def layout(tmp_path) -> Path:
    """busybox saved by minidocker as an OCI layout."""
    store = ImageStore(tmp_path / "store")
    local_image(store, "busybox")   # the built-in image, made from the host's busybox
    save_oci_layout(store, ["busybox"], tmp_path / "layout")
    return tmp_path / "layout"


@pytest.mark.task6_3
@pytest.mark.root
def test_resolve_tag_finds_manifest_digest_and_image_id(tasks, layout, tmp_path):
    store = ImageStore(tmp_path / "store")
    image = local_image(store, "busybox")
    manifest_digest = store.record(image.id)["manifest"]
    assert tasks.resolve_tag(layout, "latest") == (manifest_digest, image.id)


@pytest.mark.task6_3
@pytest.mark.root
def test_resolve_tag_refuses_a_tampered_config_and_unknown_tags(tasks, layout):
    manifest = json.loads((layout / "index.json").read_text())["manifests"][0]
    config_digest = json.loads((layout / "blobs/sha256" / manifest["digest"][7:]).read_bytes())["config"]["digest"]
    config = layout / "blobs/sha256" / config_digest[7:]
    config.write_bytes(config.read_bytes().replace(b'"sh"', b'"ls"'))
    with pytest.raises(ValueError):
        tasks.resolve_tag(layout, "latest")
    with pytest.raises(KeyError):
        tasks.resolve_tag(layout, "no-such-tag")


# --- task 6.4: merge_run_config -----------------------------------------------------------------

IMAGE = {"Entrypoint": ["/entry"], "Cmd": ["serve", "--port=80"], "Env": ["PATH=/bin", "A=image", "B=image"]}


@pytest.mark.task6_4
@pytest.mark.parametrize("command, entrypoint, args", [
    ((), None, ["/entry", "serve", "--port=80"]),
    (("debug",), None, ["/entry", "debug"]),
    ((), "/bin/sh", ["/bin/sh"]),
    (("-c", "id"), "/bin/sh", ["/bin/sh", "-c", "id"]),
    (("ls", "/"), "", ["ls", "/"]),
])
def test_merge_run_config_argv(tasks, command, entrypoint, args):
    assert tasks.merge_run_config(IMAGE, command, entrypoint)[0] == args


@pytest.mark.task6_4
def test_merge_run_config_env_and_missing_fields(tasks):
    assert tasks.merge_run_config(IMAGE, env=["A=flag", "C=flag"])[1] == ["A=flag", "C=flag", "PATH=/bin", "B=image"]
    assert tasks.merge_run_config({"Cmd": None, "Entrypoint": None}, ["true"]) == (["true"], [])


@pytest.mark.task6_4
def test_merge_run_config_agrees_with_minidocker(tasks):
    from minidocker.image.runconfig import RunArgs, merge_config

    for command, entrypoint, env in (((), None, ()), (("x",), None, ("B=1",)), (("y",), "/e", ("PATH=/x",))):
        merged = merge_config(IMAGE, RunArgs(command=list(command), entrypoint=entrypoint, env=list(env)))
        assert tasks.merge_run_config(IMAGE, command, entrypoint, env) == (
            merged["Entrypoint"] + merged["Cmd"], merged["Env"])
