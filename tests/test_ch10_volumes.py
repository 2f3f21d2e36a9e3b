"""Chapter 10: bind mounts, named and anonymous volumes, tmpfs; copy-up; the volume commands; dockerd beside us."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from imagekit import tree_of

from minidocker.engine.volumes import parse_mount, parse_tmpfs, parse_volume
from minidocker.errors import InvalidArgument
from minidocker.storage.volumes import Volume, VolumeStore, copy_up, is_mount_point, validate_name

pytestmark = pytest.mark.ch10

IMAGE = "voltest:latest"


# -- parsing Docker's syntax (no root) -------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("/host:/ctr", ("bind", "/host", "/ctr", False, "", False)),
    ("/host:/ctr:ro", ("bind", "/host", "/ctr", True, "", False)),
    ("/host:/ctr:ro,rslave", ("bind", "/host", "/ctr", True, "rslave", False)),
    ("/host:/ctr:rw,Z", ("bind", "/host", "/ctr", False, "", False)),
    ("data:/ctr", ("volume", "data", "/ctr", False, "", False)),
    ("data:/ctr:ro,nocopy", ("volume", "data", "/ctr", True, "", True)),
    ("/ctr", ("volume", "", "/ctr", False, "", False)),
])
def test_parse_volume_reads_dockers_three_forms(text, expected):
    r = parse_volume(text)
    assert (r.type, r.source, r.target, r.readonly, r.propagation, r.nocopy) == expected


@pytest.mark.parametrize("text, message", [
    ("/ctr:ro", "invalid volume specification"),        # a mode without a source
    ("data:/ctr:bogus", "invalid mode: bogus"),
    ("data:/ctr:ro,rw", "invalid mode"),                 # two of one kind
    ("a:b:c:d", "invalid volume specification"),
    (":/ctr", "invalid volume specification"),
    ("data:/ctr:rslave", "bind mounts only"),
])
def test_parse_volume_refuses_what_docker_refuses(text, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_volume(text)


def test_parse_mount_reads_every_key_and_alias():
    r = parse_mount("type=bind,src=/h,dst=/c,readonly,bind-propagation=rslave,bind-nonrecursive")
    assert (r.type, r.source, r.target, r.readonly, r.propagation, r.recursive) == ("bind", "/h", "/c", True,
                                                                                    "rslave", False)
    r = parse_mount("source=db,target=/d,volume-nocopy,volume-label=a=b,volume-opt=type=tmpfs,ro=false")
    assert (r.type, r.nocopy, r.labels, r.driver_options, r.readonly) == ("volume", True, {"a": "b"},
                                                                          {"type": "tmpfs"}, False)
    r = parse_mount("type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770")
    assert r.tmpfs_options == [f"size={64 << 20}", "mode=1770"]


@pytest.mark.parametrize("text, message", [
    ("type=bind,src=/h,dst=/c,foo=bar", "unexpected key 'foo'"),
    ("type=tmpfs,dst=/t,tmpfs-size=abc", "invalid value for tmpfs-size: abc"),
    ("type=tmpfs,dst=/t,tmpfs-mode=999", "invalid value for tmpfs-mode"),
    ("type=nfs,dst=/t", "unsupported type"),
    ("type=bind,src=/h,dst=/c,readonly=maybe", "invalid value for readonly"),
    ("type=volume,src=v,dst=/c,bind-propagation=rslave", "do not apply to type=volume"),
    ("type=bind,src,dst=/c", "must be a key=value pair"),
])
def test_parse_mount_refuses_bad_input(text, message):
    with pytest.raises(InvalidArgument, match=message):
        parse_mount(text)


@pytest.mark.parametrize("text, ok", [("/t", True), ("/t:size=64m", True), ("/t:size=10%,mode=1777", True),
                                      ("/t:size=abc", False), ("/t:size=", False), ("/t:mode=89", False)])
def test_parse_tmpfs_checks_size_and_mode_before_the_kernel_does(text, ok):
    if ok:
        assert parse_tmpfs(text).target == "/t"
    else:
        with pytest.raises(InvalidArgument):
            parse_tmpfs(text)


@pytest.mark.parametrize("name, ok", [("db", True), ("my-vol_1.2", True), ("x", False), ("-x", False),
                                      ("a/b", False), ("../etc", False), ("a b", False), ("", False)])
def test_volume_names_follow_dockers_pattern(name, ok):
    if ok:
        assert validate_name(name) == name
    else:
        with pytest.raises(InvalidArgument, match="invalid characters"):
            validate_name(name)


def test_volume_record_round_trips_and_inspects_like_docker(tmp_path):
    store = VolumeStore(tmp_path)
    volume = store.create("db", labels={"tier": "data"})
    assert store.get("db") == volume
    assert store.create("db") == volume, "creating an existing volume again returns it (Docker does)"
    shape = volume.inspect()
    assert list(shape) == ["CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"]
    assert shape["Options"] is None and shape["Labels"] == {"tier": "data"}
    assert shape["Mountpoint"] == str(tmp_path / "db" / "_data")
    assert Volume.from_json(volume.to_json(), volume.mountpoint) == volume


def test_local_driver_refuses_unknown_options(tmp_path):
    with pytest.raises(InvalidArgument, match="invalid option key: 'foo'"):
        VolumeStore(tmp_path).create("db", options={"foo": "bar"})
    assert not (tmp_path / "db").exists()


# -- copy-up ------------------------------------------------------------------------------------

def _rich_tree(root: Path) -> None:
    """Everything copy-up must keep: owners, modes (setuid, sticky), a symlink out, hard links, a fifo, a socket."""
    (root / "sub/deeper").mkdir(parents=True)
    (root / "owned").write_text("by 1000\n")
    os.chown(root / "owned", 1000, 1001)
    os.chmod(root / "owned", 0o640)
    (root / "suid").write_text("#!/bin/sh\n")
    os.chmod(root / "suid", 0o4755)
    os.chmod(root / "sub", 0o1770)
    os.chown(root / "sub/deeper", 33, 33)
    (root / "sub/deeper/hard1").write_text("same inode\n")
    os.link(root / "sub/deeper/hard1", root / "hard2")
    os.symlink("/etc/passwd", root / "passwd-link")   # must be copied as a link, never followed
    os.symlink("../..", root / "sub/up")
    os.mkfifo(root / "fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "sock"))
    sock.close()
    os.setxattr(root / "owned", "user.note", b"kept")
    os.utime(root / "owned", (1_600_000_000, 1_600_000_000))
    os.chown(root, 7, 8)
    os.chmod(root, 0o711)


@pytest.mark.root
def test_copy_up_keeps_owners_modes_links_and_special_files(tmp_path):
    source, dest = tmp_path / "src", tmp_path / "dst"
    source.mkdir()
    dest.mkdir()
    _rich_tree(source)
    count = copy_up(source, dest)
    assert tree_of(dest) == tree_of(source), "the copy differs from the image directory"
    assert count == len(tree_of(source))
    assert os.readlink(dest / "passwd-link") == "/etc/passwd", "a symlink must stay a symlink"
    assert os.stat(dest / "hard2").st_ino == os.stat(dest / "sub/deeper/hard1").st_ino, "hard link lost"
    assert os.getxattr(dest / "owned", "user.note") == b"kept"
    assert os.stat(dest / "owned").st_mtime == 1_600_000_000
    top = os.stat(dest)
    assert (top.st_uid, top.st_gid, stat.S_IMODE(top.st_mode)) == (7, 8, 0o711), "the top takes the image dir's"


@pytest.mark.root
def test_copy_up_refuses_a_symlinked_top_and_writes_through_no_symlink(tmp_path):
    target = tmp_path / "outside"
    target.mkdir()
    (tmp_path / "src").mkdir()
    os.symlink(target, tmp_path / "link")
    with pytest.raises(OSError):
        copy_up(tmp_path / "link", tmp_path / "src")       # O_NOFOLLOW on the source
    with pytest.raises(OSError):
        copy_up(tmp_path / "src", tmp_path / "link")       # and on the destination
    (tmp_path / "src" / "f").write_text("x")
    dest = tmp_path / "dst"
    dest.mkdir()
    os.symlink(target / "f", dest / "f")                   # a planted link in the volume
    with pytest.raises(FileExistsError):
        copy_up(tmp_path / "src", dest)
    assert not (target / "f").exists(), "copy-up wrote through a symlink"


# -- running containers --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def image(state_root):
    """busybox + a layer with a rich /data, a symlink escape, and VOLUME /data and /cache."""
    from minidocker.engine.images import local_image
    from minidocker.image import ImageStore
    from minidocker.image import manifest as mf
    from minidocker.paths import state_roots

    store = ImageStore(state_roots().images)
    base = local_image(store, "busybox")
    with store.staging() as stage:
        tree = stage / "layer"
        (tree / "data").mkdir(parents=True)
        _rich_tree(tree / "data")
        os.remove(tree / "data" / "sock")    # a tar cannot carry a socket
        (tree / "cache").mkdir()
        (tree / "cache" / "seed").write_text("seed\n")
        os.symlink("/../../../../../../tmp/md-ch10-escape", tree / "escape")
        os.symlink("/etc", tree / "etclink")
        layer = store.add_directory_layer(tree)
    base_layers = store.layers_of(base.id)
    config = mf.new_config([*(la.diff_id for la in base_layers), layer.diff_id],
                           {"Env": [base.config["Env"][0]], "Cmd": ["sh"], "Volumes": {"/data": {}, "/cache": {}}},
                           history=[mf.history_entry("busybox"), mf.history_entry("ch10 test layer")])
    yield store.add_image(mf.canonical_json(config), [*base_layers, layer], tags=[IMAGE])
    store.remove(IMAGE, force=True)   # later chapters' tests see the store as they expect it
    store.gc()


def _top_diff_id(image) -> str:
    from minidocker.image import ImageStore
    from minidocker.paths import state_roots

    return ImageStore(state_roots().images).layers_of(image.id)[-1].diff_id


def _volumes(state_root: Path) -> set[str]:
    root = state_root / "lib" / "volumes"
    return {n for n in os.listdir(root) if not n.startswith(".")} if root.is_dir() else set()


def _containers(state_root: Path) -> set[str]:
    root = state_root / "lib" / "containers"
    return set(os.listdir(root)) if root.is_dir() else set()


@pytest.mark.root
@pytest.mark.overlay
def test_bind_mount_read_only_and_a_missing_v_source_is_created(cli, tmp_path):
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "f").write_text("from the host\n")
    r = cli("run", "--rm", "-v", f"{tmp_path}/h:/h:ro", "busybox", "sh", "-c",
            "cat /h/f; grep ' /h ' /proc/self/mountinfo; touch /h/new")
    assert r.code == 1 and "from the host" in r.out and " ro," in r.out and "Read-only file system" in r.err, r
    r = cli("run", "--rm", "-v", f"{tmp_path}/made/here:/m", "busybox", "sh", "-c", "echo hi > /m/f")
    assert r.code == 0, r
    assert (tmp_path / "made/here/f").read_text() == "hi\n", "-v creates a missing host directory, as Docker's"


@pytest.mark.root
@pytest.mark.overlay
def test_mount_with_a_missing_bind_source_is_an_error_and_creates_nothing(cli, tmp_path, state_root):
    before = (_volumes(state_root), _containers(state_root))
    r = cli("run", "--rm", "--mount", f"type=bind,src={tmp_path}/nope,dst=/x", "busybox", "true")
    assert r.code == 125 and "bind source path does not exist" in r.err, r
    assert not (tmp_path / "nope").exists()
    assert (_volumes(state_root), _containers(state_root)) == before


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.parametrize("flags, message", [
    (["-v", "data:relative"], "must be absolute"),
    (["-v", "data:/"], "destination can't be '/'"),
    (["-v", "bad/name:/x"], "invalid characters"),
    (["-v", "../up:/x"], "invalid characters"),
    (["--mount", "type=bind,src=/tmp,dst=/x,foo=1"], "unexpected key"),
    (["--mount", "type=volume,src=/tmp,dst=/x"], "not a host path"),
    (["-v", "one1:/x", "-v", "two2:/x"], "duplicate mount point"),
    (["--tmpfs", "/t:size=lots"], "is not a size"),
    (["--mount", "type=tmpfs,dst=/t,tmpfs-size=lots"], "tmpfs-size"),
    (["--volumes-from", "no-such-container"], "no such container"),
])
def test_bad_mount_flags_exit_125_and_create_nothing(cli, state_root, flags, message):
    before = (_volumes(state_root), _containers(state_root))
    r = cli("run", "--rm", *flags, "busybox", "true")
    assert r.code == 125 and message in r.err, r
    assert (_volumes(state_root), _containers(state_root)) == before, "a refused run left a volume or container"


@pytest.mark.root
@pytest.mark.overlay
def test_named_volume_keeps_data_across_containers_rm_and_system_prune(cli, state_root):
    assert cli("run", "--name", "writer", "-v", "keepme:/d", "busybox", "sh", "-c", "echo 1 > /d/one").code == 0
    assert cli("rm", "writer").code == 0
    assert cli("system", "prune").code == 0
    r = cli("run", "--rm", "-v", "keepme:/d", "busybox", "cat", "/d/one")
    assert r.code == 0 and r.out == "1\n", r
    assert cli("volume", "rm", "keepme").code == 0
    assert "keepme" not in _volumes(state_root)


@pytest.mark.root
@pytest.mark.overlay
def test_named_volume_data_survives_kill_9_of_the_cli(cli, state_root):
    env = {**os.environ, "MINIDOCKER_ROOT": str(state_root)}
    proc = subprocess.Popen([sys.executable, "-m", "minidocker", "run", "--name", "crashy", "-v", "crashvol:/d",
                             "busybox", "sh", "-c", "echo saved > /d/f; sync; sleep 30"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    data = state_root / "lib/volumes/crashvol/_data/f"
    try:
        deadline = time.monotonic() + 20
        while not (data.exists() and data.read_text() == "saved\n") and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)   # the CLI only; its container dies with it (PDEATHSIG)
        proc.wait(10)
    finally:
        proc.kill()
        proc.communicate()
    r = cli("run", "--rm", "-v", "crashvol:/d", "busybox", "cat", "/d/f")
    assert r.code == 0 and r.out == "saved\n", r
    assert cli("rm", "-f", "crashy").code == 0
    assert cli("system", "prune").code == 0   # the crashed run's leftover mounts
    assert cli("volume", "rm", "crashvol").code == 0


@pytest.mark.root
@pytest.mark.overlay
def test_copy_up_fills_an_empty_named_volume_from_the_image_once(cli, image, state_root):
    listing = "cd /data && ls -ln owned suid sub/deeper/hard1 hard2 && readlink passwd-link && ls -ld . sub"
    r = cli("run", "--rm", "-v", "copied:/data", IMAGE, "sh", "-c", listing)
    assert r.code == 0, r
    assert "1000     1001" in r.out and "-rwsr-xr-x" in r.out and r.out.count("/etc/passwd") == 1, r
    data = state_root / "lib/volumes/copied/_data"
    from minidocker.image import ImageStore

    layer = ImageStore(state_root / "lib/images").layer_path(image.layers and _top_diff_id(image))
    assert tree_of(data) == tree_of(layer / "data"), "copy-up changed the image directory's tree"
    assert os.stat(data / "owned").st_uid == 1000 and stat.S_IMODE(os.stat(data / "suid").st_mode) == 0o4755
    (data / "owned").write_text("changed\n")
    r = cli("run", "--rm", "-v", "copied:/data", IMAGE, "cat", "/data/owned")
    assert r.out == "changed\n", "a volume that is not empty is not copied over again"
    r = cli("run", "--rm", "--mount", "src=nocopy1,dst=/data,volume-nocopy", IMAGE, "ls", "-A", "/data")
    assert r.code == 0 and r.out == "", f"nocopy volume should be empty: {r}"
    assert cli("volume", "rm", "copied", "nocopy1").code == 0


@pytest.mark.root
@pytest.mark.overlay
def test_image_volumes_are_anonymous_and_go_with_rm_but_named_ones_stay(cli, image, state_root):
    before = _volumes(state_root)
    r = cli("run", "--rm", "-v", "named1:/data", IMAGE, "cat", "/cache/seed")
    assert r.code == 0 and r.out == "seed\n", r
    assert _volumes(state_root) - before == {"named1"}, "--rm keeps named volumes and removes the anonymous"
    assert cli("run", "--name", "anon", IMAGE, "true").code == 0
    made = _volumes(state_root) - before - {"named1"}
    assert len(made) == 2 and all(len(n) == 64 for n in made), made
    inspect = json.loads(cli("volume", "inspect", *made).out)
    assert all("com.docker.volume.anonymous" in v["Labels"] for v in inspect)
    r = cli("volume", "rm", next(iter(made)))
    assert r.code == 1 and "in use by container" in r.err and "anon" in r.err, r
    assert cli("rm", "-v", "anon").code == 0
    assert _volumes(state_root) - before == {"named1"}, "rm -v removes the container's anonymous volumes"
    assert cli("volume", "rm", "named1").code == 0


@pytest.mark.root
@pytest.mark.overlay
def test_a_target_through_an_image_symlink_stays_inside_the_rootfs(cli, image, tmp_path):
    outside = Path("/tmp/md-ch10-escape")
    assert not outside.exists()
    (tmp_path / "h").mkdir()
    r = cli("run", "--rm", "-v", f"{tmp_path}/h:/escape/sub", "-v", "etcvol:/etclink", IMAGE, "sh", "-c",
            "echo in > /escape/sub/f; ls /etclink/passwd; grep -c ' /tmp/md-ch10-escape/sub ' /proc/self/mountinfo")
    assert r.code == 0 and r.out.split()[-1] == "1", r
    assert not outside.exists(), "the mount target escaped the rootfs through the image's symlink"
    assert (tmp_path / "h" / "f").read_text() == "in\n"
    copied = Path(os.environ["MINIDOCKER_ROOT"]) / "lib/volumes/etcvol/_data"
    assert (copied / "passwd").exists(), "copy-up of /etclink follows the image's link inside the image"
    assert cli("volume", "rm", "etcvol").code == 0


@pytest.mark.root
@pytest.mark.overlay
def test_read_only_root_with_a_volume_and_a_tmpfs(cli):
    r = cli("run", "--rm", "--read-only", "-v", "rovol:/d", "--tmpfs", "/t:size=1m,mode=1777", "busybox", "sh",
            "-c", "touch /d/x && touch /t/y && stat -c %a /t && grep ' /t ' /proc/self/mountinfo && touch /z")
    assert r.code == 1 and "/z: Read-only file system" in r.err, r
    assert "1777" in r.out and "size=1024k" in r.out and "noexec" in r.out, r
    assert cli("volume", "rm", "rovol").code == 0


@pytest.mark.root
@pytest.mark.overlay
def test_volumes_from_shares_mounts_and_honours_ro(cli, tmp_path):
    (tmp_path / "h").mkdir()
    assert cli("run", "--name", "source1", "-v", "shared1:/s", "-v", f"{tmp_path}/h:/h", "busybox",
               "sh", "-c", "echo x > /s/f").code == 0
    r = cli("run", "--rm", "--volumes-from", "source1:ro", "busybox", "sh", "-c", "cat /s/f; ls -d /h; touch /s/g")
    assert r.code == 1 and r.out.startswith("x\n/h") and "Read-only" in r.err, r
    assert cli("rm", "source1").code == 0
    assert cli("volume", "rm", "shared1").code == 0


@pytest.mark.root
@pytest.mark.overlay
def test_local_driver_tmpfs_volume_is_mounted_while_used(cli, state_root):
    assert cli("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2m", "ramvol").code == 0
    r = cli("run", "--rm", "-v", "ramvol:/r", "busybox", "grep", " /r ", "/proc/self/mountinfo")
    assert r.code == 0 and " - tmpfs tmpfs " in r.out and "size=2048k" in r.out, r
    assert not is_mount_point(state_root / "lib/volumes/ramvol/_data"), "unmounted after the last container"
    assert cli("volume", "rm", "ramvol").code == 0


@pytest.mark.root
@pytest.mark.overlay
def test_volume_ls_filters_and_prune(cli, state_root):
    assert cli("volume", "create", "--label", "tier=db", "lsvol-a").code == 0
    assert cli("volume", "create", "lsvol-b").code == 0
    assert cli("run", "--name", "lsuser", "-v", "lsvol-b:/b", "busybox", "true").code == 0
    names = lambda *f: set(cli("volume", "ls", "-q", *f).out.split())  # noqa: E731
    assert {"lsvol-a", "lsvol-b"} <= names()
    assert names("--filter", "label=tier=db") == {"lsvol-a"}
    assert names("--filter", "name=lsvol", "--filter", "dangling=true") == {"lsvol-a"}
    assert "lsvol-b" in names("--filter", "dangling=false")
    r = cli("volume", "ls", "--filter", "bogus=1")
    assert r.code == 125 and "invalid filter" in r.err, r
    assert "lsvol-a" not in cli("volume", "prune", "-f").out, "prune without -a keeps named volumes (Docker 23+)"
    assert "lsvol-a" in cli("volume", "prune", "-a", "-f").out
    assert "lsvol-b" in names(), "a volume in use is never pruned"
    assert cli("rm", "lsuser").code == 0
    assert cli("volume", "rm", "lsvol-b").code == 0


@pytest.mark.root
@pytest.mark.overlay
def test_rslave_bind_sees_a_mount_made_on_the_host_later_and_rprivate_does_not(cli, tmp_path, state_root):
    from minidocker.linux import MountFlag, UmountFlag, mount, umount2

    src = tmp_path / "prop"
    (src / "sub").mkdir(parents=True)
    mount(str(src), src, None, MountFlag.MS_BIND)
    try:
        mount(None, src, None, MountFlag.MS_SHARED)
        env = {**os.environ, "MINIDOCKER_ROOT": str(state_root)}
        ready = tmp_path / "ready"
        ready.mkdir()
        script = ("touch /r/$0; i=0; while [ ! -e /d/sub/flag ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done;"
                  " ls /d/sub")
        procs = {mode: subprocess.Popen([sys.executable, "-m", "minidocker", "run", "--rm", "-v", f"{ready}:/r",
                                         "-v", f"{src}:/d:{mode}", "busybox", "sh", "-c", script, mode],
                                        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for mode in ("rslave", "rprivate")}
        deadline = time.monotonic() + 30
        while len(os.listdir(ready)) < 2 and time.monotonic() < deadline:   # both containers run
            time.sleep(0.05)
        mount("tmpfs", src / "sub", "tmpfs", 0, "size=64k")
        try:
            (src / "sub" / "flag").write_text("")
            outs = {mode: p.communicate(timeout=30) for mode, p in procs.items()}
        finally:
            umount2(src / "sub", UmountFlag.MNT_DETACH)
        assert outs["rslave"][0].strip() == "flag", outs
        assert outs["rprivate"][0].strip() == "", outs
    finally:
        umount2(src, UmountFlag.MNT_DETACH)
    private = tmp_path / "private"
    private.mkdir()
    mount(str(private), private, None, MountFlag.MS_BIND)
    try:
        mount(None, private, None, MountFlag.MS_PRIVATE)
        r = cli("run", "--rm", "-v", f"{private}:/d:rslave", "busybox", "true")
    finally:
        umount2(private, UmountFlag.MNT_DETACH)
    assert r.code == 125 and "not a shared or slave mount" in r.err, r


def _mounts_made_inside(run: list[str], env: dict, base: Path) -> dict[str, tuple]:
    """``-v SRC:/d:MODE`` with SRC on a shared mount that already holds a tmpfs at SRC/pre; the
    container (CAP_SYS_ADMIN) mounts a tmpfs at /d/sub and writes in it. Per mode: exit status, what
    the container saw in /d/pre, whether the host sees the container's mount at SRC/sub and its file,
    and whether the host's own SRC/pre is still there afterwards."""
    from minidocker.linux import MountFlag, UmountFlag, mount, umount2

    src = base / "src"
    (src / "sub").mkdir(parents=True)
    (src / "pre").mkdir()
    seen = {}
    mount(str(src), src, None, MountFlag.MS_BIND)
    try:
        mount(None, src, None, MountFlag.MS_SHARED)
        mount("tmpfs", src / "pre", "tmpfs", 0, "size=64k")
        (src / "pre" / "kept").write_text("")
        for mode in ("rshared", "rslave", "rprivate"):
            script = f"mount -t tmpfs -o size=64k inside /d/sub && echo {mode} > /d/sub/made-inside && ls /d/pre"
            out = subprocess.run([*run, "--cap-add", "SYS_ADMIN", "-v", f"{src}:/d:{mode}", "busybox", "sh", "-c",
                                  script], env=env, capture_output=True, text=True, timeout=120)
            on_host = os.path.ismount(src / "sub")
            seen[mode] = (out.returncode, out.stdout.strip() or out.stderr.strip(), on_host,
                          (src / "sub" / "made-inside").read_text().strip() if on_host else "",
                          (src / "pre" / "kept").exists())
            if on_host:
                umount2(src / "sub", UmountFlag.MNT_DETACH)
    finally:
        umount2(src, UmountFlag.MNT_DETACH)   # and the tmpfs at pre with it
    return seen


_MADE_INSIDE = {"rshared": (0, "kept", True, "rshared", True),   # the container's mount reaches the host
                "rslave": (0, "kept", False, "", True),          # receives only
                "rprivate": (0, "kept", False, "", True)}


@pytest.mark.root
@pytest.mark.overlay
def test_rshared_bind_sends_a_mount_made_inside_to_the_host_and_the_others_do_not(state_root, tmp_path):
    """Docker's rshared on a shared source: both ways. Nothing else of the container reaches the host (the
    leak detector), and the host's mounts under the source survive the container's pivot_root (its old
    root is made a slave before it is detached: an unmount would propagate to the host's peers)."""
    run = [sys.executable, "-m", "minidocker", "run", "--rm", "--network", "none"]
    before = _mount_ids()
    seen = _mounts_made_inside(run, {**os.environ, "MINIDOCKER_ROOT": str(state_root)}, tmp_path)
    assert seen == _MADE_INSIDE, seen
    assert before <= _mount_ids(), "a container's pivot_root unmounted mounts of the host"


def _mount_ids() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {line.split()[0] for line in f}


# -- the same cases under a private dockerd ---------------------------------------------------------

# What a container reports about the mount at $1: per-mount ro/rw and flags, fs type, tmpfs size/mode.
_PROBE = ("probe() { awk -v t=\"$1\" '$5==t { n=split($6,o,\",\"); f=o[1]; for(i=2;i<=n;i++) "
          "if (o[i] ~ /^no/) f=f\",\"o[i]; for(i=7;i<=NF;i++) if ($i==\"-\") { s=$(i+3); m=\"\"; k=split(s,p,\",\"); "
          "for(j=1;j<=k;j++) if (p[j] ~ /^(size|mode)=/) m=m\" \"p[j]; print t, f, $(i+1) m } }' /proc/self/mountinfo; }; ")
_LIST = "find {d} | sort | xargs stat -c '%n %u:%g %a %F %h'"

DIFF_CASES = {
    "bind": (["-v", "{h}/src:/d"], "probe /d; cat /d/f"),
    "bind-ro": (["-v", "{h}/src:/d:ro"], "probe /d; touch /d/x 2>&1 | sed 's/.*: //'"),
    "bind-mount-ro": (["--mount", "type=bind,src={h}/src,dst=/d,readonly"], "probe /d"),
    "bind-file": (["-v", "{h}/src/f:/etc/motd:ro"], "probe /etc/motd; cat /etc/motd"),
    "bind-nonrecursive": (["--mount", "type=bind,src={h}/src,dst=/d,bind-nonrecursive"], "probe /d"),
    "bind-missing-v": (["-v", "{h}/made:/d"], "probe /d; ls -ld /d | cut -c1-10"),
    "bind-missing-mount": (["--mount", "type=bind,src={h}/nope,dst=/d"], "true"),
    "bind-symlink-target": (["-v", "{h}/src:/escape/sub"], "cat /escape/sub/f; ls /tmp/md-ch10-escape/sub"),
    "named-copy-up": (["-v", "cu-{run}:/data"], "probe /data; " + _LIST.format(d="/data")),
    "named-nocopy": (["--mount", "type=volume,src=nc-{run},dst=/data,volume-nocopy"], "ls -A /data; echo end"),
    "anonymous": (["-v", "/cache2"], "probe /cache2; " + _LIST.format(d="/cache")),
    "tmpfs": (["--tmpfs", "/t:size=1m"], "probe /t"),
    "tmpfs-mount": (["--mount", "type=tmpfs,dst=/t,tmpfs-size=2m,tmpfs-mode=1770"], "probe /t; stat -c %a /t"),
    "read-only-root": (["--read-only", "-v", "ro-{run}:/d", "--tmpfs", "/t"],
                       "touch /d/a && touch /t/b && echo ok; touch /z 2>&1 | sed 's/.*: //'"),
    "bad-name": (["-v", "bad/name:/x"], "true"),
    "bad-mode": (["-v", "vol-{run}:/x:bogus"], "true"),
    "mode-without-source": (["-v", "/x:ro"], "true"),
    "unknown-key": (["--mount", "type=bind,src={h}/src,dst=/x,foo=bar"], "true"),
    "relative-target": (["-v", "vol-{run}:relative/x"], "true"),
    "anonymous-readonly": (["--mount", "dst=/x,readonly"], "true"),
    "tmpfs-with-source": (["--mount", "type=tmpfs,src=abc,dst=/x"], "true"),
    "tmpfs-bad-size": (["--mount", "type=tmpfs,dst=/t,tmpfs-size=lots"], "true"),
}


@pytest.fixture(scope="module")
def docker_images(dockerd, image, state_root, tmp_path_factory):
    """Our busybox and test image, saved by minidocker and loaded by docker."""
    archive = tmp_path_factory.mktemp("ch10") / "images.tar"
    out = subprocess.run([sys.executable, "-m", "minidocker", "save", "-o", str(archive), "busybox", IMAGE],
                         capture_output=True, text=True, env={**os.environ, "MINIDOCKER_ROOT": str(state_root)})
    assert out.returncode == 0, out.stderr
    dockerd.docker("load", "-i", str(archive))
    yield dockerd
    # Leave the session's dockerd as the other chapters' tests expect it: no container, volume or image of ours.
    left = dockerd.docker("ps", "-aq", check=False).split()
    if left:
        dockerd.docker("rm", "-f", "-v", *left, check=False)
    dockerd.docker("volume", "prune", "-f", check=False)
    dockerd.docker("rmi", IMAGE, check=False)


def _docker(dockerd, *args: str) -> tuple[int, str, str]:
    out = subprocess.run(["docker", *args], env=dockerd.env, capture_output=True, text=True, timeout=120)
    return out.returncode, out.stdout, out.stderr


def _both(cli, dockerd, flags: list[str], script: str, base: Path) -> dict[str, tuple[int, str, str]]:
    results = {}
    for run in ("docker", "minidocker"):
        h = base / run
        (h / "src").mkdir(parents=True, exist_ok=True)
        (h / "src" / "f").write_text("host file\n")
        args = [f.format(h=h, run=run) for f in flags]
        if run == "docker":
            results[run] = _docker(dockerd, "run", "--rm", "--network", "none", *args, IMAGE, "sh", "-c",
                                   _PROBE + script)
        else:
            r = cli("run", "--rm", *args, IMAGE, "sh", "-c", _PROBE + script)
            results[run] = (r.code, r.out, r.err)
    return results


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.docker
@pytest.mark.parametrize("case", list(DIFF_CASES))
def test_container_sees_the_same_mounts_as_under_docker(case, cli, docker_images, tmp_path):
    flags, script = DIFF_CASES[case]
    results = _both(cli, docker_images, flags, script, tmp_path)
    (dcode, dout, derr), (mcode, mout, merr) = results["docker"], results["minidocker"]
    report = f"docker: {dcode}\n{dout}{derr}\nminidocker: {mcode}\n{mout}{merr}"
    assert (dcode == 0) == (mcode == 0) and dcode == mcode, f"exit codes differ\n{report}"
    assert mout.replace(str(tmp_path / "minidocker"), "H") == dout.replace(str(tmp_path / "docker"), "H"), \
        f"the container sees something else\n{report}"
    for run in ("docker", "minidocker"):   # what -v creates on the host, and nothing through the image's link
        assert (tmp_path / run / "made").is_dir() == (case == "bind-missing-v"), report
    assert not Path("/tmp/md-ch10-escape").exists()
    for run in ("docker", "minidocker"):
        for name in (f"cu-{run}", f"nc-{run}", f"ro-{run}"):
            _remove_volume(cli, docker_images, run, name)


def _remove_volume(cli, dockerd, run: str, name: str) -> None:
    if run == "docker":
        _docker(dockerd, "volume", "rm", "-f", name)
    else:
        cli("volume", "rm", "-f", name)


def _volume_names(cli, dockerd, run: str, *flags: str) -> set[str]:
    if run == "docker":
        return set(_docker(dockerd, "volume", "ls", "-q", *flags)[1].split())
    return set(cli("volume", "ls", "-q", *flags).out.split())


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.docker
def test_volume_inspect_has_dockers_json_shape(cli, docker_images):
    created = ["--label", "tier=db", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m"]
    shapes = {}
    for run in ("docker", "minidocker"):
        for name, flags in (("shape-opts", created), ("shape-plain", [])):
            if run == "docker":
                assert _docker(docker_images, "volume", "create", *flags, name)[0] == 0
            else:
                assert cli("volume", "create", *flags, name).code == 0
        out = (_docker(docker_images, "volume", "inspect", "shape-opts", "shape-plain")[1] if run == "docker"
               else cli("volume", "inspect", "shape-opts", "shape-plain").out)
        shapes[run] = json.loads(out)
        for name in ("shape-opts", "shape-plain"):
            _remove_volume(cli, docker_images, run, name)
    for ours, theirs in zip(shapes["minidocker"], shapes["docker"]):
        assert list(ours) == list(theirs), "keys differ"
        assert ours["Mountpoint"].endswith(f"/volumes/{ours['Name']}/_data")
        assert theirs["Mountpoint"].endswith(f"/volumes/{theirs['Name']}/_data")
        assert time.strptime(ours["CreatedAt"][:19], "%Y-%m-%dT%H:%M:%S")
        for key in ("Driver", "Labels", "Name", "Options", "Scope"):
            assert ours[key] == theirs[key], f"{key}: ours {ours[key]!r}, docker's {theirs[key]!r}"


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.docker
def test_volume_ls_filters_and_anonymous_volumes_with_rm_match_docker(cli, docker_images):
    filters = [[], ["--filter", "label=tier"], ["--filter", "label=tier=db"], ["--filter", "name=flt-"],
               ["--filter", "dangling=true"], ["--filter", "dangling=false"], ["--filter", "driver=local"]]
    seen: dict[str, list] = {}
    for run in ("docker", "minidocker"):
        before = _volume_names(cli, docker_images, run)
        if run == "docker":
            _docker(docker_images, "volume", "create", "--label", "tier=db", "flt-a")
            _docker(docker_images, "volume", "create", "--label", "tier=web", "flt-b")
            _docker(docker_images, "run", "--name", "flt-user", "--network", "none", "-v", "flt-c:/c", "busybox",
                    "true")
            _docker(docker_images, "run", "--rm", "--network", "none", IMAGE, "true")
        else:
            cli("volume", "create", "--label", "tier=db", "flt-a")
            cli("volume", "create", "--label", "tier=web", "flt-b")
            cli("run", "--name", "flt-user", "-v", "flt-c:/c", "busybox", "true")
            cli("run", "--rm", IMAGE, "true")
        seen[run] = [sorted(_volume_names(cli, docker_images, run, *f) - before) for f in filters]
        if run == "docker":
            _docker(docker_images, "run", "--name", "anon-user", "--network", "none", IMAGE, "true")
            made = _volume_names(cli, docker_images, run) - before
            _docker(docker_images, "rm", "-v", "anon-user")
            _docker(docker_images, "rm", "flt-user")
        else:
            cli("run", "--name", "anon-user", IMAGE, "true")
            made = _volume_names(cli, docker_images, run) - before
            cli("rm", "-v", "anon-user")
            cli("rm", "flt-user")
        seen[run].append(len(made))
        seen[run].append(sorted(_volume_names(cli, docker_images, run) - before))
        for name in ("flt-a", "flt-b", "flt-c"):
            _remove_volume(cli, docker_images, run, name)
    assert seen["minidocker"] == seen["docker"], f"ours {seen['minidocker']}\ndocker's {seen['docker']}"


@pytest.mark.root
@pytest.mark.overlay
def test_two_runs_filling_one_new_volume_at_once_both_succeed(cli, image, state_root):
    env = {**os.environ, "MINIDOCKER_ROOT": str(state_root)}
    procs = [subprocess.Popen([sys.executable, "-m", "minidocker", "run", "--rm", "-v", "racevol:/data", IMAGE,
                               "cat", "/data/owned"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    outs = [p.communicate(timeout=60) + (p.returncode,) for p in procs]
    assert all(code == 0 and out == "by 1000\n" for out, _, code in outs), outs
    assert cli("volume", "rm", "racevol").code == 0


@pytest.mark.root
@pytest.mark.overlay
def test_a_run_without_mounts_imports_nothing_of_volumes(state_root):
    """The fast path: no -v, no --mount, no image VOLUME -> engine/volumes.py (and csv, re) stay unimported."""
    code = ("import sys; from minidocker.cli.main import main; code = main(['run', '--rm', 'busybox', 'true']);"
            "print(code, sorted(m for m in ('minidocker.engine.volumes', 'minidocker.storage.volumes', 'csv')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "MINIDOCKER_ROOT": str(state_root)})
    assert out.stdout.strip() == "0 []", f"expected '0 []', found {out.stdout!r} {out.stderr}"


@pytest.mark.root
@pytest.mark.overlay
def test_local_driver_bind_device_and_volume_opt_on_first_use(cli, state_root, tmp_path):
    (tmp_path / "exported").mkdir()
    (tmp_path / "exported" / "x").write_text("from the device\n")
    assert cli("volume", "create", "-o", "type=none", "-o", f"device={tmp_path}/exported", "-o", "o=bind",
               "bindvol").code == 0
    r = cli("run", "--rm", "-v", "bindvol:/b", "busybox", "sh", "-c", "cat /b/x; echo back > /b/y")
    assert r.code == 0 and r.out == "from the device\n", r
    assert (tmp_path / "exported" / "y").read_text() == "back\n", "the volume is the bound device directory"
    r = cli("run", "--rm", "--mount", "type=volume,src=optvol,dst=/o,volume-opt=type=tmpfs,volume-opt=device=tmpfs,"
            "volume-opt=o=size=1m", "busybox", "grep", " /o ", "/proc/self/mountinfo")
    assert r.code == 0 and "tmpfs" in r.out and "size=1024k" in r.out, r
    assert json.loads(cli("volume", "inspect", "optvol").out)[0]["Options"] == {"type": "tmpfs", "device": "tmpfs",
                                                                               "o": "size=1m"}
    for name in ("bindvol", "optvol"):
        assert not is_mount_point(state_root / f"lib/volumes/{name}/_data")
        assert cli("volume", "rm", name).code == 0
    assert (tmp_path / "exported" / "x").exists(), "volume rm of a bound device leaves the device's files"


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.docker
def test_propagation_matches_docker_for_a_host_mount_made_later(docker_images, state_root, tmp_path):
    """rslave sees a tmpfs the host mounts under the source after the start, rprivate does not: both engines."""
    from minidocker.linux import MountFlag, UmountFlag, mount, umount2

    src, ready = tmp_path / "prop", tmp_path / "ready"
    (src / "sub").mkdir(parents=True)
    ready.mkdir()
    mount(str(src), src, None, MountFlag.MS_BIND)
    try:
        mount(None, src, None, MountFlag.MS_SHARED)
        script = ("touch /r/$0; i=0; while [ ! -e /d/sub/flag ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done;"
                  " ls /d/sub")
        procs = {}
        for engine in ("docker", "minidocker"):
            for mode in ("rslave", "rprivate"):
                flags = ["-v", f"{ready}:/r", "-v", f"{src}:/d:{mode}", "busybox", "sh", "-c", script,
                         f"{engine}-{mode}"]
                argv = (["docker", "run", "--rm", "--network", "none", *flags] if engine == "docker"
                        else [sys.executable, "-m", "minidocker", "run", "--rm", *flags])
                env = docker_images.env if engine == "docker" else {**os.environ, "MINIDOCKER_ROOT": str(state_root)}
                procs[(engine, mode)] = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                                                         stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while len(os.listdir(ready)) < 4 and time.monotonic() < deadline:   # all four containers run
            time.sleep(0.05)
        mount("tmpfs", src / "sub", "tmpfs", 0, "size=64k")
        try:
            (src / "sub" / "flag").write_text("")
            outs = {key: p.communicate(timeout=60) for key, p in procs.items()}
        finally:
            umount2(src / "sub", UmountFlag.MNT_DETACH)
    finally:
        umount2(src, UmountFlag.MNT_DETACH)
    seen = {key: out.strip() for key, (out, _) in outs.items()}
    assert seen == {("docker", "rslave"): "flag", ("docker", "rprivate"): "",
                    ("minidocker", "rslave"): "flag", ("minidocker", "rprivate"): ""}, outs


@pytest.mark.root
@pytest.mark.overlay
@pytest.mark.docker
def test_mounts_made_inside_propagate_as_under_docker(docker_images, tmp_path):
    """rshared sends the container's mount to the host, rslave and rprivate do not: dockerd and runc agree."""
    seen = _mounts_made_inside(["docker", "run", "--rm", "--network", "none"], docker_images.env, tmp_path)
    assert seen == _MADE_INSIDE, seen


def test_host_config_of_the_engine_api_becomes_the_same_requests_as_the_flags():
    from minidocker.engine.volumes import requests_from_host_config

    host = {"Binds": ["/srv:/srv:ro", "data:/data"],
            "Mounts": [{"Type": "bind", "Source": "/h", "Target": "/c", "ReadOnly": True,
                        "BindOptions": {"Propagation": "rslave", "NonRecursive": True}},
                       {"Type": "volume", "Source": "db", "Target": "/db",
                        "VolumeOptions": {"NoCopy": True, "Labels": {"a": "b"},
                                          "DriverConfig": {"Name": "local", "Options": {"type": "tmpfs"}}}},
                       {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1048576, "Mode": 0o1777}}],
            "Tmpfs": {"/run": "size=8m", "/x": ""}}
    got = requests_from_host_config(host)
    flags = [parse_volume("/srv:/srv:ro"), parse_volume("data:/data"),
             parse_mount("type=bind,src=/h,dst=/c,readonly,bind-propagation=rslave,bind-nonrecursive"),
             parse_mount("type=volume,src=db,dst=/db,volume-nocopy,volume-label=a=b,volume-opt=type=tmpfs"),
             parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1777"), parse_tmpfs("/run:size=8m"),
             parse_tmpfs("/x")]
    assert got == flags
    with pytest.raises(InvalidArgument):
        requests_from_host_config({"Mounts": [{"Type": "nfs", "Target": "/n"}]})
