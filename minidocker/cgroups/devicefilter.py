"""The device cgroup of cgroup v2: an eBPF program, not a file. Chapter 11.

v1 had ``devices.allow`` and ``devices.deny``; v2 has no device files at all. Instead an
eBPF program of type BPF_PROG_TYPE_CGROUP_DEVICE (Linux 4.15) is attached to the group;
the kernel runs it at every mknod and open of a device node by a process in the group, with
``struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor;}`` (access in the high
16 bits: 1 mknod, 2 read, 4 write; type in the low: 1 block, 2 char). It returns 1 to allow.
runc generates the same kind of program (libcontainer/cgroups/devices/devicefilter.go)::

    program = device_filter(rules)        OCI linux.resources.devices -> eBPF bytes
    attach_device_filter(directory, rules)    load it and attach it to a v2 group

The last matching rule decides, as the rules are written in order ("deny all, allow these"):
the program checks them from the last to the first and returns at the first match.
See: Documentation/admin-guide/cgroup-v2.rst "Device controller", bpf(2).
"""

from __future__ import annotations

import os
import struct

from minidocker.linux.bpf import (
    BPF_CGROUP_DEVICE,
    BPF_F_ALLOW_MULTI,
    BPF_PROG_TYPE_CGROUP_DEVICE,
    bpf_prog_attach,
    bpf_prog_load,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

__all__ = ["attach_device_filter", "device_filter"]

# eBPF opcodes (include/uapi/linux/bpf.h, bpf_common.h)
_LDX_W = 0x61       # BPF_LDX | BPF_MEM | BPF_W:  dst = *(u32 *)(src + off)
_MOV64_X = 0xBF     # BPF_ALU64 | BPF_MOV | BPF_X
_MOV32_K = 0xB4     # BPF_ALU | BPF_MOV | BPF_K
_AND32_K = 0x54     # BPF_ALU | BPF_AND | BPF_K
_RSH32_K = 0x74     # BPF_ALU | BPF_RSH | BPF_K
_JNE_K = 0x55       # BPF_JMP | BPF_JNE | BPF_K:  if dst != imm: pc += off
_EXIT = 0x95
_R0, _R1, _R2, _R3, _R4, _R5 = range(6)
_TYPES = {"b": 1, "c": 2}
_ACCESS = {"m": 1, "r": 2, "w": 4}


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


def device_filter(rules: Iterable[Mapping[str, Any]]) -> bytes:
    """The eBPF program for OCI device rules: 1 (allow) or 0 (deny) per access."""
    code = [
        _insn(_LDX_W, _R2, _R1, 0), _insn(_AND32_K, _R2, imm=0xFFFF),   # r2 = type
        _insn(_LDX_W, _R3, _R1, 0), _insn(_RSH32_K, _R3, imm=16),       # r3 = access
        _insn(_LDX_W, _R4, _R1, 4),                                     # r4 = major
        _insn(_LDX_W, _R5, _R1, 8),                                     # r5 = minor
    ]
    for rule in reversed(list(rules)):
        block = []
        kind = rule.get("type", "a")
        if kind != "a":
            block.append((_R2, _TYPES[kind]))
        if rule.get("major") not in (None, -1) and kind != "a":
            block.append((_R4, int(rule["major"])))
        if rule.get("minor") not in (None, -1) and kind != "a":
            block.append((_R5, int(rule["minor"])))
        access = sum(_ACCESS[a] for a in set(rule.get("access", "rwm")))
        masked = access != 7
        length = len(block) + (3 if masked else 0) + 2
        body = []
        for n, (register, value) in enumerate(block):
            body.append(_insn(_JNE_K, register, off=length - 1 - n, imm=value))   # to the next rule
        if masked:
            # every requested bit must be allowed: (access & ~allowed) == 0
            body += [_insn(_MOV64_X, 0, _R3), _insn(_AND32_K, 0, imm=~access & 0xFFFF),
                     _insn(_JNE_K, 0, off=2, imm=0)]
        body += [_insn(_MOV32_K, _R0, imm=int(bool(rule["allow"]))), _insn(_EXIT)]
        code += body
        if not block and not masked:
            return b"".join(code)   # matches everything ("a *:* rwm"): what follows is unreachable,
                                    # which the verifier refuses
    code += [_insn(_MOV32_K, _R0, imm=0), _insn(_EXIT)]   # no rule matched: deny
    return b"".join(code)


def attach_device_filter(directory: str | os.PathLike[str], rules: Iterable[Mapping[str, Any]]) -> None:
    """Load the filter for ``rules`` and attach it to the v2 group at ``directory``.

    The program lives as long as the group: the fds are closed here, the attachment stays.
    """
    prog = bpf_prog_load(BPF_PROG_TYPE_CGROUP_DEVICE, device_filter(rules), name="minidocker_dev")
    try:
        group = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            bpf_prog_attach(group, prog, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)
        finally:
            os.close(group)
    finally:
        os.close(prog)
