"""Chapter 07: our registry server, used by our client, by skopeo, by curl-like raw requests, and by dockerd.

Where registry 2.8 is lenient (Content-Range, ``?n=`` on tags, single-POST uploads) these
tests pin what the OCI distribution spec asks and our server does.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
from conftest import missing_feature
from imagekit import layer_tar, whiteout_image_layers, write_layout
from registrykit import free_port, htpasswd_line, make_image

from minidocker.image import ImageStore
from minidocker.image import manifest as mf
from minidocker.registry.client import RegistryClient, RegistryError, Unauthorized
from minidocker.registry.progress import Progress
from minidocker.registry.pull import pull
from minidocker.registry.push import push
from minidocker.registry.server import RegistryServer

pytestmark = [pytest.mark.ch07, pytest.mark.root]


@pytest.fixture
def server(tmp_path):
    with RegistryServer(tmp_path / "registry", ("127.0.0.1", 0)) as srv:
        yield srv


@pytest.fixture
def store(tmp_path) -> ImageStore:
    store = ImageStore(tmp_path / "store")
    make_image(store, "app:v1", whiteout_image_layers("docker"))
    return store


def _quiet() -> Progress:
    return Progress(quiet=True)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_push_and_pull_round_trip_through_our_server(server, store, tmp_path):
    ref = f"{server.address}/demo/app:v1"
    store.tag("app:v1", ref)
    digest = push(store, ref, progress=_quiet(), chunk_size=1000)
    image = pull(ImageStore(tmp_path / "dst"), ref, progress=_quiet())
    assert image.id == store.resolve("app:v1")
    client = RegistryClient(server.address)
    head = client.request("HEAD", "/v2/demo/app/manifests/v1")
    assert head.header("Docker-Content-Digest") == digest
    assert head.header("Docker-Distribution-Api-Version") == "registry/2.0"


def test_an_uncompressed_layer_kept_as_a_tar_split_is_pushed_byte_for_byte(server, tmp_path):
    tar = layer_tar([("file", "a", os.urandom(5000)), ("dir", "d"), ("file", "d/b", b"b" * 3000)])
    store = ImageStore(tmp_path / "split")
    make_image(store, "plain:v1", [tar], compression="none")   # no blob file: the tree + a tar-split
    ref = f"{server.address}/demo/plain:v1"
    store.tag("plain:v1", ref)
    push(store, ref, progress=_quiet(), chunk_size=1000)       # chunks: the rebuilt tar is seekable
    pulled = ImageStore(tmp_path / "dst")
    image = pull(pulled, ref, progress=_quiet())
    assert image.id == store.resolve("plain:v1")
    layer = pulled.layers_of(image.id)[0]
    with pulled.open_blob(layer.digest) as blob:
        assert blob.read() == tar


def test_version_check_catalog_and_tags_pagination(server, store):
    for tag in ("c", "a", "b"):
        store.tag("app:v1", f"{server.address}/demo/app:{tag}")
        push(store, f"{server.address}/demo/app:{tag}", progress=_quiet())
    store.tag("app:v1", f"{server.address}/other/x:v1")
    push(store, f"{server.address}/other/x:v1", progress=_quiet())
    client = RegistryClient(server.address)
    assert client.request("GET", "/v2/").json() == {}
    assert client.request("GET", "/v2/_catalog").json() == {"repositories": ["demo/app", "other/x"]}
    page = client.request("GET", "/v2/demo/app/tags/list?n=2")
    assert page.json() == {"name": "demo/app", "tags": ["a", "b"]}
    assert page.header("Link") == '</v2/demo/app/tags/list?last=b&n=2>; rel="next"'
    assert client.request("GET", "/v2/demo/app/tags/list?n=2&last=b").json()["tags"] == ["c"]
    with pytest.raises(RegistryError, match="name unknown"):
        client.request("GET", "/v2/nope/tags/list")


def test_blob_range_requests_and_unknown_blobs(server, store):
    ref = f"{server.address}/demo/app:v1"
    store.tag("app:v1", ref)
    push(store, ref, progress=_quiet())
    layer = store.layers_of(store.resolve(ref))[0]
    data = store.read_blob(layer.digest)
    client = RegistryClient(server.address)
    part = client.request("GET", f"/v2/demo/app/blobs/{layer.digest}", headers={"Range": "bytes=0-15"},
                          expect=(206,))
    assert part.body == data[:16] and part.header("Content-Range") == f"bytes 0-15/{len(data)}"
    with pytest.raises(RegistryError, match="blob unknown"):
        client.request("GET", f"/v2/demo/app/blobs/sha256:{'0' * 64}")
    with pytest.raises(RegistryError, match="blob unknown"):   # stored, but not linked to this repository
        client.request("GET", f"/v2/other/repo/blobs/{layer.digest}")
    with pytest.raises(RegistryError, match="digest invalid"):
        client.request("GET", "/v2/demo/app/blobs/sha256:abc")


def test_upload_checks_content_range_and_digest(server):
    client = RegistryClient(server.address)
    data = b"0123456789" * 100
    start = client.request("POST", "/v2/demo/up/blobs/uploads/", expect=(202,))
    location = start.header("Location")
    first = client.request("PATCH", location, headers={"Content-Range": "0-499"}, body=data[:500], expect=(202,))
    assert first.header("Range") == "0-499"
    with pytest.raises(RegistryError, match="HTTP 416|blob upload invalid"):
        client.request("PATCH", location, headers={"Content-Range": "600-999"}, body=data[600:])
    status = client.request("GET", location, expect=(204,))
    assert status.header("Range") == "0-499"
    client.request("PATCH", location, headers={"Content-Range": "500-999"}, body=data[500:], expect=(202,))
    with pytest.raises(RegistryError, match="digest invalid"):
        client.request("PUT", f"{location}?digest=sha256:{'1' * 64}", body=b"", expect=(201,))
    assert not server.blobs.exists(_sha(data))
    assert not list(server.blobs.root.glob(".tmp-*")), "a refused upload left its temporary file"
    # monolithic in one POST (not implemented by registry 2.8, in the spec)
    done = client.request("POST", f"/v2/demo/up/blobs/uploads/?digest={_sha(data)}", body=data, expect=(201,))
    assert done.header("Docker-Content-Digest") == _sha(data)
    assert client.request("GET", f"/v2/demo/up/blobs/{_sha(data)}").body == data


def test_manifest_put_rules(server):
    client = RegistryClient(server.address)
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
                           "config": {"mediaType": mf.OCI_CONFIG, "digest": _sha(config), "size": len(config)},
                           "layers": []}).encode()
    headers = {"Content-Type": mf.OCI_MANIFEST}
    with pytest.raises(RegistryError, match="manifest blob unknown"):
        client.request("PUT", "/v2/demo/m/manifests/v1", headers=headers, body=manifest, expect=(201,))
    client.request("POST", f"/v2/demo/m/blobs/uploads/?digest={_sha(config)}", body=config, expect=(201,))
    with pytest.raises(RegistryError, match="manifest invalid"):
        client.request("PUT", "/v2/demo/m/manifests/v1", headers=headers, body=b"{oops", expect=(201,))
    with pytest.raises(RegistryError, match="digest invalid"):
        client.request("PUT", f"/v2/demo/m/manifests/sha256:{'2' * 64}", headers=headers, body=manifest,
                       expect=(201,))
    put = client.request("PUT", "/v2/demo/m/manifests/v1", headers=headers, body=manifest, expect=(201,))
    assert put.header("Docker-Content-Digest") == _sha(manifest)
    got = client.request("GET", f"/v2/demo/m/manifests/{_sha(manifest)}")
    assert got.body == manifest and got.header("Content-Type") == mf.OCI_MANIFEST
    client.request("DELETE", f"/v2/demo/m/manifests/{_sha(manifest)}", expect=(202,))
    with pytest.raises(RegistryError, match="manifest unknown"):
        client.request("GET", "/v2/demo/m/manifests/v1")


def test_htpasswd_server_wants_credentials(tmp_path, store):
    (tmp_path / "htpasswd").write_text(htpasswd_line("bob", "secret") + "\n")
    with RegistryServer(tmp_path / "reg", ("127.0.0.1", 0), htpasswd=tmp_path / "htpasswd") as server:
        ref = f"{server.address}/demo/app:v1"
        store.tag("app:v1", ref)
        with pytest.raises(Unauthorized, match="authentication required"):
            push(store, ref, progress=_quiet())
        with pytest.raises(Unauthorized):
            push(store, ref, progress=_quiet(), credentials=("bob", "wrong"))
        push(store, ref, progress=_quiet(), credentials=("bob", "secret"))
        pull(ImageStore(tmp_path / "dst"), ref, progress=_quiet(), credentials=("bob", "secret"))


# -- skopeo, a real client --------------------------------------------------------------------

def _skopeo(*args: str) -> str:
    if shutil.which("skopeo") is None:
        missing_feature("skopeo is not installed (apt-get install skopeo; the Makefile's APT_PACKAGES)")
    out = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"$ skopeo {' '.join(args)}\n{out.stdout}{out.stderr}"
    return out.stdout


@pytest.mark.peers
@pytest.mark.parametrize("fmt", ["oci", "v2s2"])
def test_skopeo_pushes_to_our_server_and_we_pull_it(server, tmp_path, fmt):
    write_layout(tmp_path / "layout", whiteout_image_layers("docker"), tag="v1")
    ref = f"{server.address}/skopeo/app:v1"
    _skopeo("copy", "--dest-tls-verify=false", "--format", fmt, f"oci:{tmp_path / 'layout'}:v1", f"docker://{ref}")
    image = pull(ImageStore(tmp_path / "dst"), ref, progress=_quiet())
    assert (image.layers[0] / "data" / "opq" / "new.txt").read_text() == "new\n"


@pytest.mark.peers
def test_skopeo_copies_what_we_pushed_from_our_server(server, store, tmp_path):
    ref = f"{server.address}/demo/app:v1"
    store.tag("app:v1", ref)
    digest = push(store, ref, progress=_quiet())
    inspected = json.loads(_skopeo("inspect", "--tls-verify=false", f"docker://{ref}"))
    assert inspected["Digest"] == digest
    _skopeo("copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{tmp_path / 'out'}:v1")
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == digest   # skopeo kept our manifest byte for byte


@pytest.mark.peers
def test_skopeo_uses_htpasswd_credentials_on_our_server(tmp_path):
    (tmp_path / "htpasswd").write_text(htpasswd_line("bob", "secret") + "\n")
    write_layout(tmp_path / "layout", [layer_tar([("file", "f", b"x")])], tag="v1")
    with RegistryServer(tmp_path / "reg", ("127.0.0.1", 0), htpasswd=tmp_path / "htpasswd") as server:
        ref = f"{server.address}/auth/app:v1"
        _skopeo("copy", "--dest-tls-verify=false", "--dest-creds", "bob:secret", f"oci:{tmp_path / 'layout'}:v1",
                f"docker://{ref}")
        out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode != 0 and "unauthorized" in out.stderr.lower()


# -- the command --------------------------------------------------------------------------------

def test_registry_serve_command_serves_push_and_pull(cli, state_root, tmp_path):
    port = free_port()
    env = {**os.environ, "MINIDOCKER_ROOT": str(state_root)}
    proc = subprocess.Popen([sys.executable, "-m", "minidocker", "registry", "serve", "--addr",
                             f"127.0.0.1:{port}", "--root", str(tmp_path / "reg")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening on http://127.0.0.1:" in proc.stdout.readline()
        ref = f"127.0.0.1:{port}/course/busybox:v1"
        assert cli("tag", "busybox", ref).code == 0
        pushed = cli("push", ref)
        assert pushed.code == 0 and "The push refers to repository" in pushed.out, pushed
        assert cli("rmi", ref).code == 0
        pulled = cli("pull", ref)
        assert pulled.code == 0 and pulled.out.strip().endswith(ref), pulled
        ran = cli("run", "--rm", ref, "echo", "from-the-registry")
        assert ran.out.strip() == "from-the-registry", ran
    finally:
        cli("rmi", ref)   # busybox keeps one name: later tests expect `rmi busybox` to meet its containers
        _stop_serving(proc)


@pytest.mark.docker
def test_dockerd_pushes_to_and_pulls_from_our_server(dockerd, server, store, tmp_path):
    """docker load, push (then again to a second repository: a cross-repo mount), pull by tag and digest."""
    from minidocker.image.archive import save_archive

    with open(tmp_path / "app.tar", "wb") as out:
        save_archive(store, ["app:v1"], out)
    image_id = store.resolve("app:v1")
    ref, other = f"{server.address}/docker/app:v1", f"{server.address}/docker/copy:v1"
    dockerd.docker("load", "-i", str(tmp_path / "app.tar"))
    assert dockerd.docker("image", "inspect", "-f", "{{.Id}}", "app:v1").strip() == image_id
    dockerd.docker("tag", "app:v1", ref)
    dockerd.docker("tag", "app:v1", other)
    pushed = dockerd.docker("push", ref)
    digest = pushed.split("digest: ")[1].split()[0]
    assert "Mounted from docker/app" in dockerd.docker("push", other)
    dockerd.docker("rmi", ref, other, "app:v1")
    ours = pull(ImageStore(tmp_path / "dst"), other, progress=_quiet())   # docker's manifest, our client
    assert ours.id == image_id
    dockerd.docker("pull", ref)
    dockerd.docker("pull", f"{server.address}/docker/app@{digest}")
    assert dockerd.docker("image", "inspect", "-f", "{{.Id}}", ref).strip() == image_id
    dockerd.docker("rmi", ref)   # the last tag: the digest reference goes with it
    assert dockerd.docker("images", "-q") == ""
    assert server.tags("docker/app") == ["v1"] and server.tags("docker/copy") == ["v1"]
    assert RegistryClient(server.address).request("HEAD", f"/v2/docker/app/manifests/{digest}").status == 200


@pytest.mark.docker
def test_docker_pulls_what_we_pushed_and_we_load_what_docker_saves(dockerd, server, store, tmp_path):
    """Our push, docker's pull; docker's save (its own tar of its overlay2 layers), our load."""
    from imagekit import merged_tree

    from minidocker.image.archive import load_archive

    ref = f"{server.address}/ours/app:v1"
    store.tag("app:v1", ref)
    push(store, ref, progress=_quiet())
    dockerd.docker("pull", ref)
    try:
        dockerd.docker("save", "-o", str(tmp_path / "docker.tar"), ref)
    finally:
        dockerd.docker("rmi", ref)
    back = ImageStore(tmp_path / "back")
    assert load_archive(back, tmp_path / "docker.tar") == [f"Loaded image: {ref}"]
    assert back.resolve(ref) == store.resolve("app:v1"), "the same config, so the same image ID"
    theirs = merged_tree(back.get(ref).layers, tmp_path / "m1")
    assert theirs == merged_tree(store.get("app:v1").layers, tmp_path / "m2")
    assert "data/opq/new.txt" in theirs and "data/opq/old.txt" not in theirs


def test_a_seeded_classroom_registry_mirrors_docker_hub_names(cli, tmp_path):
    """`registry serve --seed` pushes local images under their Docker Hub paths; the mirror serves them."""
    port = free_port()
    env = {**os.environ, "MINIDOCKER_ROOT": str(tmp_path / "teacher")}
    assert cli("tag", "busybox", "course/tools:v1", env=env).code == 0
    proc = subprocess.Popen([sys.executable, "-m", "minidocker", "registry", "serve", "--seed", "-q", "--addr",
                             f"127.0.0.1:{port}", "--root", str(tmp_path / "reg")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening on" in proc.stdout.readline()
        seeded = proc.stdout.readline()
        assert "library/busybox:latest" in seeded and "course/tools:v1" in seeded, seeded
        student = {"MINIDOCKER_ROOT": str(tmp_path / "student"),
                   "MINIDOCKER_REGISTRY_MIRROR": f"http://127.0.0.1:{port}"}
        pulled = cli("pull", "course/tools:v1", env=student)
        assert pulled.code == 0 and pulled.out.strip().endswith("docker.io/course/tools:v1"), pulled
        assert "mirror" not in pulled.out   # no fallback to Docker Hub
    finally:
        _stop_serving(proc)


def test_pull_by_digest_pins_the_image_and_adds_no_tag(server, store, tmp_path):
    ref = f"{server.address}/demo/app:v1"
    store.tag("app:v1", ref)
    digest = push(store, ref, progress=_quiet())
    target = ImageStore(tmp_path / "dst")
    image = pull(target, f"{server.address}/demo/app@{digest}", progress=_quiet())
    assert target.refs() == {}
    assert target.resolve(f"{server.address}/demo/app@{digest}") == image.id
    with pytest.raises(RegistryError, match="manifest unknown"):
        pull(target, f"{server.address}/demo/app@sha256:{'5' * 64}", progress=_quiet())


def test_docker_manifest_list_chooses_the_platform(server, tmp_path):
    store = ImageStore(tmp_path / "src")
    children = []
    for arch in ("amd64", "arm64"):
        image = make_image(store, f"arch:{arch}", [layer_tar([("file", "arch", arch.encode())])])
        store.tag(image.id, f"{server.address}/demo/list:{arch}")
        digest = push(store, f"{server.address}/demo/list:{arch}", progress=_quiet())
        children.append({"mediaType": mf.OCI_MANIFEST, "digest": digest,
                         "size": len(store.manifest_of(image.id)[0]),
                         "platform": {"architecture": arch, "os": "linux"}})
    listing = json.dumps({"schemaVersion": 2, "mediaType": mf.DOCKER_LIST, "manifests": children}).encode()
    RegistryClient(server.address).request("PUT", "/v2/demo/list/manifests/multi", body=listing, expect=(201,),
                                           headers={"Content-Type": mf.DOCKER_LIST})
    image = pull(ImageStore(tmp_path / "dst"), f"{server.address}/demo/list:multi", platform="linux/arm64",
                 progress=_quiet())
    assert (image.layers[0] / "arch").read_text() == "arm64"


def _stop_serving(proc: subprocess.Popen) -> None:
    """End a `minidocker registry serve` process as Ctrl-C would (SIGINT), killing it if it hangs."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stdout.close()
    proc.stderr.close()
