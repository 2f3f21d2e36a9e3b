"""Graded tests of chapter 02: filesystem isolation.

Run: ``make grade CH=02`` (all tasks) or ``make grade CH=02 TASK=2_2`` (one task).
``tasks`` is your exercises/ch02/tasks.py (the reference with ``--solutions``).
Everything that mounts runs in a forked child with its own mount namespace
(minidocker.forked.call_in_child): the host's mount table never changes, and the
child's mounts vanish with it.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from minidocker.forked import call_in_child
from minidocker.linux import CloneFlag, MountFlag, mount, unshare

pytestmark = [pytest.mark.ch02]

FIELDS = ("mount_id", "parent_id", "root", "mount_point", "options", "propagation", "fs_type", "source")


def _private_mount_namespace() -> None:
    unshare(CloneFlag.CLONE_NEWNS)
    mount(None, "/", None, MountFlag.MS_REC | MountFlag.MS_PRIVATE)


# --- task 2.1: parse_mountinfo ----------------------------------------------------------------

SAMPLE = (
    "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"
    "22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw\n"
    "64 43 0:39 /sub /tmp/b rw,relatime shared:2 master:1 - tmpfs src1 rw,size=1024k\n"
    "65 43 0:40 / /tmp/with\\040space rw - tmpfs my\\040src rw\n"
    "66 43 0:41 / /mnt/back\\134slash rw,relatime unbindable - tmpfs none rw\n"
    "70 36 0:42 / /mnt/nfs ro,relatime master:3 propagate_from:2 - nfs4 srv:/export rw,vers=4.2\n"
)
SAMPLE_EXPECTED = [
    (36, 35, "/mnt1", "/mnt2", ("rw", "noatime"), "slave", "ext3", "/dev/root"),
    (22, 27, "/", "/proc", ("rw", "nosuid", "nodev", "noexec", "relatime"), "shared", "proc", "proc"),
    (64, 43, "/sub", "/tmp/b", ("rw", "relatime"), "shared,slave", "tmpfs", "src1"),
    (65, 43, "/", "/tmp/with space", ("rw",), "private", "tmpfs", "my src"),
    (66, 43, "/", "/mnt/back\\slash", ("rw", "relatime"), "unbindable", "tmpfs", "none"),
    (70, 36, "/", "/mnt/nfs", ("ro", "relatime"), "slave", "nfs4", "srv:/export"),
]


def _fields(record: object) -> tuple:
    try:
        return tuple(getattr(record, f) for f in FIELDS)
    except AttributeError as err:
        raise AssertionError(f"a MountInfo record needs the fields {FIELDS}: {err}") from None


def _compare_records(found: list[tuple], expected: list[tuple], where: str) -> list[str]:
    """Problems, one line each: mount id, field, expected, found."""
    problems = []
    by_id = {r[0]: r for r in found}
    for exp in expected:
        got = by_id.get(exp[0])
        if got is None:
            problems.append(f"{where}: mount {exp[0]} at {exp[3]!r}: expected a record, found none")
            continue
        for name, e, g in zip(FIELDS, exp, got):
            if e != g:
                problems.append(f"{where}: mount {exp[0]} at {exp[3]!r}, field {name}: expected {e!r}, found {g!r}")
    extra = sorted(set(by_id) - {e[0] for e in expected})
    if extra:
        problems.append(f"{where}: expected {len(expected)} records, found extra mount ids {extra}")
    return problems


@pytest.mark.task2_1
def test_parse_mountinfo_reads_every_field_of_a_sample(tasks):
    found = [_fields(r) for r in tasks.parse_mountinfo(SAMPLE)]
    problems = _compare_records(found, SAMPLE_EXPECTED, "parse_mountinfo(SAMPLE)")
    assert not problems, "\n".join(problems)
    assert [r[0] for r in found] == [r[0] for r in SAMPLE_EXPECTED], "records should keep the order of the lines"


def check_parse_mountinfo(parse_mountinfo: Callable[[str], list], tmp: Path) -> None:
    """Compare ``parse_mountinfo`` with findmnt(8) on a real mount table with tricky mounts.

    In a forked child with its own mount namespace: a shared tmpfs, a bind mount of
    its subdirectory made slave and shared again, a read-only tmpfs whose path and
    source hold a space, one under a path with a backslash, an unbindable one.
    """
    findmnt = shutil.which("findmnt")
    if findmnt is None:
        pytest.skip("findmnt (util-linux) is missing")
    dirs = {k: tmp / k for k in ("shared", "slave of shared", "with space", "back\\slash", "unbindable")}

    def in_child() -> tuple[list[tuple], list[dict]]:
        _private_mount_namespace()
        for d in dirs.values():
            d.mkdir()
        mount("md src", dirs["shared"], "tmpfs", MountFlag.MS_NOSUID | MountFlag.MS_NODEV, "size=1m")
        mount(None, dirs["shared"], None, MountFlag.MS_SHARED)
        os.mkdir(dirs["shared"] / "sub")
        mount(str(dirs["shared"] / "sub"), dirs["slave of shared"], None, MountFlag.MS_BIND)
        mount(None, dirs["slave of shared"], None, MountFlag.MS_SLAVE)
        mount(None, dirs["slave of shared"], None, MountFlag.MS_SHARED)
        mount("my src", dirs["with space"], "tmpfs", MountFlag.MS_RDONLY)
        mount("none", dirs["back\\slash"], "tmpfs")
        mount("md", dirs["unbindable"], "tmpfs")
        mount(None, dirs["unbindable"], None, MountFlag.MS_UNBINDABLE)
        with open("/proc/self/mountinfo") as f:
            text = f.read()
        found = [_fields(r) for r in parse_mountinfo(text)]
        columns = "ID,PARENT,FSROOT,TARGET,VFS-OPTIONS,PROPAGATION,FSTYPE,SOURCE"
        out = subprocess.run([findmnt, "-J", "--list", "--nofsroot", "-o", columns],
                             capture_output=True, text=True, check=True).stdout
        return found, json.loads(out)["filesystems"]

    found, table = call_in_child(in_child, timeout=20)
    expected = [
        (m["id"], m["parent"], m["fsroot"], m["target"], tuple(m["vfs-options"].split(",")),
         m["propagation"].replace("private,unbindable", "unbindable"), m["fstype"], m["source"] or "none")
        for m in table
    ]
    problems = _compare_records(found, expected, "parse_mountinfo(<the real /proc/self/mountinfo>)")
    assert not problems, "compared with findmnt:\n" + "\n".join(problems)


@pytest.mark.task2_1
@pytest.mark.root
def test_parse_mountinfo_agrees_with_findmnt_on_the_real_table(tasks, tmp_path):
    check_parse_mountinfo(tasks.parse_mountinfo, tmp_path)


# --- task 2.2: pivot_into ----------------------------------------------------------------

def check_pivot_into(pivot_into: Callable[[str], None], tmp: Path) -> None:
    """Pivot a forked child into a small rootfs and look around: only the rootfs, even after the chroot escape.

    The child's "/" is made shared first, as on a systemd host, so that a missing
    "make everything private" step shows.
    """
    rootfs = tmp / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "proc").mkdir()
    (rootfs / "etc" / "hostname").write_text("inside\n")
    secret = tmp / "host-secret"
    secret.write_text("the host's data\n")

    def in_child() -> dict:
        unshare(CloneFlag.CLONE_NEWNS)
        mount(None, "/", None, MountFlag.MS_REC | MountFlag.MS_SHARED)  # like a systemd host
        pivot_into(str(rootfs))
        seen = {"cwd": os.getcwd(), "listing": sorted(os.listdir("/")), "secret": os.path.exists(secret)}
        os.mkdir("/escape")  # the chroot escape of notebook 02
        os.chroot("/escape")
        for _ in range(64):
            os.chdir("..")
        os.chroot(".")
        seen["escaped_listing"] = sorted(os.listdir("/"))
        seen["escaped_secret"] = os.path.exists(secret)
        mount("proc", "/proc", "proc")
        with open("/proc/self/mountinfo") as f:
            seen["mounts"] = [line.split()[4] for line in f]
        return seen

    seen = call_in_child(in_child, timeout=20)
    where = f"after pivot_into({str(rootfs)!r})"
    assert seen["cwd"] == "/", f"{where}: expected the working directory '/', found {seen['cwd']!r}"
    assert seen["listing"] == ["etc", "proc"], f"{where}: expected / to hold ['etc', 'proc'], found {seen['listing']}"
    assert not seen["secret"], f"{where}: the host's {secret} is still reachable"
    assert not seen["escaped_secret"] and seen["escaped_listing"] == ["escape", "etc", "proc"], (
        f"{where}, then the chroot escape: expected to stay in the rootfs, found / holding "
        f"{seen['escaped_listing']} (is the old root still mounted?)")
    assert seen["mounts"] == ["/", "/proc"], (
        f"{where}, then mounting /proc: expected the mount table ['/', '/proc'], found {seen['mounts']} "
        "(was the old root detached with MNT_DETACH?)")


@pytest.mark.task2_2
@pytest.mark.root
def test_pivot_into_leaves_nothing_of_the_host_reachable(tasks, tmp_path):
    check_pivot_into(tasks.pivot_into, tmp_path)


# --- task 2.3: make_dev ----------------------------------------------------------------

def check_make_dev(make_dev: Callable[[str], None], devices: dict, links: dict, tmp: Path) -> None:
    """Build /dev on a directory in a forked child's mount namespace; check nodes, links, the tmpfs, and use them."""
    dev = tmp / "dev"
    dev.mkdir()

    def in_child() -> dict:
        _private_mount_namespace()
        make_dev(str(dev))
        seen: dict = {"nodes": {}, "links": {}}
        for name in devices:
            try:
                st = os.lstat(dev / name)
                seen["nodes"][name] = (stat.S_ISCHR(st.st_mode), os.major(st.st_rdev), os.minor(st.st_rdev),
                                       stat.S_IMODE(st.st_mode))
            except FileNotFoundError:
                seen["nodes"][name] = None
        for name in links:
            seen["links"][name] = os.readlink(dev / name) if os.path.islink(dev / name) else None
        seen["dir_mode"] = stat.S_IMODE(os.stat(dev).st_mode)
        with open("/proc/self/mountinfo") as f:
            lines = [line.split() for line in f if line.split()[4] == str(dev)]
        if lines:
            fields = lines[-1]
            dash = fields.index("-")
            seen["mount"] = (fields[dash + 1], fields[5].split(","))
        else:
            seen["mount"] = None
        with open(dev / "zero", "rb") as f:
            seen["zero"] = f.read(8)
        try:
            with open(dev / "full", "wb", buffering=0) as f:
                f.write(b"x")
            seen["full"] = "the write succeeded"
        except OSError as err:
            seen["full"] = errno.errorcode.get(err.errno, str(err.errno))
        return seen

    seen = call_in_child(in_child, timeout=20)
    where = f"after make_dev({str(dev)!r})"
    assert seen["mount"] is not None, f"{where}: expected a tmpfs mounted on {dev}, found no mount there"
    fs_type, options = seen["mount"]
    assert fs_type == "tmpfs", f"{where}: expected a tmpfs on {dev}, found {fs_type}"
    assert "nosuid" in options, f"{where}: expected the mount option nosuid, found {options}"
    assert seen["dir_mode"] == 0o755, f"{where}: expected {dev} mode 0755, found {oct(seen['dir_mode'])}"
    for name, (major, minor) in devices.items():
        expected = (True, major, minor, 0o666)
        found = seen["nodes"][name]
        assert found == expected, (f"{where}: {dev / name}: expected (char device, major, minor, mode) "
                                   f"{expected[:3] + (oct(0o666),)}, found "
                                   f"{found if found is None else found[:3] + (oct(found[3]),)}")
    for name, target in links.items():
        found = seen["links"][name]
        assert found == target, f"{where}: {dev / name}: expected a symlink to {target!r}, found {found!r}"
    assert seen["zero"] == bytes(8), f"{where}: reading {dev}/zero: expected 8 zero bytes, found {seen['zero']!r}"
    assert seen["full"] == "ENOSPC", f"{where}: writing {dev}/full: expected ENOSPC, found {seen['full']}"


@pytest.mark.task2_3
@pytest.mark.root
def test_make_dev_builds_a_working_minimal_dev(tasks, tmp_path):
    check_make_dev(tasks.make_dev, tasks.DEVICES, tasks.DEV_LINKS, tmp_path)


# --- task 2.4: secure_join ----------------------------------------------------------------

LINKS = {
    "usr/lib64": "lib",
    "abs": "/etc",
    "up": "../../../..",
    "chain1": "chain2",
    "chain2": "/usr/lib64",
    "usr/etc_link": "../etc",
    "loop1": "loop2",
    "loop2": "loop1",
}
CASES = [
    ("etc/passwd", "etc/passwd"),
    ("/../../etc/passwd", "etc/passwd"),
    ("abs/passwd", "etc/passwd"),
    ("up/etc/passwd", "etc/passwd"),
    ("usr/lib64/x", "usr/lib/x"),
    ("chain1/y", "usr/lib/y"),
    ("usr/etc_link/passwd", "etc/passwd"),
    ("usr/etc_link/../usr", "usr"),
    ("new/dir/file", "new/dir/file"),
    ("/", ""),
]


@pytest.fixture
def image_root(tmp_path: Path) -> Path:
    """A small tree with hostile symlinks, as an image could ship."""
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (root / "usr" / "lib").mkdir(parents=True)
    for link, target in LINKS.items():
        os.symlink(target, root / link)
    return root


@pytest.mark.task2_4
@pytest.mark.parametrize("path, expected", CASES, ids=[c[0] for c in CASES])
def test_secure_join_stays_inside_the_root(tasks, image_root, path, expected):
    found = tasks.secure_join(image_root, path)
    wanted = image_root / expected if expected else image_root
    links = ", ".join(f"{k} -> {v}" for k, v in LINKS.items() if path.startswith(k.split("/")[0]))
    assert Path(found) == wanted, (f"secure_join({str(image_root)!r}, {path!r}) with {links or 'no links'}: "
                                   f"expected {wanted}, found {found}")


@pytest.mark.task2_4
def test_secure_join_stops_a_symlink_loop(tasks, image_root):
    with pytest.raises(OSError) as info:
        tasks.secure_join(image_root, "loop1/x")
    assert info.value.errno == errno.ELOOP, (f"secure_join(root, 'loop1/x') with loop1 -> loop2 -> loop1: "
                                             f"expected errno ELOOP, found {info.value.errno!r}")
