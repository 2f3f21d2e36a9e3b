"""Chapter 02: filesystem isolation — pivot_root, /proc, /dev, masked paths, secure joins, chroot's escape."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from minidocker import rootfs
from minidocker.forked import call_in_child
from minidocker.linux import CloneFlag, unshare

pytestmark = [pytest.mark.ch02, pytest.mark.root]


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f]


def test_host_mount_table_is_unchanged_after_a_container(cli):
    before = _mount_points()
    # mount needs CAP_SYS_ADMIN, which a container lacks unless given (chapter 11), as under Docker
    r = cli("run", "--rm", "--cap-add", "SYS_ADMIN", "busybox", "sh", "-c",
            "mount -t tmpfs none /tmp && grep -c . /proc/self/mountinfo")
    assert r.code == 0, r
    assert _mount_points() == before


def test_the_container_sees_its_own_mounts_only(cli):
    r = cli("run", "--rm", "busybox", "cat", "/proc/self/mountinfo")
    mount_points = [line.split()[4] for line in r.out.splitlines()]
    assert mount_points[0] == "/", r
    assert "/work" not in mount_points and "/sys/fs/cgroup/memory" not in mount_points, r
    for expected in ("/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys"):
        assert expected in mount_points, f"expected {expected} in the container's mounts, found {mount_points}"


def test_host_files_are_unreachable_after_pivot_root(cli):
    marker = Path(__file__).resolve()
    r = cli("run", "--rm", "busybox", "sh", "-c", f"ls {marker} 2>&1; ls /proc/1/root{marker} 2>&1; echo done")
    assert "No such file or directory" in r.out and r.out.endswith("done\n"), r


def test_dev_has_the_default_devices_and_links(cli):
    r = cli("run", "--rm", "busybox", "sh", "-c", "ls -l /dev; echo x > /dev/null; head -c 4 /dev/zero | wc -c")
    lines = r.out.splitlines()
    for name, numbers in {"null": "1,   3", "zero": "1,   5", "full": "1,   7", "random": "1,   8",
                          "urandom": "1,   9", "tty": "5,   0"}.items():
        assert any(line.startswith("crw-rw-rw-") and line.endswith(f" {name}") and numbers in line
                   for line in lines), f"expected /dev/{name} ({numbers}) in:\n{r}"
    for link, target in {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
                         "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}.items():
        assert any(line.startswith("l") and line.endswith(f" {link} -> {target}") for line in lines), r
    assert lines[-1].strip() == "4", r


def test_proc_shows_only_the_containers_processes(cli):
    r = cli("run", "--rm", "busybox", "sh", "-c", "ls /proc | grep -c '^[0-9]'")
    assert int(r.out) <= 3, r  # sh, ls, grep at most


def test_masked_paths_are_empty_and_readonly_paths_refuse_writes(cli):
    from minidocker.rootfs import DEFAULT_MASKED_PATHS

    masked = [p for p in DEFAULT_MASKED_PATHS if os.path.exists(p)]  # kernels differ: use what this one has
    assert masked, "no masked path exists on this kernel to test with"
    script = "".join(f"(ls -A {p} | wc -l);" if os.path.isdir(p) else f"(wc -c < {p});" for p in masked)
    r = cli("run", "--rm", "busybox", "sh", "-c",
            script + " echo h > /proc/sys/kernel/hostname 2>/dev/null || echo refused")
    lines = r.out.split()
    assert lines[:-1] == ["0"] * len(masked), f"expected every masked path empty: {masked}\n{r}"
    assert lines[-1] == "refused", r


def test_sys_is_read_only(cli):
    # EROFS, not any refusal: sysfs refuses to create /sys/x even when it is writable (EACCES),
    # and an existing file like /sys/kernel/profiling would take the write on a rw mount.
    r = cli("run", "--rm", "busybox", "sh", "-c", "touch /sys/kernel/profiling 2>&1; touch /sys/x 2>&1")
    assert r.code == 1 and r.out.count("Read-only file system") == 2, r  # 1: the last touch failed


def test_read_only_rootfs_refuses_writes_but_tmpfs_mounts_work(cli):
    r = cli("run", "--rm", "--read-only", "busybox", "sh", "-c",
            "touch /etc/x 2>&1 || echo refused; touch /dev/shm/ok && echo shm-ok")
    assert "refused" in r.out and "shm-ok" in r.out, r


def test_writes_in_a_container_do_not_reach_the_image(cli, state_root):
    r = cli("run", "--rm", "busybox", "sh", "-c", "echo changed > /etc/motd; rm /bin/ls; echo ok")
    assert r.out == "ok\n", r
    image_rootfs = _busybox_rootfs()  # the image's one layer, unpacked (the overlay's lowerdir)
    assert (image_rootfs / "bin" / "ls").is_symlink()
    assert not (image_rootfs / "etc" / "motd").exists()
    again = cli("run", "--rm", "busybox", "sh", "-c", "ls /bin/ls && cat /etc/motd 2>&1")
    assert "/bin/ls" in again.out and "No such file" in again.out, again


def _busybox_rootfs() -> Path:
    from minidocker.engine.images import local_image
    from minidocker.image import ImageStore
    from minidocker.paths import state_roots

    return local_image(ImageStore(state_roots().images), "busybox").layers[0]


def test_chroot_is_escapable_by_root_and_pivot_root_is_not(tmp_path):
    """The classic escape: chroot into a subdirectory, climb with chdir(".."), chroot(".")."""
    jail = tmp_path / "jail"
    (jail / "inner").mkdir(parents=True)
    (tmp_path / "outside.txt").write_text("host secret")

    def escape(use_pivot: bool) -> bool:
        unshare(CloneFlag.CLONE_NEWNS)
        rootfs.make_mounts_private()
        if use_pivot:
            rootfs.bind_onto_itself(jail)
            rootfs.pivot_into(jail)
        else:
            rootfs.chroot_into(jail)
        os.chroot("/inner")  # a second chroot leaves our cwd outside the new root
        for _ in range(64):
            os.chdir("..")
        os.chroot(".")
        return os.path.exists(str(tmp_path / "outside.txt"))

    assert call_in_child(escape, False) is True
    assert call_in_child(escape, True) is False


@pytest.mark.parametrize(
    ("link_target", "path", "expected"),
    [
        ("/etc", "/proc", "etc"),  # absolute symlink: clamped to the root
        ("../../../../etc", "/proc", "etc"),  # climbing out: clamped
        ("sub/../other", "/proc", "other"),
    ],
)
def test_secure_join_keeps_symlinks_inside_the_root(tmp_path, link_target, path, expected):
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(link_target, root / "proc")
    assert rootfs.secure_join(root, path) == root / expected


def test_secure_join_refuses_symlink_loops(tmp_path):
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with pytest.raises(OSError, match="too many symlinks"):
        rootfs.secure_join(tmp_path, "/a")


def test_a_malicious_image_symlink_cannot_redirect_a_mount_to_the_host(tmp_path):
    root = tmp_path / "root"
    (root / "proc").parent.mkdir(parents=True, exist_ok=True)
    victim = tmp_path / "victim"
    victim.mkdir()
    os.symlink(str(victim), root / "proc")  # "proc" points at a host directory

    def mount_proc() -> list[str]:
        unshare(CloneFlag.CLONE_NEWNS)
        rootfs.make_mounts_private()
        rootfs.mount_one(root, {"destination": "/proc/sub", "type": "tmpfs", "source": "tmpfs"})
        return os.listdir(victim)

    assert call_in_child(mount_proc) == []  # nothing was created or mounted in the host directory


def test_mount_options_split_into_flags_and_data():
    from minidocker.linux import MountFlag

    flags, propagation, data = rootfs.parse_mount_options(["nosuid", "ro", "rw", "mode=755", "rprivate", "size=1k"])
    assert flags == MountFlag.MS_NOSUID
    assert propagation == MountFlag.MS_PRIVATE | MountFlag.MS_REC
    assert data == "mode=755,size=1k"
