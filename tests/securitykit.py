"""Test helpers for chapter 11: the attack probe, compiled statically, in a busybox image.

    probe = compile_probe(workdir)                 gcc -static of minidocker/security/probes/attacks.c
    tar = attack_rootfs_tar(workdir, probe)        busybox + /attacks + /attacks-suid (setuid root)
    parse_verdicts(stdout) -> {"keyctl": "EPERM", ...}
    contained(name, result) -> bool                was the attempt stopped?
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tarfile
from pathlib import Path

__all__ = ["ATTACKS", "PROBE_SOURCE", "attack_rootfs_tar", "compile_probe", "contained", "parse_verdicts",
           "root_disk", "syscall_elf"]

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


# ---------------------------------------------------------------- hand-assembled syscall programs

def syscall_elf(arch: str, number: int, *args: int) -> bytes:
    """A static ELF program that makes one syscall and exits with its errno (0 when it succeeded).

    ``arch`` "i386" enters the kernel through ``int 0x80`` (the 32-bit entry, arguments in
    ebx ecx edx esi edi, i386 numbers), "x86_64" through ``syscall`` (rdi rsi rdx r10 r8,
    x86_64 numbers). Assembled here byte by byte, so no 32-bit compiler or libc is needed: the
    kernel runs it if it was built with CONFIG_IA32_EMULATION. A seccomp filter that kills the
    caller shows as death by SIGSYS. See: syscall(2) "Architecture calling conventions", elf(5).
    """
    if len(args) > 5:
        raise ValueError("at most 5 arguments")
    args = args + (0,) * (5 - len(args))
    imm = lambda value: struct.pack("<i", value if value < 1 << 31 else value - (1 << 32))  # noqa: E731
    if arch == "i386":
        code = b"\xb8" + imm(number)                                       # mov eax, number
        for opcode, value in zip(b"\xbb\xb9\xba\xbe\xbf", args):           # mov ebx/ecx/edx/esi/edi
            code += bytes([opcode]) + imm(value)
        code += b"\xcd\x80"                                                # int 0x80
        code += b"\x89\xc3\xf7\xdb\x85\xc0\x79\x02\xeb\x02\x31\xdb"        # ebx = eax < 0 ? -eax : 0
        code += b"\xb8\x01\x00\x00\x00\xcd\x80"                            # exit(ebx): i386 exit is 1
        return _elf(32, 3, code)
    if arch == "x86_64":
        code = b"\x48\xc7\xc0" + imm(number)                               # mov rax, number
        for prefix, value in zip((b"\x48\xc7\xc7", b"\x48\xc7\xc6", b"\x48\xc7\xc2", b"\x49\xc7\xc2",
                                  b"\x49\xc7\xc0"), args):                 # rdi rsi rdx r10 r8
            code += prefix + imm(value)
        code += b"\x0f\x05"                                                # syscall
        code += b"\x48\x89\xc7\x48\xf7\xdf\x48\x85\xc0\x79\x02\xeb\x02\x31\xff"   # rdi = rax < 0 ? -rax : 0
        code += b"\xb8\x3c\x00\x00\x00\x0f\x05"                            # exit(rdi): x86_64 exit is 60
        return _elf(64, 62, code)
    raise ValueError(f"no assembler for {arch!r}")


def _elf(bits: int, machine: int, code: bytes) -> bytes:
    """An ELF executable of one loadable segment (headers and code together), entry right after the headers."""
    base = 0x08048000 if bits == 32 else 0x400000
    if bits == 32:
        ehsize, phsize = 52, 32
        entry = base + ehsize + phsize
        header = struct.pack("<16sHHIIIIIHHHHHH", b"\x7fELF\x01\x01\x01", 2, machine, 1, entry, ehsize, 0, 0,
                             ehsize, phsize, 1, 0, 0, 0)
        size = ehsize + phsize + len(code)
        program = struct.pack("<IIIIIIII", 1, 0, base, base, size, size, 5, 0x1000)   # PT_LOAD, R+X
    else:
        ehsize, phsize = 64, 56
        entry = base + ehsize + phsize
        header = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01", 2, machine, 1, entry, ehsize, 0, 0,
                             ehsize, phsize, 1, 0, 0, 0)
        size = ehsize + phsize + len(code)
        program = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return header + program + code
