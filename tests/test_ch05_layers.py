"""Chapter 05: layers, whiteouts, safe extraction and overlay behaviour on the real kernel."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest
from imagekit import layer_tar, tree_of, whiteout_image_layers

from minidocker.forked import call_in_child
from minidocker.storage import Snapshot
from minidocker.storage.diff import write_layer_tar
from minidocker.storage.layer import UnsafeLayer, apply_layer
from minidocker.storage.whiteout import OPAQUE_XATTR, is_opaque, is_whiteout, whiteout_target

pytestmark = pytest.mark.ch05


def _apply(data: bytes, dest: Path, overlay: bool, **kw):
    dest.mkdir(parents=True, exist_ok=True)
    return apply_layer(io.BytesIO(data), dest, overlay=overlay, **kw)


def _merged_tree(lowers: list[Path], mountpoint: Path) -> dict:
    """Mount lowers read-only in a private mount namespace of a child and snapshot the tree."""
    def look():
        from minidocker.linux import CloneFlag, MountFlag, mount, unshare
        from minidocker.rootfs import make_mounts_private

        unshare(CloneFlag.CLONE_NEWNS)
        make_mounts_private()
        mount("overlay", mountpoint, "overlay", MountFlag.MS_RDONLY,
              "lowerdir=" + ":".join(str(p) for p in lowers))
        return tree_of(mountpoint)

    mountpoint.mkdir(exist_ok=True)
    return call_in_child(look)


# -- whiteout names ----------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [(".wh.foo", "foo"), (".wh..wh..opq", ""), (".wh..wh.plnk", None),
                                            ("foo", None), (".whfoo", None)])
def test_whiteout_target_reads_both_marker_kinds(name, expected):
    assert whiteout_target(name) == expected


# -- the two ways to apply a layer -------------------------------------------------------------

@pytest.mark.root
def test_overlay_mode_turns_whiteouts_into_char_devices_and_opaque_xattrs(tmp_path):
    _, top = whiteout_image_layers("docker")
    stats = _apply(top, tmp_path / "l2", overlay=True)
    assert is_whiteout(os.lstat(tmp_path / "l2/data/remove-me.txt")), "whiteout should be a 0:0 char device"
    assert is_opaque(tmp_path / "l2/data/opq"), f"{OPAQUE_XATTR} missing on data/opq"
    assert (tmp_path / "l2/data/opq/new.txt").read_text() == "new\n", "a sibling of the opaque marker must stay"
    assert not any(p.name.startswith(".wh.") for p in (tmp_path / "l2").rglob("*")), "markers must not be files"
    assert (stats.whiteouts, stats.opaque) == (1, 1)


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.parametrize("encoding", ["docker", "umoci"])
def test_overlay_path_and_flat_path_give_identical_trees(tmp_path, encoding):
    base, top = whiteout_image_layers(encoding)
    _apply(base, tmp_path / "l1", overlay=True)
    _apply(top, tmp_path / "l2", overlay=True)
    merged = _merged_tree([tmp_path / "l2", tmp_path / "l1"], tmp_path / "merged")
    _apply(base, tmp_path / "flat", overlay=False)
    _apply(top, tmp_path / "flat", overlay=False)
    flat = tree_of(tmp_path / "flat")
    assert merged == flat, f"overlay and flat differ: {set(merged.items()) ^ set(flat.items())}"
    assert "data/opq/new.txt" in flat and "data/keep/k.txt" in flat
    for gone in ("data/remove-me.txt", "data/opq/old.txt", "data/opq/old2.txt", "data/replace/inner.txt"):
        assert gone not in flat, f"{gone} should have been deleted by layer 2"
    assert stat.S_ISREG(flat["data/replace"][0]), "data/replace should now be a file"


@pytest.mark.root
def test_flat_mode_keeps_opaque_siblings_listed_before_the_marker(tmp_path):
    base = layer_tar([("dir", "d"), ("file", "d/old", b"o")])
    top = layer_tar([("dir", "d"), ("file", "d/new", b"n"), ("opaque", "d")])   # marker after the sibling
    _apply(base, tmp_path / "flat", overlay=False)
    _apply(top, tmp_path / "flat", overlay=False)
    assert sorted(os.listdir(tmp_path / "flat/d")) == ["new"]


@pytest.mark.root
def test_extraction_keeps_owner_mode_xattrs_hardlinks_and_holes(tmp_path):
    info = tarfile.TarInfo("owned")
    info.uid, info.gid, info.mode, info.size = 1234, 5678, 0o4750, 3
    info.pax_headers = {"SCHILY.xattr.user.colour": "blue"}
    sparse = tarfile.TarInfo("sparse")
    data = layer_tar([("raw", info, b"abc"), ("file", "big", b"x" * 10), ("hardlink", "big-link", "big")])
    _apply(data, tmp_path / "l", overlay=True)
    st = os.lstat(tmp_path / "l/owned")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o4750)
    assert os.getxattr(tmp_path / "l/owned", "user.colour") == b"blue"
    assert os.lstat(tmp_path / "l/big").st_ino == os.lstat(tmp_path / "l/big-link").st_ino
    del sparse


@pytest.mark.root
def test_gnu_sparse_files_stay_sparse(tmp_path):
    source = tmp_path / "src"
    with open(source, "wb") as f:
        f.seek(64 << 20)
        f.write(b"end")
    archive = tmp_path / "sparse.tar"
    import subprocess

    subprocess.run(["tar", "--sparse", "-cf", archive, "-C", tmp_path, "src"], check=True)
    with open(archive, "rb") as f:
        apply_layer(f, (tmp_path / "out").mkdir() or tmp_path / "out", overlay=True)
    st = os.stat(tmp_path / "out/src")
    assert st.st_size == (64 << 20) + 3
    assert st.st_blocks * 512 < 1 << 20, f"expected a sparse file, {st.st_blocks * 512} bytes allocated"


# -- the malicious corpus ----------------------------------------------------------------------

def _raw(name, kind=tarfile.REGTYPE, linkname="", data=b""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, len(data) if kind == tarfile.REGTYPE else 0
    return ("raw", info, data if kind == tarfile.REGTYPE else None)


MALICIOUS = {
    "absolute path": ([_raw("/etc/evil", data=b"x")], "absolute path"),
    "dot-dot traversal": ([_raw("a/../../evil", data=b"x")], "'..'"),
    "symlink escape": ([_raw("link", tarfile.SYMTYPE, "../../.."), _raw("link/evil", data=b"x")], "is a symlink"),
    "absolute symlink escape": ([_raw("etc", tarfile.SYMTYPE, "/etc"), _raw("etc/evil", data=b"x")], "is a symlink"),
    "hardlink escape": ([_raw("h", tarfile.LNKTYPE, "../../../etc/passwd")], "'..'"),
    "hardlink through symlink": ([_raw("s", tarfile.SYMTYPE, "/etc"), _raw("h", tarfile.LNKTYPE, "s/passwd")],
                                 "is a symlink"),
    "device node": ([_raw("dev/sda", tarfile.BLKTYPE)], "block device"),
    "char device": ([_raw("mem", tarfile.CHRTYPE)], "character device"),
    "oversized name": ([_raw("a" * 300, data=b"x")], "longer than 255"),
    "oversized path": ([_raw("/".join(["d" * 200] * 25), data=b"x")], "longer than 4096"),
    "whiteout traversal": ([_raw("d/.wh...", data=b"")], "'..'"),
}


@pytest.mark.root
@pytest.mark.parametrize("case", sorted(MALICIOUS))
@pytest.mark.parametrize("overlay", [True, False], ids=["overlay", "flat"])
def test_malicious_layers_are_refused_and_write_nothing_outside(tmp_path, case, overlay):
    entries, message = MALICIOUS[case]
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = outside / "a" / "b" / "layer"
    dest.mkdir(parents=True)
    before = tree_of(tmp_path)
    with pytest.raises(UnsafeLayer, match=message.replace("(", r"\(").replace(".", r"\.")):
        apply_layer(io.BytesIO(layer_tar(entries)), dest, overlay=overlay)
    after = {k: v for k, v in tree_of(tmp_path).items() if not k.startswith("outside/a/b/layer/")}
    assert after == before, f"something was written outside the layer: {set(after) - set(before)}"


# -- overlay behaviours on the kernel ----------------------------------------------------------

def _in_overlay(snapshot: Snapshot, fn):
    def child():
        from minidocker.linux import CloneFlag, unshare
        from minidocker.rootfs import make_mounts_private

        unshare(CloneFlag.CLONE_NEWNS)
        make_mounts_private()
        snapshot.mount()
        return fn(snapshot.rootfs)

    return call_in_child(child)


@pytest.mark.root
@pytest.mark.overlay
def test_copy_up_whiteout_and_opaque_land_in_the_upper_dir_only(tmp_path):
    lower = tmp_path / "lower"
    _apply(layer_tar([("dir", "d"), ("file", "d/f", b"lower"), ("file", "g", b"g"), ("dir", "e"),
                      ("file", "e/x", b"x")]), lower, overlay=True)
    snap = Snapshot.create([lower], tmp_path / "c1")

    def change(root: Path):
        (root / "d/f").write_text("changed")      # copy-up
        os.unlink(root / "g")                      # whiteout
        import shutil

        shutil.rmtree(root / "e")
        os.mkdir(root / "e")                       # opaque directory
        return sorted(os.listdir(root / "e"))

    assert _in_overlay(snap, change) == []
    assert (lower / "d/f").read_text() == "lower", "the lower layer must never change"
    assert (snap.upper / "d/f").read_text() == "changed"
    assert is_whiteout(os.lstat(snap.upper / "g"))
    assert is_opaque(snap.upper / "e")
    buf = io.BytesIO()
    write_layer_tar(snap.upper, buf)
    names = [m.name for m in tarfile.open(fileobj=io.BytesIO(buf.getvalue()))]
    assert ".wh.g" in names and "e/.wh..wh..opq" in names and "d/f" in names, names
    snap.remove()


@pytest.mark.root
@pytest.mark.overlay
def test_writes_of_one_container_are_invisible_to_another_of_the_same_image(tmp_path):
    lower = tmp_path / "lower"
    _apply(layer_tar([("file", "shared", b"image")]), lower, overlay=True)
    a = Snapshot.create([lower], tmp_path / "a")
    b = Snapshot.create([lower], tmp_path / "b")
    _in_overlay(a, lambda root: (root / "shared").write_text("from a"))
    assert _in_overlay(b, lambda root: (root / "shared").read_text()) == "image"
    assert (lower / "shared").read_text() == "image"
    a.remove()
    b.remove()


@pytest.mark.root
@pytest.mark.overlay
def test_snapshot_teardown_leaves_no_mount(tmp_path):
    lower = tmp_path / "lower"
    lower.mkdir()
    snap = Snapshot.create([lower], tmp_path / "c")
    snap.mount()
    assert os.path.ismount(snap.rootfs)
    snap.remove()
    with open("/proc/self/mountinfo") as f:
        assert str(tmp_path) not in f.read()
    assert not snap.directory.exists()


@pytest.mark.root
@pytest.mark.overlay
def test_commit_diff_round_trips_through_a_layer(tmp_path):
    """upper dir -> layer tar -> overlay layer dir: the merged trees agree."""
    base, _ = whiteout_image_layers()
    _apply(base, tmp_path / "l1", overlay=True)
    snap = Snapshot.create([tmp_path / "l1"], tmp_path / "c")

    def change(root: Path):
        import shutil

        os.unlink(root / "data/remove-me.txt")
        shutil.rmtree(root / "data/opq")
        os.mkdir(root / "data/opq")
        (root / "data/opq/new.txt").write_text("new\n")
        return tree_of(root)

    live = _in_overlay(snap, change)
    buf = io.BytesIO()
    write_layer_tar(snap.upper, buf)
    _apply(buf.getvalue(), tmp_path / "l2", overlay=True)
    assert _merged_tree([tmp_path / "l2", tmp_path / "l1"], tmp_path / "m") == live
    snap.remove()
