"""Chapter 11: user namespaces beyond the basics: the image's layers under --userns-remap, and rootless.

- remapped layers: the image's files (host uid 0) are the container root's inside, through
  idmapped layer mounts (the kernel's facts checked for real: overlayfs takes idmapped lower
  layers, an overlay mount cannot itself be idmapped), or Docker's chowned copy per mapping;
  the host's layer files stay as they were;
- rootless: ``minidocker run`` by a real unprivileged user (made with useradd here, removed
  after): root inside, the user's uid outside, the host's files no more writable than the user's.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from minidocker.errors import InvalidArgument

pytestmark = [pytest.mark.ch11]

MAPS = [{"containerID": 0, "hostID": 100000, "size": 65536}]


# ---------------------------------------------------------------- remapped layers (--userns-remap)

@pytest.fixture
def remap_env():
    """A state root the remapped root may traverse (0711 up the chain), and the env that remaps."""
    base = tempfile.mkdtemp(prefix="minidocker-ch11-remap-")
    os.chmod(base, 0o711)
    yield {"MINIDOCKER_ROOT": base, "MINIDOCKER_USERNS_REMAP": "100000:65536"}
    for _ in range(50):   # --rm deletes in a detached process (engine/remove.delete_later): wait for it
        shutil.rmtree(base, ignore_errors=True)
        if not os.path.exists(base):
            break
        time.sleep(0.1)


def _layer(tmp_path: Path) -> Path:
    """A small layer: a root file, a user's file, setuid, a symlink, a whiteout, an opaque dir."""
    layer = tmp_path / "layer"
    (layer / "etc").mkdir(parents=True)
    (layer / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (layer / "home").mkdir()
    (layer / "home" / "user").write_text("mine")
    os.chown(layer / "home" / "user", 1000, 1000)
    (layer / "su").write_text("#!/bin/sh\n")
    os.chmod(layer / "su", 0o4755)
    os.symlink("etc/passwd", layer / "link")
    os.mknod(layer / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    (layer / "opaque").mkdir()
    os.setxattr(layer / "opaque", "trusted.overlay.opaque", b"y")
    return layer


def test_overlay_takes_idmapped_lower_layers_but_cannot_be_idmapped_itself(tmp_path):
    """The two kernel facts storage/remap.py is built on, tried for real."""
    from minidocker.linux import UmountFlag, mount, umount2
    from minidocker.linux.idmap import idmapped_bind, user_namespace_fd
    from minidocker.storage.overlay import overlay_options

    layer = _layer(tmp_path)
    for name in ("mapped", "upper", "work", "merged", "again"):
        (tmp_path / name).mkdir()
    userns = user_namespace_fd("0 100000 65536\n", "0 100000 65536\n")
    try:
        idmapped_bind(layer, tmp_path / "mapped", userns)
        try:
            assert os.stat(tmp_path / "mapped" / "etc" / "passwd").st_uid == 100000
            assert os.stat(tmp_path / "mapped" / "home" / "user").st_uid == 101000
            mount("overlay", tmp_path / "merged", "overlay", 0,
                  overlay_options([tmp_path / "mapped"], tmp_path / "upper", tmp_path / "work"))
            try:
                assert os.stat(tmp_path / "merged" / "etc" / "passwd").st_uid == 100000
                with pytest.raises(OSError) as err:
                    idmapped_bind(tmp_path / "merged", tmp_path / "again", userns)
                assert err.value.errno == 22, err.value   # EINVAL: overlayfs is not FS_ALLOW_IDMAP
            finally:
                umount2(tmp_path / "merged", UmountFlag.MNT_DETACH)
        finally:
            umount2(tmp_path / "mapped", UmountFlag.MNT_DETACH)
    finally:
        os.close(userns)
    assert os.stat(layer / "etc" / "passwd").st_uid == 0   # the layer itself is untouched


def test_the_chowned_copy_shifts_owners_and_keeps_the_rest(tmp_path):
    from minidocker.storage.remap import chowned_lowers

    layer = _layer(tmp_path)
    [copy] = chowned_lowers([layer], tmp_path / "cache", MAPS, MAPS)
    assert copy == tmp_path / "cache" / "100000.100000" / "layer"
    owners = lambda p: (os.lstat(p).st_uid, os.lstat(p).st_gid)  # noqa: E731
    assert owners(copy) == owners(copy / "etc" / "passwd") == owners(copy / "link") == (100000, 100000)
    assert owners(copy / "home" / "user") == (101000, 101000)
    assert stat.S_IMODE(os.stat(copy / "su").st_mode) == 0o4755   # chown cleared it; put back
    assert os.readlink(copy / "link") == "etc/passwd"
    assert os.stat(copy / "gone").st_rdev == os.makedev(0, 0)
    assert os.getxattr(copy / "opaque", "trusted.overlay.opaque") == b"y"
    assert owners(layer / "etc" / "passwd") == (0, 0)
    inode = os.stat(copy).st_ino
    assert chowned_lowers([layer], tmp_path / "cache", MAPS, MAPS) == [copy]   # made once per mapping
    assert os.stat(copy).st_ino == inode


@pytest.mark.parametrize("mode", ["idmap", "chown"])
def test_remapped_root_owns_the_images_files(cli, remap_env, mode):
    r = cli("run", "--rm", "busybox", "sh", "-c",
            "id -u; stat -c %u /etc/passwd /bin/busybox; echo added >> /etc/passwd && tail -1 /etc/passwd",
            env={**remap_env, "MINIDOCKER_USERNS_LAYERS": mode})
    assert r.code == 0 and r.out.split() == ["0", "0", "0", "added"], r
    from minidocker.image import ImageStore
    from minidocker.paths import state_roots

    roots = state_roots(remap_env)
    image = ImageStore(roots.images).get("busybox")
    passwd = [Path(layer) / "etc" / "passwd" for layer in image.layers if (Path(layer) / "etc/passwd").exists()]
    assert passwd and os.stat(passwd[0]).st_uid == 0 and b"added" not in passwd[0].read_bytes()
    copies = roots.images / "remapped" / "100000.100000"
    assert copies.is_dir() == (mode == "chown")


def test_idmapped_layers_are_chosen_here_and_unmounted_with_the_snapshot(tmp_path):
    from minidocker.mountinfo import read_mountinfo
    from minidocker.security.userns import remapped_layers
    from minidocker.storage.overlay import Snapshot

    layer = _layer(tmp_path)
    spec = {"linux": {"uidMappings": MAPS, "gidMappings": MAPS}}
    snapshot = Snapshot.create([layer], tmp_path / "container")
    snapshot.lowers, how = remapped_layers(spec, snapshot.lowers, snapshot.directory, tmp_path / "cache")
    assert how == "idmapped" and not (tmp_path / "cache").exists()   # no copy was needed
    snapshot.mount()
    try:
        assert os.stat(snapshot.rootfs / "etc" / "passwd").st_uid == 100000
    finally:
        snapshot.unmount()
    assert not [m for m in read_mountinfo() if m.mount_point.startswith(str(tmp_path))]


def test_a_bad_layers_mode_exits_125_and_creates_nothing(cli, remap_env):
    r = cli("run", "--rm", "busybox", "true", env={**remap_env, "MINIDOCKER_USERNS_LAYERS": "copy"})
    assert r.code == 125 and "invalid MINIDOCKER_USERNS_LAYERS 'copy'" in r.err, r
    assert cli("ps", "-a", "-q", env=remap_env).out.strip() == ""
    with pytest.raises(InvalidArgument):
        os.environ["MINIDOCKER_USERNS_LAYERS"] = "copy"
        try:
            from minidocker.security.userns import layers_mode

            layers_mode()
        finally:
            del os.environ["MINIDOCKER_USERNS_LAYERS"]
