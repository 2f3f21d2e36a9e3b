"""Graded tests of chapter 05: layers, overlayfs and whiteouts.

Run: ``make grade CH=05`` (all tasks) or ``make grade CH=05 TASK=5_2`` (one task).
``tasks`` is your exercises/ch05/tasks.py (the reference with ``--solutions``).
Mounts happen only in forked children with their own mount namespace.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from minidocker.forked import call_in_child
from minidocker.linux import CloneFlag, MountFlag, mount, unshare

pytestmark = [pytest.mark.ch05]


def _private() -> None:
    unshare(CloneFlag.CLONE_NEWNS)
    mount(None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE)


def _tar(entries) -> bytes:
    """entries: ("file", name, data) | ("dir", name) | ("wh", name) | ("opq", dir) | ("link", name, target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, *rest in entries:
            info = tarfile.TarInfo(name)
            info.mtime, info.mode = 1_700_000_000, 0o644
            data = None
            if kind == "file":
                data = rest[0]
                info.size = len(data)
            elif kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, rest[0]
            elif kind == "wh":
                parent, _, base = name.rpartition("/")
                info.name = f"{parent}/.wh.{base}" if parent else f".wh.{base}"
            elif kind == "opq":
                info.name = f"{name}/.wh..wh..opq"
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _tree(root: Path) -> dict[str, str]:
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            st = os.lstat(path)
            rel = str(path.relative_to(root))
            if stat.S_ISREG(st.st_mode):
                found[rel] = "file:" + hashlib.sha256(path.read_bytes()).hexdigest()[:8]
            elif stat.S_ISLNK(st.st_mode):
                found[rel] = "link:" + os.readlink(path)
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = "dir"
            else:
                found[rel] = f"other:{stat.S_IFMT(st.st_mode):o}:{st.st_rdev}"
    return found


BASE = [("dir", "data"), ("dir", "data/keep"), ("file", "data/keep/k.txt", b"keep"), ("dir", "data/opq"),
        ("file", "data/opq/old.txt", b"old"), ("file", "data/opq/old2.txt", b"old2"),
        ("file", "data/remove-me.txt", b"bye"), ("dir", "data/replace"), ("file", "data/replace/in.txt", b"in"),
        ("link", "data/link", "/data/keep/k.txt")]
DOCKER_TOP = [("dir", "data"), ("dir", "data/opq"), ("opq", "data/opq"), ("file", "data/opq/new.txt", b"new"),
              ("wh", "data/remove-me.txt"), ("file", "data/replace", b"a file now")]
UMOCI_TOP = [("dir", "data"), ("dir", "data/opq"), ("wh", "data/opq/old.txt"), ("wh", "data/opq/old2.txt"),
             ("file", "data/opq/new.txt", b"new"), ("wh", "data/remove-me.txt"), ("file", "data/replace", b"a file now")]
EXPECTED = {"data", "data/keep", "data/keep/k.txt", "data/opq", "data/opq/new.txt", "data/replace", "data/link"}


# --- task 5.1: mount_overlay --------------------------------------------------------------------

def _overlay_mounts_at(path: Path) -> int:
    """How many overlay mounts are on ``path`` (in the caller's mount namespace)."""
    return sum(1 for line in open("/proc/self/mountinfo")
               if line.split()[4] == str(path) and line.partition(" - ")[2].split()[0] == "overlay")


@pytest.mark.task5_1
@pytest.mark.root
def test_mount_overlay_merges_top_first_and_writes_to_the_containers_layer(tasks, tmp_path):
    for d in ("top", "bottom", "container"):
        (tmp_path / d).mkdir()
    (tmp_path / "bottom/f").write_text("bottom")
    (tmp_path / "top/f").write_text("top")
    (tmp_path / "bottom/only-bottom").write_text("b")
    (tmp_path / "bottom/delete-me").write_text("d")

    def child():
        _private()
        merged = Path(tasks.mount_overlay([tmp_path / "top", str(tmp_path / "bottom")], tmp_path / "container"))
        (merged / "new").write_text("written")
        (merged / "delete-me").unlink()
        return str(merged), _overlay_mounts_at(merged), (merged / "f").read_text(), sorted(os.listdir(merged))

    merged, mounts, seen, names = call_in_child(child)
    assert merged == str(tmp_path / "container" / "merged"), f"expected container/merged, found {merged}"
    assert mounts == 1, f"expected one overlay mounted on {merged} in the container, found {mounts}"
    assert seen == "top", "the first layer of the list is the top one: its f wins"
    assert names == ["f", "new", "only-bottom"], f"found {names}"
    upper = tmp_path / "container" / "upper"
    assert (upper / "new").read_text() == "written", "writes must land in container/upper"
    st = os.lstat(upper / "delete-me")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, "a deletion leaves a 0:0 whiteout in container/upper"
    assert (tmp_path / "bottom/delete-me").exists(), "a layer must never be written to"
    assert _overlay_mounts_at(tmp_path / "container" / "merged") == 0, "the mount must stay in the container"


@pytest.mark.task5_1
@pytest.mark.root
@pytest.mark.overlay
def test_mount_overlay_hides_what_the_images_layers_whited_out(tasks, tmp_path):
    """Two layers of an image, unpacked for overlay by minidocker (whiteouts as 0:0 devices)."""
    from minidocker.storage.layer import apply_layer

    for name, entries in (("l1", BASE), ("l2", DOCKER_TOP)):
        (tmp_path / name).mkdir()
        apply_layer(io.BytesIO(_tar(entries)), tmp_path / name, overlay=True)
    (tmp_path / "container").mkdir()

    def child():
        _private()
        return _tree(Path(tasks.mount_overlay([tmp_path / "l2", tmp_path / "l1"], tmp_path / "container")))

    tree = call_in_child(child)
    assert set(tree) == EXPECTED, f"expected the image's view {sorted(EXPECTED)}, found {sorted(tree)}"
    assert tree["data/replace"].startswith("file:"), "data/replace: the top layer's file replaces the directory"


@pytest.mark.task5_1
@pytest.mark.root
def test_mount_overlay_mounts_a_hundred_layers_under_long_paths(tasks, tmp_path):
    store = tmp_path / ("image-store-with-a-long-name-" + "x" * 60)
    layers = []
    for i in range(100):
        layer = store / f"sha256-{i:03d}-{'0123456789abcdef' * 4}" / "diff"
        layer.mkdir(parents=True)
        (layer / f"file-{i:03d}").write_text(str(i))
        (layer / "who").write_text(f"layer {i}")
        layers.append(str(layer))
    layers.reverse()  # top first: layer 99 is the top
    (tmp_path / "container").mkdir()
    width = len(",".join(layers))

    def child():
        _private()
        cwd = os.getcwd()
        merged = Path(tasks.mount_overlay(layers, tmp_path / "container"))
        return os.getcwd() == cwd, (merged / "who").read_text(), len([n for n in os.listdir(merged) if n != "who"])

    same_cwd, who, files = call_in_child(child)
    assert (who, files) == ("layer 99", 100), (
        f"{width} bytes of layer paths do not fit in mount(2)'s page: expected all 100 layers merged with "
        f"layer 99 on top, found {files} files and 'who' = {who!r}")
    assert same_cwd, "mount_overlay must come back to the working directory it was called in"


# --- task 5.2: apply_flat -----------------------------------------------------------------------

@pytest.mark.task5_2
@pytest.mark.root
@pytest.mark.parametrize("top", [DOCKER_TOP, UMOCI_TOP], ids=["docker-opaque", "umoci-whiteouts"])
def test_apply_flat_handles_both_deletion_encodings(tasks, tmp_path, top):
    root = tmp_path / "rootfs"
    root.mkdir()
    tasks.apply_flat(io.BytesIO(_tar(BASE)), root)
    tasks.apply_flat(io.BytesIO(_tar(top)), root)
    tree = _tree(root)
    assert set(tree) == EXPECTED, f"expected {sorted(EXPECTED)}, found {sorted(tree)}"
    assert tree["data/replace"].startswith("file:"), "data/replace: a file of layer 2 replaces the directory"
    assert not any(".wh." in name for name in tree), "whiteout markers must never be extracted"


@pytest.mark.task5_2
@pytest.mark.root
def test_apply_flat_keeps_siblings_listed_before_the_opaque_marker(tasks, tmp_path):
    root = tmp_path / "rootfs"
    root.mkdir()
    tasks.apply_flat(io.BytesIO(_tar([("dir", "d"), ("file", "d/old", b"o")])), root)
    tasks.apply_flat(io.BytesIO(_tar([("dir", "d"), ("file", "d/new", b"n"), ("opq", "d")])), root)
    assert sorted(os.listdir(root / "d")) == ["new"], f"found {sorted(os.listdir(root / 'd'))}"


@pytest.mark.task5_2
@pytest.mark.root
@pytest.mark.overlay
def test_apply_flat_matches_the_kernels_overlay(tasks, tmp_path):
    """The reference: minidocker unpacks each layer for overlay, the kernel merges them."""
    from minidocker.storage.layer import apply_layer

    for name, entries in (("l1", BASE), ("l2", DOCKER_TOP)):
        (tmp_path / name).mkdir()
        apply_layer(io.BytesIO(_tar(entries)), tmp_path / name, overlay=True)
    (tmp_path / "merged").mkdir()

    def child():
        _private()
        mount("overlay", tmp_path / "merged", "overlay", MountFlag.MS_RDONLY,
              f"lowerdir={tmp_path / 'l2'}:{tmp_path / 'l1'}")
        return _tree(tmp_path / "merged")

    kernel = call_in_child(child)
    root = tmp_path / "flat"
    root.mkdir()
    tasks.apply_flat(io.BytesIO(_tar(BASE)), root)
    tasks.apply_flat(io.BytesIO(_tar(DOCKER_TOP)), root)
    assert _tree(root) == kernel


# --- task 5.3: upper_to_layer -------------------------------------------------------------------

def _make_upper(tmp_path: Path) -> Path:
    """A real upper directory: copy-up, a deleted file, a re-created directory."""
    for d in ("lower/etc", "lower/var/cache", "upper", "work", "merged"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "lower/etc/hostname").write_text("old")
    (tmp_path / "lower/etc/passwd").write_text("root")
    (tmp_path / "lower/var/cache/junk").write_text("junk")

    def child():
        import shutil

        _private()
        mount("overlay", tmp_path / "merged", "overlay", 0,
              f"lowerdir={tmp_path / 'lower'},upperdir={tmp_path / 'upper'},workdir={tmp_path / 'work'}")
        (tmp_path / "merged/etc/hostname").write_text("new")
        os.unlink(tmp_path / "merged/etc/passwd")
        shutil.rmtree(tmp_path / "merged/var/cache")
        (tmp_path / "merged/var/cache").mkdir()
        (tmp_path / "merged/var/cache/fresh").write_text("fresh")

    call_in_child(child)
    return tmp_path / "upper"


@pytest.mark.task5_3
@pytest.mark.root
@pytest.mark.overlay
def test_upper_to_layer_writes_whiteout_and_opaque_markers(tasks, tmp_path):
    upper = _make_upper(tmp_path)
    buf = io.BytesIO()
    tasks.upper_to_layer(upper, buf)
    members = {m.name.removeprefix("./"): m for m in tarfile.open(fileobj=io.BytesIO(buf.getvalue()))}
    assert "etc/.wh.passwd" in members, f"a whiteout must become etc/.wh.passwd; found {sorted(members)}"
    assert members["etc/.wh.passwd"].isreg() and members["etc/.wh.passwd"].size == 0
    assert "var/cache/.wh..wh..opq" in members, f"an opaque directory needs its marker; found {sorted(members)}"
    assert "etc/passwd" not in members, "the 0:0 device itself must not be archived"
    assert members["etc/hostname"].isreg() and members["var/cache/fresh"].isreg()


@pytest.mark.task5_3
@pytest.mark.root
@pytest.mark.overlay
def test_upper_to_layer_round_trips_through_minidocker(tasks, tmp_path):
    from minidocker.storage.layer import apply_layer

    upper = _make_upper(tmp_path)
    buf = io.BytesIO()
    tasks.upper_to_layer(upper, buf)
    flat = tmp_path / "flat"
    import shutil

    shutil.copytree(tmp_path / "lower", flat, symlinks=True)
    apply_layer(io.BytesIO(buf.getvalue()), flat, overlay=False)
    assert _tree(flat) == {"etc": "dir", "etc/hostname": _tree(upper)["etc/hostname"], "var": "dir",
                           "var/cache": "dir", "var/cache/fresh": _tree(upper)["var/cache/fresh"]}


# --- task 5.4: unpack_for_overlay --------------------------------------------------------------

def _merge(tmp_path: Path, lowers: list[Path]) -> dict[str, str]:
    """The kernel's read-only overlay of ``lowers`` (top first), as a tree."""
    merged = tmp_path / f"merged-{len(list(tmp_path.iterdir()))}"
    merged.mkdir()

    def child():
        _private()
        mount("overlay", merged, "overlay", MountFlag.MS_RDONLY, "lowerdir=" + ":".join(str(p) for p in lowers))
        return _tree(merged)

    return call_in_child(child)


@pytest.mark.task5_4
@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.parametrize("top", [DOCKER_TOP, UMOCI_TOP], ids=["docker-opaque", "umoci-whiteouts"])
def test_unpack_for_overlay_gives_the_kernel_what_it_reads(tasks, tmp_path, top):
    for name, entries in (("l1", BASE), ("l2", top)):
        (tmp_path / name).mkdir()
        tasks.unpack_for_overlay(io.BytesIO(_tar(entries)), tmp_path / name)
    layer = _tree(tmp_path / "l2")
    assert not any(".wh." in name for name in layer), f"markers must never be extracted: {sorted(layer)}"
    st = os.lstat(tmp_path / "l2/data/remove-me.txt")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, "data/.wh.remove-me.txt must become a 0:0 device"
    if top is DOCKER_TOP:
        opaque = os.getxattr(tmp_path / "l2/data/opq", "trusted.overlay.opaque")
        assert opaque == b"y", f"data/opq/.wh..wh..opq: expected the xattr trusted.overlay.opaque=y, found {opaque!r}"
    tree = _merge(tmp_path, [tmp_path / "l2", tmp_path / "l1"])
    assert set(tree) == EXPECTED, f"the kernel's overlay of your layers: expected {sorted(EXPECTED)}, found {sorted(tree)}"
    assert tree["data/replace"].startswith("file:")


@pytest.mark.task5_4
@pytest.mark.root
@pytest.mark.overlay
def test_unpack_for_overlay_matches_minidockers_image_store(tasks, tmp_path):
    from minidocker.storage.layer import apply_layer

    for name, entries in (("ours-1", BASE), ("ours-2", DOCKER_TOP), ("yours-1", BASE), ("yours-2", DOCKER_TOP)):
        (tmp_path / name).mkdir()
        unpack = (lambda f, d: apply_layer(f, d, overlay=True)) if name.startswith("ours") else tasks.unpack_for_overlay
        unpack(io.BytesIO(_tar(entries)), tmp_path / name)
    ours = _merge(tmp_path, [tmp_path / "ours-2", tmp_path / "ours-1"])
    yours = _merge(tmp_path, [tmp_path / "yours-2", tmp_path / "yours-1"])
    assert yours == ours


@pytest.mark.task5_4
@pytest.mark.root
@pytest.mark.parametrize("name", ["../escaped.txt", "data/../../escaped.txt", "/escaped.txt"])
def test_unpack_for_overlay_refuses_a_name_that_leaves_the_layer(tasks, tmp_path, name):
    layer = tmp_path / "layers" / "l1"
    layer.mkdir(parents=True)
    with pytest.raises(ValueError):
        tasks.unpack_for_overlay(io.BytesIO(_tar([("dir", "data"), ("file", name, b"evil")])), layer)
    assert not (tmp_path / "layers" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists(), (
        f"a member named {name!r} was written outside the layer")
