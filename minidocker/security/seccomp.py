"""seccomp: a filter program the kernel runs at every syscall of the container. Chapter 11.

Capabilities decide what a process may do with a syscall; seccomp decides whether it may
make it at all. Docker's default profile is an allowlist of about 350 syscalls; the rest
(keyctl, bpf, userfaultfd, kexec_load, open_by_handle_at, ...) fail with EPERM before the
kernel code behind them runs, which is what closes the kernel bugs reachable through them.

Two steps, as in Docker (profile -> OCI) and runc (OCI -> BPF)::

    profile_to_oci(profile, caps)  Docker's JSON profile (includes/excludes by capability,
                                   architecture, kernel) -> the spec's ``linux.seccomp``
    compile_filter(seccomp)        ``linux.seccomp`` -> a classic BPF program (bytes)
    disassemble(program)           the program, one instruction a line, for reading
    load_profile(path)             read a profile file for ``--security-opt seccomp=FILE``

We build the BPF ourselves instead of calling libseccomp, so that the course can show
every instruction. The program checks the architecture first (a 32-bit syscall number means
another call than the same 64-bit number), then the argument rules, then ranges of allowed
numbers, then returns the default action.
See: seccomp(2), Documentation/userspace-api/seccomp_filter.rst, the OCI runtime spec's
config-linux.md "Seccomp", https://docs.docker.com/engine/security/seccomp/.
"""

from __future__ import annotations

import os
import struct

from minidocker.errors import InvalidArgument
from minidocker.linux.syscall_table import ARCHITECTURES

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

__all__ = ["ACTIONS", "NATIVE_ARCH", "OPERATORS", "compile_filter", "disassemble", "load_profile",
           "profile_to_oci"]

# The values a filter returns, include/uapi/linux/seccomp.h; the low 16 bits carry data (errno).
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,          # SECCOMP_RET_KILL_THREAD
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,  # Linux 4.14
    "SCMP_ACT_TRAP": 0x00030000,          # SIGSYS
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_LOG": 0x7FFC0000,           # Linux 4.14
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
             "SCMP_CMP_MASKED_EQ")
_EPERM, _ENOSYS = 1, 38

# Classic BPF opcodes (include/uapi/linux/filter.h, bpf_common.h).
_LD_ABS = 0x20        # BPF_LD | BPF_W | BPF_ABS: A = 32-bit word at offset k of seccomp_data
_ALU_AND = 0x54       # BPF_ALU | BPF_AND | BPF_K: A &= k
_JA = 0x05            # BPF_JMP | BPF_JA: jump k forward
_JEQ, _JGT, _JGE = 0x15, 0x25, 0x35   # BPF_JMP | BPF_J* | BPF_K: jump jt if A op k, else jf
_RET = 0x06           # BPF_RET | BPF_K: return k
_NAMES = {_LD_ABS: "ld", _ALU_AND: "and", _JA: "ja", _JEQ: "jeq", _JGT: "jgt", _JGE: "jge", _RET: "ret"}

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (little endian here).
_NR, _ARCH = 0, 4
_X32_SYSCALL_BIT = 0x40000000

# Docker's name for this machine in includes/excludes "arches" (Go's GOARCH) and libseccomp's.
_GOARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386"}
NATIVE_ARCH = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}.get(os.uname().machine, "")

# Names in Docker's default profile that exist only on architectures we have no table for, or
# only in kernels newer than our table's headers: a profile may list them (they are skipped, as
# runc skips what libseccomp cannot resolve); any other unknown name is an error, most likely a
# typo (runc would skip it silently).
_OTHER_ARCH_SYSCALLS = frozenset((
    "cachestat", "fchmodat2", "map_shadow_stack", "futex_wake", "futex_wait", "futex_requeue", "statmount",
    "listmount", "lsm_get_self_attr", "lsm_set_self_attr", "lsm_list_modules", "mseal", "setxattrat",
    "getxattrat", "listxattrat", "removexattrat", "open_tree_attr", "uretprobe", "file_getattr",
    "file_setattr", "arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls",
    "sync_file_range2", "swapcontext", "s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr",
    "riscv_flush_icache", "spu_create", "spu_run", "subpage_prot", "switch_endian", "sys_debug_setcontext",
    "epoll_ctl_old", "epoll_wait_old", "recv", "send", "usr26", "usr32", "multiplexer", "rtas", "s390_sthyi",
    "s390_guarded_storage", "sysmips", "cachectl", "_newselect", "ugetrlimit",
))


def load_profile(path: str) -> dict[str, Any]:
    """Read a Docker seccomp profile (JSON). Raises InvalidArgument naming the file and the fault."""
    try:
        with open(path, encoding="utf-8") as f:
            import json  # only for a profile file: json imports re (bench/README.md)

            profile = json.load(f)
    except OSError as err:
        raise InvalidArgument(f"failed to read seccomp profile {path}: {err.strerror}") from None
    except ValueError as err:
        raise InvalidArgument(f"failed to read seccomp profile {path}: invalid JSON: {err}") from None
    if not isinstance(profile, dict):
        raise InvalidArgument(f"failed to read seccomp profile {path}: expected a JSON object")
    return profile


def profile_to_oci(profile: Mapping[str, Any], capabilities: Iterable[str], machine: str | None = None,
                   kernel: str | None = None) -> dict[str, Any]:
    """Resolve a Docker profile for this container: the OCI ``linux.seccomp`` it becomes.

    Rules apply when every ``includes`` matches and no ``excludes`` does (moby
    profiles/seccomp.setupSeccomp): ``caps`` against the container's capabilities (with
    CAP_SYS_ADMIN the container may mount, so the profile lets it call mount), ``arches``
    against this machine, ``minKernel`` against the running kernel.
    Raises InvalidArgument for an action, operator or syscall name that does not exist.
    """
    machine = machine or os.uname().machine
    goarch = _GOARCH.get(machine, machine)
    caps = set(capabilities)
    kernel_version = _version(kernel or os.uname().release)
    default = _check_action(profile.get("defaultAction"), "defaultAction")
    seccomp: dict[str, Any] = {"defaultAction": default, "architectures": _architectures(profile, machine)}
    if "defaultErrnoRet" in profile:
        seccomp["defaultErrnoRet"] = int(profile["defaultErrnoRet"])
    syscalls = []
    for index, rule in enumerate(profile.get("syscalls") or []):
        where = f"syscalls[{index}]"
        if not isinstance(rule, dict):
            raise InvalidArgument(f"invalid seccomp profile: {where} is not an object")
        includes, excludes = rule.get("includes") or {}, rule.get("excludes") or {}
        if includes.get("arches") and goarch not in includes["arches"]:
            continue
        if includes.get("caps") and not caps.issuperset(includes["caps"]):
            continue
        if includes.get("minKernel") and kernel_version < _version(includes["minKernel"]):
            continue
        if goarch in (excludes.get("arches") or ()) or caps.intersection(excludes.get("caps") or ()):
            continue
        names = list(rule.get("names") or ()) + ([rule["name"]] if rule.get("name") else [])
        if not names:
            raise InvalidArgument(f"invalid seccomp profile: {where} has no names")
        for name in names:
            _check_name(name)
        action = _check_action(rule.get("action"), f"{where}.action")
        entry: dict[str, Any] = {"names": names, "action": action}
        if "errnoRet" in rule:
            entry["errnoRet"] = int(rule["errnoRet"])
        if rule.get("args"):
            entry["args"] = [_check_arg(arg, f"{where}.args") for arg in rule["args"]]
        syscalls.append(entry)
    seccomp["syscalls"] = syscalls
    return seccomp


def compile_filter(seccomp: Mapping[str, Any], machine: str | None = None) -> bytes:
    """The classic BPF program for an OCI ``linux.seccomp``, ready for seccomp(2).

    Layout: load the architecture and jump to its section (another architecture is killed);
    in a section: load the syscall number, the rules with arguments (each a small block that
    returns its action when every condition holds), the plain rules as sorted ranges of
    numbers, and the default action last.
    """
    default = _return_value(seccomp["defaultAction"], seccomp.get("defaultErrnoRet"))
    machine = machine or os.uname().machine
    arches = [a for a in seccomp.get("architectures") or [NATIVE_ARCH] if a in ARCHITECTURES]
    if not arches:
        raise ValueError(f"seccomp: no architecture of {seccomp.get('architectures')} is known here "
                         f"({machine}); minidocker builds filters for {', '.join(ARCHITECTURES)}")
    code: list[tuple] = [(_LD_ABS, 0, 0, _ARCH)]
    for arch in arches:
        code += [(_JEQ, 0, 1, ARCHITECTURES[arch][0]), (_JA, 0, 0, f"arch {arch}")]
    code.append((_RET, 0, 0, ACTIONS["SCMP_ACT_KILL_PROCESS"]))
    for arch in arches:
        code += _section(arch, seccomp.get("syscalls") or [], default)
    return _assemble(code)


def disassemble(program: bytes) -> list[str]:
    """One line per instruction, in the notation of the kernel's bpf_dbg/seccomp-tools."""
    lines = []
    actions = {v: k.removeprefix("SCMP_ACT_") for k, v in reversed(ACTIONS.items())}
    for pc in range(len(program) // 8):
        op, jt, jf, k = struct.unpack_from("<HBBI", program, pc * 8)
        name = _NAMES.get(op, hex(op))
        if op == _LD_ABS:
            field = {0: "nr", 4: "arch"}.get(k) or f"args[{(k - 16) // 8}]{'.hi' if k % 8 else '.lo'}"
            text = f"ld  {field}"
        elif op == _RET:
            action = actions.get(k & 0xFFFF0000, hex(k))
            text = f"ret {action}" + (f"({k & 0xFFFF})" if k & 0xFFFF else "")
        elif op == _JA:
            text = f"ja  {pc + 1 + k}"
        elif op == _ALU_AND:
            text = f"and {k:#x}"
        else:
            text = f"{name} {k:#x}, {pc + 1 + jt}, {pc + 1 + jf}"
        lines.append(f"{pc:4}: {text}")
    return lines


# ---------------------------------------------------------------- the compiler

def _section(arch: str, rules: list[Mapping[str, Any]], default: int) -> list[tuple]:
    audit, numbers = ARCHITECTURES[arch]
    is_64 = bool(audit & 0x80000000)  # __AUDIT_ARCH_64BIT
    code: list[tuple] = [("label", f"arch {arch}"), (_LD_ABS, 0, 0, _NR)]
    if arch == "SCMP_ARCH_X86_64":
        # x32 calls arrive with this arch and bit 30 set: the default action for them.
        code += [(_JGE, 0, 1, _X32_SYSCALL_BIT), (_RET, 0, 0, default)]
    plain: dict[int, dict[int, str]] = {}   # return value -> number -> name
    seen: dict[int, int] = {}
    for n, rule in enumerate(rules):
        value = _return_value(rule["action"], rule.get("errnoRet"))
        for name in rule["names"]:
            number = numbers.get(name)
            if number is None:
                continue   # not a syscall of this architecture (e.g. "chown32" on x86_64)
            if rule.get("args"):
                skip = f"{arch} rule {n} {name}"
                code += [(_JEQ, 1, 0, number), (_JA, 0, 0, skip)]
                code += _conditions(rule["args"], value, is_64, skip)
                code += [("label", skip), (_LD_ABS, 0, 0, _NR)]
            else:
                if seen.get(number, value) != value:
                    raise ValueError(f"seccomp: syscall {name} has two actions")
                seen[number] = value
                plain.setdefault(value, {})[number] = name
    for value, chosen in plain.items():
        for low, high in _ranges(sorted(chosen)):
            # nr > high: on to the next range; nr >= low: return; below: skip the return.
            code += [(_JGT, 2, 0, high), (_JGE, 0, 1, low), (_RET, 0, 0, value)]
    if default != ACTIONS["SCMP_ACT_ALLOW"]:
        # A syscall newer than our table: ENOSYS, as if the kernel lacked it, so that libc falls
        # back to the older call (glibc's fchmodat2 -> fchmodat). runc's patchbpf does the same.
        code += [(_JGT, 0, 1, max(numbers.values())), (_RET, 0, 0, ACTIONS["SCMP_ACT_ERRNO"] | _ENOSYS)]
    code.append((_RET, 0, 0, default))
    return code


def _conditions(args: list[Mapping[str, Any]], value: int, is_64: bool, fail: str) -> list[tuple]:
    """All conditions of one rule (they must all hold), then return its action.

    A 64-bit argument is two 32-bit words: the high word decides unless it is equal to the
    value's, then the low word does (libseccomp compiles comparisons the same way).
    """
    code: list[tuple] = []
    for n, arg in enumerate(args):
        offset = 16 + 8 * int(arg["index"])
        op = arg["op"]
        want = int(arg.get("value", 0)) & 0xFFFFFFFFFFFFFFFF
        two = int(arg.get("valueTwo", 0)) & 0xFFFFFFFFFFFFFFFF
        passed = f"{fail} condition {n} passed"
        words = [(offset + 4, want >> 32, two >> 32), (offset, want & 0xFFFFFFFF, two & 0xFFFFFFFF)]
        if not is_64:
            words = words[1:]   # 32-bit arguments: the low word only
        greater = op in ("SCMP_CMP_GT", "SCMP_CMP_GE")
        for w, (field, k, k2) in enumerate(words):
            last = w == len(words) - 1
            code.append((_LD_ABS, 0, 0, field))
            if op == "SCMP_CMP_EQ":
                code += [(_JEQ, 1, 0, k), (_JA, 0, 0, fail)]
            elif op == "SCMP_CMP_MASKED_EQ":
                code += [(_ALU_AND, 0, 0, k), (_JEQ, 1, 0, k2), (_JA, 0, 0, fail)]
            elif op == "SCMP_CMP_NE":
                # a different word passes; an equal high word leaves it to the low word
                if not last:
                    code += [(_JEQ, 1, 0, k), (_JA, 0, 0, passed)]
                else:
                    code += [(_JEQ, 0, 1, k), (_JA, 0, 0, fail)]
            elif not last:
                # equal: on to the low word (3 ahead); above or below decides now
                code += [(_JEQ, 3, 0, k), (_JGT, 0, 1, k),
                         (_JA, 0, 0, passed if greater else fail), (_JA, 0, 0, fail if greater else passed)]
            else:
                # GT: A > k passes; GE: A >= k passes; LT fails when A >= k; LE fails when A > k
                jump = _JGT if op in ("SCMP_CMP_GT", "SCMP_CMP_LE") else _JGE
                code += [(jump, 0, 1, k), (_JA, 0, 0, passed if greater else fail),
                         (_JA, 0, 0, fail if greater else passed)]
        code.append(("label", passed))
    code.append((_RET, 0, 0, value))
    return code


def _assemble(code: list[tuple]) -> bytes:
    """Resolve labels (``ja`` to a name) and pack ``struct sock_filter`` entries."""
    labels, position = {}, 0
    for item in code:
        if item[0] == "label":
            labels.setdefault(item[1], position)
        else:
            position += 1
    if position > 4096:
        raise ValueError(f"seccomp: the filter has {position} instructions, the kernel takes 4096 at most")
    out, pc = bytearray(), 0
    for item in code:
        if item[0] == "label":
            continue
        op, jt, jf, k = item
        if op == _JA and isinstance(k, str):
            k = labels[k] - pc - 1
        out += struct.pack("<HBBI", op, jt, jf, k)
        pc += 1
    return bytes(out)


def _ranges(numbers: list[int]) -> list[tuple[int, int]]:
    ranges: list[list[int]] = []
    for n in numbers:
        if ranges and ranges[-1][1] == n - 1:
            ranges[-1][1] = n
        else:
            ranges.append([n, n])
    return [(a, b) for a, b in ranges]


def _return_value(action: str, errno: int | None) -> int:
    value = ACTIONS[action]
    if action in ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE"):
        value |= (_EPERM if errno is None and action == "SCMP_ACT_ERRNO" else errno or 0) & 0xFFFF
    return value


# ---------------------------------------------------------------- profile checks

def _architectures(profile: Mapping[str, Any], machine: str) -> list[str]:
    native = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}.get(machine)
    for entry in profile.get("archMap") or ():
        if entry.get("architecture") == native:
            return [native, *(entry.get("subArchitectures") or ())]
    return list(profile.get("architectures") or ([native] if native else []))


def _check_action(action: object, where: str) -> str:
    if action not in ACTIONS:
        raise InvalidArgument(f"invalid seccomp profile: {where} {action!r} is not an action",
                              hint="use one of " + ", ".join(ACTIONS))
    return str(action)


def _check_arg(arg: Mapping[str, Any], where: str) -> dict[str, Any]:
    if arg.get("op") not in OPERATORS:
        raise InvalidArgument(f"invalid seccomp profile: {where} operator {arg.get('op')!r} does not exist",
                              hint="use one of " + ", ".join(OPERATORS))
    if not isinstance(arg.get("index"), int) or not 0 <= arg["index"] <= 5:
        raise InvalidArgument(f"invalid seccomp profile: {where} index {arg.get('index')!r}: a syscall has "
                              "arguments 0 to 5")
    checked = {"index": arg["index"], "value": int(arg.get("value", 0)), "op": arg["op"]}
    if arg.get("valueTwo"):
        checked["valueTwo"] = int(arg["valueTwo"])
    return checked


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not (name in _OTHER_ARCH_SYSCALLS or any(
            name in numbers for _, numbers in ARCHITECTURES.values())):
        raise InvalidArgument(f"invalid seccomp profile: unknown syscall {name!r}",
                              hint="names are those of syscalls(2), e.g. mkdirat")


def _version(release: str) -> tuple[int, ...]:
    parts = []
    for piece in release.split("-")[0].split(".")[:3]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)
