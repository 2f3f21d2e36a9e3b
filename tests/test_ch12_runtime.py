"""Chapter 12: minidocker as an OCI runtime — the create/start/state/kill/delete lifecycle, runc's command line.

Every test drives ``minidocker runtime`` (the command ``minidocker-runc`` runs) as
containerd or dockerd would: one process per verb, a runtime root, a bundle. Bad
input is refused with exit status 1 and a message, and leaves the root and the host
(mounts, cgroups, processes: the autouse leak check) as they were.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minidocker.runtime.status import Status

pytestmark = [pytest.mark.ch12, pytest.mark.root]

REPO = Path(__file__).resolve().parent.parent

# The lifecycle's truth table (runtime-spec runtime.md; runc's additions: paused, delete of a created one).
TRUTH = {
    #                  start  kill   delete pause  resume
    Status.CREATING: (False, False, False, False, False),
    Status.CREATED:  (True,  True,  True,  False, False),
    Status.RUNNING:  (False, True,  False, True,  False),
    Status.PAUSED:   (False, True,  False, False, True),
    Status.STOPPED:  (False, False, True,  False, False),
}


@pytest.mark.parametrize("status", list(Status), ids=str)
def test_each_status_allows_exactly_its_verbs(status):
    found = (status.can_start(), status.can_kill(), status.can_delete(), status.can_pause(), status.can_resume())
    assert found == TRUTH[status], f"{status}: expected (start, kill, delete, pause, resume) = {TRUTH[status]}"


def test_status_values_are_the_specs_strings():
    assert [s.value for s in Status] == ["creating", "created", "running", "paused", "stopped"]
    assert json.dumps({"status": Status.RUNNING}) == '{"status": "running"}'
    assert Status("paused") is Status.PAUSED and str(Status.PAUSED) == f"{Status.PAUSED}" == "paused"
    with pytest.raises(ValueError):
        Status("exited")


@pytest.mark.parametrize("verb", ["start", "state", "kill", "delete"])
def test_the_runtime_verbs_import_no_enum_re_json_or_pathlib(verb, tmp_path):
    """start/state/kill/delete start lean: enum, re, json and pathlib cost 4-10 ms a command, importlib
    (with warnings) and types 0.3-0.5 ms each (bench/README.md). The verb runs (on a container that does
    not exist: its modules are loaded all the same), then sys.modules is read."""
    unwanted = ("enum", "re", "json", "pathlib", "signal", "importlib", "warnings", "types")
    code = (f"import sys; from minidocker.cli import runc; runc.main(['--root', {str(tmp_path)!r}, {verb!r}, 'nope']); "
            f"print(' '.join(m for m in {unwanted!r} if m in sys.modules))")
    ran = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {str(REPO)!r}); {code}"],
                         capture_output=True, text=True, check=True)
    assert "nope" in ran.stderr, ran.stderr  # it did run: "container nope does not exist"
    assert ran.stdout.split() == [], f"imported by minidocker-runc {verb}: {ran.stdout}"


def test_the_default_root_is_the_run_state_root(monkeypatch, tmp_path):
    from minidocker.paths import state_roots
    from minidocker.runtime.state import default_root

    for value in (str(tmp_path), None):
        if value is None:
            monkeypatch.delenv("MINIDOCKER_ROOT", raising=False)
        else:
            monkeypatch.setenv("MINIDOCKER_ROOT", value)
        assert default_root() == str(state_roots().run / "runtime")
    monkeypatch.setattr("os.geteuid", lambda: 1000)   # rootless: the user's own run root, as paths decides
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg"))
    assert default_root() == str(state_roots().run / "runtime") == str(tmp_path / "xdg" / "minidocker" / "runtime")


@pytest.mark.parametrize("obj", [{}, [], {"a": []}, {"a": {}, "b": [1, 2.5, None, True, "\u00e9\n\"", {"z": [[]]}]},
                                 {1: 2, True: 3, None: 4, 2.5: [{}]}, {"t": (1, 2)}, "s", 1, None])
def test_atomic_json_matches_the_json_package(obj):
    from minidocker import atomic

    for indent in (None, 2):
        assert atomic.dumps(obj, indent=indent) == json.dumps(obj, indent=indent)
    assert atomic.loads(json.dumps(obj)) == json.loads(json.dumps(obj))
    for bad in ("", "{", "[1,]", "1 2", '{"a": 1} x'):
        with pytest.raises(ValueError):
            atomic.loads(bad)
    # in a fresh interpreter, where json.decoder is not imported yet (_json then raises no error itself)
    code = ("import sys; sys.path.insert(0, %r); from minidocker.atomic import loads\n"
            "try:\n    loads('{not json')\nexcept ValueError as err:\n    print(err)") % str(REPO)
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("Expecting property name"), out


# ---- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A bundle: busybox in ``rootfs`` and a config.json (``sh -c`` whatever the test writes)."""
    from minidocker.image.busybox import build_busybox_tree
    from minidocker.runtime import default_spec

    directory = tmp_path / "bundle"
    (directory / "rootfs").mkdir(parents=True)
    build_busybox_tree(directory / "rootfs", "/usr/bin/busybox")
    write_config(directory, default_spec("rootfs", ["sh", "-c", "echo hello"], hostname="box"))
    return directory


def write_config(bundle: Path, spec: dict) -> None:
    (bundle / "config.json").write_text(json.dumps(spec, indent=1))


def edit_config(bundle: Path, edit) -> dict:
    spec = json.loads((bundle / "config.json").read_text())
    edit(spec)
    write_config(bundle, spec)
    return spec


@pytest.fixture
def root(tmp_path: Path):
    """A runtime root; whatever a test leaves in it is deleted with --force afterwards."""
    directory = tmp_path / "runtime-root"
    yield directory
    if directory.exists():
        for name in os.listdir(directory):
            runtime(directory, "delete", "--force", name)


class Ran:
    def __init__(self, code: int, out: str, err: str, args: list[str]) -> None:
        self.code, self.out, self.err, self.args = code, out, err, args

    def __repr__(self) -> str:
        return f"$ minidocker runtime {' '.join(self.args)}\nexit {self.code}\n--- out\n{self.out}--- err\n{self.err}"


def runtime(root: Path, *args: str, cwd: Path | None = None, timeout: float = 30) -> Ran:
    """``minidocker runtime --root ROOT ARGS``; stdout/stderr through files, as the container inherits them."""
    out_path = root.parent / f".out-{time.monotonic_ns()}"
    err_path = root.parent / f".err-{time.monotonic_ns()}"
    with open(out_path, "w+") as out, open(err_path, "w+") as err:
        code = subprocess.run([sys.executable, "-m", "minidocker", "runtime", "--root", str(root), *args],
                              stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=cwd or REPO,
                              timeout=timeout, env={**os.environ, "PYTHONPATH": str(REPO)}).returncode
    result = Ran(code, out_path.read_text(), err_path.read_text(), list(args))
    out_path.unlink()
    err_path.unlink()
    return result


def state_of(root: Path, container_id: str) -> dict:
    r = runtime(root, "state", container_id)
    assert r.code == 0, r
    return json.loads(r.out)


def wait_for_status(root: Path, container_id: str, wanted: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        state = state_of(root, container_id)
        if state["status"] == wanted or time.monotonic() > deadline:
            assert state["status"] == wanted, state
            return state
        time.sleep(0.02)


def cgroup_exists(container_id: str) -> bool:
    from minidocker.cgroups import open_cgroup

    return open_cgroup(f"/minidocker/{container_id}").exists()


# ---- the lifecycle -------------------------------------------------------------------------------


def test_created_container_waits_until_start_then_runs_and_stays_until_delete(bundle, root, tmp_path):
    marker = tmp_path / "shared"
    marker.mkdir()
    edit_config(bundle, lambda s: (s["process"].update(args=["sh", "-c", "echo ran > /shared/ran; echo hello"]),
                                   s["mounts"].append({"destination": "/shared", "type": "bind",
                                                       "source": str(marker), "options": ["rbind"]})))
    created = runtime(root, "create", "--bundle", str(bundle), "box1")
    assert created.code == 0, created
    state = state_of(root, "box1")
    assert state["status"] == "created" and state["pid"] > 0, state
    assert state["bundle"] == str(bundle) and state["id"] == "box1" and state["ociVersion"]
    assert not (marker / "ran").exists(), "the process ran before start"
    assert (root / "box1" / "exec.fifo").exists()
    assert cgroup_exists("box1")

    started = runtime(root, "start", "box1")
    assert started.code == 0, started
    stopped = wait_for_status(root, "box1", "stopped")
    assert stopped["pid"] == 0
    assert (marker / "ran").read_text() == "ran\n"
    assert not (root / "box1" / "exec.fifo").exists()
    assert runtime(root, "list", "-q").out.split() == ["box1"], "a stopped container stays until delete"

    deleted = runtime(root, "delete", "box1")
    assert deleted.code == 0, deleted
    assert not (root / "box1").exists() and not cgroup_exists("box1")
    gone = runtime(root, "state", "box1")
    assert gone.code == 1 and "container box1 does not exist" in gone.err, gone


def test_created_container_does_not_depend_on_the_create_process(bundle, root):
    edit_config(bundle, lambda s: s["process"].update(args=["sleep", "30"]))
    assert runtime(root, "create", "-b", str(bundle), "detached").code == 0
    saved = json.loads((root / "detached" / "state.json").read_text())
    creator = saved["creator"][0]
    assert not Path(f"/proc/{creator}").exists() or "Z" in Path(f"/proc/{creator}/stat").read_text().split()[2]
    assert runtime(root, "start", "detached").code == 0
    running = state_of(root, "detached")
    assert running["status"] == "running", running
    pid = running["pid"]
    assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] == b"sleep"
    assert runtime(root, "kill", "detached", "KILL").code == 0
    wait_for_status(root, "detached", "stopped")
    assert runtime(root, "delete", "detached").code == 0


def test_state_is_written_atomically_with_the_init_start_time(bundle, root):
    from minidocker.linux.procfs import start_time

    edit_config(bundle, lambda s: s["process"].update(args=["sleep", "30"]))
    assert runtime(root, "create", "-b", str(bundle), "timed").code == 0
    saved = json.loads((root / "timed" / "state.json").read_text())
    assert saved["init_process_start"] == start_time(saved["pid"])
    assert [p.name for p in (root / "timed").iterdir() if p.name.startswith(".")] == [], "a temp file stayed"
    assert runtime(root, "delete", "timed").code == 0, "a created container can be deleted (as runc)"


def test_kill_takes_names_and_numbers_and_all(bundle, root):
    edit_config(bundle, lambda s: s["process"].update(args=["sh", "-c", "trap 'exit 7' USR1; sleep 30 & wait"]))
    assert runtime(root, "run", "-d", "-b", str(bundle), "sig").code == 0
    time.sleep(0.2)  # the trap is set
    assert runtime(root, "kill", "sig", "USR1").code == 0
    wait_for_status(root, "sig", "stopped")
    assert runtime(root, "delete", "sig").code == 0
    edit_config(bundle, lambda s: s["process"].update(args=["sh", "-c", "sleep 30 & sleep 30 & wait"]))
    assert runtime(root, "run", "-d", "-b", str(bundle), "all").code == 0
    r = runtime(root, "kill", "--all", "all", "9")
    assert r.code == 0, r
    wait_for_status(root, "all", "stopped")
    assert runtime(root, "delete", "all").code == 0
    bad = runtime(root, "kill", "all", "NOSUCH")
    assert bad.code == 1


def test_pause_freezes_and_resume_thaws(bundle, root):
    edit_config(bundle, lambda s: s["process"].update(args=["sleep", "30"]))
    assert runtime(root, "run", "-d", "-b", str(bundle), "frozen").code == 0
    assert runtime(root, "pause", "frozen").code == 0
    paused = state_of(root, "frozen")
    assert paused["status"] == "paused"
    assert Path(f"/proc/{paused['pid']}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("D", "S", "T")
    assert runtime(root, "pause", "frozen").code == 1
    assert runtime(root, "resume", "frozen").code == 0
    assert state_of(root, "frozen")["status"] == "running"
    assert runtime(root, "delete", "--force", "frozen").code == 0


def test_delete_force_kills_a_paused_container(bundle, root):
    edit_config(bundle, lambda s: s["process"].update(args=["sleep", "30"]))
    assert runtime(root, "run", "-d", "-b", str(bundle), "pf").code == 0
    assert runtime(root, "pause", "pf").code == 0
    r = runtime(root, "delete", "--force", "pf")
    assert r.code == 0, r
    assert not (root / "pf").exists() and not cgroup_exists("pf")


def test_exec_runs_in_the_containers_namespaces_and_detached_with_a_pid_file(bundle, root, tmp_path):
    edit_config(bundle, lambda s: s["process"].update(args=["sleep", "30"]))
    assert runtime(root, "run", "-d", "-b", str(bundle), "ex").code == 0
    r = runtime(root, "exec", "ex", "sh", "-c", "hostname; cat /proc/1/cmdline; exit 4")
    assert r.code == 4 and r.out.startswith("box\nsleep"), r
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["sleep", "20"], "cwd": "/tmp", "user": {"uid": 65534, "gid": 65534},
                                   "env": ["PATH=/bin"]}))
    pid_file = tmp_path / "exec.pid"
    r = runtime(root, "exec", "--process", str(process), "--detach", "--pid-file", str(pid_file), "ex")
    assert r.code == 0, r
    pid = int(pid_file.read_text())
    status = Path(f"/proc/{pid}/status").read_text()
    assert "Uid:\t65534" in status and os.readlink(f"/proc/{pid}/cwd").endswith("/tmp")
    ps = runtime(root, "ps", "--format", "json", "ex")
    assert pid in json.loads(ps.out), ps
    assert runtime(root, "delete", "--force", "ex").code == 0


def test_run_in_the_foreground_returns_the_exit_code_and_deletes(bundle, root):
    edit_config(bundle, lambda s: s["process"].update(args=["sh", "-c", "echo out; exit 3"]))
    r = runtime(root, "run", "-b", str(bundle), "fg")
    assert (r.code, r.out) == (3, "out\n"), r
    assert not (root / "fg").exists()
    edit_config(bundle, lambda s: s["process"].update(args=["sleep", "30"]))
    foreground = subprocess.Popen([sys.executable, "-m", "minidocker", "runtime", "--root", str(root), "run", "-b",
                                   str(bundle), "fg"], cwd=REPO, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not (root / "fg" / "state.json").exists() or state_of(root, "fg")["status"] != "running":
            assert time.monotonic() < deadline and foreground.poll() is None
            time.sleep(0.02)
        assert runtime(root, "kill", "fg", "KILL").code == 0
        assert foreground.wait(timeout=10) == 137  # 128 + SIGKILL, from the wait status of init
    finally:
        foreground.kill()
        foreground.wait()
    assert not (root / "fg").exists()


def test_the_command_is_searched_in_path_order_past_a_file_that_cannot_run(bundle, root):
    """execvp(3)'s rule, which init follows without os.execvpe (see runtime/init.py): a "hello"
    that is not executable in the first PATH directory is passed over for the one in the second."""
    for directory, mode in (("a", 0o644), ("b", 0o755)):
        (bundle / "rootfs" / directory).mkdir()
        script = bundle / "rootfs" / directory / "hello"
        script.write_text(f"#!/bin/sh\necho from {directory}\n")
        script.chmod(mode)
    edit_config(bundle, lambda s: s["process"].update(args=["hello"], env=["PATH=/a:/b"]))
    r = runtime(root, "run", "-b", str(bundle), "path-order")
    assert (r.code, r.out) == (0, "from b\n"), r


def test_pid_file_holds_the_init_pid(bundle, root, tmp_path):
    edit_config(bundle, lambda s: s["process"].update(args=["sleep", "30"]))
    pid_file = tmp_path / "init.pid"
    assert runtime(root, "create", "-b", str(bundle), "--pid-file", str(pid_file), "pf").code == 0
    assert int(pid_file.read_text()) == state_of(root, "pf")["pid"]
    assert runtime(root, "delete", "-f", "pf").code == 0


def test_a_reused_pid_is_never_signalled(bundle, root):
    """state.json says PID P, but P is now another process (another start time): kill refuses."""
    edit_config(bundle, lambda s: s["process"].update(args=["sleep", "30"]))
    assert runtime(root, "run", "-d", "-b", str(bundle), "reuse").code == 0
    assert runtime(root, "kill", "reuse", "KILL").code == 0
    wait_for_status(root, "reuse", "stopped")
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        path = root / "reuse" / "state.json"
        saved = json.loads(path.read_text())
        saved["pid"] = stranger.pid  # as if the kernel had given the number to `sleep`
        path.write_text(json.dumps(saved))
        assert state_of(root, "reuse")["status"] == "stopped"
        r = runtime(root, "kill", "reuse", "KILL")
        assert r.code == 1 and "cannot kill container reuse: it is stopped" in r.err, r
        assert runtime(root, "delete", "reuse").code == 0
        assert stranger.poll() is None, "the stranger was killed"
    finally:
        stranger.kill()
        stranger.wait()


def test_list_prints_table_and_json(bundle, root):
    edit_config(bundle, lambda s: s["process"].update(args=["sleep", "30"]))
    assert runtime(root, "create", "-b", str(bundle), "one").code == 0
    table = runtime(root, "list")
    assert table.out.split("\n")[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert "created" in table.out
    assert [s["id"] for s in json.loads(runtime(root, "list", "--format", "json").out)] == ["one"]
    assert runtime(root, "delete", "one").code == 0


def test_spec_writes_runcs_default_config(tmp_path, root):
    r = runtime(root, "spec", cwd=tmp_path)
    assert r.code == 0, r
    spec = json.loads((tmp_path / "config.json").read_text())
    assert spec["root"] == {"path": "rootfs", "readonly": True} and spec["process"]["args"] == ["sh"]
    again = runtime(root, "spec", cwd=tmp_path)
    assert again.code == 1 and "exists" in again.err


def test_features_lists_the_hooks_and_namespaces(root):
    features = json.loads(runtime(root, "features").out)
    assert "poststop" in features["hooks"] and "pid" in features["linux"]["namespaces"]


def test_errors_go_to_the_log_file_as_json(root, tmp_path):
    log = tmp_path / "log.json"
    r = runtime(root, "--log", str(log), "--log-format", "json", "state", "nosuch")
    assert r.code == 1 and "container nosuch does not exist" in r.err
    line = json.loads(log.read_text().splitlines()[-1])
    assert line["level"] == "error" and line["msg"] == "container nosuch does not exist"


def test_global_flags_may_come_as_containerd_passes_them(bundle, root, tmp_path):
    edit_config(bundle, lambda s: s["process"].update(args=["true"]))
    r = subprocess.run([sys.executable, "-m", "minidocker.cli.runc", f"--root={root}", "--log", str(tmp_path / "l"),
                        "--log-format=json", "--debug", "create", "--bundle", str(bundle), "--no-new-keyring", "g"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, stdin=subprocess.DEVNULL,
                       timeout=30)  # not pipes: the created container holds its stdio (as under runc)
    assert r.returncode == 0, (tmp_path / "l").read_text()
    assert state_of(root, "g")["status"] == "created"
    assert runtime(root, "delete", "--force", "g").code == 0


def test_systemd_cgroup_is_refused_clearly(root):
    r = runtime(root, "--systemd-cgroup", "list")
    assert r.code == 1 and "--systemd-cgroup is not supported" in r.err


# ---- spec conformance ----------------------------------------------------------------------------


def test_rlimits_oom_score_umask_sysctl_and_domainname_are_applied(bundle, root):
    def edit(s):
        s["process"]["args"] = ["sh", "-c", "ulimit -n; cat /proc/self/oom_score_adj; umask; "
                                "cat /proc/sys/net/ipv4/ip_forward; cat /proc/sys/kernel/domainname; id -G"]
        s["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 321, "hard": 654}]
        s["process"]["oomScoreAdj"] = 123
        s["process"]["user"] = {"uid": 0, "gid": 0, "umask": 0o027, "additionalGids": [10, 20]}
        s["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
        s["domainname"] = "example.test"
    edit_config(bundle, edit)
    r = runtime(root, "run", "-b", str(bundle), "conf")
    assert r.code == 0, r
    assert r.out.split("\n")[:6] == ["321", "123", "0027", "1", "example.test", "0 10 20"], r


def test_a_device_from_linux_devices_is_created(bundle, root):
    def edit(s):
        s["process"]["args"] = ["sh", "-c", "ls -ln /dev/mydev"]
        s["linux"]["devices"] = [{"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640,
                                  "uid": 7, "gid": 8}]
    edit_config(bundle, edit)
    r = runtime(root, "run", "-b", str(bundle), "dev")
    fields = r.out.split()
    assert fields[0] == "crw-r-----" and fields[2:6] == ["7", "8", "1,", "3"], r


def test_a_namespace_given_by_path_is_joined(bundle, root):
    edit_config(bundle, lambda s: s["process"].update(args=["sleep", "30"]))
    assert runtime(root, "run", "-d", "-b", str(bundle), "host-ns").code == 0
    first = state_of(root, "host-ns")["pid"]

    def edit(s):
        s["process"]["args"] = ["readlink", "/proc/self/ns/uts"]
        for entry in s["linux"]["namespaces"]:
            if entry["type"] == "uts":
                entry["path"] = f"/proc/{first}/ns/uts"
    edit_config(bundle, edit)
    r = runtime(root, "run", "-b", str(bundle), "joiner")
    assert r.out.strip() == os.readlink(f"/proc/{first}/ns/uts"), r
    assert runtime(root, "delete", "-f", "host-ns").code == 0


def test_hooks_run_in_order_with_the_state_on_stdin(bundle, root, tmp_path):
    log = tmp_path / "hooks.log"

    def hook(name):
        return {"path": "/bin/sh", "args": ["sh", "-c", f"echo {name} $(cat) >> {log}"]}

    def edit(s):
        s["process"]["args"] = ["true"]
        s["hooks"] = {k: [hook(k)] for k in ("prestart", "createRuntime", "poststart", "poststop")}
        s["hooks"]["createContainer"] = [{"path": "/bin/sh", "args": ["sh", "-c", f"echo createContainer >> {log}"]}]
    edit_config(bundle, edit)
    assert runtime(root, "create", "-b", str(bundle), "hooked").code == 0
    assert runtime(root, "start", "hooked").code == 0
    wait_for_status(root, "hooked", "stopped")
    assert runtime(root, "delete", "hooked").code == 0
    lines = log.read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["prestart", "createRuntime", "createContainer", "poststart",
                                                  "poststop"], lines
    prestart = json.loads(lines[0].split(" ", 1)[1])
    assert prestart["id"] == "hooked" and prestart["pid"] > 0 and prestart["bundle"] == str(bundle)


def test_a_failing_or_slow_prestart_hook_stops_create_and_leaves_nothing(bundle, root):
    for hook, words in (({"path": "/bin/false"}, "failed to run prestart hook /bin/false: exited with status 1"),
                        ({"path": "/bin/sleep", "args": ["sleep", "5"], "timeout": 1}, "timed out after 1 s")):
        edit_config(bundle, lambda s, h=hook: s.update(hooks={"prestart": [h]}))
        r = runtime(root, "create", "-b", str(bundle), "nohook")
        assert r.code == 1 and words in r.err, r
        assert os.listdir(root) == [] and not cgroup_exists("nohook")


# ---- bad input -----------------------------------------------------------------------------------


def _set(path: str, value):
    def edit(spec):
        keys = path.split(".")
        target = spec
        for key in keys[:-1]:
            target = target[key]
        if value is KeyError:
            del target[keys[-1]]
        else:
            target[keys[-1]] = value
    return edit


BAD_CONFIGS = [
    (_set("ociVersion", KeyError), "invalid config: ociVersion is missing"),
    (_set("root", KeyError), "invalid config: root is missing"),
    (_set("process.args", KeyError), "invalid config: process.args is missing"),
    (_set("process.args", "sh -c true"), "invalid config: process.args must be a list"),
    (_set("process.env", {"A": "1"}), "invalid config: process.env must be a list"),
    (_set("mounts", {"destination": "/x"}), "invalid config: mounts must be a list"),
    (_set("process.user.uid", "0"), "invalid config: process.user.uid must be an integer"),
    (_set("linux.namespaces", [{"type": "pid"}, {"type": "time-travel"}]), "unknown namespace type 'time-travel'"),
    (_set("root.path", "../../etc"), "invalid config: root.path '../../etc' escapes the bundle"),
    (lambda s: s["mounts"].append({"destination": "relative/dir", "type": "tmpfs", "source": "tmpfs"}),
     "destination must be absolute"),
    (_set("linux.intelRdt", {"closID": "x"}), "linux.intelRdt is not supported"),
    # compiled by create before it forks: refused before the state directory and the cgroup exist
    (_set("linux.seccomp.architectures", ["SCMP_ARCH_MIPS"]),
     "failed to create container bad: seccomp: no architecture of ['SCMP_ARCH_MIPS'] is known here"),
]


@pytest.mark.parametrize("edit,words", BAD_CONFIGS, ids=[w[:40] for _, w in BAD_CONFIGS])
def test_a_bad_config_is_refused_before_anything_exists(bundle, root, edit, words):
    edit_config(bundle, edit)
    r = runtime(root, "create", "-b", str(bundle), "bad")
    assert r.code == 1 and words in r.err, r
    assert not root.exists() or os.listdir(root) == []
    assert not cgroup_exists("bad")


def test_a_config_that_is_not_json_is_refused(bundle, root):
    (bundle / "config.json").write_text("{not json")
    r = runtime(root, "create", "-b", str(bundle), "bad")
    assert r.code == 1 and f"failed to load {bundle}/config.json: Expecting property name" in r.err, r
    assert not root.exists() or os.listdir(root) == []


def test_a_missing_bundle_is_refused(root, tmp_path):
    r = runtime(root, "create", "-b", str(tmp_path / "nowhere"), "bad")
    assert r.code == 1 and "no such file" in r.err and "hint:" in r.err, r


def test_a_mount_destination_through_a_symlink_out_of_the_root_is_refused(bundle, root, tmp_path):
    outside = tmp_path / "host-dir"
    outside.mkdir()
    os.symlink("../../host-dir", bundle / "rootfs" / "escape")
    edit_config(bundle, lambda s: s["mounts"].append({"destination": "/escape/sub", "type": "tmpfs",
                                                      "source": "tmpfs"}))
    r = runtime(root, "create", "-b", str(bundle), "bad")
    assert r.code == 1 and "invalid mount destination '/escape/sub': /escape is a symlink out of the root" in r.err, r
    assert list(outside.iterdir()) == [] and (not root.exists() or os.listdir(root) == [])


@pytest.mark.parametrize("bad_id", ["a/b", "..", ".", "../x", "", "a b", "a\n", "caf\u00e9"])
def test_an_id_that_is_not_a_plain_name_is_refused(bundle, root, bad_id):
    r = runtime(root, "create", "-b", str(bundle), bad_id)
    assert r.code == 1 and "invalid container id" in r.err, r
    assert not root.exists() or os.listdir(root) == []


def test_a_duplicate_id_is_refused_and_the_first_container_is_untouched(bundle, root):
    edit_config(bundle, lambda s: s["process"].update(args=["sleep", "30"]))
    assert runtime(root, "create", "-b", str(bundle), "twice").code == 0
    before = state_of(root, "twice")
    r = runtime(root, "create", "-b", str(bundle), "twice")
    assert r.code == 1 and "failed to create container twice: the ID is in use" in r.err, r
    assert state_of(root, "twice") == before
    assert runtime(root, "delete", "twice").code == 0


def test_start_of_a_running_container_is_refused(bundle, root):
    edit_config(bundle, lambda s: s["process"].update(args=["sleep", "30"]))
    assert runtime(root, "run", "-d", "-b", str(bundle), "busy").code == 0
    r = runtime(root, "start", "busy")
    assert r.code == 1 and "cannot start container busy: it is running" in r.err, r
    r = runtime(root, "delete", "busy")
    assert r.code == 1 and "cannot delete container busy: it is running" in r.err and "--force" in r.err, r
    assert state_of(root, "busy")["status"] == "running", "the refused delete touched it"
    assert runtime(root, "delete", "--force", "busy").code == 0


def test_kill_of_a_stopped_container_is_refused(bundle, root):
    edit_config(bundle, lambda s: s["process"].update(args=["true"]))
    assert runtime(root, "run", "-d", "-b", str(bundle), "done").code == 0
    wait_for_status(root, "done", "stopped")
    r = runtime(root, "kill", "done", "TERM")
    assert r.code == 1 and "cannot kill container done: it is stopped" in r.err, r
    assert (root / "done" / "state.json").exists()
    assert runtime(root, "delete", "done").code == 0


def test_a_missing_command_fails_create_with_127_wording(bundle, root):
    edit_config(bundle, lambda s: s["process"].update(args=["no-such-program"]))
    r = runtime(root, "create", "-b", str(bundle), "nocmd")
    assert r.code == 1 and 'exec: "no-such-program": executable file not found in $PATH' in r.err, r
    assert os.listdir(root) == [] and not cgroup_exists("nocmd")


# ---- against runc --------------------------------------------------------------------------------


@pytest.mark.runc
def test_runc_and_we_print_the_same_for_the_same_bundle(bundle, root, tmp_path):
    script = "hostname; id; echo $PATH; pwd; ls /; cat /proc/1/cmdline; echo; exit 5"
    edit_config(bundle, lambda s: s["process"].update(args=["sh", "-c", script]))
    ours = runtime(root, "run", "-b", str(bundle), "same")
    theirs = subprocess.run(["runc", "--root", str(tmp_path / "runc"), "run", "-b", str(bundle), "same"],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
    assert (ours.code, ours.out) == (theirs.returncode, theirs.stdout), (ours, theirs.stderr)


@pytest.mark.runc
def test_our_state_has_the_keys_runcs_has(bundle, root, tmp_path):
    edit_config(bundle, lambda s: s["process"].update(args=["sleep", "30"]))
    runc_root = str(tmp_path / "runc")
    subprocess.run(["runc", "--root", runc_root, "create", "-b", str(bundle), "keys"], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    try:
        theirs = json.loads(subprocess.run(["runc", "--root", runc_root, "state", "keys"], capture_output=True,
                                           text=True, check=True).stdout)
    finally:
        subprocess.run(["runc", "--root", runc_root, "delete", "--force", "keys"], check=False, timeout=30)
    assert runtime(root, "create", "-b", str(bundle), "keys").code == 0
    ours = state_of(root, "keys")
    assert set(theirs) <= set(ours) | {"annotations"}, (theirs, ours)
    assert ours["status"] == theirs["status"] == "created"
    assert runtime(root, "delete", "keys").code == 0


def test_in_process_run_waits_as_the_parent_of_init():
    """runtime.run(): init is our child (we are a subreaper while creating), its exit status is exact."""
    from minidocker.forked import call_in_child

    def run_it(rootfs: str) -> tuple[int, bool]:
        from minidocker.linux import is_child_subreaper
        from minidocker.runtime import default_spec, run

        devnull = os.open(os.devnull, os.O_RDWR)
        status = run(default_spec(rootfs, ["sh", "-c", "exit 9"]), stdio=(devnull, devnull, devnull))
        return status.exit_code, is_child_subreaper()

    import tempfile

    from minidocker.image.busybox import build_busybox_tree

    with tempfile.TemporaryDirectory() as directory:
        build_busybox_tree(Path(directory), "/usr/bin/busybox")
        code, still_subreaper = call_in_child(run_it, directory)
    assert code == 9 and not still_subreaper


def test_a_cgroup_mount_shows_the_hierarchies_read_only(bundle, root):
    def edit(s):
        s["process"]["args"] = ["sh", "-c", "ls /sys/fs/cgroup | grep -c .; touch /sys/fs/cgroup/memory/x; echo $?"]
        s["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]})
    edit_config(bundle, edit)
    r = runtime(root, "run", "-b", str(bundle), "cg")
    count, touched = r.out.split()[:2]
    assert r.code == 0 and int(count) >= 1 and touched == "1", r


def test_without_a_cgroup_namespace_the_cgroup_mount_is_the_containers_own_group(bundle, root):
    """docker 20.10 on cgroup v1 gives no cgroup namespace: we bind the container's own group, not the host tree."""
    def edit(s):
        s["process"]["args"] = ["sh", "-c", "ls /sys/fs/cgroup/pids/ | grep -c '^minidocker$'; "
                                "grep -c . /sys/fs/cgroup/pids/cgroup.procs"]
        s["linux"]["namespaces"] = [n for n in s["linux"]["namespaces"] if n["type"] != "cgroup"]
        s["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
                            "options": ["ro", "nosuid", "noexec", "nodev"]})
    edit_config(bundle, edit)
    r = runtime(root, "run", "-b", str(bundle), "nocgns")
    assert r.out.split()[:2] == ["0", "1"], r  # not the host's root (no minidocker/ in it); grep alone (sh exec'd it)


def test_without_a_mount_namespace_the_container_is_only_chrooted(bundle, root):
    def edit(s):
        s["process"]["args"] = ["sh", "-c", "readlink /proc/self/ns/mnt; ls /linuxrc"]
        s["linux"]["namespaces"] = [n for n in s["linux"]["namespaces"] if n["type"] not in ("mount", "pid")]
        s["mounts"] = []
    edit_config(bundle, edit)
    (bundle / "rootfs" / "proc" / "self").mkdir(parents=True, exist_ok=True)  # no /proc is mounted: make one up
    r = runtime(root, "run", "-b", str(bundle), "nomnt")
    assert r.code == 0 and "/linuxrc" in r.out, r


def test_a_mount_namespace_joined_by_path_gets_the_root(bundle, root, tmp_path):
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sleep", "30"])
    try:
        time.sleep(0.2)
        edit_config(bundle, lambda s: (s["process"].update(args=["sh", "-c", "cat /etc/hostname 2>/dev/null; "
                                                                 "ls /linuxrc"]),
                                       [n.update(path=f"/proc/{holder.pid}/ns/mnt")
                                        for n in s["linux"]["namespaces"] if n["type"] == "mount"]))
        r = runtime(root, "run", "-b", str(bundle), "joinmnt")
        assert r.code == 0 and "/linuxrc" in r.out, r
    finally:
        holder.kill()
        holder.wait()


def _receive_master(listener, timeout: float = 10) -> int:
    import socket

    listener.settimeout(timeout)
    conn, _ = listener.accept()
    with conn:
        _, fds, _, _ = socket.recv_fds(conn, 16, 1)
    return fds[0] if fds else os.open(os.devnull, os.O_RDONLY)


def _read_all(fd: int, timeout: float = 10) -> bytes:
    import select

    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the slave side closed
                break
            if not chunk:
                break
            data += chunk
        elif data:
            break
    return data


def test_create_and_exec_send_a_pty_master_to_the_console_socket(bundle, root, tmp_path):
    """What containerd's shim does for docker run -t and docker exec -t (SCM_RIGHTS over --console-socket)."""
    import socket
    import threading

    path = str(tmp_path / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(2)
    masters: list[int] = []
    try:
        edit_config(bundle, lambda s: s["process"].update(args=["sh", "-c", "tty; sleep 30"], terminal=True))
        receiver = threading.Thread(target=lambda: masters.append(_receive_master(listener)))
        receiver.start()
        assert runtime(root, "create", "-b", str(bundle), "--console-socket", path, "tty").code == 0
        receiver.join(10)
        assert runtime(root, "start", "tty").code == 0
        assert _read_all(masters[0]).strip() == b"/dev/pts/0"

        process = tmp_path / "process.json"
        process.write_text(json.dumps({"args": ["sh", "-c", "tty; sleep 1"], "cwd": "/", "terminal": True,
                                       "env": ["PATH=/bin"]}))
        receiver = threading.Thread(target=lambda: masters.append(_receive_master(listener)))
        receiver.start()
        r = runtime(root, "exec", "--process", str(process), "--console-socket", path, "--detach",
                    "--pid-file", str(tmp_path / "exec.pid"), "tty")
        receiver.join(10)
        assert r.code == 0, r
        assert _read_all(masters[1]).strip() == b"/dev/pts/1", r
        refused = runtime(root, "exec", "--process", str(process), "tty")
        assert refused.code == 1 and "needs --console-socket" in refused.err
    finally:
        for fd in masters:
            os.close(fd)
        listener.close()
        runtime(root, "delete", "--force", "tty")


def test_cpus_and_mems_go_to_a_cpuset_group_the_container_is_in(bundle, root):
    """linux.resources.cpu.cpus/mems (runtime-tools linux_cgroups_cpus): read after create, as the suite does."""
    from minidocker.cgroups import open_cgroup

    path = f"/mdtest-cpuset-{os.getpid()}"

    def edit(s):
        s["process"]["args"] = ["sleep", "30"]
        s["linux"]["cgroupsPath"] = path
        s["linux"]["resources"] = {"cpu": {"shares": 1024, "cpus": "0", "mems": "0"}}
    edit_config(bundle, edit)
    r = runtime(root, "create", "-b", str(bundle), "cpus")
    assert r.code == 0, r
    cgroup = open_cgroup(path)
    try:
        if cgroup.version == 1:
            directory = Path("/sys/fs/cgroup/cpuset") / path.lstrip("/")
        else:
            directory = Path("/sys/fs/cgroup") / path.lstrip("/")
        assert (directory / "cpuset.cpus").read_text().strip() == "0"
        assert (directory / "cpuset.mems").read_text().strip() == "0"
        assert str(state_of(root, "cpus")["pid"]) in (directory / "cgroup.procs").read_text().split()
    finally:
        assert runtime(root, "delete", "--force", "cpus").code == 0
    assert not cgroup.exists(), "delete must remove the cpuset group too"


def test_a_bad_cpuset_list_is_refused(bundle, root):
    edit_config(bundle, lambda s: s["linux"].update(resources={"cpu": {"cpus": "all of them"}}))
    r = runtime(root, "create", "-b", str(bundle), "badcpus")
    assert r.code == 1 and "invalid cpu.cpus 'all of them'" in r.err, r


def test_a_foreground_run_gives_the_container_pipes_not_the_callers_fds(state_root, minidocker_command, tmp_path):
    """A container's root could fchmod/chmod the fds it holds: they must not be the caller's own file."""
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    script = ("chmod 0 /proc/self/fd/1 /proc/self/fd/2; readlink /proc/self/fd/1; echo to-err >&2; "
              "seq 1 20000 | tail -1; exit 3")
    with open(out, "w") as stdout, open(err, "w") as stderr:
        modes = (out.stat().st_mode, err.stat().st_mode)
        code = subprocess.run([*minidocker_command, "run", "--rm", "--network", "none", "busybox", "sh", "-c", script],
                              stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, timeout=60,
                              env={**os.environ, "MINIDOCKER_ROOT": str(state_root)}).returncode
    assert code == 3
    assert (out.stat().st_mode, err.stat().st_mode) == modes  # the caller's files untouched
    lines = out.read_text().splitlines()
    assert lines[0].startswith("pipe:[") and lines[1] == "20000", lines   # all the output, relayed
    assert "to-err" in err.read_text()


def test_run_i_gives_the_container_a_pipe_fed_from_the_callers_stdin(state_root, minidocker_command, tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("".join(f"{i}\n" for i in range(50000)))
    mode = source.stat().st_mode
    with open(source) as stdin:
        r = subprocess.run([*minidocker_command, "run", "--rm", "-i", "--network", "none", "busybox", "sh", "-c",
                            "chmod 0 /proc/self/fd/0; readlink /proc/self/fd/0; wc -l"], stdin=stdin,
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "MINIDOCKER_ROOT": str(state_root)})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[0].startswith("pipe:[") and r.stdout.split()[1] == "50000", r.stdout
    assert source.stat().st_mode == mode
