"""Chapter 11: the 32-bit door. A real i386 program against the filter's i386 section.

An x86_64 kernel built with CONFIG_IA32_EMULATION runs 32-bit programs, and they enter the
kernel through ``int 0x80`` with i386 numbers: 288 there is keyctl, while 288 on x86_64 is
accept4, which every container may call. A filter that checked numbers without checking the
architecture first would let keyctl through. The programs here are hand-assembled ELF files
(tests/securitykit.syscall_elf: a few bytes of machine code, no gcc-multilib or 32-bit libc
needed) that make one syscall and exit with its errno.

- on the host, unfiltered: the programs work (the 32-bit entry exists here);
- under the default profile: keyctl is refused through both entries, getuid32 works, and the
  argument filters hold on the 32-bit entry too (clone with CLONE_NEWUSER, personality);
- a profile whose architectures omit x86: any 32-bit call kills the process (SIGSYS), as
  libseccomp's default "bad architecture" action does under Docker;
- the same programs under a private dockerd: the same exit codes.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import tarfile

import pytest
from conftest import missing_feature

from minidocker.linux.syscall_table import I386, X86_64
from minidocker.security.profile import default_profile
from securitykit import syscall_elf

pytestmark = [pytest.mark.ch11]

KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING = 0, -3   # keyctl(2): a lookup, no side effect
SIGCHLD, CLONE_NEWUSER, READ_IMPLIES_EXEC = 17, 0x10000000, 0x0400000   # clone(2), personality(2)
# name -> (arch, number, args): each program makes this one call and exits with its errno
PROGRAMS = {
    "keyctl32": ("i386", I386["keyctl"], (KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)),
    "keyctl64": ("x86_64", X86_64["keyctl"], (KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0)),
    "getuid32": ("i386", I386["getuid32"], ()),
    "getuid64": ("x86_64", X86_64["getuid"], ()),
    "nosuch32": ("i386", 9999, ()),   # no syscall has this number: ENOSYS from the kernel
    # the argument filters of the i386 section: clone without and with a namespace flag,
    # personality(0xffffffff) (a query) and READ_IMPLIES_EXEC (0x0400000), which is refused
    "fork32": ("i386", I386["clone"], (SIGCHLD,)),
    "clone_newuser32": ("i386", I386["clone"], (CLONE_NEWUSER | SIGCHLD,)),
    "personality_query32": ("i386", I386["personality"], (0xFFFFFFFF,)),
    "personality_rie32": ("i386", I386["personality"], (READ_IMPLIES_EXEC,)),
}
KILLED_BY_SIGSYS = 128 + signal.SIGSYS   # how a shell, docker and minidocker report it


def _write_programs(directory) -> None:
    for name, (arch, number, args) in PROGRAMS.items():
        path = directory / name
        path.write_bytes(syscall_elf(arch, number, *args))
        os.chmod(path, 0o755)


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("compat32")
    _write_programs(directory)
    if subprocess.run([str(directory / "getuid32")]).returncode != 0:
        missing_feature("this kernel does not run 32-bit programs (CONFIG_IA32_EMULATION, "
                        "or ia32_emulation=false on its command line)")
    return directory


@pytest.fixture(scope="module")
def compat32_image(programs, state_root, tmp_path_factory):
    """``compat32:latest``: busybox with the programs in /."""
    from minidocker.image import ImageStore
    from minidocker.image.busybox import build_busybox_tree
    from minidocker.image.imports import import_tarball
    from minidocker.paths import state_roots

    work = tmp_path_factory.mktemp("compat32-image")
    tree = work / "rootfs"
    busybox = next(p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p))
    build_busybox_tree(tree, busybox)
    _write_programs(tree)
    tar = work / "compat32.tar"
    with tarfile.open(tar, "w") as t:
        for entry in sorted(os.listdir(tree)):
            t.add(tree / entry, arcname=entry)
    import_tarball(ImageStore(state_roots().images), tar, "compat32:latest",
                   runtime={"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]})
    return tar


def _codes(run, *flags: str) -> dict[str, int]:
    return {name: run(*flags, name) for name in PROGRAMS}


def _ours(cli):
    def run(*args: str) -> int:
        r = cli("run", "--rm", "--network", "none", *args[:-1], "compat32", f"/{args[-1]}")
        assert not r.err.strip() or r.code == KILLED_BY_SIGSYS, r
        return r.code
    return run


def test_the_same_number_is_another_call_on_each_entry():
    # why the architecture check comes first: i386's keyctl is x86_64's accept4, which is allowed
    assert I386["keyctl"] == X86_64["accept4"] == 288
    allowed = {n for rule in default_profile()["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW"
               and not rule.get("includes") for n in rule["names"]}
    assert "accept4" in allowed and "keyctl" not in allowed


def test_the_programs_make_their_call_on_the_host(programs):
    codes = {name: subprocess.run([str(programs / name)]).returncode for name in PROGRAMS}
    assert codes == {"keyctl32": 0, "keyctl64": 0, "getuid32": 0, "getuid64": 0, "nosuch32": errno.ENOSYS,
                     "fork32": 0, "clone_newuser32": 0, "personality_query32": 0, "personality_rie32": 0}, codes


def test_default_profile_blocks_keyctl_through_int_0x80_too(cli, compat32_image):
    run = _ours(cli)
    assert _codes(run) == {"keyctl32": errno.EPERM, "keyctl64": errno.EPERM, "getuid32": 0, "getuid64": 0,
                           "nosuch32": errno.ENOSYS, "fork32": 0, "clone_newuser32": errno.EPERM,
                           "personality_query32": 0, "personality_rie32": errno.EPERM}
    # without the filter the same 32-bit calls reach the kernel code (and succeed)
    for name in ("keyctl32", "clone_newuser32", "personality_rie32"):
        assert run("--security-opt", "seccomp=unconfined", name) == 0, name


def _profile_without_x86(tmp_path):
    profile = default_profile()
    del profile["archMap"]
    profile["architectures"] = ["SCMP_ARCH_X86_64"]
    path = tmp_path / "no-x86.json"
    path.write_text(json.dumps(profile))
    return path


def test_a_profile_without_x86_kills_every_32_bit_call(cli, compat32_image, tmp_path):
    codes = _codes(_ours(cli), "--security-opt", f"seccomp={_profile_without_x86(tmp_path)}")
    assert codes == {"keyctl64": errno.EPERM, "getuid64": 0,
                     **{name: KILLED_BY_SIGSYS for name, (arch, _, _) in PROGRAMS.items() if arch == "i386"}}


@pytest.mark.docker
@pytest.mark.slow
def test_dockers_verdicts_on_the_32_bit_entry_are_ours(cli, compat32_image, dockerd, tmp_path):
    parent = f"minidocker-dockerd-compat32-{os.getpid()}"   # Docker's cgroups, removed below
    dockerd.docker("import", str(compat32_image), "compat32:latest")

    def theirs(*args: str) -> int:
        proc = subprocess.run(["docker", "run", "--rm", "--network", "none", "--cgroup-parent", f"/{parent}",
                               *args[:-1], "compat32:latest", f"/{args[-1]}"],
                              env=dockerd.env, capture_output=True, text=True, timeout=120)
        return proc.returncode

    try:
        for flags in ([], ["--security-opt", f"seccomp={_profile_without_x86(tmp_path)}"],
                      ["--security-opt", "seccomp=unconfined"]):
            assert _codes(theirs, *flags) == _codes(_ours(cli), *flags), flags
    finally:
        from pathlib import Path

        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            group = hierarchy / parent
            if group.is_dir() and not hierarchy.is_symlink():
                group.rmdir()
