"""Test helpers for chapter 11: the attack probe, compiled statically, in a busybox image.

    probe = compile_probe(workdir)                 gcc -static of minidocker/security/probes/attacks.c
    tar = attack_rootfs_tar(workdir, probe)        busybox + /attacks + /attacks-suid (setuid root)
    parse_verdicts(stdout) -> {"keyctl": "EPERM", ...}
    contained(name, result) -> bool                was the attempt stopped?
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

__all__ = ["ATTACKS", "PROBE_SOURCE", "attack_rootfs_tar", "compile_probe", "contained", "parse_verdicts",
           "root_disk"]

PROBE_SOURCE = Path(__file__).resolve().parent.parent / "minidocker" / "security" / "probes" / "attacks.c"
ATTACKS = ("mount_tmpfs", "unshare_mount", "unshare_user_mount", "clone_newns", "chroot_escape", "keyctl",
           "bpf", "perf_event_open", "userfaultfd", "reboot", "swapoff", "settimeofday", "adjtimex_read",
           "finit_module", "iopl", "sethostname", "open_by_handle_at", "raw_socket", "sysrq_trigger",
           "core_pattern", "sys_write", "kcore", "dev_mem")


def compile_probe(workdir: Path) -> Path:
    """The probe as a static binary: it runs in any image, busybox's included."""
    out = workdir / "attacks"
    subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", str(out), str(PROBE_SOURCE)], check=True,
                   capture_output=True, text=True)
    return out


def attack_rootfs_tar(workdir: Path, probe: Path) -> Path:
    """A busybox root filesystem with the probe twice: plain and setuid root (mode 4755)."""
    from minidocker.image.busybox import build_busybox_tree

    tree = workdir / "rootfs"
    busybox = next(p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p))
    build_busybox_tree(tree, busybox)
    shutil.copy2(probe, tree / "attacks")
    shutil.copy2(probe, tree / "attacks-suid")
    os.chmod(tree / "attacks-suid", 0o4755)
    tar = workdir / "attack-rootfs.tar"
    with tarfile.open(tar, "w") as t:
        for entry in sorted(os.listdir(tree)):
            t.add(tree / entry, arcname=entry)
    return tar


def parse_verdicts(out: str) -> dict[str, str]:
    verdicts = {}
    for line in out.splitlines():
        name, _, result = line.partition(" ")
        if result:
            verdicts[name] = result
    return verdicts


# Files that are not there cannot be attacked (kcore, uevent_helper on kernels without them).
_FILE_ATTACKS = ("sysrq_trigger", "core_pattern", "sys_write", "kcore")


def contained(name: str, result: str) -> bool:
    """Was the attempt stopped? EPERM/EACCES (a capability check or seccomp), EROFS (a read-only
    mount); for chroot, EEXIST: still at the container's root. Any other errno means the call
    reached the kernel code it aims at (EINVAL from reboot's magic check, ENOENT from swapoff)."""
    if name in _FILE_ATTACKS and result == "ENOENT":
        return True
    if name == "chroot_escape":
        return result != "ok"
    return result in ("EPERM", "EACCES", "EROFS")


def root_disk() -> tuple[int, int]:
    """(major, minor) of the block device the host's / is on."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if fields[4] == "/":
                source = fields[fields.index("-") + 2]
                st = os.stat(source)
                return os.major(st.st_rdev), os.minor(st.st_rdev)
    raise RuntimeError("no / in /proc/self/mountinfo")
