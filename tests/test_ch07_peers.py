"""Chapter 07 against real peers: Debian's docker-registry (distribution 2.8) and skopeo.

registry 2.8 runs on a free 127.0.0.1 port with storage in a temporary directory: plain,
with htpasswd Basic auth, and with Bearer tokens from the test's own token server (ES256
JWTs whose ``kid`` is the libtrust ID of the certificate in the registry's rootcertbundle).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import missing_feature
from imagekit import layer_tar, whiteout_image_layers
from registrykit import REGISTRY, DistributionRegistry, TokenServer, make_image

from minidocker.errors import NotFound
from minidocker.image import ImageStore
from minidocker.image import manifest as mf
from minidocker.registry.client import RegistryClient, Unauthorized
from minidocker.registry.progress import Progress
from minidocker.registry.pull import pull
from minidocker.registry.push import push

pytestmark = [pytest.mark.ch07, pytest.mark.peers, pytest.mark.root]

USERS = {"alice": "wonderland"}


def _need(path: str) -> None:
    if not shutil.which(path):
        missing_feature(f"{path} is not installed (apt-get install docker-registry skopeo; the Makefile's "
                        "APT_PACKAGES)")


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> ImageStore:
    """A store with ``app:v1``: the 2-layer whiteout image, gzip layers."""
    store = ImageStore(tmp_path_factory.mktemp("source") / "store")
    make_image(store, "app:v1", whiteout_image_layers("docker"))
    return store


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    _need(REGISTRY)
    registry = DistributionRegistry(tmp_path_factory.mktemp("reg-plain"))
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    _need(REGISTRY)
    registry = DistributionRegistry(tmp_path_factory.mktemp("reg-basic"), auth="htpasswd", users=USERS)
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def token(tmp_path_factory):
    _need(REGISTRY)
    tmp = tmp_path_factory.mktemp("reg-token")
    server = TokenServer(tmp, users=USERS)
    registry = DistributionRegistry(tmp / "registry", auth="token", token_server=server)
    registry.token_server = server
    yield registry
    registry.stop()
    server.stop()


def _quiet() -> Progress:
    return Progress(quiet=True)


def _diff_ids(store: ImageStore, reference: str) -> list[str]:
    return [layer.diff_id for layer in store.layers_of(store.resolve(reference))]


def test_push_then_pull_through_registry_2_8_gives_the_same_layers(source, plain, tmp_path):
    ref = f"{plain.address}/demo/app:v1"
    source.tag("app:v1", ref)
    progress = Progress(quiet=True)
    digest = push(source, ref, progress=progress)
    assert progress.lines[-1] == f"v1: digest: {digest} size: {len(source.manifest_of(source.resolve(ref))[0])}"
    target = ImageStore(tmp_path / "target")
    image = pull(target, ref, progress=_quiet())
    assert _diff_ids(target, ref) == _diff_ids(source, "app:v1")
    assert image.id == source.resolve("app:v1")
    assert (image.layers[0] / "data" / "opq" / "new.txt").read_text() == "new\n"
    assert f"{plain.address}/demo/app@{digest}" in target.record(image.id)["repoDigests"]


def test_a_second_pull_downloads_no_layer(source, plain, tmp_path):
    ref = f"{plain.address}/demo/again:v1"
    source.tag("app:v1", ref)
    push(source, ref, progress=_quiet())
    target = ImageStore(tmp_path / "target")
    pull(target, ref, progress=_quiet())
    lines = []
    progress = Progress(quiet=True)
    progress.update = lambda ident, status, *a: lines.append(status)
    pull(target, ref, progress=progress)
    assert set(lines) == {"Already exists"}, lines
    assert progress.lines[-1] == f"Status: Image is up to date for {ref}"


def test_chunked_push_and_cross_repository_mount(source, plain, tmp_path):
    first = f"{plain.address}/demo/chunked:v1"
    source.tag("app:v1", first)
    push(source, first, progress=_quiet(), chunk_size=4096)
    pulled = ImageStore(tmp_path / "pulled")
    pull(pulled, first, progress=_quiet())
    second = f"{plain.address}/other/copy:v1"
    pulled.tag(first, second)
    statuses = []
    progress = Progress(quiet=True)
    progress.update = lambda ident, status, *a: statuses.append(status)
    push(pulled, second, progress=progress)
    assert statuses.count("Mounted from demo/chunked") == 2, statuses


def test_zstd_layers_round_trip(plain, tmp_path):
    store = ImageStore(tmp_path / "src")
    make_image(store, "zimg:v1", [layer_tar([("file", "z.txt", b"zstd\n" * 100)])], compression="zstd")
    ref = f"{plain.address}/demo/zstd:v1"
    store.tag("zimg:v1", ref)
    push(store, ref, progress=_quiet())
    target = ImageStore(tmp_path / "dst")
    image = pull(target, ref, progress=_quiet())
    assert target.layers_of(image.id)[0].media_type == mf.OCI_LAYER_ZSTD
    assert (image.layers[0] / "z.txt").read_bytes() == b"zstd\n" * 100


def _push_index(client: RegistryClient, repository: str, children: list[tuple[str, int, str]]) -> None:
    index = {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": [
        {"mediaType": mf.OCI_MANIFEST, "digest": d, "size": s, "platform": {"os": "linux", "architecture": a}}
        for d, s, a in children]}
    client.request("PUT", f"/v2/{repository}/manifests/multi", headers={"Content-Type": mf.OCI_INDEX},
                   body=json.dumps(index).encode(), expect=(201,))


def test_multi_arch_index_pull_chooses_the_platform(plain, tmp_path):
    store = ImageStore(tmp_path / "src")
    children = []
    for arch in ("amd64", "arm64"):
        image = make_image(store, f"arch:{arch}", [layer_tar([("file", "arch", arch.encode())])])
        ref = f"{plain.address}/demo/multi:{arch}"
        store.tag(image.id, ref)
        digest = push(store, ref, progress=_quiet())
        children.append((digest, len(store.manifest_of(image.id)[0]), arch))
    _push_index(RegistryClient(plain.address), "demo/multi", children)
    ref = f"{plain.address}/demo/multi:multi"
    for arch in ("amd64", "arm64"):
        target = ImageStore(tmp_path / f"dst-{arch}")
        image = pull(target, ref, platform=f"linux/{arch}", progress=_quiet())
        assert (image.layers[0] / "arch").read_text() == arch
    with pytest.raises(NotFound, match=r"no matching manifest for linux/s390x.*\n.*linux/amd64, linux/arm64"):
        pull(ImageStore(tmp_path / "none"), ref, platform="linux/s390x", progress=_quiet())


def test_pull_follows_307_redirects_to_blob_storage(source, tmp_path):
    _need(REGISTRY)
    data = tmp_path / "reg" / "data"
    data.mkdir(parents=True)
    files = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietFiles, directory=str(data)))
    thread = threading.Thread(target=files.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    registry = DistributionRegistry(tmp_path / "reg", redirect_base=f"http://127.0.0.1:{files.server_address[1]}/")
    try:
        ref = f"{registry.address}/demo/redirect:v1"
        source.tag("app:v1", ref)
        push(source, ref, progress=_quiet())
        image = pull(ImageStore(tmp_path / "dst"), ref, progress=_quiet())
        assert image.id == source.resolve("app:v1")
        assert '" 307 ' in registry.log_text()
    finally:
        registry.stop()
        files.shutdown()
        files.server_close()
        thread.join(5)


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


# -- Basic auth ------------------------------------------------------------------------------

def test_htpasswd_registry_refuses_anonymous_and_wrong_password(source, basic):
    ref = f"{basic.address}/demo/app:v1"
    source.tag("app:v1", ref)
    with pytest.raises(Unauthorized, match="unauthorized: authentication required"):
        push(source, ref, progress=_quiet())
    with pytest.raises(Unauthorized, match="unauthorized"):
        push(source, ref, progress=_quiet(), credentials=("alice", "wrong"))


def test_login_stores_credentials_that_push_and_pull_use(source, basic, cli, tmp_path):
    env = {"HOME": str(tmp_path / "home")}
    bad = cli("login", "-u", "alice", "--password-stdin", basic.address, input="nope\n", env=env)
    assert bad.code != 0 and "unauthorized" in bad.err, bad
    good = cli("login", "-u", "alice", "--password-stdin", basic.address, input="wonderland\n", env=env)
    assert good.code == 0 and "Login Succeeded" in good.out, good
    assert "wonderland" not in good.out + good.err
    config = tmp_path / "home" / ".minidocker" / "config.json"
    assert oct(config.stat().st_mode & 0o777) == "0o600"
    assert basic.address in json.loads(config.read_text())["auths"]
    ref = f"{basic.address}/demo/login:v1"
    assert cli("tag", "busybox", ref, env=env).code == 0
    pushed = cli("push", ref, env=env)
    assert pushed.code == 0, pushed
    assert "Pushed" in pushed.out and "digest: sha256:" in pushed.out
    assert cli("rmi", ref, env=env).code == 0
    pulled = cli("pull", ref, env=env)
    assert pulled.code == 0 and "Status: Downloaded newer image" in pulled.out, pulled
    assert cli("logout", basic.address, env=env).out.startswith("Removing login credentials")
    again = cli("pull", ref, env=env)
    assert again.code != 0 and "unauthorized: authentication required" in again.err, again
    assert "hint: run: minidocker login" in again.err
    assert cli("rmi", ref, env=env).code == 0   # busybox keeps one name (test_ch06_images's rmi expects it)


# -- Bearer tokens -----------------------------------------------------------------------------

def test_token_auth_anonymous_pull_but_push_needs_credentials(source, token, tmp_path):
    ref = f"{token.address}/demo/app:v1"
    source.tag("app:v1", ref)
    with pytest.raises(Unauthorized, match="insufficient scope|denied|unauthorized"):
        push(source, ref, progress=_quiet())
    digest = push(source, ref, progress=_quiet(), credentials=("alice", "wonderland"))
    asked = token.token_server.requests[-1]
    assert asked["account"] == "alice" and "repository:demo/app:pull,push" in asked["scopes"]
    image = pull(ImageStore(tmp_path / "anon"), ref, progress=_quiet())   # anonymous: pull is granted
    assert image.id == source.resolve("app:v1")
    assert token.token_server.requests[-1]["account"] is None
    assert digest.startswith("sha256:")


def test_token_auth_push_mounts_from_another_repository(source, token, tmp_path):
    ref = f"{token.address}/demo/mount-src:v1"
    source.tag("app:v1", ref)
    push(source, ref, progress=_quiet(), credentials=("alice", "wonderland"))
    pulled = ImageStore(tmp_path / "pulled")
    pull(pulled, ref, progress=_quiet())
    target = f"{token.address}/demo/mount-dst:v1"
    pulled.tag(ref, target)
    statuses = []
    progress = Progress(quiet=True)
    progress.update = lambda ident, status, *a: statuses.append(status)
    push(pulled, target, progress=progress, credentials=("alice", "wonderland"))
    assert statuses.count("Mounted from demo/mount-src") == 2, statuses
    assert any("repository:demo/mount-src:pull" in r["scopes"] for r in token.token_server.requests)


def test_token_server_refuses_a_wrong_password(source, token, tmp_path):
    ref = f"{token.address}/demo/app:v1"
    with pytest.raises(Unauthorized, match="token server .* refused the credentials"):
        pull(ImageStore(tmp_path / "x"), ref, progress=_quiet(), credentials=("alice", "wrong"))


def test_skopeo_reads_what_we_pushed_to_registry_2_8(source, plain):
    _need("skopeo")
    ref = f"{plain.address}/demo/skopeo:v1"
    source.tag("app:v1", ref)
    digest = push(source, ref, progress=_quiet())
    out = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Digest"] == digest


def _busybox_rootfs_tar() -> bytes:
    """bin/busybox (the host's static one) and bin/sh, bin/echo linking to it: for ``docker import``."""
    import io
    import tarfile

    from minidocker.image.busybox import BUSYBOX_CANDIDATES

    busybox = next(p for p in BUSYBOX_CANDIDATES if os.path.exists(p))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(busybox, "bin/busybox")
        for applet in ("sh", "echo"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
    return buf.getvalue()


@pytest.mark.docker
def test_docker_pushes_to_registry_2_8_and_we_pull_and_run_it(dockerd, plain, cli):
    """An image docker made (``docker import``) and pushed (docker's gzip, docker's manifest); ours runs it."""
    ref = f"{plain.address}/docker/busybox:v1"
    dockerd.docker("import", "-c", 'CMD ["/bin/sh"]', "-", ref, input=_busybox_rootfs_tar())
    try:
        dockerd.docker("push", ref)
        docker_id = dockerd.docker("image", "inspect", "-f", "{{.Id}}", ref).strip()
    finally:
        dockerd.docker("rmi", ref)
    pulled = cli("pull", ref)
    try:
        assert pulled.code == 0 and pulled.out.strip().endswith(ref), pulled
        assert json.loads(cli("image", "inspect", ref).out)[0]["Id"] == docker_id
        ran = cli("run", "--rm", ref, "echo", "pushed-by-docker")
        assert ran.code == 0 and ran.out.strip() == "pushed-by-docker", ran
    finally:
        cli("rmi", ref)


def _host_state() -> dict:
    """What dockerd or containerd would change on a host if not told otherwise."""
    paths = ("/etc/docker/key.json", "/opt/containerd", "/run/containerd", "/run/docker", "/var/lib/docker",
             "/var/lib/containerd", "/var/run/docker.sock", "/root/.docker")
    nft = (subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=False)
           if shutil.which("nft") else None)
    hierarchies = [h for h in Path("/sys/fs/cgroup").iterdir() if h.is_dir() and not h.is_symlink()]
    cgroups = sorted(str(g) for h in hierarchies for g in h.iterdir() if g.is_dir())   # a "docker" group?
    return {"exists": {p: os.path.lexists(p) for p in paths}, "links": sorted(os.listdir("/sys/class/net")),
            "netns": sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else [], "cgroups": cgroups,
            "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text(), "nft": nft.stdout if nft else None}


@pytest.mark.docker
def test_a_private_dockerd_leaves_the_host_as_it_was(tmp_path):
    """tests/dockerd.py, a container created and exported (never started): no firewall rule, link,
    netns, cgroup, sysctl, file outside its directory; the leak detector checks mounts and processes."""
    from dockerd import Dockerd

    before = _host_state()
    with Dockerd() as daemon:
        info = json.loads(daemon.docker("info", "--format", "{{json .}}"))
        assert str(daemon.base) in info["DockerRootDir"] and info["Containers"] == 0
        assert daemon.containerd_address.is_socket()
        daemon.docker("import", "-", "tiny:v1", input=_busybox_rootfs_tar())
        container = daemon.docker("create", "--network", "none", "tiny:v1", "/bin/sh").strip()
        assert b"bin/busybox" in subprocess.run(["docker", "export", container], env=daemon.env, check=True,
                                                capture_output=True, timeout=60).stdout   # overlay2 mounted it
        daemon.docker("rm", container)
        base = daemon.base
    assert not base.exists()
    assert _host_state() == before
