"""Chapter 11: user namespaces beyond the basics: the image's layers under --userns-remap, and rootless.

- remapped layers: the image's files (host uid 0) are the container root's inside, through
  idmapped layer mounts (the kernel's facts checked for real: overlayfs takes idmapped lower
  layers, an overlay mount cannot itself be idmapped), or Docker's chowned copy per mapping;
  the host's layer files stay as they were;
- rootless: ``minidocker run`` by a real unprivileged user (made with useradd here, removed
  after): root inside, the user's uid outside (its subordinate ids for other users), the host's
  files no more writable than the user's, Docker's capabilities and seccomp inside, state under
  the user's home, exec, removal of what subordinate ids wrote, an image with whiteouts and an
  opaque directory (user.overlay.* marks), clear refusals (bridge, limits without a delegated
  cgroup, --privileged, named volumes), ``minidocker-runc run`` of a ``runtime spec --rootless``
  bundle against runc's, and limits in the pure cgroup v2 qemu guest with a delegated subtree.
"""

from __future__ import annotations

import os
import re
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
    from minidocker.linux.idmap import idmapped_bind
    from minidocker.namespaces import user_namespace_fd
    from minidocker.storage.overlay import overlay_options

    layer = _layer(tmp_path)
    for name in ("mapped", "upper", "work", "merged", "again"):
        (tmp_path / name).mkdir()
    userns = user_namespace_fd([{"containerID": 0, "hostID": 100000, "size": 65536}],
                               [{"containerID": 0, "hostID": 100000, "size": 65536}])
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
    if mode == "chown":   # a copy goes with its layer: gc drops those of layers no image has
        made = sorted(os.listdir(copies))
        (copies / ("0" * 64)).mkdir()
        (copies / f".{'1' * 64}.999").mkdir()   # a half-made one, its maker gone
        ImageStore(roots.images).gc()
        assert sorted(os.listdir(copies)) == made


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


def test_layers_on_a_filesystem_without_idmap_support_fall_back_to_the_copy(tmp_path):
    """A layer store inside an overlay mount (which cannot be idmapped: EINVAL) gets Docker's copy."""
    from minidocker.linux import UmountFlag, mount, umount2
    from minidocker.security.userns import remapped_layers
    from minidocker.storage.overlay import overlay_options

    store = tmp_path / "store"
    _layer(store)
    os.unlink(store / "layer" / "gone")   # a whiteout in an overlay's lower layer would hide itself
    for name in ("upper", "work", "merged"):
        (tmp_path / name).mkdir()
    mount("overlay", tmp_path / "merged", "overlay", 0,
          overlay_options([store], tmp_path / "upper", tmp_path / "work"))
    try:
        spec = {"linux": {"uidMappings": MAPS, "gidMappings": MAPS}}
        lowers, how = remapped_layers(spec, [tmp_path / "merged" / "layer"], tmp_path / "container",
                                      tmp_path / "cache")
        assert how == "chowned" and lowers == [tmp_path / "cache" / "100000.100000" / "layer"], lowers
        assert os.stat(lowers[0] / "etc" / "passwd").st_uid == 100000
        lowers_dir = tmp_path / "container" / "lowers"   # the idmapped attempt left no mount behind
        assert not lowers_dir.exists() or not any(os.path.ismount(p) for p in lowers_dir.iterdir())
    finally:
        umount2(tmp_path / "merged", UmountFlag.MNT_DETACH)


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


# ---------------------------------------------------------------- rootless: a real unprivileged user

REPO = Path(__file__).resolve().parent.parent
NO_CGROUP_WARNING = "rootless: no cgroup"


class RootlessUser:
    """A user made for this test session (useradd), with a home in a temporary directory."""

    def __init__(self) -> None:
        import pwd

        self.name = f"mdrl{os.getpid() % 1000000}"
        self.home = Path(tempfile.mkdtemp(prefix="minidocker-ch11-rootless-"))
        os.chmod(self.home, 0o755)
        subprocess.run(["userdel", self.name], capture_output=True)   # left by a session that was killed
        subprocess.run(["useradd", "--home-dir", str(self.home), "--no-create-home", "--user-group",
                        "--shell", "/bin/sh", self.name], check=True, capture_output=True, text=True)
        entry = pwd.getpwnam(self.name)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        os.chown(self.home, self.uid, self.gid)
        from minidocker.security.userns import subordinate

        if subordinate("/etc/subuid", self.name) is None or subordinate("/etc/subgid", self.name) is None:
            # useradd adds a range when /etc/subuid exists (login.defs SUB_UID_*); else we do, by usermod
            subprocess.run(["usermod", "--add-subuids", "300000-365535", "--add-subgids", "300000-365535",
                            self.name], check=True, capture_output=True, text=True)
        self.subuid = subordinate("/etc/subuid", self.name)
        self.subgid = subordinate("/etc/subgid", self.name)
        self.lib = self.home / ".local" / "share" / "minidocker"

    def run(self, *args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
        """A command as this user: its own ids, no supplementary groups, its own HOME, no MINIDOCKER_ROOT."""
        env = {"HOME": str(self.home), "PATH": os.environ["PATH"], "PYTHONPATH": str(REPO), "USER": self.name}
        return subprocess.run(list(args), user=self.uid, group=self.gid, extra_groups=[], env=env,
                              cwd=self.home, capture_output=True, text=True, timeout=timeout, **kwargs)

    def minidocker(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        import sys

        return self.run(sys.executable, "-m", "minidocker", *args, **kwargs)

    def remove(self) -> None:
        subprocess.run(["userdel", self.name], check=True, capture_output=True, text=True)
        shutil.rmtree(self.home, ignore_errors=True)
        for path in ("/etc/subuid", "/etc/subgid"):   # userdel removes the user's ranges: checked
            with open(path) as f:
                assert not any(line.startswith(self.name + ":") for line in f), path


@pytest.fixture(scope="module")
def user():
    from minidocker.security.rootless import check_rootless

    if shutil.which("useradd") is None or shutil.which("newuidmap") is None:
        from conftest import missing_feature

        missing_feature("rootless tests need useradd and newuidmap (Debian's passwd and uidmap packages)")
    check_rootless()
    made = RootlessUser()
    try:
        yield made
    finally:
        made.remove()


def test_rootless_is_root_inside_and_the_user_outside(user):
    data = user.home / "data"
    data.mkdir(exist_ok=True)
    os.chown(data, user.uid, user.gid)
    r = user.minidocker("run", "--rm", "-v", f"{data}:/data", "busybox", "sh", "-c",
                        "id -u; cat /proc/self/uid_map; touch /data/made-inside; echo ok")
    assert r.returncode == 0, r
    lines = [line.split() for line in r.stdout.splitlines()]
    assert lines[0] == ["0"] and lines[1] == ["0", str(user.uid), "1"], r
    assert lines[2] == ["1", str(user.subuid[0]), "65536"] and lines[3] == ["ok"], r   # newuidmap's range
    assert os.stat(data / "made-inside").st_uid == user.uid   # the host sees the user's uid
    os.chmod(data, 0o777)
    r = user.minidocker("run", "--rm", "--user", "1000:1000", "-v", f"{data}:/data", "busybox", "sh", "-c",
                        "id -u; touch /data/made-by-1000")
    assert r.returncode == 0 and r.stdout.split() == ["1000"], r
    made = os.stat(data / "made-by-1000")   # container uid 1000 is the user's subordinate id 999 on the host
    assert (made.st_uid, made.st_gid) == (user.subuid[0] + 999, user.subgid[0] + 999), made
    assert NO_CGROUP_WARNING in r.stderr, r   # said, not silent: hybrid cgroups are never delegated


def test_rootless_process_runs_as_the_user_on_the_host_and_exec_enters_it(user):
    from minidocker.engine.container import list_containers
    from minidocker.paths import StateRoots

    import sys

    env = {"HOME": str(user.home), "PATH": os.environ["PATH"], "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "minidocker", "run", "--rm", "--name", "sleeper", "busybox",
                             "sleep", "30"],
                            user=user.uid, group=user.gid, extra_groups=[], env=env, cwd=user.home,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    pid = None
    try:
        roots = StateRoots(lib=user.lib, run=user.lib / "run")
        for _ in range(100):
            pid = next((c.pid for c in list_containers(roots) if c.status == "running" and c.pid), None)
            if pid:
                break
            time.sleep(0.1)
        assert pid, proc
        with open(f"/proc/{pid}/status") as f:
            uid_line = next(line for line in f if line.startswith("Uid:"))
        assert uid_line.split()[1:] == [str(user.uid)] * 4, uid_line
        # exec joins the user namespace first (its capabilities let it join the others), then the rest
        r = user.minidocker("exec", "sleeper", "sh", "-c", "id -u; grep -E '^(CapEff|Seccomp):' /proc/self/status; "
                            "tr '\\0' ' ' < /proc/1/cmdline")
        assert r.returncode == 0, r
        assert r.stdout.split() == ["0", "CapEff:", "00000000a80425fb", "Seccomp:", "2", "sleep", "30"], r
    finally:
        if pid:
            os.kill(pid, 9)
        else:
            proc.kill()
        proc.communicate(timeout=30)


def test_rootless_root_cannot_write_what_the_user_cannot(user):
    r = user.minidocker("run", "--rm", "-v", "/etc:/hostetc", "busybox", "sh", "-c",
                        "stat -c %u /hostetc/passwd; cat /hostetc/shadow; echo x >> /hostetc/passwd; "
                        "touch /hostetc/minidocker-rootless; chown 0 /hostetc/passwd; echo end")
    assert r.returncode == 0 and r.stdout.split() == ["65534", "end"], r   # host root is unmapped: nobody
    assert r.stderr.count("Permission denied") == 3 and "Operation not permitted" in r.stderr, r
    assert not os.path.exists("/etc/minidocker-rootless")


def test_rootless_keeps_dockers_defaults_inside(user):
    r = user.minidocker("run", "--rm", "busybox", "sh", "-c",
                        "grep -E '^(CapEff|Seccomp):' /proc/self/status; mount -t tmpfs x /mnt || echo refused")
    assert r.returncode == 0, r
    assert r.stdout.split() == ["CapEff:", "00000000a80425fb", "Seccomp:", "2", "refused"], r


def test_rootless_state_lives_under_the_users_home(user):
    r = user.minidocker("run", "--name", "kept", "busybox", "sh", "-c",
                        "echo hi > /f; rm -r /etc && mkdir /etc; rm /bin/ls")
    assert r.returncode == 0, r
    assert "kept" in user.minidocker("ps", "-a").stdout
    short = user.minidocker("ps", "-a", "-q").stdout.split()
    [directory] = [d for d in (user.lib / "containers").glob(f"{short[0]}*")] if len(short) == 1 else [None]
    assert (directory / "upper" / "f").read_text() == "hi\n" and os.stat(directory).st_uid == user.uid
    assert (user.lib / "images").is_dir()
    # overlay's marks as an unprivileged root may write them (mounted with userxattr): user.overlay.*
    assert os.getxattr(directory / "upper" / "etc", "user.overlay.opaque") == b"y"
    assert os.stat(directory / "upper" / "bin" / "ls").st_rdev == os.makedev(0, 0)   # a whiteout
    assert user.minidocker("rm", "kept").returncode == 0
    assert not directory.exists()


def test_rootless_removal_leaves_nothing_of_subordinate_ids(user):
    """Files of --user 1000 (a subordinate id) in sticky /tmp, overlay's mode-000 work dir: all deleted."""
    r = user.minidocker("run", "--rm", "--user", "1000", "busybox", "sh", "-c", "mkdir /tmp/d && touch /tmp/d/f")
    assert r.returncode == 0, r
    r = user.minidocker("run", "--name", "kept-1000", "--user", "1000", "busybox", "touch", "/tmp/x")
    assert r.returncode == 0 and user.minidocker("rm", "kept-1000").returncode == 0, r
    containers = user.lib / "containers"
    for _ in range(100):   # --rm and rm delete in a detached process (engine/remove.delete_later)
        left = [p.name for p in containers.iterdir() if p.name != ".names"]
        if not left:
            break
        time.sleep(0.1)
    assert not left, left


def test_rootless_state_roots_follow_xdg_like_rootless_docker(user):
    import sys

    code = "from minidocker.paths import state_roots; r = state_roots(); print(r.lib, r.run)"
    assert user.run(sys.executable, "-c", code).stdout.split() == [str(user.lib), str(user.lib / "run")]
    xdg = {"XDG_DATA_HOME": str(user.home / "data"), "XDG_RUNTIME_DIR": f"/run/user/{user.uid}"}
    r = user.run(sys.executable, "-c", code.replace("state_roots()", f"state_roots({xdg!r})"))
    assert r.stdout.split() == [str(user.home / "data" / "minidocker"), f"/run/user/{user.uid}/minidocker"], r


def test_rootless_loads_and_runs_an_image_with_whiteouts_and_opaque_dirs(user):
    """The user's store keeps overlay's opaque mark as user.overlay.opaque (trusted.* needs host root)."""
    from imagekit import layer_tar, whiteout_image_layers, write_layout

    base, top = whiteout_image_layers()
    busybox = layer_tar([("dir", "bin"), ("file", "bin/busybox", Path(shutil.which("busybox")).read_bytes(), 0o755)])
    layout = user.home / "oci"
    write_layout(layout, [busybox, base, top])
    subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(layout)], check=True)
    r = user.minidocker("load", "-i", str(layout), "--name", "whiteouts")
    assert r.returncode == 0, r
    r = user.minidocker("run", "--rm", "whiteouts", "/bin/busybox", "sh", "-c",
                        "cd /data && /bin/busybox ls opq && /bin/busybox cat replace && /bin/busybox ls")
    assert r.returncode == 0, r
    assert r.stdout.split() == ["new.txt", "now", "a", "file", "hard-a", "hard-b", "keep", "link", "opq",
                                "replace"], r


@pytest.mark.parametrize("flags,message", [
    (["--network", "bridge"], "cannot use a bridge network rootless: it needs a user-space network stack"),
    (["-p", "8080:80"], "cannot use a bridge network rootless"),
    (["--memory", "10m"], "cannot apply resource limits rootless: no cgroup is delegated to this user"),
    (["--privileged"], "cannot run --privileged rootless"),
    (["-v", "named:/data"], "cannot use named volumes rootless"),
])
def test_rootless_refuses_what_it_cannot_do_here(user, flags, message):
    r = user.minidocker("run", "--rm", *flags, "busybox", "true")
    assert r.returncode == 125 and message in r.stderr, r
    assert user.minidocker("ps", "-a", "-q").stdout.strip() == ""


def test_rootless_host_network_gets_the_hosts_sys_bound(user):
    r = user.minidocker("run", "--rm", "--network", "host", "busybox", "sh", "-c",
                        "test -d /sys/class/net/lo && grep -c ' /sys ' /proc/mounts")
    assert r.returncode == 0 and r.stdout.strip() == "1", r


@pytest.mark.runc
def test_rootless_runtime_bundle_runs_like_runc(user):
    """``runtime spec --rootless`` then ``minidocker-runc run`` as the user; runc run of the same bundle."""
    import sys

    bundle = user.home / "bundle"
    script = ("from pathlib import Path; import shutil\n"
              "from minidocker.image.busybox import build_busybox_tree\n"
              f"build_busybox_tree(Path({str(bundle / 'rootfs')!r}), shutil.which('busybox'))\n")
    assert user.run(sys.executable, "-c", script).returncode == 0
    assert user.minidocker("runtime", "spec", "--rootless", "--bundle", str(bundle)).returncode == 0
    import json

    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "-c", "id -u; cat /proc/self/uid_map; grep -E '^(CapEff|NoNewPrivs)' "
                                 "/proc/self/status; touch /x 2>&1; hostname"]
    (bundle / "config.json").write_text(json.dumps(config))
    outputs = []
    for ranges in (False, True):   # one id, then the user's subordinate range too (newuidmap, newgidmap)
        if ranges:
            for key, first in (("uidMappings", user.subuid[0]), ("gidMappings", user.subgid[0])):
                config["linux"][key].append({"containerID": 1, "hostID": first, "size": 65536})
            (bundle / "config.json").write_text(json.dumps(config))
        ours = user.run(sys.executable, "-m", "minidocker.cli.runc", "run", "--bundle", str(bundle), "rl-ours")
        theirs = user.run("runc", "--root", str(user.home / "runc-state"), "run", "--bundle", str(bundle),
                          "rl-runc")
        assert ours.returncode == theirs.returncode == 0, (ours, theirs)
        assert ours.stdout == theirs.stdout, (ours.stdout, theirs.stdout)
        outputs.append(" ".join(ours.stdout.split()))
    assert f"0 {user.uid} 1" in outputs[0] and "Read-only file system" in outputs[0]
    assert f"0 {user.uid} 1 1 {user.subuid[0]} 65536" in outputs[1]


GUEST_SCRIPT = """set -e
# Delegation as systemd's Delegate=yes does it: the directory and its cgroup.procs, cgroup.threads and
# cgroup.subtree_control chowned to the user, whose processes live in a leaf below (here "shell").
for c in $(cat /sys/fs/cgroup/cgroup.controllers); do echo +$c > /sys/fs/cgroup/cgroup.subtree_control; done
D=/sys/fs/cgroup/rootless-user
mkdir -p $D/shell
for g in $D $D/shell; do chown 65534:65534 $g $g/cgroup.procs $g/cgroup.threads $g/cgroup.subtree_control; done
echo $$ > $D/shell/cgroup.procs
mkdir -p /run/nobody && chown 65534:65534 /run/nobody
set +e   # from here each run reports its exit status
cd /run/nobody
run() {{ HOME=/run/nobody PYTHONPATH={repo} setpriv --reuid 65534 --regid 65534 --clear-groups \\
    {python} -m minidocker run --rm "$@"; }}
run busybox dd if=/dev/zero of=/dev/null bs=100M count=1 2>/dev/null; echo "unlimited: $?"
run --memory 32m busybox dd if=/dev/zero of=/dev/null bs=100M count=1 2>/dev/null; echo "memory 32m: $?"
run --pids-limit 10 busybox sh -c 'for i in $(seq 20); do sleep 2 & done; wait' 2>&1 | grep -q "can.t fork" \\
    && echo "pids 10: refused"
echo "groups left: $(ls -d $D/minidocker-* 2>/dev/null | wc -l)"
"""


@pytest.mark.vm
@pytest.mark.slow
def test_rootless_limits_hold_where_a_cgroup_v2_subtree_is_delegated(tmp_path):
    """In the pure cgroup v2 qemu guest (tests/vm.py), as uid 65534 with a delegated subtree."""
    import shlex
    import sys

    from conftest import missing_feature
    from vm import Guest, GuestUnavailable

    try:
        guest = Guest.prepare()
    except GuestUnavailable as err:
        missing_feature(f"the cgroup v2 guest: {err}")
    script = tmp_path / "guest.sh"
    script.write_text(GUEST_SCRIPT.format(repo=shlex.quote(str(REPO)), python=shlex.quote(sys.executable)))
    result = guest.run(script, timeout=600)
    report = f"guest output ({result.seconds:.0f} s):\n{result.output or result.console}"
    assert result.exit_code == 0, report
    found = re.findall(r"^(unlimited|memory 32m|pids 10|groups left): (\S+)", result.output, re.M)
    # the OOM killer ends dd in its group (137 = SIGKILL), fork fails at the pids limit
    assert found == [("unlimited", "0"), ("memory 32m", "137"), ("pids 10", "refused"), ("groups left", "0")], report
    assert "no cgroup" not in result.output, report   # delegated: nothing skipped
