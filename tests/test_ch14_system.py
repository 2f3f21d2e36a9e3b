"""Chapter 14: ``docker system df`` and ``docker events --filter/--since/--until`` through minidockerd.

The docker CLI and docker-py against our daemon; the filter rules on their own (dockerd's:
prefixes for names, every label, the image with or without its tag); and the same
commands against a private dockerd, compared after normalising IDs, sizes and times.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
from daemonkit import busybox_in_dockerd, daemon_fixture, ok

from minidocker.engine.events import Event

pytestmark = [pytest.mark.ch14, pytest.mark.root]


daemon = daemon_fixture("md-system", busybox=True)


def _run(env: dict, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], env=env, capture_output=True, timeout=60, check=False, input=input)


def _df_rows(env: dict) -> dict[str, tuple[int, int]]:
    """``docker system df``: TYPE -> (TOTAL, ACTIVE)."""
    out = _run(env, "system", "df", "--format", "{{.Type}}|{{.TotalCount}}|{{.Active}}").stdout.decode()
    return {t: (int(total), int(active)) for t, total, active in (line.split("|") for line in out.splitlines())}


def _size_column(row: str) -> str:
    """The SIZE column of a ``system df -v`` container row: the field ending in B before the CREATED text."""
    fields = row.split()
    return next(f for f in fields[3:] if f.endswith("B") and f[0].isdigit())


# -- system df ------------------------------------------------------------------------------------

def test_system_df_counts_images_containers_volumes_and_the_containers_own_bytes(daemon, tmp_path):
    before = _df_rows(daemon.env)
    name = f"df-{uuid.uuid4().hex[:6]}"
    ok(daemon, "create", "--name", name, "--network", "none", "busybox", "sh")
    (tmp_path / "f.txt").write_bytes(b"abc")
    ok(daemon, "cp", str(tmp_path / "f.txt"), f"{name}:/f.txt")
    volume = f"dfvol-{uuid.uuid4().hex[:6]}"
    ok(daemon, "volume", "create", volume)
    after = _df_rows(daemon.env)
    assert after["Containers"] == (before["Containers"][0] + 1, before["Containers"][1])
    assert after["Local Volumes"][0] == before["Local Volumes"][0] + 1
    assert after["Images"][0] >= 1 and after["Images"][1] >= 1, "busybox is used by the container"
    assert _size_column(next(line for line in ok(daemon, "system", "df", "-v").splitlines()
                             if line.rstrip().endswith(" " + name))) == "3B", "the upper directory holds 3 bytes"
    usage = json.loads(daemon.request("GET", "/v1.41/system/df")[2])
    mine = next(c for c in usage["Containers"] if c["Names"] == [f"/{name}"])
    busybox = next(i for i in usage["Images"] if "busybox:latest" in i["RepoTags"])
    assert mine["SizeRw"] == 3 and mine["SizeRootFs"] == 3 + busybox["Size"]
    assert busybox["Containers"] >= 1 and usage["LayersSize"] >= busybox["Size"]
    assert any(v["Name"] == volume and v["UsageData"] == {"Size": 0, "RefCount": 0} for v in usage["Volumes"])
    ok(daemon, "rm", name)
    ok(daemon, "volume", "rm", volume)


def test_a_layer_two_images_share_is_their_shared_size(daemon):
    name = f"share-{uuid.uuid4().hex[:6]}"
    ok(daemon, "create", "--name", name, "--network", "none", "busybox", "sh")
    ok(daemon, "commit", name, "shared/box:v1")
    usage = json.loads(daemon.request("GET", "/v1.41/system/df")[2])
    images = {tag: i for i in usage["Images"] for tag in i["RepoTags"]}
    base, child = images["busybox:latest"], images["shared/box:v1"]
    assert child["SharedSize"] == base["Size"] == base["SharedSize"], "busybox's layer is in both"
    assert child["Size"] > child["SharedSize"], "plus the (empty) commit layer"
    ok(daemon, "rm", name)
    ok(daemon, "rmi", "shared/box:v1")


def test_docker_py_df(daemon):
    import docker  # docker-py: requirements.txt

    client = docker.DockerClient(base_url=daemon.host)
    try:
        usage = client.df()
        assert {"LayersSize", "Images", "Containers", "Volumes", "BuildCache"} <= set(usage)
        assert isinstance(usage["LayersSize"], int) and usage["Images"]
    finally:
        client.close()


@pytest.mark.docker
def test_system_df_matches_dockerd(daemon, dockerd, tmp_path):
    (tmp_path / "f.txt").write_bytes(b"abc")

    def scenario(env: dict) -> tuple:
        before = _df_rows(env)
        name, volume = f"dfcmp-{uuid.uuid4().hex[:6]}", f"dfcmpv-{uuid.uuid4().hex[:6]}"
        _run(env, "create", "--name", name, "--network", "none", "busybox", "sh")
        _run(env, "cp", str(tmp_path / "f.txt"), f"{name}:/f.txt")
        _run(env, "volume", "create", volume)
        after = _df_rows(env)
        verbose = _run(env, "system", "df", "-v").stdout.decode()
        row = next(line for line in verbose.splitlines() if line.rstrip().endswith(" " + name))
        usage = json.loads(subprocess.run(
            ["curl", "-s", "--unix-socket", env["DOCKER_HOST"].removeprefix("unix://"), "http://x/v1.41/system/df"],
            capture_output=True, check=True).stdout)
        mine = next(c for c in usage["Containers"] if c["Names"] == [f"/{name}"])
        shapes = (sorted(usage), sorted(mine), sorted(usage["Images"][0]),
                  sorted(next(v for v in usage["Volumes"] if v["Name"] == volume)))
        _run(env, "rm", name)
        _run(env, "volume", "rm", volume)
        deltas = {t: (after[t][0] - before[t][0], after[t][1] - before[t][1]) for t in after}
        return deltas, sorted(after), _size_column(row), mine["SizeRw"], shapes

    with busybox_in_dockerd(dockerd, daemon.root / "lib" / "images", tmp_path):
        ours, theirs = scenario(daemon.env), scenario(dockerd.env)
    assert ours[:4] == theirs[:4]
    for mine, docker_keys in zip(ours[4], theirs[4]):
        assert set(docker_keys) <= set(mine), set(docker_keys) - set(mine)


# -- events: the filter rules ---------------------------------------------------------------------

def _event(type="container", action="create", actor="f" * 64, **attributes) -> Event:
    return Event(type, action, actor, {"image": "busybox", "name": "web", **attributes}, time.time_ns())


def test_container_filter_matches_id_or_name_prefixes_and_leaves_other_types_out():
    assert _event().matches({"container": ["we"]}) and _event().matches({"container": ["fff"]})
    assert not _event().matches({"container": ["db"]})
    assert not _event(type="image", action="tag", name="busybox:latest").matches({"container": ["web"]})


def test_image_filter_matches_the_containers_image_or_the_images_name_with_or_without_tag():
    assert _event().matches({"image": ["busybox"]})
    assert _event(image="busybox:latest").matches({"image": ["busybox"]}), "the tag is stripped"
    assert _event(type="image", action="tag", actor="sha256:1", name="app:v1").matches({"image": ["app"]})
    assert _event(type="image", action="tag", actor="sha256:1", name="app:v1").matches({"image": ["sha256:1"]})
    assert not _event().matches({"image": ["alpine"]})
    assert _event(image="localhost:5000/x").matches({"image": ["localhost:5000/x"]}), "a port is not a tag"


def test_every_label_filter_must_hold_and_event_matches_before_the_colon():
    labelled = _event(team="a", tier="web")
    assert labelled.matches({"label": ["team=a", "tier"]})
    assert not labelled.matches({"label": ["team=a", "tier=db"]}), "labels AND, as dockerd's MatchKVList"
    assert _event(action="exec_start: sh -c x").matches({"event": ["exec_start"]})
    assert not _event(action="die").matches({"event": ["start", "stop"]})
    assert _event(action="die").matches({"event": ["start", "die"], "type": ["container"]})


# -- events through the daemon --------------------------------------------------------------------

def _sequence(env: dict, tmp_path, name: str) -> tuple[str, str]:
    """create (labelled), cp in, cp out, commit, rm: the window's Unix times as the CLI sends them."""
    (tmp_path / "f.txt").write_text("x\n")
    time.sleep(0.05)   # the previous test's last events are before the window
    since = f"{time.time():.3f}"
    _run(env, "create", "--name", name, "--label", "team=a", "--label", "tier=web", "--network", "none", "busybox",
         "sh")
    _run(env, "cp", str(tmp_path / "f.txt"), f"{name}:/f.txt")
    _run(env, "cp", f"{name}:/f.txt", str(tmp_path / "back.txt"))
    _run(env, "commit", name, f"{name}-img:v1")
    _run(env, "rm", name)
    time.sleep(0.3)
    until = f"{time.time():.3f}"
    return since, until


_FILTERS = ([], ["type=container"], ["type=image"], ["event=create"], ["event=extract-to-dir", "event=destroy"],
            ["label=team=a", "label=tier"], ["label=team=b"], ["image=busybox"], ["type=container", "event=commit"])


def _events(env: dict, name: str, since: str, until: str, filters: list[str]) -> tuple[int, list[str]]:
    args = [arg for f in filters for arg in ("--filter", f)]
    done = _run(env, "events", "--since", since, "--until", until, *args,
                "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}")
    lines = [line.replace(name, "<NAME>") for line in done.stdout.decode().splitlines()]
    return done.returncode, lines


def test_events_since_until_and_filters_through_the_cli(daemon, tmp_path):
    name = f"ev-{uuid.uuid4().hex[:6]}"
    since, until = _sequence(daemon.env, tmp_path, name)
    code, everything = _events(daemon.env, name, since, until, [])
    assert code == 0 and everything == [
        "container create <NAME>", "container extract-to-dir <NAME>", "container archive-path <NAME>",
        "image tag <NAME>-img:v1", "container commit <NAME>", "container destroy <NAME>"], everything
    assert _events(daemon.env, name, since, until, ["label=team=b"]) == (0, [])
    assert _events(daemon.env, name, since, until, ["container=" + name[:4], "event=destroy"]) == (
        0, ["container destroy <NAME>"])
    now = time.time()
    assert _events(daemon.env, name, f"{now:.3f}", f"{now + 0.5:.3f}", []) == (0, []), \
        "the kept events are all before --since; the stream ends at --until"
    bad = _run(daemon.env, "events", "--since", since, "--until", until, "--filter", "colour=red")
    assert bad.returncode == 1 and b"invalid filter 'colour'" in bad.stderr, bad.stderr
    ok(daemon, "rmi", f"{name}-img:v1")


def test_docker_py_events_with_filters_and_until(daemon, tmp_path):
    import docker  # docker-py: requirements.txt

    name = f"evpy-{uuid.uuid4().hex[:6]}"
    since, until = _sequence(daemon.env, tmp_path, name)
    client = docker.DockerClient(base_url=daemon.host)
    try:
        events = list(client.events(since=int(float(since)), until=int(float(until)) + 1, decode=True,
                                    filters={"container": name, "event": ["create", "destroy"]}))
        assert [e["Action"] for e in events] == ["create", "destroy"], events
        assert all(e["Actor"]["Attributes"]["team"] == "a" for e in events)
    finally:
        client.close()
    ok(daemon, "rmi", f"{name}-img:v1")


@pytest.mark.docker
def test_events_filters_match_dockerd(daemon, dockerd, tmp_path):

    def session(env: dict) -> list:
        name = f"evcmp-{uuid.uuid4().hex[:6]}"
        since, until = _sequence(env, tmp_path, name)
        results = [(filters, *_events(env, name, since, until, filters)) for filters in _FILTERS]
        _run(env, "rmi", f"{name}-img:v1")
        return results

    with busybox_in_dockerd(dockerd, daemon.root / "lib" / "images", tmp_path):
        ours, theirs = session(daemon.env), session(dockerd.env)
    for mine, docker_one in zip(ours, theirs):
        assert mine == docker_one
