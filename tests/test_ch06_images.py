"""Chapter 06: references, the content-addressable store, formats, config merging, the CLI."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from imagekit import layer_tar, tree_of, whiteout_image_layers, write_layout

from minidocker.errors import DigestMismatch, InvalidArgument, NotFound
from minidocker.image import ImageStore, parse_reference
from minidocker.image.archive import load_archive, save_archive
from minidocker.image.blobs import sha256_digest
from minidocker.image.oci import load_oci_layout, save_oci_layout
from minidocker.image.runconfig import RunArgs, apply_image_config, merge_config, resolve_user
from minidocker.storage.layer import UnsafeLayer

pytestmark = pytest.mark.ch06


# -- references --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, full, familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("library/busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("host:5000/ns/name:tag", "host:5000/ns/name:tag", "host:5000/ns/name:tag"),
    ("my.registry/a/b/c", "my.registry/a/b/c:latest", "my.registry/a/b/c:latest"),
    ("busybox@sha256:" + "a" * 64, "docker.io/library/busybox@sha256:" + "a" * 64, "busybox@sha256:" + "a" * 64),
])
def test_references_normalise_like_docker(text, full, familiar):
    ref = parse_reference(text)
    assert (str(ref), ref.familiar) == (full, familiar)


@pytest.mark.parametrize("text, reason", [("BusyBox", "must be lowercase"), ("a" * 64, "64-byte hexadecimal"),
                                          ("busybox:bad tag", "bad tag"), ("x@sha256:abc", "bad digest"),
                                          ("", "empty")])
def test_bad_references_are_refused_with_the_reason(text, reason):
    with pytest.raises(InvalidArgument, match=reason):
        parse_reference(text)


# -- store: ingest, digests, atomicity ---------------------------------------------------------

@pytest.fixture
def store(tmp_path) -> ImageStore:
    return ImageStore(tmp_path / "images")


def _leftovers(store: ImageStore) -> list[str]:
    """Everything in the store but locks and empty directories."""
    return sorted(str(p.relative_to(store.root)) for p in store.root.rglob("*")
                  if p.is_file() and "locks" not in p.parts)


@pytest.mark.root
@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_layer_digest_is_of_the_blob_and_diff_id_of_the_tar(store, tmp_path, compression):
    layers = [layer_tar([("file", "hello", b"hello\n")])]
    write_layout(tmp_path / "oci", layers, compression=compression)
    load_oci_layout(store, tmp_path / "oci", name="demo")
    image = store.get("demo:latest")
    layer = store.layers_of(image.id)[0]
    assert layer.diff_id == sha256_digest(layers[0])
    assert (layer.digest == layer.diff_id) == (compression == "none"), "only an uncompressed blob has digest == diff_id"
    assert layer.media_type.endswith({"gzip": "+gzip", "zstd": "+zstd", "none": ".tar"}[compression])
    assert (image.layers[0] / "hello").read_bytes() == b"hello\n"
    assert image.id == sha256_digest(store.blobs.read(image.id)), "the image ID is the config's sha256"


@pytest.mark.root
@pytest.mark.parametrize("corrupt", ["layer", "diff_id"])
def test_a_layer_with_a_wrong_digest_is_rejected_and_nothing_is_left(store, tmp_path, corrupt):
    write_layout(tmp_path / "oci", [layer_tar([("file", "a", b"a" * 1000)])], corrupt=corrupt)
    with pytest.raises(DigestMismatch, match="failed to verify"):
        load_oci_layout(store, tmp_path / "oci", name="bad")
    assert _leftovers(store) == [], "a rejected layer must leave nothing in the store"
    with pytest.raises(NotFound):
        store.get("bad")


@pytest.mark.root
def test_an_unsafe_layer_in_an_image_leaves_nothing_in_the_store(store, tmp_path):
    evil = tarfile.TarInfo("../escape")
    write_layout(tmp_path / "oci", [layer_tar([("raw", evil, b"")])])
    with pytest.raises(UnsafeLayer, match="'..'"):
        load_oci_layout(store, tmp_path / "oci", name="evil")
    assert _leftovers(store) == []
    assert not (tmp_path / "escape").exists()


@pytest.mark.root
def test_shared_layers_are_stored_and_unpacked_once(store, tmp_path):
    base, top = whiteout_image_layers()
    write_layout(tmp_path / "one", [base])
    write_layout(tmp_path / "two", [base, top])
    load_oci_layout(store, tmp_path / "one", name="one")
    load_oci_layout(store, tmp_path / "two", name="two")
    assert len(os.listdir(store.root / "layers")) == 4, "2 layer dirs + 2 metadata files"
    assert store.get("two").layers[1] == store.get("one").layers[0]


@pytest.mark.root
def test_rmi_keeps_layers_another_image_uses_and_removes_the_rest(store, tmp_path):
    base, top = whiteout_image_layers()
    write_layout(tmp_path / "one", [base])
    write_layout(tmp_path / "two", [base, top])
    load_oci_layout(store, tmp_path / "one", name="one")
    load_oci_layout(store, tmp_path / "two", name="two")
    lines = store.remove("two")
    assert lines[0] == "Untagged: two:latest" and len([x for x in lines if x.startswith("Deleted")]) == 2
    assert store.get("one").layers[0].is_dir()
    store.remove("one")
    assert _leftovers(store) == ["repositories.json"]


@pytest.mark.root
def test_docker_archive_round_trip_keeps_ids_and_trees(store, tmp_path):
    write_layout(tmp_path / "oci", whiteout_image_layers(), compression="gzip")
    load_oci_layout(store, tmp_path / "oci", name="wh")
    before = store.get("wh")
    with open(tmp_path / "wh.tar", "wb") as out:
        save_archive(store, ["wh"], out)
    names = tarfile.open(tmp_path / "wh.tar").getnames()
    assert "manifest.json" in names and f"{before.id[7:]}.json" in names
    other = ImageStore(tmp_path / "other")
    assert load_archive(other, tmp_path / "wh.tar") == ["Loaded image: wh:latest"]
    after = other.get("wh")
    assert after.id == before.id, "same config bytes, same image ID"
    assert [tree_of(p) for p in after.layers] == [tree_of(p) for p in before.layers]


# -- the load path: the pump thread and tar-split (bench/README.md, "Images") ----------------

def _tricky_layer(tmp_path: Path) -> bytes:
    """A layer with what tar-split must get right: PAX xattrs, a long name, GNU sparse data,
    a hard link, a symlink, empty and odd-sized files, whiteouts, an opaque directory."""
    long_name = "d/" + "n" * 150
    xattr = tarfile.TarInfo("d/with-xattr")
    xattr.size, xattr.mtime, xattr.pax_headers = 3, 1_700_000_000.25, {"SCHILY.xattr.user.k": "v"}
    entries = [("dir", "d"), ("file", long_name, os.urandom(10_000)), ("raw", xattr, b"xyz"),
               ("file", "d/empty", b""), ("file", "d/odd", os.urandom(513)), ("hardlink", "d/hard", "d/odd"),
               ("symlink", "d/link", "../etc/passwd"), ("whiteout", "d/gone"), ("dir", "o"), ("opaque", "o"),
               ("file", "d/big", os.urandom(3 << 20))]
    data = layer_tar(entries)
    sparse = tmp_path / "sparse-src"
    with open(sparse, "wb") as f:
        f.seek(1 << 20)
        f.write(b"end")
    gnu = tmp_path / "gnu.tar"
    subprocess.run(["tar", "--sparse", "-cf", gnu, "-C", tmp_path, "sparse-src"], check=True)
    return _without_end(data) + gnu.read_bytes()     # GNU tar's sparse entry, after ours


def _without_end(tar: bytes) -> bytes:
    """A tar without its end-of-archive zero blocks (entries are 512-byte aligned)."""
    end = len(tar)
    while end >= 512 and tar[end - 512:end] == bytes(512):
        end -= 512
    return tar[:end]


@pytest.mark.root
@pytest.mark.parametrize("source", ["oci", "docker-archive"])
def test_an_uncompressed_layer_is_kept_once_and_rebuilt_byte_for_byte(store, tmp_path, source):
    data = _tricky_layer(tmp_path)
    write_layout(tmp_path / "oci", [data], compression="none")
    if source == "docker-archive":
        scratch = ImageStore(tmp_path / "scratch")
        load_oci_layout(scratch, tmp_path / "oci", name="tricky")
        with open(tmp_path / "image.tar", "wb") as out:
            save_archive(scratch, ["tricky:latest"], out)
        load_archive(store, tmp_path / "image.tar")
    else:
        load_oci_layout(store, tmp_path / "oci", name="tricky")
    layer = store.layers_of(store.resolve("tricky:latest"))[0]
    assert not store.blobs.exists(layer.digest), "an uncompressed layer blob is not stored beside its tree"
    assert store.has_blob(layer.digest)
    with store.open_blob(layer.digest) as rebuilt:
        assert rebuilt.read() == data, "the rebuilt tar must be the loaded one, byte for byte"
    assert layer.size == len(data)
    tree = store.get("tricky:latest").layers[0]
    assert os.stat(tree / "sparse-src").st_blocks * 512 < 1 << 20, "sparse files stay sparse"
    save_oci_layout(store, ["tricky:latest"], tmp_path / "out")
    assert (tmp_path / "out/blobs/sha256" / layer.digest[7:]).read_bytes() == data


@pytest.mark.root
def test_a_rebuilt_layer_can_be_rewound_and_skipped_like_a_file(store, tmp_path):
    data = layer_tar([("file", "a", os.urandom(300_000)), ("file", "b", b"b" * 70_000)])
    write_layout(tmp_path / "oci", [data], compression="none")
    load_oci_layout(store, tmp_path / "oci", name="seek")
    with store.open_blob(store.layers_of(store.resolve("seek"))[0].digest) as blob:
        assert blob.read(1000) == data[:1000] and blob.tell() == 1000
        blob.seek(200_000)
        assert blob.read(5000) == data[200_000:205_000]
        blob.seek(10)                                   # backwards: the rebuild starts again
        assert blob.read() == data[10:] and blob.tell() == len(data)


@pytest.mark.root
def test_a_layer_replacing_its_own_file_keeps_its_blob_and_still_round_trips(store, tmp_path):
    data = layer_tar([("file", "a", b"first" * 1000), ("dir", "d"), ("file", "a", b"second")])
    write_layout(tmp_path / "oci", [data], compression="none")
    load_oci_layout(store, tmp_path / "oci", name="dup")
    layer = store.layers_of(store.resolve("dup"))[0]
    assert store.blobs.exists(layer.digest), "the tree lacks the first 'a': the blob must be stored"
    assert (store.get("dup").layers[0] / "a").read_bytes() == b"second"
    with store.open_blob(layer.digest) as blob:
        assert blob.read() == data


@pytest.mark.root
def test_a_changed_layer_file_fails_the_rebuild_instead_of_passing_as_the_original(store, tmp_path):
    data = layer_tar([("file", "etc/motd", b"hello\n" * 100)])
    write_layout(tmp_path / "oci", [data], compression="none")
    load_oci_layout(store, tmp_path / "oci", name="motd")
    image = store.get("motd")
    (image.layers[0] / "etc/motd").write_bytes(b"HELLO\n" * 100)   # same size, other bytes
    digest = store.layers_of(image.id)[0].digest
    with pytest.raises(DigestMismatch, match="failed to rebuild layer"), store.open_blob(digest) as blob:
        while blob.read(1000):
            pass
    with pytest.raises(DigestMismatch), open(tmp_path / "saved.tar", "wb") as out:
        save_archive(store, ["motd"], out)


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_the_pump_serves_reads_of_any_size_and_hashes_both_forms(tmp_path, compression):
    from minidocker.image.pump import BlobPump

    tar = os.urandom(3 << 20) + b"text " * 300_000
    blob = {"none": lambda d: d, "gzip": gzip.compress,
            "zstd": lambda d: __import__("zstandard").ZstdCompressor().compress(d)}[compression](tar)
    copy = io.BytesIO()
    pump = BlobPump(io.BytesIO(blob), compression, copy_to=copy)
    parts, sizes = [], [1, 511, 10240, 1 << 20, 3, 64 << 10]
    for i in range(10_000):
        part = pump.read(sizes[i % len(sizes)])
        if not part:
            break
        parts.append(part)
    pump.finish()
    assert b"".join(parts) == tar
    assert (pump.blob.digest, pump.tar.digest) == (sha256_digest(blob), sha256_digest(tar))
    assert copy.getvalue() == blob, "the stored copy is the blob as read"


@pytest.mark.root
def test_a_failed_extraction_stops_the_pump_and_leaves_nothing(store, tmp_path):
    import threading

    evil = tarfile.TarInfo("../escape")
    write_layout(tmp_path / "oci", [layer_tar([("raw", evil, b""), ("file", "big", os.urandom(24 << 20))])])
    with pytest.raises(UnsafeLayer):
        load_oci_layout(store, tmp_path / "oci", name="evil")
    assert not [t for t in threading.enumerate() if t.name == "blob-pump"], "the pump thread must end"
    assert _leftovers(store) == []


@pytest.mark.root
def test_a_corrupt_gzip_blob_with_a_matching_digest_is_refused_and_leaves_nothing(store, tmp_path):
    import threading

    manifest_path = tmp_path / "oci/blobs/sha256" / write_layout(tmp_path / "oci", [layer_tar(
        [("file", "a", os.urandom(100_000))])])[7:]
    manifest = json.loads(manifest_path.read_bytes())
    blob_path = tmp_path / "oci/blobs/sha256" / manifest["layers"][0]["digest"][7:]
    garbage = blob_path.read_bytes()[:50_000] + b"not deflate" * 100
    blob_path.unlink()
    manifest["layers"][0].update(digest=sha256_digest(garbage), size=len(garbage))
    (tmp_path / "oci/blobs/sha256" / sha256_digest(garbage)[7:]).write_bytes(garbage)
    data = json.dumps(manifest).encode()
    manifest_path.unlink()
    (tmp_path / "oci/blobs/sha256" / sha256_digest(data)[7:]).write_bytes(data)
    index = json.loads((tmp_path / "oci/index.json").read_text())
    index["manifests"][0].update(digest=sha256_digest(data), size=len(data))
    (tmp_path / "oci/index.json").write_text(json.dumps(index))
    with pytest.raises(InvalidArgument, match="failed to unpack layer"):
        load_oci_layout(store, tmp_path / "oci", name="corrupt")
    assert not [t for t in threading.enumerate() if t.name == "blob-pump"]
    assert _leftovers(store) == []


# -- image config + run flags ------------------------------------------------------------------

IMAGE_CONFIG = {"Entrypoint": ["/entry"], "Cmd": ["serve"], "Env": ["PATH=/img/bin", "A=image", "B=image"],
                "WorkingDir": "/app", "User": "app", "ExposedPorts": {"80/tcp": {}}, "Volumes": {"/data": {}},
                "Labels": {"maintainer": "img"}}


@pytest.mark.parametrize("run, args", [
    (RunArgs(), ["/entry", "serve"]),
    (RunArgs(command=["debug"]), ["/entry", "debug"]),
    (RunArgs(entrypoint="/bin/sh"), ["/bin/sh"]),                       # --entrypoint drops the image's Cmd
    (RunArgs(entrypoint="/bin/sh", command=["-c", "x"]), ["/bin/sh", "-c", "x"]),
    (RunArgs(entrypoint="", command=["ls"]), ["ls"]),
])
def test_entrypoint_and_cmd_combine_like_docker(run, args):
    merged = merge_config(IMAGE_CONFIG, run)
    assert merged["Entrypoint"] + merged["Cmd"] == args


def test_env_flags_replace_image_variables_and_keep_the_others():
    merged = merge_config(IMAGE_CONFIG, RunArgs(env=["A=flag", "C=flag"]))
    assert merged["Env"] == ["A=flag", "C=flag", "PATH=/img/bin", "B=image"]


@pytest.mark.root
def test_image_config_lands_in_the_runtime_spec(tmp_path):
    layer = tmp_path / "layer"
    (layer / "etc").mkdir(parents=True)
    (layer / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n")
    (layer / "etc/group").write_text("root:x:0:\napp:x:1001:\nextra:x:2000:app\n")
    spec = apply_image_config({}, IMAGE_CONFIG, [layer], RunArgs(env=["A=flag"], tty=True), hostname="h")
    process = spec["process"]
    assert process["args"] == ["/entry", "serve"] and process["cwd"] == "/app"
    assert process["user"] == {"uid": 1000, "gid": 1001, "additionalGids": [2000]}
    assert process["env"] == ["PATH=/img/bin", "HOSTNAME=h", "TERM=xterm", "A=flag", "B=image", "HOME=/home/app"]
    assert {"destination": "/data", "type": "tmpfs", "source": "tmpfs",
            "options": ["rw", "nosuid", "nodev", "noexec", "relatime"]} in spec["mounts"]
    assert spec["annotations"] == {"org.opencontainers.image.exposedPorts": "80/tcp", "maintainer": "img"}


@pytest.mark.root
def test_users_resolve_through_whiteouts_and_unknown_uids_get_gid_0(tmp_path):
    top, base = tmp_path / "top", tmp_path / "base"
    (base / "etc").mkdir(parents=True)
    (base / "etc/passwd").write_text("old:x:5:5::/:/bin/sh\n")
    (top / "etc").mkdir(parents=True)
    from minidocker.storage.whiteout import make_whiteout

    make_whiteout(top / "etc/passwd")
    assert resolve_user("4242", [top, base]).gid == 0
    with pytest.raises(InvalidArgument, match="unable to find user old"):
        resolve_user("old", [top, base])


# -- the command line --------------------------------------------------------------------------

def test_run_hot_path_imports_no_tar_gzip_or_hashing(state_root):
    """``run``'s image lookup must stay a few file reads: no tar, compression or blob-store modules."""
    code = ("import sys; from minidocker.image import ImageStore; from minidocker.paths import state_roots;"
            "s = ImageStore(state_roots().images); s.get('busybox');"
            "import minidocker.engine.run;"
            "print(sorted(m for m in ('tarfile', 'gzip', 'zstandard', 'minidocker.image.blobs',"
            "'minidocker.storage.layer', 'minidocker.image.manifest') if m in sys.modules))")
    subprocess.run([sys.executable, "-c", "from minidocker.engine.images import local_image; from minidocker.image "
                    "import ImageStore; from minidocker.paths import state_roots; "
                    "local_image(ImageStore(state_roots().images), 'busybox')"], check=True)   # made, then read
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"heavy modules imported on the run path: {out}"


def test_the_store_only_answers_an_unknown_busybox_is_image_not_found(store):
    """Storage holds no policy: a busybox it does not have is ImageNotFound, and nothing is made."""
    from minidocker.errors import ImageNotFound

    for ask in (store.get, store.resolve):
        with pytest.raises(ImageNotFound, match="unable to find image 'busybox:latest' locally"):
            ask("busybox")
    assert _leftovers(store) == [] and store.refs() == {}


@pytest.mark.root
def test_the_engine_lookup_makes_the_built_in_busybox_and_nothing_else(store):
    from minidocker.engine.images import local_image, names_default_image
    from minidocker.errors import ImageNotFound

    assert [names_default_image(r) for r in ("busybox", "busybox:latest", "docker.io/library/busybox",
                                               "busybox:1.36", "mybusybox", "a" * 12)] == [True] * 3 + [False] * 3
    with pytest.raises(ImageNotFound):
        local_image(store, "busybox:1.36")   # only the default name is built in
    assert store.refs() == {}
    made = local_image(store, "docker.io/library/busybox")
    assert list(store.refs()) == ["docker.io/library/busybox:latest"] and made.id == store.resolve("busybox")
    assert local_image(store, "busybox") == made   # made once, then read


@pytest.mark.root
def test_commands_that_read_busybox_by_name_make_it_and_rmi_does_not(state_root, tmp_path):
    env = {**os.environ, "MINIDOCKER_ROOT": str(tmp_path / "fresh")}

    def md(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "minidocker", *args], capture_output=True, text=True, env=env)

    removed = md("rmi", "busybox")
    assert removed.returncode != 0 and "unable to find image 'busybox:latest'" in removed.stderr, removed
    assert not (tmp_path / "fresh" / "lib" / "images" / "repositories.json").exists()
    assert md("tag", "busybox", "mine:v1").returncode == 0   # a fresh machine: the engine makes busybox first
    made = ImageStore(tmp_path / "fresh" / "lib" / "images").resolve("mine:v1")
    assert set(md("images", "-q").stdout.split()) == {made[7:19]}
    missing = md("image", "inspect", "busybox:1.36")
    assert missing.returncode != 0 and "unable to find image 'busybox:1.36'" in missing.stderr, missing


@pytest.mark.root
def test_images_tag_history_inspect_rmi(cli):
    assert cli("tag", "busybox", "mybox:v1").code == 0
    listing = cli("images")
    assert "mybox" in listing.out and "busybox" in listing.out, listing
    inspect = json.loads(cli("image", "inspect", "mybox:v1").out)[0]
    assert inspect["Id"].startswith("sha256:") and "mybox:v1" in inspect["RepoTags"]
    assert len(inspect["RootFS"]["Layers"]) == 1
    history = cli("history", "mybox:v1")
    assert "busybox --list" in history.out, history
    removed = cli("rmi", "mybox:v1")
    assert removed.out.strip() == "Untagged: mybox:v1", removed
    missing = cli("rmi", "nothere")
    assert missing.code != 0 and "unable to find image 'nothere:latest'" in missing.err


@pytest.mark.root
@pytest.mark.overlay
def test_commit_export_import_round_trip(cli, tmp_path):
    name = "ch06-commit"
    run = cli("run", "--name", name, "busybox", "sh", "-c", "echo hi > /hello; rm /etc/group; mkdir -p /opt/x")
    assert run.code == 0, run
    committed = cli("commit", "-m", "add hello", name, "committed:v1")
    assert committed.code == 0, committed
    check = cli("run", "--rm", "committed:v1", "sh", "-c", "cat /hello; test -e /etc/group || echo gone")
    assert check.out == "hi\ngone\n", check
    assert "add hello" in cli("history", "committed:v1").out
    export = cli("export", "-o", str(tmp_path / "fs.tar"), name)
    assert export.code == 0, export
    members = set(tarfile.open(tmp_path / "fs.tar").getnames())
    assert "hello" in members and "etc/group" not in members and "bin/busybox" in members
    imported = cli("import", str(tmp_path / "fs.tar"), "imported:v1")
    assert imported.code == 0, imported
    again = cli("run", "--rm", "imported:v1", "/bin/cat", "/hello")
    assert again.out == "hi\n", again
    in_use = cli("rmi", "committed:v1")
    assert in_use.code == 0, in_use    # the container uses busybox, not committed:v1
    busy = cli("rmi", "busybox")
    assert busy.code != 0 and "being used by container" in busy.err, busy
    assert cli("rm", name).code == 0
    assert cli("rmi", "imported:v1").code == 0


@pytest.mark.root
def test_load_refuses_a_file_that_is_not_an_image(cli, tmp_path):
    junk = tmp_path / "junk.tar"
    with tarfile.open(junk, "w") as tar:
        info = tarfile.TarInfo("hello.txt")
        tar.addfile(info, io.BytesIO())
    result = cli("load", "-i", str(junk))
    assert result.code == 125 and "no manifest.json or index.json" in result.err, result


@pytest.mark.root
def test_import_accepts_gzip_and_rejects_devices(cli, tmp_path):
    good = tmp_path / "rootfs.tar.gz"
    good.write_bytes(gzip.compress(layer_tar([("dir", "bin"), ("file", "bin/x", b"x")])))
    assert cli("import", str(good), "gz:v1").code == 0
    bad = tmp_path / "dev.tar"
    bad.write_bytes(layer_tar([("chr", "dev/mem", 1, 1)]))
    result = cli("import", str(bad), "dev:v1")
    assert result.code != 0 and "character device 1:1 not allowed" in result.err, result
    assert cli("rmi", "gz:v1").code == 0


@pytest.mark.root
def test_save_oci_then_load_it_back(cli, tmp_path):
    assert cli("save", "--format", "oci", "-o", str(tmp_path / "layout"), "busybox").code == 0
    index = json.loads((tmp_path / "layout/index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    result = cli("load", "-i", str(tmp_path / "layout"), "--name", "fromoci")
    assert result.out.strip() == "Loaded image: busybox:latest", result   # the full name annotation wins
    # loading read the layout and left it as it was; the image it names is the one we saved
    assert json.loads((tmp_path / "layout/index.json").read_text()) == index
    manifest_hex = index["manifests"][0]["digest"].removeprefix("sha256:")
    manifest = json.loads((tmp_path / "layout/blobs/sha256" / manifest_hex).read_text())
    from minidocker.image import ImageStore
    from minidocker.paths import state_roots

    assert manifest["config"]["digest"] == ImageStore(state_roots().images).get("busybox").id   # saved: it is here


def test_gunzip_with_isal_and_with_zlib_reads_the_same_bytes(monkeypatch):
    import gzip
    import io

    from minidocker.image import compression

    data = b"".join(bytes([i % 251]) * (i % 700) for i in range(3000))
    blob = gzip.compress(data) + gzip.compress(b"second member")
    fast = compression.decompress_reader(io.BytesIO(blob), compression.GZIP).read()
    monkeypatch.setattr(compression, "_gzip_module", lambda: gzip)
    plain = compression.decompress_reader(io.BytesIO(blob), compression.GZIP).read()
    assert fast == plain == data + b"second member"
