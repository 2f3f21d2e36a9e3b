"""A throwaway qemu guest with a pure cgroup v2 hierarchy, for tests this host cannot run.

These machines are cgroup v1/v2 hybrids whose v2 mount has no memory, cpu or pids
controller, so the v2 driver's limits cannot be proven here. The guest can: qemu
(TCG) boots Debian's packaged kernel with a tiny initramfs (static busybox and the
9p/virtio/overlay modules), mounts the host's ``/`` read-only over 9p, mounts a
pure cgroup2 hierarchy on ``/sys/fs/cgroup``, a tmpfs on ``/run``, switches root to
the host's tree (switch_root, not chroot: user namespaces work there) and runs a
shell script of the host's with the host's Python. Output comes back on
the serial console; the script's exit status follows a marker line. No disk image,
no network. See: Documentation/filesystems/9p.rst, qemu(1) -virtfs.

    guest = Guest.prepare()                    # downloads the kernel once into .cache/vm
    result = guest.run("/path/to/script.sh")   # GuestResult(exit_code, output, seconds)

Needs: qemu-system-x86_64, busybox-static, apt-get (for the kernel package), root.
Run by hand: ``python tests/vm.py 'cat /sys/fs/cgroup/cgroup.controllers'``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CACHE", "Guest", "GuestResult", "GuestUnavailable"]

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "vm"
MODULES = ("virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
           "netfs", "fscache", "9pnet", "9pnet_virtio", "9p", "overlay")
EXIT_MARKER = "MDVM-EXIT"
BEGIN_MARKER = "MDVM-BEGIN"

INIT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /host /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in {modules}; do insmod /lib/modules/$m.ko || echo "insmod $m failed"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144,cache=loose hostroot /host || poweroff -f
# The host's tree becomes the guest's root as an initramfs hands over to a distribution's init:
# /proc, /sys and /dev moved into it, then switch_root(8) (delete the initramfs, move /host onto /,
# chroot there, exec). A chroot into /host would not do: unshare(CLONE_NEWUSER) refuses a caller
# whose root is not its mount namespace's (EPERM, unshare(2)), so no user namespace, no rootless.
mount --move /proc /host/proc
mount --move /sys /host/sys
mount --move /dev /host/dev
mount -t cgroup2 cgroup2 /host/sys/fs/cgroup
mount -t tmpfs tmpfs /host/run
mkdir /host/run/mdvm
cp /bin/busybox /stage2 /host/run/mdvm/
script=$(sed -n 's/.*mdscript=\\([^ ]*\\).*/\\1/p' /host/proc/cmdline)
exec switch_root /host /run/mdvm/busybox sh /run/mdvm/stage2 "$script"
echo "switch_root failed"
poweroff -f
"""

# PID 1 once the host's tree is the root: busybox (copied to the /run tmpfs) runs the script, then
# powers off.
STAGE2 = """echo {begin}
HOME=/run TMPDIR=/run PYTHONDONTWRITEBYTECODE=1 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    /bin/sh "$1" 2>&1
echo "{exit} $?"
/run/mdvm/busybox poweroff -f
"""


class GuestUnavailable(RuntimeError):
    """qemu, busybox or the kernel package is missing; the message says which."""


@dataclass(frozen=True)
class GuestResult:
    exit_code: int | None  # None: the guest never reported one (crash, timeout)
    output: str            # what the script printed (the boot messages are cut off)
    console: str           # the whole serial console, for failure reports
    seconds: float


@dataclass(frozen=True)
class Guest:
    vmlinuz: Path
    initrd: Path

    @classmethod
    def prepare(cls, cache: Path = CACHE) -> Guest:
        """Find or download Debian's kernel and build the initramfs (both cached in ``cache``)."""
        qemu = shutil.which("qemu-system-x86_64")
        busybox = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if _is_static(p)), None)
        if qemu is None:
            raise GuestUnavailable("qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)")
        if busybox is None:
            raise GuestUnavailable("no static busybox (apt-get install busybox-static)")
        kdir = _kernel_tree(cache)
        version = next((kdir / "lib/modules").iterdir()).name
        # named for what goes in, so that a changed INIT builds a new one beside the old
        recipe = hashlib.sha256(f"{INIT}{STAGE2}{MODULES}{busybox}".encode()).hexdigest()[:12]
        initrd = cache / f"initrd-{version}-{recipe}.gz"
        if not initrd.exists():
            _build_initrd(initrd, busybox, kdir / "lib/modules" / version / "kernel")
        return cls(kdir / "boot" / f"vmlinuz-{version}", initrd)

    def run(self, script: str | os.PathLike[str], timeout: float = 300, memory_mb: int = 1024) -> GuestResult:
        """Boot, run ``sh script`` (a host path, seen read-only by the guest), power off."""
        # -cpu Nehalem (x86-64-v2): qemu's default model lacks SSE4.2 and POPCNT, which numpy's wheels
        # (matplotlib, the notebooks) need as a baseline: without them they die of SIGILL in the guest.
        cmd = ["qemu-system-x86_64", "-accel", "tcg", "-cpu", "Nehalem", "-smp", "2", "-m", str(memory_mb), "-nographic",
               "-no-reboot", "-kernel", str(self.vmlinuz), "-initrd", str(self.initrd),
               "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
               "-append", f"console=ttyS0 quiet loglevel=3 panic=-1 mdscript={os.fspath(script)}"]
        start = time.monotonic()
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
            console = proc.stdout.decode(errors="replace").replace("\r\n", "\n")
        except subprocess.TimeoutExpired as err:
            console = (err.stdout or b"").decode(errors="replace") + f"\n[timed out after {timeout} s]"
        seconds = time.monotonic() - start
        match = re.search(rf"^{EXIT_MARKER} (\d+)$", console, re.MULTILINE)
        output = console.split(BEGIN_MARKER + "\n", 1)[-1].split(EXIT_MARKER, 1)[0]
        return GuestResult(int(match.group(1)) if match else None, output, console, seconds)


def _is_static(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"/lib64/ld-linux" not in data and b"/lib/ld-linux" not in data


def _kernel_tree(cache: Path) -> Path:
    """An unpacked linux-image package in ``cache``: downloaded with apt-get, never installed."""
    cache.mkdir(parents=True, exist_ok=True)
    trees = sorted(p for p in cache.glob("kernel-*") if (p / "boot").is_dir())
    if trees:
        return trees[-1]
    if shutil.which("apt-get") is None:
        raise GuestUnavailable("apt-get is needed to download Debian's kernel package")
    depends = subprocess.run(["apt-cache", "depends", "linux-image-amd64"], capture_output=True, text=True)
    package = next((m.group(1) for m in re.finditer(r"Depends: (linux-image-\S+)", depends.stdout)), None)
    if package is None:
        raise GuestUnavailable(f"no kernel package found by apt-cache depends linux-image-amd64: {depends.stderr}")
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        got = subprocess.run(["apt-get", "download", package], cwd=tmp, capture_output=True, text=True)
        debs = list(Path(tmp).glob("*.deb"))
        if got.returncode != 0 or not debs:
            raise GuestUnavailable(f"failed to download {package}: {got.stderr.strip()}")
        tree = cache / f"kernel-{package}"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(tree) + ".tmp"], check=True)
        os.rename(str(tree) + ".tmp", tree)
    return tree


def _build_initrd(target: Path, busybox: str, module_dir: Path) -> None:
    """A gzipped newc cpio archive: /bin/busybox, /init, /lib/modules/*.ko."""
    files: list[tuple[str, int, bytes]] = [("bin", 0o40755, b""), ("lib", 0o40755, b""),
                                           ("lib/modules", 0o40755, b"")]
    files.append(("bin/busybox", 0o100755, Path(busybox).read_bytes()))
    for name in MODULES:
        found = next(module_dir.rglob(f"{name}.ko"), None)
        if found is None:
            raise GuestUnavailable(f"module {name}.ko is not in {module_dir}")
        files.append((f"lib/modules/{name}.ko", 0o100644, found.read_bytes()))
    init = INIT.format(modules=" ".join(MODULES), begin=BEGIN_MARKER, exit=EXIT_MARKER)
    files.append(("init", 0o100755, init.encode()))
    files.append(("stage2", 0o100644, STAGE2.format(begin=BEGIN_MARKER, exit=EXIT_MARKER).encode()))
    tmp = target.with_suffix(".tmp")
    with gzip.open(tmp, "wb", compresslevel=1) as out:
        out.write(_cpio_newc(files))
    os.rename(tmp, target)


def _cpio_newc(files: list[tuple[str, int, bytes]]) -> bytes:
    """The "new ASCII" cpio format the kernel unpacks initramfs from. See: Documentation/driver-api/early-userspace/buffer-format.rst."""
    out = io.BytesIO()

    def entry(ino: int, name: str, mode: int, data: bytes) -> None:
        encoded = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(encoded), 0]
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + encoded)
        out.write(b"\0" * (-(110 + len(encoded)) % 4))
        out.write(data)
        out.write(b"\0" * (-len(data) % 4))

    for ino, (name, mode, data) in enumerate(files, start=1):
        entry(ino, name, mode, data)
    entry(0, "TRAILER!!!", 0, b"")
    return out.getvalue()


if __name__ == "__main__":
    guest = Guest.prepare()
    with tempfile.NamedTemporaryFile("w", suffix=".sh", dir=CACHE, delete=False) as f:
        f.write(" ".join(sys.argv[1:]) or "cat /sys/fs/cgroup/cgroup.controllers; uname -r")
    try:
        result = guest.run(f.name)
    finally:
        os.unlink(f.name)
    print(result.output, end="")
    print(f"[exit {result.exit_code}, {result.seconds:.1f} s]")
