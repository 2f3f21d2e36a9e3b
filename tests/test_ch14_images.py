"""Chapter 14: the image endpoints of minidockerd, driven by the real docker CLI and docker-py.

``docker images``, ``pull`` and ``push`` against our registry server on 127.0.0.1, ``tag``,
``rmi``, ``image inspect``, ``history``, ``save`` and ``load`` (streams both ways), ``import``,
``login`` (``/auth``), ``image prune``; where dockerd answers the same request, the JSON keys
and types of both answers are compared.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from daemonkit import busybox_in_dockerd, daemon_fixture, ok
from registrykit import htpasswd_line

from minidocker.registry.server import RegistryServer

pytestmark = [pytest.mark.ch14, pytest.mark.root]


daemon = daemon_fixture("md-images", busybox=True)


@pytest.fixture
def registry(tmp_path):
    with RegistryServer(tmp_path / "registry", ("127.0.0.1", 0)) as server:
        yield server


# -- docker CLI -----------------------------------------------------------------------------------

def test_docker_images_lists_busybox_with_integer_sizes(daemon):
    out = ok(daemon, "images")
    lines = out.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(line.split()[:2] == ["busybox", "latest"] for line in lines[1:]), out
    ids = ok(daemon, "images", "-q", "busybox").split()
    assert len(ids) == 1 and len(ids[0]) == 12


def test_tag_inspect_history_and_rmi(daemon):
    ok(daemon, "tag", "busybox", "course/box:v1")
    inspected = json.loads(ok(daemon, "image", "inspect", "course/box:v1"))
    assert "course/box:v1" in inspected[0]["RepoTags"] and "busybox:latest" in inspected[0]["RepoTags"]
    assert inspected[0]["Id"].startswith("sha256:")
    history = ok(daemon, "history", "course/box:v1")
    assert history.splitlines()[0].split()[:2] == ["IMAGE", "CREATED"], history
    assert ok(daemon, "rmi", "course/box:v1").strip() == "Untagged: course/box:v1"
    missing = daemon.docker("image", "inspect", "course/box:v1")
    assert missing.returncode == 1 and b"No such image: course/box:v1" in missing.stderr, missing.stderr


def test_rmi_of_an_unknown_image_is_dockers_404(daemon):
    result = daemon.docker("rmi", "nothing/here:v9")
    assert result.returncode == 1
    assert b"No such image: nothing/here:v9" in result.stderr, result.stderr


def test_save_and_load_stream_a_docker_archive_both_ways(daemon, tmp_path):
    archive = tmp_path / "box.tar"
    ok(daemon, "tag", "busybox", "saved/box:v1")
    ok(daemon, "save", "-o", str(archive), "saved/box:v1")
    members = subprocess.run(["tar", "-tf", str(archive)], capture_output=True, text=True, check=True).stdout
    assert "manifest.json" in members.split()
    ok(daemon, "rmi", "saved/box:v1")
    loaded = ok(daemon, "load", "-i", str(archive))
    assert "Loaded image: saved/box:v1" in loaded
    assert ok(daemon, "images", "-q", "saved/box:v1").strip()
    ok(daemon, "rmi", "saved/box:v1")


def test_a_broken_archive_is_refused_and_loads_nothing(daemon, tmp_path):
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"this is not a tar archive" * 100)
    before = ok(daemon, "images", "-aq")
    result = daemon.docker("load", "-i", str(bad))
    assert result.returncode != 0
    assert ok(daemon, "images", "-aq") == before
    assert not list((daemon.root / "run" / "uploads").glob("*")), "the spooled upload is removed"


def test_pull_and_push_through_our_registry(daemon, registry):
    ref = f"{registry.address}/course/busybox:t1"
    ok(daemon, "tag", "busybox", ref)
    pushed = ok(daemon, "push", ref)
    assert f"The push refers to repository [{registry.address}/course/busybox]" in pushed
    assert "t1: digest: sha256:" in pushed
    ok(daemon, "rmi", ref)
    pulled = ok(daemon, "pull", ref)
    assert f"Downloaded newer image for {ref}" in pulled or "Image is up to date" in pulled, pulled
    assert ok(daemon, "images", "-q", ref).strip()
    ok(daemon, "rmi", ref)


def test_pull_of_a_missing_tag_fails_with_the_registrys_words(daemon, registry):
    result = daemon.docker("pull", f"{registry.address}/course/none:v1")
    assert result.returncode == 1
    assert b"manifest unknown" in result.stderr.lower() or b"not found" in result.stderr.lower(), result.stderr


def test_login_checks_the_registrys_credentials(daemon, tmp_path):
    (tmp_path / "htpasswd").write_text(htpasswd_line("bob", "secret") + "\n")
    with RegistryServer(tmp_path / "reg", ("127.0.0.1", 0), htpasswd=tmp_path / "htpasswd") as server:
        wrong = daemon.docker("login", "-u", "bob", "--password-stdin", server.address, input=b"nope")
        assert wrong.returncode == 1 and b"unauthorized" in wrong.stderr.lower(), wrong.stderr
        right = daemon.docker("login", "-u", "bob", "--password-stdin", server.address, input=b"secret")
        assert b"Login Succeeded" in right.stdout, right.stderr
        ref = f"{server.address}/auth/box:v1"
        ok(daemon, "tag", "busybox", ref)
        ok(daemon, "push", ref)   # the CLI sends the stored credentials as X-Registry-Auth
        ok(daemon, "rmi", ref)
        ok(daemon, "pull", ref)
        ok(daemon, "rmi", ref)
        daemon.docker("logout", server.address)


def test_import_makes_a_one_layer_image(daemon, tmp_path):
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "greeting").write_text("hello\n")
    archive = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-C", str(tree), "-cf", str(archive), "."], check=True)
    image_id = ok(daemon, "import", "-m", "by hand", str(archive), "imported/fs:v1").strip()
    assert image_id.startswith("sha256:")
    inspected = json.loads(ok(daemon, "image", "inspect", "imported/fs:v1"))[0]
    assert inspected["Id"] == image_id and len(inspected["RootFS"]["Layers"]) == 1
    ok(daemon, "rmi", "imported/fs:v1")


def test_image_prune_answers_dockers_shape(daemon):
    status, _, body = daemon.request("POST", "/v1.41/images/prune")
    assert status == 200
    answer = json.loads(body)
    assert set(answer) >= {"ImagesDeleted", "SpaceReclaimed"} and isinstance(answer["SpaceReclaimed"], int)


def test_a_bad_x_registry_auth_header_is_400(daemon):
    status, _, body = daemon.request("POST", "/v1.41/images/create?fromImage=127.0.0.1:1/x&tag=v1",
                                     headers={"X-Registry-Auth": "%%%not-base64%%%"})
    assert status == 400, body
    assert "X-Registry-Auth" in json.loads(body)["message"]


# -- the daemon's cache of `docker images` (engine/images.py: ImageSummaryCache) ----------------------

def _listed(daemon) -> dict[str, list[str]]:
    status, _, body = daemon.request("GET", "/v1.41/images/json")
    assert status == 200, body
    return {row["Id"]: row["RepoTags"] for row in json.loads(body)}


def test_docker_images_through_the_daemon_sees_direct_mode_load_and_rmi(daemon, tmp_path):
    """Another process (direct-mode ``minidocker load``, ``rmi``) changes the store the daemon
    answers from memory: the next ``docker images`` shows it."""
    import sys
    import time

    from imagekit import layer_tar, write_layout

    from minidocker.engine.images import ImageSummaryCache

    layout = tmp_path / "layout"
    write_layout(layout, [layer_tar([("file", "added.txt", b"from another process")])], tag="v1")
    time.sleep(2 * ImageSummaryCache.SETTLE_NS / 1e9)   # the store settled: its listing is kept
    before = _listed(daemon)
    assert _listed(daemon) == before

    def direct(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "minidocker", *args], env=daemon.env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, f"$ minidocker {' '.join(args)}: exit {done.returncode}\n{done.stderr}"
        return done.stdout

    direct("load", "-i", str(layout), "--name", "md-added", "-q")
    added = {i: tags for i, tags in _listed(daemon).items() if i not in before}
    assert list(added.values()) == [["md-added:v1"]], f"expected md-added:v1 listed, found {_listed(daemon)}"
    time.sleep(2 * ImageSummaryCache.SETTLE_NS / 1e9)
    assert _listed(daemon).keys() == before.keys() | added.keys()   # kept again, with the new image
    direct("rmi", "md-added:v1")
    assert _listed(daemon) == before, "the image another process removed is still listed"


def test_the_summary_cache_reads_an_unchanged_settled_store_once(tmp_path, monkeypatch):
    from daemonkit import seed_busybox

    from minidocker.engine import images

    seed_busybox(tmp_path)
    reads = []
    real = images.image_summaries
    monkeypatch.setattr(images, "image_summaries", lambda *a, **kw: reads.append(1) or real(*a, **kw))
    cache = images.ImageSummaryCache(tmp_path / "lib" / "images")
    monkeypatch.setattr(cache, "SETTLE_NS", 0)
    first = cache.summaries()
    assert cache.summaries() == first and len(reads) == 1, f"expected one reading, found {len(reads)}"
    assert cache.summaries(all_images=True) is not None and len(reads) == 2, "other arguments: another answer"
    cache.store.tag("busybox", "md-cache:v1")
    assert ["busybox:latest", "md-cache:v1"] in [sorted(s["RepoTags"]) for s in cache.summaries()]
    assert len(reads) == 3


def test_the_summary_cache_keeps_no_answer_from_a_store_changed_within_a_clock_tick(tmp_path, monkeypatch):
    """A change in the same mtime tick as the reading would leave the state as it was: not kept."""
    from daemonkit import seed_busybox

    from minidocker.engine import images

    seed_busybox(tmp_path)
    reads = []
    real = images.image_summaries
    monkeypatch.setattr(images, "image_summaries", lambda *a, **kw: reads.append(1) or real(*a, **kw))
    cache = images.ImageSummaryCache(tmp_path / "lib" / "images")
    monkeypatch.setattr(cache, "SETTLE_NS", 3600 * 10**9)
    cache.summaries()
    cache.summaries()
    assert len(reads) == 2, f"expected every reading of a young store to be fresh, found {len(reads)} readings"


# -- docker-py ------------------------------------------------------------------------------------

def test_docker_py_lists_gets_tags_pushes_pulls_and_removes(daemon, registry):
    import docker  # docker-py: requirements.txt
    client = docker.DockerClient(base_url=daemon.host)
    try:
        images = client.images.list()
        assert any("busybox:latest" in image.tags for image in images)
        image = client.images.get("busybox")
        ref = f"{registry.address}/py/box"
        assert image.tag(ref, "v1")
        lines = list(client.images.push(ref, "v1", stream=True, decode=True))
        assert any("aux" in line and line["aux"]["Tag"] == "v1" for line in lines), lines
        client.images.remove(f"{ref}:v1")
        pulled = client.images.pull(ref, tag="v1")
        assert pulled.id == image.id
        client.images.remove(f"{ref}:v1")
        with pytest.raises(docker.errors.ImageNotFound):
            client.images.get("nothing/here:v1")
    finally:
        client.close()


# -- the same requests to dockerd -------------------------------------------------------------------

@pytest.mark.docker
def test_image_list_and_inspect_have_dockerds_keys_and_types(daemon, dockerd, tmp_path):
    with busybox_in_dockerd(dockerd, daemon.root / "lib" / "images", tmp_path):
        ours = json.loads(daemon.request("GET", "/v1.41/images/json")[2])
        theirs = json.loads(_dockerd_get(dockerd, "/v1.41/images/json"))
        mine = next(i for i in ours if "busybox:latest" in i["RepoTags"])
        docker_one = next(i for i in theirs if "busybox:latest" in (i.get("RepoTags") or []))
        assert mine["Id"] == docker_one["Id"], "the same config, so the same ID"
        assert set(docker_one) <= set(mine), set(docker_one) - set(mine)
        for key in ("Created", "Size", "VirtualSize", "SharedSize", "Containers"):
            assert type(mine[key]) is type(docker_one[key]), key
        ours_inspect = json.loads(daemon.request("GET", "/v1.41/images/busybox/json")[2])
        theirs_inspect = json.loads(_dockerd_get(dockerd, "/v1.41/images/busybox/json"))
        assert set(theirs_inspect) <= set(ours_inspect), set(theirs_inspect) - set(ours_inspect)
        assert ours_inspect["RootFS"] == theirs_inspect["RootFS"]
        status, _, body = daemon.request("GET", "/v1.41/images/nothing:v1/json")
        assert status == 404 and json.loads(body) == {"message": "No such image: nothing:v1"}
        # dockerd 20.10 says it twice ("no such image: nothing:v1: No such image: nothing:v1"); clients
        # (docker-py's ImageNotFound, the CLI) look for the status and "No such image"
        assert json.loads(_dockerd_get(dockerd, "/v1.41/images/nothing:v1/json"))["message"].endswith(
            "No such image: nothing:v1")


def _dockerd_get(dockerd, path: str) -> bytes:
    from daemonkit import http_request

    socket_path = dockerd.host.removeprefix("unix://")
    return http_request(socket_path, "GET", path)[2]



def _image_events(docker, since: float, until: float) -> list[str]:
    """``docker events`` of type image between the two times, as "ACTION ACTOR-ID name=NAME" lines."""
    out = docker("events", "--since", f"{since:.3f}", "--until", f"{until:.3f}", "--filter", "type=image",
                 "--format", "{{.Action}} {{.Actor.ID}} name={{.Actor.Attributes.name}}")
    return out.splitlines()


@pytest.mark.docker
def test_rmi_emits_untag_then_one_delete_as_dockerd_does(daemon, dockerd, tmp_path):
    """A name removed: ``untag``; the image's last name: ``untag`` then one ``delete`` (its layers: none)."""
    import time

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "greeting").write_text("hello\n")
    archive = tmp_path / "rootfs.tar"
    subprocess.run(["tar", "-C", str(tree), "-cf", str(archive), "."], check=True)
    found = {}
    for who, docker in (("minidockerd", lambda *a: ok(daemon, *a)), ("dockerd", dockerd.docker)):
        image_id = docker("import", str(archive), "rmi/events:v1").strip()
        docker("tag", "rmi/events:v1", "rmi/events:v2")
        since = time.time()
        answers = [docker("rmi", "rmi/events:v2").splitlines(), docker("rmi", "rmi/events:v1").splitlines()]
        time.sleep(0.1)
        events = _image_events(docker, since, time.time())
        found[who] = ([line.replace(image_id, "<ID>") for line in events],
                      [[line.replace(image_id, "<ID>") for line in a] for a in answers])
    assert found["minidockerd"][0] == found["dockerd"][0], found
    expected = ["untag <ID> name=<ID>", "untag <ID> name=<ID>", "delete <ID> name=<ID>"]
    assert found["dockerd"][0] == expected, found
    # the answers too: one layer, so its chain ID (dockerd's Deleted line) is its diff ID (ours)
    assert found["minidockerd"][1] == found["dockerd"][1], found
