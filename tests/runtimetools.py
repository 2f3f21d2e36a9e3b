"""The OCI runtime-tools validation suite, built offline from Debian's packages, run against any runtime.

    suite = build()                                   # ~25 s the first time, ~0.5 s after
    with Workdir(suite, "/usr/sbin/runc") as work:
        verdict = work.run("create")                  # Verdict("pass", points, ...)

    python tests/runtimetools.py [--runtime PATH|ours ...] [-v] [PROGRAM ...]   # build, run, print a table

opencontainers/runtime-tools has one Go program per area of the runtime spec (``validation/<name>``):
each writes a bundle from a generated config.json, drives the runtime through its command line
(``$RUNTIME create|start|state|kill|delete``, the OCI runtime command-line interface), runs
``runtimetest`` inside the container to check the process's view, and reports in TAP.

Where it comes from, with no Go module proxy and no GitHub:

- Debian's binary package ``golang-github-opencontainers-runtime-tools-dev`` ships only the library
  part (no ``validation/``, no ``cmd/``). The source package has everything; it is fetched with
  ``apt-get source --download-only`` through a private apt configuration under ``.cache`` (the
  host's ``deb`` lines turned into ``deb-src``; the host's apt setup is not touched), and its
  tarball is checked against the SHA-256 pinned below.
- Every import but one is a Debian ``-dev`` package under /usr/share/gocode (``PACKAGES``); the
  build runs in GOPATH mode (``GO111MODULE=off``, GOPATH = our tree, then /usr/share/gocode).
- ``github.com/mndrix/tap-go`` is in no Debian package; ``tests/runtime_tools/tap.go`` is a small
  TAP 13 writer with the same methods, put in its place.

Each program runs in a work directory of its own (it wants ``runtimetest`` and
``rootfs-amd64.tar.gz`` in its current directory) with ``TMPDIR`` there (its bundles), and
``RUNTIME`` set to a two-line wrapper that adds ``--root`` so that the runtime's state is private
too. After each program the harness removes what the program or runtime left: containers still in
the root (``delete --force``), mounts and bundles under the directory, and the fixed cgroups the
cgroup programs use (``/testdir/cgrouptest``, ``/cgrouptest``); :attr:`Verdict.left_behind` says
what it had to remove.

See: https://github.com/opencontainers/runtime-tools (README, docs/), the OCI runtime spec's
runtime.md, and TAP 13 (testanything.org).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PROGRAMS", "Suite", "SuiteUnavailable", "Verdict", "Workdir", "build", "run_all"]

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "runtime-tools"
TAP_GO = Path(__file__).resolve().parent / "runtime_tools" / "tap.go"

SOURCE_PACKAGE = "golang-github-opencontainers-runtime-tools"
# The upstream tree this harness was written against (upstream commit e931285, 0.9.0 + 109 commits);
# bookworm's own source (0.9.0+git20220423.g0105384) is not fetchable from this machine's mirror.
SOURCE_VERSION = "0.9.0.109.ge931285-1"
SOURCE_TARBALL = "golang-github-opencontainers-runtime-tools_0.9.0.109.ge931285.orig.tar.xz"
SOURCE_SHA256 = "203989a1ea98cf2aaced79155bbda09270b20db19b03376dde91ab12e5e6a0fe"
# The suites whose Sources index lists SOURCE_VERSION (apt checks each file against it).
SOURCE_SUITES = ("trixie", "sid")
# Debian packages the build needs (also in the Makefile's APT_PACKAGES): the compiler and the Go
# libraries the validation programs import, as Debian -dev packages under /usr/share/gocode.
PACKAGES = (
    "golang-go", "golang-github-opencontainers-runtime-tools-dev", "golang-github-google-uuid-dev",
    "golang-github-opencontainers-specs-dev", "golang-github-mrunalp-fileutils-dev",
    "golang-github-hashicorp-go-multierror-dev", "golang-github-xeipuuv-gojsonschema-dev",
    "golang-github-opencontainers-selinux-dev", "golang-gocapability-dev", "golang-github-urfave-cli-dev",
    "golang-github-sirupsen-logrus-dev", "golang-github-blang-semver-dev", "golang-golang-x-sys-dev",
)
GOCODE = Path("/usr/share/gocode")
IMPORT_PATH = "github.com/opencontainers/runtime-tools"

# validation/* of SOURCE_VERSION (util is the shared library, not a program).
PROGRAMS = (
    "config_updates_without_affect", "create", "default", "delete", "delete_only_create_resources",
    "delete_resources", "hooks", "hooks_stdin", "hostname", "kill", "kill_no_effect", "killsig",
    "linux_cgroups_blkio", "linux_cgroups_cpus", "linux_cgroups_devices", "linux_cgroups_hugetlb",
    "linux_cgroups_memory", "linux_cgroups_network", "linux_cgroups_pids", "linux_cgroups_relative_blkio",
    "linux_cgroups_relative_cpus", "linux_cgroups_relative_devices", "linux_cgroups_relative_hugetlb",
    "linux_cgroups_relative_memory", "linux_cgroups_relative_network", "linux_cgroups_relative_pids",
    "linux_devices", "linux_masked_paths", "linux_mount_label", "linux_ns_itype", "linux_ns_nopath",
    "linux_ns_path", "linux_ns_path_type", "linux_process_apparmor_profile", "linux_readonly_paths",
    "linux_rootfs_propagation", "linux_seccomp", "linux_sysctl", "linux_uid_mappings", "misc_props", "mounts",
    "pidfile", "poststart", "poststart_fail", "poststop", "poststop_fail", "prestart", "prestart_fail",
    "process", "process_capabilities", "process_capabilities_fail", "process_oom_score_adj",
    "process_rlimits", "process_rlimits_fail", "process_user", "root_readonly_true", "start", "state",
)
# The cgroups that the programs using cgroupsPath name: fixed, absolute (below each hierarchy's root)
# and relative (below the runtime's own cgroup); only these programs may run at the same time as others.
TEST_CGROUPS = ("testdir/cgrouptest/container", "testdir/cgrouptest", "testdir", "cgrouptest")
CGROUP_PROGRAMS = tuple(p for p in PROGRAMS if p.startswith("linux_cgroups_") or p.startswith("delete_"))
# Programs that sleep for seconds (first in the queue, so the lanes end together).
SLOW_PROGRAMS = ("delete", "kill", "pidfile", "linux_readonly_paths", "linux_masked_paths", "linux_ns_path",
                 "linux_ns_path_type", "state", "hostname", "killsig")
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROGRAM_TIMEOUT = 120


class SuiteUnavailable(RuntimeError):
    """The suite cannot be fetched or built here; the message says what is missing."""


@dataclass(frozen=True)
class Suite:
    """A built suite: ``bin/<program>`` for each of PROGRAMS, ``bin/runtimetest``, the rootfs tarball."""

    bin: Path
    rootfs: Path
    version: str


# -- building -----------------------------------------------------------------------------------

def build(cache: Path = CACHE, install: bool = True) -> Suite:
    """Fetch the source and build the programs into ``cache`` unless a build of the same inputs is there.

    One build at a time per cache (an flock on ``cache/.lock``): test sessions may share it."""
    import fcntl

    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build(cache, install)


def _build(cache: Path, install: bool) -> Suite:
    bin_dir, tree = cache / "bin", cache / "gopath" / "src" / IMPORT_PATH
    if (bin_dir / ".stamp").is_file() and (bin_dir / ".stamp").read_text() == _stamp() and all(
            (bin_dir / name).is_file() for name in (*PROGRAMS, "runtimetest")):
        return Suite(bin_dir, tree / "rootfs-amd64.tar.gz", SOURCE_VERSION)
    _ensure_packages(install)
    tarball = _fetch_source(cache / "source")
    _unpack(tarball, tree)
    tap = cache / "gopath" / "src" / "github.com" / "mndrix" / "tap-go"
    tap.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TAP_GO, tap / "tap.go")
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": f"{cache / 'gopath'}:{GOCODE}",
           "GOCACHE": str(cache / "gocache"), "GOFLAGS": "", "CGO_ENABLED": "0"}
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / ".stamp").unlink(missing_ok=True)
    for target, packages in ((f"{bin_dir}/", ["./validation/..."]),
                             (str(bin_dir / "runtimetest"), ["./cmd/runtimetest"])):
        # runtimetest runs inside the containers' busybox rootfs: static (netgo, osusergo, no cgo).
        out = subprocess.run(["go", "build", "-tags", "netgo osusergo", "-ldflags", "-s -w", "-o", target,
                              *packages], cwd=tree, env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise SuiteUnavailable(f"failed to build the runtime-tools validation programs: "
                                   f"go build {' '.join(packages)}:\n{out.stderr[-3000:]}")
    missing = [name for name in (*PROGRAMS, "runtimetest") if not (bin_dir / name).is_file()]
    if missing:
        raise SuiteUnavailable(f"failed to build the runtime-tools validation programs: missing {missing}")
    (bin_dir / ".stamp").write_text(_stamp())
    return Suite(bin_dir, tree / "rootfs-amd64.tar.gz", SOURCE_VERSION)


def _stamp() -> str:
    """What a build depends on: the source version, our tap.go, the Go compiler."""
    go = shutil.which("go")
    go_id = f"{go} {os.stat(go).st_mtime_ns}" if go else "no go"
    return f"{SOURCE_VERSION}\n{hashlib.sha256(TAP_GO.read_bytes()).hexdigest()}\n{go_id}\n"


def _ensure_packages(install: bool) -> None:
    missing = [p for p in PACKAGES if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode != 0]
    if not missing:
        return
    if not install or os.geteuid() != 0:
        raise SuiteUnavailable(f"missing Debian packages: {' '.join(missing)} (make apt installs them)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in range(6):   # another apt may hold the dpkg lock for a while
        out = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                             env=env, capture_output=True, text=True, check=False)
        if out.returncode == 0:
            return
        time.sleep(10)
    raise SuiteUnavailable(f"failed to install {' '.join(missing)}: {out.stderr[-1000:]}")


def _fetch_source(directory: Path) -> Path:
    """The source tarball, from the cache or ``apt-get source``, checked against SOURCE_SHA256."""
    tarball = directory / SOURCE_TARBALL
    if tarball.is_file() and _sha256(tarball) == SOURCE_SHA256:
        return tarball
    directory.mkdir(parents=True, exist_ok=True)
    apt = directory.parent / "apt"
    options = _private_apt(apt)
    out = subprocess.run(["apt-get", *options, "update"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SuiteUnavailable(f"failed to read the Debian source index: apt-get update: {out.stderr[-1500:]}")
    # apt-get checks each file it fetches against the Sources index; a missing .dsc (this machine's
    # mirror lacks some) fails the command after the tarball is in, so the tarball is what counts.
    out = subprocess.run(["apt-get", *options, "source", "--download-only", f"{SOURCE_PACKAGE}={SOURCE_VERSION}"],
                         cwd=directory, capture_output=True, text=True, check=False)
    if not tarball.is_file():
        raise SuiteUnavailable(f"failed to fetch the source of {SOURCE_PACKAGE} {SOURCE_VERSION}: apt-get source: "
                               f"{(out.stderr or out.stdout)[-1500:]}")
    shutil.rmtree(apt, ignore_errors=True)   # the indexes (~50 MB) are needed only for this download
    found = _sha256(tarball)
    if found != SOURCE_SHA256:
        tarball.unlink()
        raise SuiteUnavailable(f"failed to fetch {SOURCE_TARBALL}: sha256 {found}, expected {SOURCE_SHA256}")
    return tarball


def _private_apt(apt: Path) -> list[str]:
    """apt-get options for an apt of our own: deb-src lines for SOURCE_SUITES on the host's Debian
    mirror (the URIs of its deb lines), its own lists and cache; the host's apt setup is untouched."""
    for sub in ("parts", "lists/partial", "cache/archives/partial"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    uris: list[str] = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if not path.is_file() or path.suffix not in (".list", ".sources"):
            continue
        text = path.read_text()
        if path.suffix == ".list":
            found = re.findall(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)", text, re.M)
        else:
            found = [(u, suites) for stanza in text.split("\n\n")
                     if re.search(r"^Types:.*\bdeb\b", stanza, re.M)
                     for u in re.findall(r"^URIs:\s*(.*)$", stanza, re.M)[0].split()[:1]
                     for suites in re.findall(r"^Suites:\s*(.*)$", stanza, re.M)[:1]]
        uris += [u for u, suites in found if _codename() in suites.split() and u not in uris]
    if not uris:
        raise SuiteUnavailable(f"failed to find the Debian mirror: no deb line for {_codename()} in /etc/apt")
    keyring = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
    signed = f"[signed-by={keyring}] " if keyring.is_file() else ""
    (apt / "parts" / "src.list").write_text(
        "".join(f"deb-src {signed}{u} {suite} main\n" for u in uris for suite in SOURCE_SUITES))
    (apt / "empty.list").write_text("")
    return ["-o", f"Dir::Etc::SourceList={apt / 'empty.list'}", "-o", f"Dir::Etc::SourceParts={apt / 'parts'}",
            "-o", f"Dir::State::Lists={apt / 'lists'}", "-o", f"Dir::Cache={apt / 'cache'}",
            "-o", "APT::Sandbox::User=root", "-qq"]


def _codename() -> str:
    text = Path("/etc/os-release").read_text() if Path("/etc/os-release").is_file() else ""
    match = re.search(r"^VERSION_CODENAME=\"?([a-z]+)", text, re.M)
    return match.group(1) if match else "bookworm"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _unpack(tarball: Path, tree: Path) -> None:
    """Extract the source's top directory to ``tree`` (replacing an older one)."""
    tree.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="src.", dir=tree.parent))
    try:
        with tarfile.open(tarball) as tar:
            tar.extractall(staging)
        (top,) = staging.iterdir()
        if tree.exists():
            shutil.rmtree(tree)
        top.rename(tree)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# -- running ------------------------------------------------------------------------------------

@dataclass
class Point:
    """One TAP test point."""

    ok: bool
    number: int
    description: str
    directive: str = ""        # "SKIP" or "TODO"


@dataclass
class Verdict:
    """What one program said: ``pass``, ``fail`` or ``skip``, from its exit code and TAP output."""

    program: str
    verdict: str
    code: int
    points: list[Point]
    stdout: str
    stderr: str
    seconds: float
    problems: list[str] = field(default_factory=list)      # plans that do not match their points
    left_behind: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Point]:
        return [p for p in self.points if not p.ok and p.directive != "TODO"]

    def summary(self) -> str:
        passed = sum(p.ok and not p.directive for p in self.points)
        return (f"{self.verdict} ({passed}/{len(self.points)} points, exit {self.code}, {self.seconds:.1f} s)"
                + (f"; {', '.join(self.problems)}" if self.problems else "")
                + (f"; left behind: {', '.join(self.left_behind)}" if self.left_behind else ""))

    def report(self) -> str:
        """Everything a failure message needs: the failed points and both streams."""
        failed = "\n".join(f"  not ok {p.number} - {p.description}" for p in self.failed) or "  (no failed point)"
        return (f"{self.program}: {self.summary()}\nfailed points:\n{failed}\n--- TAP (stdout) ---\n"
                f"{self.stdout[-6000:]}\n--- stderr ---\n{self.stderr[-3000:]}")


_POINT = re.compile(r"^(not ok|ok)\b\s*(\d*)\s*(?:-\s*)?(.*?)(?:\s+#\s*(SKIP|TODO)\b.*)?$", re.I)


def parse_tap(text: str) -> tuple[list[Point], list[str]]:
    """The test points (top level only: indented lines are YAML blocks) and what is wrong with the plans.

    A program may write several reports one after the other (each "TAP version 13", points, plan
    "1..N"; some write the plan last): each plan must count its own report's points."""
    points: list[Point] = []
    problems: list[str] = []
    reports: list[tuple[list[Point], int | None]] = []
    for line in text.splitlines():
        if line.startswith("TAP version") or not reports:
            reports.append(([], None))
            if line.startswith("TAP version"):
                continue
        report, plan = reports[-1]
        if line.startswith("1.."):
            count = line[3:].split()[:1]
            reports[-1] = (report, int(count[0]) if count and count[0].isdigit() else -1)
            continue
        match = _POINT.match(line)
        if match:
            status, number, description, directive = match.groups()
            # tap.go writes "ok N # SKIP why": then the regex sees the directive at the start of the description
            head = re.match(r"#\s*(SKIP|TODO)\b\s*", description, re.I)
            if directive is None and head:
                directive, description = head.group(1), description[head.end():]
            point = Point(status.lower() == "ok", int(number or len(report) + 1), description,
                          (directive or "").upper())
            report.append(point)
            points.append(point)
    for index, (report, plan) in enumerate(reports):
        if plan is None and report:
            problems.append(f"report {index + 1} has no plan")
        elif plan is not None and plan != len(report):
            problems.append(f"report {index + 1} plans {plan} points, has {len(report)}")
    return points, problems


def verdict_of(code: int, points: list[Point], problems: list[str]) -> str:
    """pass: exit 0, plans that count their points, at least one point, none failed; skip: every point
    skipped; else fail (a program that checked nothing, as some write only an error block, fails)."""
    if code != 0 or not points or problems:
        return "fail"
    if any(not p.ok and p.directive != "TODO" for p in points):
        return "fail"
    return "skip" if all(p.directive == "SKIP" for p in points) else "pass"


class Workdir:
    """A directory to run the programs in against one runtime, private state root included.

    ``runtime`` is the runtime's command (a path, or a command line as a list: ``[python, -m,
    minidocker, runtime]``); ``--root`` is added after it."""

    def __init__(self, suite: Suite, runtime: str | list[str], parent: str | None = None,
                 cgroups: bool = True) -> None:
        self.suite = suite
        self.cgroups = cgroups      # remove the test cgroups after each program (one Workdir at a time may)
        self.command = [runtime] if isinstance(runtime, str) else list(runtime)
        self.base = Path(tempfile.mkdtemp(prefix="rtt.", dir=parent))
        os.chmod(self.base, 0o755)   # user-namespaced containers (linux_uid_mappings) must reach the bundles
        self.root, self.tmp = self.base / "root", self.base / "tmp"
        self.root.mkdir()
        self.tmp.mkdir()
        shutil.copyfile(suite.bin / "runtimetest", self.base / "runtimetest")
        os.chmod(self.base / "runtimetest", 0o755)
        os.symlink(suite.rootfs, self.base / "rootfs-amd64.tar.gz")
        self.wrapper = self.base / "runtime"
        quoted = " ".join(_sh_quote(a) for a in [*self.command, "--root", str(self.root)])
        self.wrapper.write_text(f"#!/bin/sh\nexec {quoted} \"$@\"\n")
        os.chmod(self.wrapper, 0o755)
        self._cgroups_before = _test_cgroups() if cgroups else set()

    def run(self, program: str, timeout: float = PROGRAM_TIMEOUT) -> Verdict:
        env = {**os.environ, "RUNTIME": str(self.wrapper), "TMPDIR": str(self.tmp)}
        started = time.monotonic()
        proc = subprocess.Popen([str(self.suite.bin / program)], cwd=self.base, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=timeout)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            code, err = -9, err + f"\n(killed after {timeout} s)".encode()
        seconds = time.monotonic() - started
        stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
        points, problems = parse_tap(stdout)
        verdict = Verdict(program, verdict_of(code, points, problems), code, points, stdout, stderr, seconds,
                          problems)
        verdict.left_behind = self.clean()
        return verdict

    def clean(self) -> list[str]:
        """Remove what a program left (containers, mounts, bundles, test cgroups); say what it was."""
        found: list[str] = []
        for container in sorted(p.name for p in self.root.iterdir()) if self.root.is_dir() else []:
            found.append(f"container {container}")
            subprocess.run([str(self.wrapper), "delete", "--force", container], capture_output=True, timeout=30,
                           check=False)
            shutil.rmtree(self.root / container, ignore_errors=True)
        for point in _unmount_under(self.tmp):
            found.append(f"mount {point}")
        for bundle in sorted(self.tmp.iterdir()):
            found.append(f"bundle {bundle.name}")
            shutil.rmtree(bundle, ignore_errors=True)
        made = _test_cgroups() - self._cgroups_before if self.cgroups else set()
        for cgroup in sorted(made, key=len, reverse=True):
            _remove_cgroup(Path(cgroup))
            if not cgroup.endswith(("/testdir", "/testdir/cgrouptest")):
                found.append(f"cgroup {cgroup}")
        return found

    def close(self) -> None:
        self.clean()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> Workdir:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _sh_quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


def _test_cgroups() -> set[str]:
    """The TEST_CGROUPS that exist, below each hierarchy's root and below this process's cgroup there."""
    found = set()
    for base in _cgroup_bases():
        found |= {str(base / name) for name in TEST_CGROUPS if (base / name).is_dir()}
    return found


def _cgroup_bases() -> set[Path]:
    """Each hierarchy's root and this process's cgroup in it (a relative cgroupsPath starts there)."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():          # cgroup v2 only
        mounts = {"": CGROUP_ROOT}
    else:
        mounts = {}
        for hierarchy in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else []:
            if hierarchy.is_dir() and not hierarchy.is_symlink():
                mounts[hierarchy.name] = hierarchy
    bases = set(mounts.values())
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        names = [c.removeprefix("name=") for c in controllers.split(",")] if controllers else ["unified", ""]
        for name in names:
            if name in mounts:
                bases.add(mounts[name] / path.lstrip("/"))
    return bases


def _remove_cgroup(path: Path) -> None:
    """rmdir a cgroup, killing what is left in it first (its children are removed before it)."""
    for attempt in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            for pid in (path / "cgroup.procs").read_text().split() if (path / "cgroup.procs").exists() else []:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)


def _unmount_under(base: Path) -> list[str]:
    """Unmount (lazily, deepest first) every mount point under ``base``."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    prefix = str(base) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    found = sorted({p for p in points if p.startswith(prefix)}, key=len, reverse=True)
    for point in found:
        libc.umount2(point.encode(), 2)   # MNT_DETACH
    return found


def run_all(suite: Suite, runtime: str | list[str], programs=PROGRAMS, lanes: int = 3) -> dict[str, Verdict]:
    """Every program against ``runtime``, in ``lanes`` at once: the programs that use cgroupsPath (the
    same fixed cgroups) one after the other in the first lane, the rest from a queue, slow ones first."""
    import queue
    import threading

    grouped = [p for p in programs if p in CGROUP_PROGRAMS]
    rest = sorted((p for p in programs if p not in CGROUP_PROGRAMS), key=lambda p: p not in SLOW_PROGRAMS)
    waiting: queue.Queue[str] = queue.Queue()
    for program in rest:
        waiting.put(program)
    results: dict[str, Verdict] = {}
    errors: list[BaseException] = []

    def lane(first: list[str], cgroups: bool) -> None:
        try:
            with Workdir(suite, runtime, cgroups=cgroups) as work:
                for program in first:
                    results[program] = work.run(program)
                while True:
                    try:
                        program = waiting.get_nowait()
                    except queue.Empty:
                        return
                    results[program] = work.run(program)
        except BaseException as e:   # re-raised below
            errors.append(e)

    threads = [threading.Thread(target=lane, args=(grouped if i == 0 else [], i == 0))
               for i in range(max(1, lanes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return {program: results[program] for program in programs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the OCI runtime-tools validation suite against runtimes.")
    parser.add_argument("--runtime", action="append", help="runtime command (repeatable; default: runc); "
                        "'ours' is `python -m minidocker runtime` of the checkout given by --repo")
    parser.add_argument("--repo", default=str(REPO), help="the checkout whose minidocker 'ours' runs (default: this)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print the report of each failure")
    parser.add_argument("programs", nargs="*", default=list(PROGRAMS))
    args = parser.parse_args(argv)
    runtimes = args.runtime or [shutil.which("runc") or "runc"]
    started = time.monotonic()
    suite = build()
    print(f"built {len(PROGRAMS)} programs of runtime-tools {suite.version} in {time.monotonic() - started:.1f} s",
          file=sys.stderr)
    results = {}
    for runtime in runtimes:
        started = time.monotonic()
        command = (["env", f"PYTHONPATH={args.repo}", sys.executable, "-m", "minidocker", "runtime"]
                   if runtime == "ours" else runtime.split())
        results[runtime] = run_all(suite, command, args.programs)
        print(f"{runtime}: {time.monotonic() - started:.1f} s", file=sys.stderr)
    print("| program | " + " | ".join(results) + " |")
    print("|---" * (len(results) + 1) + "|")
    for program in args.programs:
        print(f"| {program} | " + " | ".join(results[r][program].summary() for r in results) + " |")
    if args.verbose:
        for runtime, verdicts in results.items():
            for verdict in verdicts.values():
                if verdict.verdict == "fail":
                    print(f"\n===== {runtime}: {verdict.report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
