"""bpf(2): load an eBPF program and attach it to a cgroup. For the cgroup v2 device filter.

    bpf_prog_load(prog_type, program, license="Apache") -> fd    BPF_PROG_LOAD in bpf(2)
    bpf_prog_attach(target_fd, prog_fd, attach_type, flags=0)    BPF_PROG_ATTACH in bpf(2)

``program`` is raw eBPF: 8 bytes per instruction (u8 code, u8 dst:4|src:4, s16 off, s32 imm).
On failure the kernel verifier's log is in the OSError's message.
"""

from __future__ import annotations

import ctypes
import os

from minidocker.linux.syscalls import _check, _libc

__all__ = ["BPF_CGROUP_DEVICE", "BPF_F_ALLOW_MULTI", "BPF_PROG_TYPE_CGROUP_DEVICE", "bpf_prog_attach",
           "bpf_prog_load"]

_SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine)
_BPF_PROG_LOAD, _BPF_PROG_ATTACH = 5, 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15   # Linux 4.15
BPF_CGROUP_DEVICE = 6              # the attach type
BPF_F_ALLOW_MULTI = 2


class _ProgLoadAttr(ctypes.Structure):
    _fields_ = [("prog_type", ctypes.c_uint32), ("insn_cnt", ctypes.c_uint32), ("insns", ctypes.c_uint64),
                ("license", ctypes.c_uint64), ("log_level", ctypes.c_uint32), ("log_size", ctypes.c_uint32),
                ("log_buf", ctypes.c_uint64), ("kern_version", ctypes.c_uint32),
                ("prog_flags", ctypes.c_uint32),
                ("prog_name", ctypes.c_char * 16), ("prog_ifindex", ctypes.c_uint32),
                ("expected_attach_type", ctypes.c_uint32)]


class _ProgAttachAttr(ctypes.Structure):
    _fields_ = [("target_fd", ctypes.c_uint32), ("attach_bpf_fd", ctypes.c_uint32),
                ("attach_type", ctypes.c_uint32), ("attach_flags", ctypes.c_uint32)]


def _bpf(cmd: int, attr: ctypes.Structure) -> int:
    if _SYS_BPF is None:
        raise OSError(38, f"bpf: unknown syscall number on {os.uname().machine}")
    return _libc.syscall(_SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))


def bpf_prog_load(prog_type: int, program: bytes, license: str = "Apache", name: str = "") -> int:
    """Load ``program`` through the verifier; returns the program's fd. See BPF_PROG_LOAD in bpf(2)."""
    insns = ctypes.create_string_buffer(program, len(program))
    lic = ctypes.create_string_buffer(license.encode())
    log = ctypes.create_string_buffer(64 * 1024)
    attr = _ProgLoadAttr(prog_type=prog_type, insn_cnt=len(program) // 8, insns=ctypes.addressof(insns),
                         license=ctypes.addressof(lic), log_level=1, log_size=len(log),
                         log_buf=ctypes.addressof(log), prog_name=name.encode()[:15])
    fd = _bpf(_BPF_PROG_LOAD, attr)
    if fd == -1:
        err = ctypes.get_errno()
        text = log.value.decode(errors="replace").strip().splitlines()
        raise OSError(err, f"bpf(BPF_PROG_LOAD, {len(program) // 8} instructions): {os.strerror(err)}"
                           + (f"; verifier: {' | '.join(text[-4:])}" if text else ""))
    return fd


def bpf_prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0) -> None:
    """Attach a loaded program to ``target_fd`` (a cgroup directory). See BPF_PROG_ATTACH in bpf(2)."""
    attr = _ProgAttachAttr(target_fd=target_fd, attach_bpf_fd=prog_fd, attach_type=attach_type,
                           attach_flags=flags)
    _check(_bpf(_BPF_PROG_ATTACH, attr), "bpf", "BPF_PROG_ATTACH", target_fd, prog_fd, attach_type, flags)
