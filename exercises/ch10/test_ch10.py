"""Graded tests of chapter 10: volumes.

Run: ``make grade CH=10`` (all tasks) or ``make grade CH=10 TASK=10_2`` (one task).
``tasks`` is your exercises/ch10/tasks.py (the reference with ``--solutions``).
Mounts happen only in forked children with their own mount namespace (task 10.3).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from minidocker.forked import call_in_child

pytestmark = [pytest.mark.ch10]


# -- task 10.1: Docker's -v syntax ---------------------------------------------------------------

@pytest.mark.task10_1
@pytest.mark.parametrize("text, expected", [
    ("/srv/www:/usr/share/www", ("bind", "/srv/www", "/usr/share/www", False, "", False)),
    ("/srv/www:/www:ro", ("bind", "/srv/www", "/www", True, "", False)),
    ("/srv:/srv:rw,rslave", ("bind", "/srv", "/srv", False, "rslave", False)),
    ("pgdata:/var/lib/postgresql", ("volume", "pgdata", "/var/lib/postgresql", False, "", False)),
    ("cache:/cache:nocopy,z", ("volume", "cache", "/cache", False, "", True)),
    ("/scratch", ("volume", "", "/scratch", False, "", False)),
])
def test_the_three_forms_and_their_modes(tasks, text, expected) -> None:
    got = tasks.parse_volume(text)
    keys = ("type", "source", "target", "readonly", "propagation", "nocopy")
    assert tuple(got[k] for k in keys) == expected, f"parse_volume({text!r}): expected {expected}, found {got}"


@pytest.mark.task10_1
@pytest.mark.parametrize("text", ["/x:ro", "a:b:c:d", ":/x", "data:relative", "data:/x:bogus", "data:/x:ro,rw",
                                  "/h:/x:rslave,rprivate"])
def test_what_docker_refuses_raises_value_error(tasks, text) -> None:
    with pytest.raises(ValueError):
        tasks.parse_volume(text)


# -- task 10.2: copy-up --------------------------------------------------------------------------

def _tree(root: Path) -> dict:
    found = {}
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(top) / name
            st = os.lstat(path)
            value = (hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode)
                     else os.readlink(path) if stat.S_ISLNK(st.st_mode) else "")
            found[str(path.relative_to(root))] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid,
                                                  st.st_gid, value,
                                                  None if stat.S_ISLNK(st.st_mode) else st.st_mtime_ns)
    return found


def _image_dir(root: Path) -> Path:
    src = root / "image-dir"
    (src / "conf.d").mkdir(parents=True)
    (src / "conf.d" / "site.conf").write_text("listen 80\n")
    os.chown(src / "conf.d" / "site.conf", 101, 102)
    os.chmod(src / "conf.d" / "site.conf", 0o640)
    (src / "run-me").write_text("#!/bin/sh\n")
    os.chmod(src / "run-me", 0o4750)
    os.chmod(src / "conf.d", 0o1775)
    os.chown(src / "conf.d", 101, 0)
    os.link(src / "conf.d" / "site.conf", src / "same-inode")
    os.symlink("/etc/shadow", src / "shadow-link")
    os.mkfifo(src / "pipe")
    for path in (src / "conf.d" / "site.conf", src / "run-me", src / "conf.d"):
        os.utime(path, ns=(1_500_000_000_000_000_000, 1_500_000_000_000_000_000))
    os.chown(src, 33, 33)
    os.chmod(src, 0o750)
    return src


@pytest.mark.task10_2
@pytest.mark.root
def test_owners_modes_and_times_are_kept(tasks, tmp_path) -> None:
    src = _image_dir(tmp_path)
    (tmp_path / "volume").mkdir()
    tasks.copy_up(src, tmp_path / "volume")
    assert _tree(tmp_path / "volume") == _tree(src), "the copy must have the same entries, owners, modes and times"
    top = os.stat(tmp_path / "volume")
    assert (top.st_uid, stat.S_IMODE(top.st_mode)) == (33, 0o750), "the volume takes the image directory's owner"


@pytest.mark.task10_2
@pytest.mark.root
def test_links_stay_links_and_nothing_is_followed(tasks, tmp_path) -> None:
    src = _image_dir(tmp_path)
    dst = tmp_path / "volume"
    dst.mkdir()
    count = tasks.copy_up(src, dst)
    assert count == 6, f"expected 6 entries copied, found {count}"
    assert os.readlink(dst / "shadow-link") == "/etc/shadow", "a symlink must be copied as a symlink"
    assert os.stat(dst / "same-inode").st_ino == os.stat(dst / "conf.d" / "site.conf").st_ino, "hard link lost"
    assert stat.S_ISFIFO(os.lstat(dst / "pipe").st_mode), "the fifo must be re-created, not read"


# -- task 10.3: OCI mounts -----------------------------------------------------------------------

@pytest.mark.task10_3
def test_entries_have_the_runtimes_shape_and_parents_come_first(tasks, tmp_path) -> None:
    requests = [
        {"type": "volume", "source": "cache", "target": "/data/cache", "readonly": False, "propagation": ""},
        {"type": "bind", "source": "/srv", "target": "/data", "readonly": True, "propagation": "rslave"},
        {"type": "tmpfs", "source": "", "target": "/run", "options": ["size=1m"]},
    ]
    got = tasks.oci_mounts(requests, tmp_path)
    assert [m["destination"] for m in got] == ["/data", "/run", "/data/cache"], "fewer components first, stable"
    assert got[0] == {"destination": "/data", "type": "bind", "source": "/srv", "options": ["rbind", "rslave", "ro"]}
    assert got[1] == {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
                      "options": ["nosuid", "noexec", "nodev", "size=1m"]}
    assert got[2]["source"] == os.path.join(tmp_path, "cache", "_data")
    assert got[2]["options"] == ["rbind", "rprivate"]


@pytest.mark.task10_3
@pytest.mark.parametrize("targets", [["/x", "/x"], ["/"], ["/x", "/x/"]])
def test_a_target_used_twice_or_the_root_is_refused(tasks, tmp_path, targets) -> None:
    with pytest.raises(ValueError):
        tasks.oci_mounts([{"type": "tmpfs", "source": "", "target": t} for t in targets], tmp_path)


def _mount_and_read(entries: list[dict], rootfs: str) -> list[str]:
    from minidocker.linux import CloneFlag, unshare
    from minidocker.rootfs import make_mounts_private, mount_all

    unshare(CloneFlag.CLONE_NEWNS)
    make_mounts_private()
    mount_all(rootfs, entries)
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if line.split()[4].startswith(rootfs + "/")]


@pytest.mark.task10_3
@pytest.mark.root
def test_the_runtime_mounts_them_read_only_and_sized(tasks, tmp_path) -> None:
    (tmp_path / "host" / "db").mkdir(parents=True)   # the read-only /h cannot get a new mount point
    (tmp_path / "rootfs").mkdir()
    (tmp_path / "volumes" / "db" / "_data").mkdir(parents=True)
    requests = [{"type": "bind", "source": str(tmp_path / "host"), "target": "/h", "readonly": True},
                {"type": "volume", "source": "db", "target": "/h/db", "readonly": False},
                {"type": "tmpfs", "source": "", "target": "/t", "options": ["size=1m"]}]
    entries = tasks.oci_mounts(requests, tmp_path / "volumes")
    lines = call_in_child(_mount_and_read, entries, str(tmp_path / "rootfs"))
    by_point = {line.split()[4][len(str(tmp_path / "rootfs")):]: line for line in lines}
    assert set(by_point) == {"/h", "/h/db", "/t"}, f"expected /h, /h/db and /t mounted, found {sorted(by_point)}"
    assert by_point["/h"].split()[5].startswith("ro"), f"/h must be read-only: {by_point['/h']}"
    assert by_point["/h/db"].split()[5].startswith("rw"), "the volume inside it stays writable"
    assert "size=1024k" in by_point["/t"] and "noexec" in by_point["/t"], by_point["/t"]
