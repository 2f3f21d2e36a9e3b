"""Fixtures every test shares: a private state root, the CLI, feature checks, the leak detector.

- Every test session works in its own ``MINIDOCKER_ROOT`` (a temporary directory),
  never in /var/lib/minidocker.
- ``cli("run", "--rm", "busybox", "true")`` runs the real command line in a
  subprocess, through the fast launcher users run (``minidocker_command``; ``module=True``:
  ``python -m minidocker``), and returns a :class:`Result` whose failure message shows everything.
- Capability markers (``root``, ``userns``, ``overlay``, ...) skip a test with the
  doctor's reason when this machine lacks the feature; under CI (``CI=true``) a
  missing feature fails instead, so that CI never passes by skipping.
- ``dockerd``: a private dockerd (tests/dockerd.py) for ``docker``-marked tests, one per
  session, started before the first such test's leak snapshot and removed at the end;
  ``busybox_in_dockerd``: our busybox loaded into it, for a module (tests/daemonkit.py).
- After each test the leak detector (tests/leaks.py) fails it by name if it left a
  mount, link, network namespace, cgroup, nft table or process behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from leaks import find_leaks, take_snapshot  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CAPABILITY_MARKERS = ("root", "userns", "cgroup_v1", "cgroup_v2", "netns", "overlay", "docker", "runc")
# Features CI machines must have: a skip of these is a failure there.
REQUIRED_IN_CI = ("root", "userns", "netns", "overlay", "cgroup_v1", "runc", "docker")


@pytest.fixture(scope="session", autouse=True)
def state_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This session's MINIDOCKER_ROOT, shared by in-process calls and the CLI."""
    root = tmp_path_factory.mktemp("minidocker-state")
    os.environ["MINIDOCKER_ROOT"] = str(root)
    # Like dockerd --bridge=none: no default bridge on the host, whose one mdbr0 several test
    # sessions (state roots) would share. Chapter 09 tests run bridges in their own sandbox.
    os.environ.setdefault("MINIDOCKER_BRIDGE", "none")
    yield root
    from minidocker.cgroups import remove_parent
    from minidocker.engine.remove import unmount_leftovers
    from minidocker.paths import state_roots

    unmount_leftovers(state_roots())
    remove_parent()  # the "minidocker" parent groups the containers made, if empty now


@pytest.fixture(scope="session")
def dockerd():
    """A private dockerd for ``docker``-marked tests (tests/dockerd.py): its own DOCKER_HOST in ``.env``,
    ``.docker(*args)``; started once, before any test's leak snapshot, stopped and removed at the end."""
    from dockerd import Dockerd, DockerdUnavailable

    try:
        daemon = Dockerd()
    except DockerdUnavailable as e:
        missing_feature(str(e))
    yield daemon
    forced = daemon.stop()
    if forced:
        pytest.fail("the private dockerd left these behind (removed now):\n  " + "\n  ".join(forced))


@dataclass
class Result:
    """What a command did: its arguments, exit code, stdout and stderr."""

    args: list[str]
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return (f"$ minidocker {' '.join(self.args)}\nexit code: {self.code}\n"
                f"--- stdout ---\n{self.out}--- stderr ---\n{self.err}")


@pytest.fixture(scope="module")
def busybox_in_dockerd(dockerd, state_root: Path, tmp_path_factory: pytest.TempPathFactory):
    """The session's busybox (made if missing) in the private dockerd for a module; removed after it."""
    from daemonkit import busybox_in_dockerd

    with busybox_in_dockerd(dockerd, state_root / "lib" / "images", tmp_path_factory.mktemp("bb")) as name:
        yield name


@pytest.fixture(scope="session")
def minidocker_command(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """The command users run: the fast launcher (``python -IS``, ``os._exit``; cli/launcher.py),
    written for this checkout into a temporary directory (never /usr/local/bin)."""
    from minidocker.cli.launcher import write_launcher

    target = tmp_path_factory.mktemp("bin") / "minidocker"
    write_launcher(str(target), python=sys.executable, repo=str(REPO))
    return [str(target)]


@pytest.fixture
def cli(state_root: Path, minidocker_command: list[str]):
    """Run ``minidocker ARGS...`` as a user would (the installed launcher); returns a Result.

    ``module=True`` runs ``python -m minidocker`` instead, the way that does not need the launcher.
    """

    def run(*args: str, input: str | None = None, timeout: float = 60, env: dict | None = None,
            module: bool = False) -> Result:
        full_env = {**os.environ, "MINIDOCKER_ROOT": str(state_root), **(env or {})}
        command = [sys.executable, "-m", "minidocker"] if module else minidocker_command
        proc = subprocess.run([*command, *args], input=input, capture_output=True,
                              text=True, timeout=timeout, env=full_env, cwd=REPO)
        return Result(list(args), proc.returncode, proc.stdout, proc.stderr)

    return run


def feature_check(marker: str):
    from minidocker.doctor import feature

    return feature(marker)


def missing_feature(reason: str, required: bool = True):
    """This machine lacks what a test needs: skip here, but fail under CI if it is ``required``.

    The one way a test or fixture gives up (never ``pytest.skip`` or ``importorskip`` directly):
    CI must never pass by skipping.
    """
    if IN_CI and required:
        pytest.fail(f"required feature missing in CI: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def not_applicable(reason: str):
    """A case with no verdict here by its nature (the reference fails it too, a race with no winner):
    a skip, in CI too. Never for a missing feature: that is :func:`missing_feature`."""
    pytest.skip(reason)


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in CAPABILITY_MARKERS:
        if item.get_closest_marker(marker) is None:
            continue
        check = feature_check(marker)
        if check.ok:
            continue
        reason = f"{check.name}: {check.detail}" + (f" (fix: {check.fix})" if check.fix else "")
        missing_feature(reason, required=marker in REQUIRED_IN_CI)


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest, state_root: Path):
    """Fail the test if it left anything of ours on the host."""
    before = take_snapshot(state_root)
    yield
    scope = "global" if IN_CI else "local"
    leaks = find_leaks(before, state_root, scope)
    if leaks:
        pytest.fail(f"{request.node.nodeid} left these behind:\n  " + "\n  ".join(leaks), pytrace=False)
