"""A private dockerd for tests and benchmarks: a real Docker peer that leaves the host as it was.

    with Dockerd() as daemon:                     # ~0.5 s to answer, ~1-3 s to stop
        daemon.docker("load", "-i", "image.tar")  # the docker client against this daemon only
        daemon.env                                # DOCKER_HOST and DOCKER_CONFIG for subprocesses

Everything lives in one temporary directory (``/tmp/mdd.XXXXXX``, short: unix sockets
allow 108 bytes): ``data`` (--data-root), ``x`` (--exec-root), the pidfile, the API socket,
a ``daemon.json`` (the host's /etc/docker/daemon.json is not read), the client's config.

What dockerd and containerd would otherwise do to a host, and how this avoids it:

- firewall, links, sysctls: ``--iptables=false --ip6tables=false --bridge=none
  --ip-forward=false --ip-masq=false`` (no docker0, no DOCKER chains, ip_forward untouched);
- containerd: our own, started first with a config under the directory (its socket is
  ``x/containerd/containerd.sock``, never /run/containerd; its ``opt`` plugin would create
  /opt/containerd, so its path is moved here too), handed to dockerd with ``--containerd``;
- the libtrust key dockerd 20.10 writes to /etc/docker/key.json: ``deprecated-key-path``
  in our daemon.json puts it in the directory;
- the data root: dockerd bind-mounts it on itself and makes it shared (its
  "unmount-on-shutdown"); a clean stop undoes it, :meth:`Dockerd.stop` unmounts
  whatever is left under the directory anyway;
- /run/docker/plugins (a path compiled into dockerd): removed if this daemon created it.

Containers run only with ``--network none`` and a ``cgroup_parent`` the caller creates and
removes (``Dockerd(runtimes={"mini": path}, cgroup_parent=...)`` for ``docker run --runtime
mini``); the image tests only load, save, tag, push, pull and rmi. Stopping ends dockerd, then
containerd, each by its PID (SIGTERM, then SIGKILL), then any process still descending from
them (shims), checked by PID and start time.

:class:`Containerd` alone (``Containerd.private()``, then ``.ctr(...)``) is the same private
containerd without a dockerd, for ``ctr run``.

Run by hand: ``python tests/dockerd.py`` starts one, prints ``docker version``, stops it.
See: dockerd(8), containerd-config.toml(5).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["Containerd", "Dockerd", "DockerdUnavailable", "available"]

DOCKERD, CONTAINERD = "dockerd", "containerd"
HOST_FRIENDLY = ("--iptables=false", "--ip6tables=false", "--bridge=none", "--ip-forward=false",
                 "--ip-masq=false")
PLUGINS_DIR = Path("/run/docker/plugins")
_MNT_DETACH = 2


class DockerdUnavailable(RuntimeError):
    """dockerd, containerd or the docker client is missing, or the daemon did not answer."""


def available() -> str | None:
    """None when dockerd can be started here, else what is missing."""
    missing = [tool for tool in (DOCKERD, CONTAINERD, "docker") if shutil.which(tool) is None]
    return f"{', '.join(missing)} not installed (apt-get install docker.io)" if missing else None


class Containerd:
    """A containerd of its own: root, state, socket, ``opt`` directory under ``base``; no CRI plugin.

    Used by :class:`Dockerd`, and alone (``Containerd.private()``) for ``ctr``: its socket is
    ``state/containerd.sock``, never /run/containerd. ``stop()`` ends it and the shims it started."""

    def __init__(self, base: Path, root: Path, state: Path, log, timeout: float = 30) -> None:
        self.base, self.root, self.state = base, root, state
        self.address = state / "containerd.sock"
        self._owns_base = False
        config = "\n".join([
            "version = 2",
            f'root = "{root}"',
            f'state = "{state}"',
            ('disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs",'
             ' "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper",'
             ' "io.containerd.snapshotter.v1.zfs"]'),
            f'[grpc]\naddress = "{self.address}"',
            f'[ttrpc]\naddress = "{self.address}.ttrpc"',
            '[debug]\naddress = ""',
            f'[plugins."io.containerd.internal.v1.opt"]\npath = "{base / "opt"}"',
            f'[plugins."io.containerd.runtime.v1.linux"]\nruntime_root = "{root / "runc"}"',
        ]) + "\n"
        (base / "containerd.toml").write_text(config)
        self.process = subprocess.Popen([CONTAINERD, "--config", str(base / "containerd.toml")],
                                        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            _wait(lambda: self.address.is_socket(), self.process, "containerd", timeout, lambda: _read_log(log.name))
        except BaseException:
            _end(self.process)
            raise

    @classmethod
    def private(cls, parent: str = "/tmp", timeout: float = 30) -> Containerd:
        """A containerd alone in a new ``/tmp/mdc.XXXXXX``; ``stop()`` removes the directory."""
        if shutil.which(CONTAINERD) is None or shutil.which("ctr") is None:
            raise DockerdUnavailable("containerd or ctr not installed (apt-get install containerd)")
        base = Path(tempfile.mkdtemp(prefix="mdc.", dir=parent))
        log = open(base / "log", "wb")
        try:
            daemon = cls(base, base / "root", base / "state", log, timeout)
        except BaseException:
            log.close()
            _unmount_under(base)
            shutil.rmtree(base, ignore_errors=True)
            raise
        daemon._owns_base, daemon._log = True, log
        return daemon

    def ctr(self, *args: str, timeout: float = 120, check: bool = True, input: bytes | None = None) -> str:
        """Run ``ctr`` against this containerd; its stdout (stderr added to the failure)."""
        return _client(["ctr", "--address", str(self.address), *args], None, timeout, check, input)

    def stop(self) -> list[str]:
        """End containerd, then what is left of its shims; unmount and remove the directory if it is ours."""
        forced: list[str] = []
        family = _descendants([self.process.pid])
        if _end(self.process):
            forced.append(f"containerd {self.process.pid} needed SIGKILL")
        forced += _end_family(family)
        if self._owns_base:
            forced += _unmount_under(self.base)
            self._log.close()
            shutil.rmtree(self.base, ignore_errors=True)
        return forced

    def __enter__(self) -> Containerd:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Dockerd:
    """A dockerd and its containerd, private to this object; ``stop()`` removes every trace.

    ``runtimes``: extra OCI runtimes by name (``--add-runtime NAME=PATH``), for ``docker run
    --runtime NAME``; ``cgroup_parent``: the cgroup containers go under (``--cgroup-parent``)."""

    def __init__(self, parent: str = "/tmp", storage_driver: str | None = None, timeout: float = 30,
                 runtimes: dict[str, str] | None = None, cgroup_parent: str | None = None) -> None:
        reason = available()
        if reason:
            raise DockerdUnavailable(reason)
        self.base = Path(tempfile.mkdtemp(prefix="mdd.", dir=parent))
        self.data, self.exec_root = self.base / "data", self.base / "x"
        self.socket = self.base / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.env = {**os.environ, "DOCKER_HOST": self.host, "DOCKER_CONFIG": str(self.base / "client")}
        self.env.pop("DOCKER_CONTEXT", None)
        self._made_plugins_dir = not PLUGINS_DIR.parent.exists()
        self._log = open(self.base / "log", "wb")
        self.containerd: Containerd | None = None
        self.dockerd: subprocess.Popen | None = None
        try:
            self.containerd = Containerd(self.base, self.data / "containerd", self.exec_root / "containerd",
                                         self._log, timeout)
            self.containerd_address = self.containerd.address
            self._start_dockerd(storage_driver, timeout, runtimes or {}, cgroup_parent)
        except BaseException:
            self.stop()
            raise

    # -- starting ---------------------------------------------------------------------------------

    def _start_dockerd(self, storage_driver: str | None, timeout: float, runtimes: dict[str, str],
                       cgroup_parent: str | None) -> None:
        config = {"deprecated-key-path": str(self.base / "key.json")}
        if storage_driver:
            config["storage-driver"] = storage_driver
        (self.base / "daemon.json").write_text(json.dumps(config))
        (self.base / "client").mkdir()
        args = [DOCKERD, *HOST_FRIENDLY, "--data-root", str(self.data), "--exec-root", str(self.exec_root),
                "--pidfile", str(self.base / "dockerd.pid"), "-H", self.host,
                "--config-file", str(self.base / "daemon.json"), "--containerd", str(self.containerd_address),
                *(f"--add-runtime={name}={path}" for name, path in runtimes.items()),
                *([f"--cgroup-parent={cgroup_parent}"] if cgroup_parent else [])]
        self.dockerd = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        _wait(self._answers, self.dockerd, "dockerd", timeout, self.log_text)

    def _answers(self) -> bool:
        if not self.socket.is_socket():
            return False
        answer = subprocess.run(["docker", "version"], env=self.env, capture_output=True, timeout=10, check=False)
        return answer.returncode == 0

    # -- using ------------------------------------------------------------------------------------

    def docker(self, *args: str, timeout: float = 120, check: bool = True, input: bytes | None = None) -> str:
        """Run the docker client against this daemon; its stdout (stderr added to the failure)."""
        return _client(["docker", *args], self.env, timeout, check, input)

    def log_text(self) -> str:
        return _read_log(self.base / "log")

    # -- stopping ---------------------------------------------------------------------------------

    def stop(self, remove: bool = True) -> list[str]:
        """End dockerd then containerd by PID, unmount, remove the directory (unless not ``remove``:
        a benchmark deletes it later); returns what needed force."""
        forced: list[str] = []
        containerd = self.containerd.process if self.containerd is not None else None
        family = _descendants([p.pid for p in (self.dockerd, containerd) if p is not None])
        for name, proc in (("dockerd", self.dockerd), ("containerd", containerd)):
            if proc is not None and _end(proc):
                forced.append(f"{name} {proc.pid} needed SIGKILL")
        forced += _end_family(family)
        # After running a container, dockerd 20.10 leaves its data root bind-mounted on itself at
        # shutdown (its overlay2 driver makes it a private mount point); that one is dockerd's own.
        expected = f"mount {self.data} left behind, unmounted"
        forced += [item for item in _unmount_under(self.base) if item != expected]
        if not self._log.closed:
            self._log.close()
        if remove:
            shutil.rmtree(self.base, ignore_errors=True)
        if self._made_plugins_dir:
            for directory in (PLUGINS_DIR, PLUGINS_DIR.parent):
                try:
                    directory.rmdir()
                except OSError:
                    pass
        self.dockerd = self.containerd = None
        return forced

    def __enter__(self) -> Dockerd:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _wait(ready, proc: subprocess.Popen, name: str, timeout: float, log_text) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise DockerdUnavailable(f"failed to start {name}: "
                                     f"{'exit code ' + str(proc.returncode) if proc.returncode is not None else 'timeout'}"
                                     f"\n{log_text()[-3000:]}")
        time.sleep(0.05)


def _client(args: list[str], env: dict | None, timeout: float, check: bool, input: bytes | None) -> str:
    out = subprocess.run(args, env=env, capture_output=True, timeout=timeout, input=input, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"$ {' '.join(args)}\nexit code {out.returncode}\n"
                             f"{out.stdout.decode(errors='replace')}{out.stderr.decode(errors='replace')}")
    return out.stdout.decode(errors="replace")


def _read_log(path) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _end_family(family: dict[int, int]) -> list[str]:
    """SIGKILL each process of ``family`` ({pid: start time}) that is still the same process."""
    forced = []
    for pid, started in family.items():
        if _start_time(pid) == started:   # still the same process: a shim or helper left behind
            forced.append(f"process {pid} left behind, killed")
            _kill_pid(pid)
    return forced


def _end(proc: subprocess.Popen, grace: float = 20) -> bool:
    """SIGTERM, wait, SIGKILL; True if it took SIGKILL."""
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
        return False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return True


def _start_time(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (start time in clock ticks): tells a PID from a reused one."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(text.rpartition(")")[2].split()[19])


def _descendants(roots: list[int]) -> dict[int, int]:
    """Every process below ``roots`` (not the roots), by walking PPids: {pid: start time}."""
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            text = Path(f"/proc/{name}/stat").read_text()
        except OSError:
            continue
        parents.setdefault(int(text.rpartition(")")[2].split()[1]), []).append(int(name))
    found: dict[int, int] = {}
    stack = list(roots)
    while stack:
        for child in parents.get(stack.pop(), []):
            started = _start_time(child)
            if started is not None and child not in found:
                found[child] = started
                stack.append(child)
    return found


def _kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _unmount_under(base: Path) -> list[str]:
    """Unmount (lazily, deepest first) every mount point under ``base``; what was found."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    prefix = str(base) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    found = sorted({p for p in points if p.startswith(prefix) or p == str(base)}, key=len, reverse=True)
    for point in found:
        if libc.umount2(point.encode(), _MNT_DETACH) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"failed to unmount {point}: {os.strerror(err)}")
    return [f"mount {p} left behind, unmounted" for p in found]


if __name__ == "__main__":
    with Dockerd() as daemon:
        print(daemon.docker("version"))
        print(daemon.docker("info", "--format", "{{.Driver}} {{.CgroupDriver}} {{.ServerVersion}}"))
