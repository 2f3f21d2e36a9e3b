"""Chapter 06 against real peers: skopeo and umoci read what we write, we read what they write.

Both are Debian packages (``make apt`` installs them). skopeo's ``docker-archive:`` transport
writes and reads the ``docker save`` format; the ``docker``-marked test also feeds our archive to
a real dockerd (a private one, tests/dockerd.py; docker.io is in ``make apt`` too).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from conftest import missing_feature
from imagekit import merged_tree, tree_of, whiteout_image_layers, write_layout

from minidocker.image import ImageStore
from minidocker.image.archive import load_archive, save_archive
from minidocker.image.oci import load_oci_layout, save_oci_layout
from minidocker.storage.layer import apply_layer

pytestmark = [pytest.mark.ch06, pytest.mark.peers, pytest.mark.root, pytest.mark.overlay]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing_feature(f"{name} is not installed (apt-get install {name}; the Makefile's APT_PACKAGES)")
    return path


def _run(*args: str) -> str:
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"$ {' '.join(args)}\n{result.stdout}{result.stderr}"
    return result.stdout


def _umoci_tree(layout, tag: str, bundle) -> dict:
    _run(_tool("umoci"), "unpack", "--image", f"{layout}:{tag}", str(bundle))
    return tree_of(bundle / "rootfs")


@pytest.fixture
def store(tmp_path) -> ImageStore:
    return ImageStore(tmp_path / "store")


@pytest.mark.parametrize("encoding", ["docker", "umoci"])
def test_whiteout_image_is_the_same_tree_through_overlay_flat_and_umoci(store, tmp_path, encoding):
    layers = whiteout_image_layers(encoding)
    write_layout(tmp_path / "src", layers)
    load_oci_layout(store, tmp_path / "src", name="wh")
    save_oci_layout(store, ["wh"], tmp_path / "ours")               # our writer, read by umoci
    ours = merged_tree(store.get("wh").layers, tmp_path / "merged")
    flat = tmp_path / "flat"
    flat.mkdir()
    for layer in layers:
        import io

        apply_layer(io.BytesIO(layer), flat, overlay=False)
    theirs = _umoci_tree(tmp_path / "ours", "latest", tmp_path / "bundle")
    assert ours == tree_of(flat), "overlay path and flat path differ"
    assert ours == theirs, f"umoci's unpack differs: {set(ours.items()) ^ set(theirs.items())}"
    assert "data/opq/new.txt" in ours and "data/opq/old.txt" not in ours and "data/remove-me.txt" not in ours


def test_layout_built_by_umoci_loads_with_its_whiteouts(store, tmp_path):
    umoci = _tool("umoci")
    layout = tmp_path / "lay"
    _run(umoci, "init", "--layout", str(layout))
    _run(umoci, "new", "--image", f"{layout}:base")
    _run(umoci, "unpack", "--image", f"{layout}:base", str(tmp_path / "b1"))
    data = tmp_path / "b1/rootfs/data"
    (data / "opq").mkdir(parents=True)
    (data / "opq/old.txt").write_text("old\n")
    (data / "keep.txt").write_text("keep\n")
    _run(umoci, "repack", "--image", f"{layout}:base", str(tmp_path / "b1"))
    _run(umoci, "unpack", "--image", f"{layout}:base", str(tmp_path / "b2"))
    (tmp_path / "b2/rootfs/data/opq/old.txt").unlink()
    (tmp_path / "b2/rootfs/data/opq/new.txt").write_text("new\n")
    _run(umoci, "repack", "--image", f"{layout}:top", str(tmp_path / "b2"))
    _run(umoci, "config", "--image", f"{layout}:top", "--config.cmd", "/bin/true")
    lines = load_oci_layout(store, layout, name="umoci")
    assert sorted(lines) == ["Loaded image: umoci:base", "Loaded image: umoci:top"]
    image = store.get("umoci:top")
    assert image.config.get("Cmd") == ["/bin/true"]
    ours = merged_tree(image.layers, tmp_path / "merged")
    theirs = _umoci_tree(layout, "top", tmp_path / "b3")
    assert ours == theirs, f"differs from umoci's unpack: {set(ours.items()) ^ set(theirs.items())}"


def test_skopeo_reads_our_layout_and_our_docker_archive(store, tmp_path):
    skopeo = _tool("skopeo")
    write_layout(tmp_path / "src", whiteout_image_layers())
    load_oci_layout(store, tmp_path / "src", name="demo")
    image = store.get("demo")
    save_oci_layout(store, ["demo"], tmp_path / "ours")
    with open(tmp_path / "ours.tar", "wb") as out:
        save_archive(store, ["demo"], out)
    import json

    inspected = json.loads(_run(skopeo, "inspect", f"oci:{tmp_path / 'ours'}:latest"))
    assert inspected["Layers"] == [layer.digest for layer in store.layers_of(image.id)]
    archive = json.loads(_run(skopeo, "inspect", f"docker-archive:{tmp_path / 'ours.tar'}"))
    assert archive["Layers"] == image.document["rootfs"]["diff_ids"], "docker-archive layers are the diff_ids"
    # skopeo copy verifies every digest and size on the way
    _run(skopeo, "copy", f"docker-archive:{tmp_path / 'ours.tar'}", f"oci:{tmp_path / 'copy'}:latest")


def test_we_load_skopeos_docker_archive_and_zstd_layout(store, tmp_path):
    skopeo = _tool("skopeo")
    write_layout(tmp_path / "src", whiteout_image_layers())
    src = f"oci:{tmp_path / 'src'}:latest"
    _run(skopeo, "copy", src, f"docker-archive:{tmp_path / 'sk.tar'}:demo/skopeo:v1")
    _run(skopeo, "copy", "--dest-compress-format", "zstd", src, f"oci:{tmp_path / 'zstd'}:v2")
    assert load_archive(store, tmp_path / "sk.tar") == ["Loaded image: demo/skopeo:v1"]
    assert load_oci_layout(store, tmp_path / "zstd", name="demo/zstd") == ["Loaded image: demo/zstd:v2"]
    from_archive, from_zstd = store.get("demo/skopeo:v1"), store.get("demo/zstd:v2")
    assert store.layers_of(from_zstd.id)[0].media_type.endswith("+zstd")
    assert from_archive.document["rootfs"] == from_zstd.document["rootfs"], "same diff_ids whatever the format"
    assert merged_tree(from_archive.layers, tmp_path / "m1") == merged_tree(from_zstd.layers, tmp_path / "m2")


@pytest.mark.docker
def test_docker_loads_what_we_save(dockerd, store, tmp_path):
    """A private dockerd (tests/dockerd.py) loads our archive: same ID, same diff_ids, same tree.

    ``docker create`` + ``export`` show the tree docker's overlay2 makes of our whiteouts
    (nothing runs: no cgroup, no network, ``--network none``).
    """
    import io
    import json
    import tarfile

    write_layout(tmp_path / "src", whiteout_image_layers())
    load_oci_layout(store, tmp_path / "src", name="minidocker-test/wh")
    image = store.get("minidocker-test/wh")
    with open(tmp_path / "ours.tar", "wb") as out:
        save_archive(store, ["minidocker-test/wh"], out)
    assert "minidocker-test/wh:latest" in dockerd.docker("load", "-i", str(tmp_path / "ours.tar"))
    try:
        inspected = json.loads(dockerd.docker("image", "inspect", "minidocker-test/wh"))[0]
        assert inspected["Id"] == image.id
        assert inspected["RootFS"]["Layers"] == image.document["rootfs"]["diff_ids"]
        container = dockerd.docker("create", "--network", "none", "minidocker-test/wh").strip()
        try:
            exported = subprocess.run(["docker", "export", container], env=dockerd.env, capture_output=True,
                                      check=True, timeout=60).stdout
        finally:
            dockerd.docker("rm", container)
    finally:
        dockerd.docker("rmi", "minidocker-test/wh")
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        tar.extractall(tmp_path / "export", members=[m for m in tar if m.name.startswith("data")])
    theirs = tree_of(tmp_path / "export")
    assert theirs == merged_tree(image.layers, tmp_path / "merged")
    assert "data/opq/new.txt" in theirs and "data/opq/old.txt" not in theirs and "data/remove-me.txt" not in theirs
