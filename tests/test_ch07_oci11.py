"""Chapter 07: the parts of the OCI distribution spec 1.1 our registry serves beyond registry 2.8's core.

Each test sends the spec's own requests to ``registry serve`` and checks its answers: byte ranges
(suffix, open, past the end), sha512 digests, the referrers API and ``subject``, non-distributable
layers, digests whose algorithm is not registered. Bad input stores nothing.
See: https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md
"""

from __future__ import annotations

import hashlib
import json

import pytest
from conftest import missing_feature
from imagekit import whiteout_image_layers
from registrykit import htpasswd_line, make_image

from minidocker.image import ImageStore
from minidocker.image import manifest as mf
from minidocker.registry.artifacts import attach, referrers
from minidocker.registry.client import RegistryClient, Unauthorized
from minidocker.registry.progress import Progress
from minidocker.registry.pull import pull
from minidocker.registry.push import push
from minidocker.registry.server import RegistryServer

pytestmark = [pytest.mark.ch07]

EMPTY = b"{}"
SBOM_TYPE = "application/spdx+json"
SIGNATURE_TYPE = "application/vnd.example.signature.v1"


@pytest.fixture
def server(tmp_path):
    with RegistryServer(tmp_path / "registry", ("127.0.0.1", 0)) as srv:
        yield srv


@pytest.fixture
def client(server) -> RegistryClient:
    return RegistryClient(server.address)


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def _upload(client: RegistryClient, repo: str, data: bytes, digest: str) -> None:
    client.request("POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", body=data, expect=(201,))


def _image_manifest(client: RegistryClient, repo: str, layer: bytes, digest=_sha256, **extra) -> tuple[bytes, str]:
    """A one-layer image pushed by digest; returns (manifest bytes, manifest digest)."""
    _upload(client, repo, EMPTY, digest(EMPTY))
    _upload(client, repo, layer, digest(layer))
    document = {"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(EMPTY),
                           "size": len(EMPTY)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer),
                            "size": len(layer)}], **extra}
    data = json.dumps(document).encode()
    return data, digest(data)


def _put_manifest(client: RegistryClient, repo: str, ref: str, data: bytes, expect=(201,)):
    return client.request("PUT", f"/v2/{repo}/manifests/{ref}", headers={"Content-Type": mf.OCI_MANIFEST},
                          body=data, expect=expect)


# -- byte ranges ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("header", "status", "expected", "content_range"), [
    ("bytes=10-19", 206, slice(10, 20), "bytes 10-19/100"),
    ("bytes=90-", 206, slice(90, 100), "bytes 90-99/100"),        # open: from 90 to the end
    ("bytes=-25", 206, slice(75, 100), "bytes 75-99/100"),        # suffix: the last 25 bytes
    ("bytes=-500", 206, slice(0, 100), "bytes 0-99/100"),         # a suffix longer than the blob: all of it
    ("bytes=95-500", 206, slice(95, 100), "bytes 95-99/100"),     # an end past the end is cut
])
def test_blob_ranges_open_and_suffix(client, header, status, expected, content_range):
    data = bytes(range(100))
    _upload(client, "r/blob", data, _sha256(data))
    answer = client.request("GET", f"/v2/r/blob/blobs/{_sha256(data)}", headers={"Range": header}, expect=(status,))
    assert answer.body == data[expected]
    assert answer.header("Content-Range") == content_range


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=150-200", "bytes=-0", "bytes=20-10", "lines=1-2"])
def test_a_range_past_the_end_or_malformed_is_416_with_the_size(client, header):
    data = bytes(100)
    _upload(client, "r/blob", data, _sha256(data))
    answer = client.request("GET", f"/v2/r/blob/blobs/{_sha256(data)}", headers={"Range": header},
                            expect=(416,))
    assert answer.header("Content-Range") == "bytes */100"


# -- sha512 --------------------------------------------------------------------------------------

def test_sha512_blobs_uploads_and_manifests(server, client, tmp_path):
    layer = b"a layer named by its sha512" * 40
    data, digest = _image_manifest(client, "r/512", layer, digest=_sha512)
    put = _put_manifest(client, "r/512", digest, data)
    assert put.header("Docker-Content-Digest") == digest
    got = client.request("GET", f"/v2/r/512/manifests/{digest}")
    assert got.body == data and got.header("Docker-Content-Digest") == digest
    assert client.request("GET", f"/v2/r/512/blobs/{_sha512(layer)}").body == layer
    assert (server.root / "blobs" / "sha512" / _sha512(layer)[7:]).read_bytes() == layer
    # a chunked upload finished under a sha512 digest
    start = client.request("POST", "/v2/r/512/blobs/uploads/", expect=(202,))
    location = start.header("Location")
    client.request("PATCH", location, headers={"Content-Range": "0-9"}, body=b"0123456789", expect=(202,))
    done = client.request("PUT", f"{location}?digest={_sha512(b'0123456789')}", body=b"", expect=(201,))
    assert done.header("Docker-Content-Digest") == _sha512(b"0123456789")


def test_a_blob_that_does_not_match_its_sha512_digest_is_refused_and_not_stored(server, client):
    answer = client.request("POST", f"/v2/r/512/blobs/uploads/?digest={_sha512(b'other bytes')}",
                            body=b"these bytes", expect=(400,))
    assert answer.json()["errors"][0]["code"] == "DIGEST_INVALID"
    assert not (server.root / "blobs" / "sha512").exists() or not any((server.root / "blobs" / "sha512").iterdir())
    assert not list((server.root / "blobs").glob(".tmp-*"))


@pytest.mark.parametrize("digest", ["md5:" + "0" * 32, "sha384:" + "0" * 96, "sha256:ABC", "sha512:" + "0" * 64])
def test_a_digest_whose_algorithm_is_not_registered_is_digest_invalid(client, digest):
    for method, path in (("GET", f"/v2/r/x/blobs/{digest}"), ("GET", f"/v2/r/x/manifests/{digest}"),
                         ("GET", f"/v2/r/x/referrers/{digest}")):
        answer = client.request(method, path, expect=(400,))
        assert answer.json()["errors"][0]["code"] == "DIGEST_INVALID", (method, path, answer.body)


def test_our_client_pulls_an_image_whose_layer_and_manifest_are_sha512(server, client, tmp_path):
    store = ImageStore(tmp_path / "src")
    make_image(store, "app:v1", whiteout_image_layers("docker"))
    image_id = store.resolve("app:v1")
    layers = store.layers_of(image_id)
    config = store.blobs.read(image_id)
    _upload(client, "r/app", config, _sha512(config))
    descriptors = []
    for layer in layers:
        blob = store.blobs.read(layer.digest)
        _upload(client, "r/app", blob, _sha512(blob))
        descriptors.append({"mediaType": layer.media_type, "digest": _sha512(blob), "size": len(blob)})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": _sha512(config), "size": len(config)},
                           "layers": descriptors}).encode()
    _put_manifest(client, "r/app", _sha512(manifest), manifest)
    pulled = pull(ImageStore(tmp_path / "dst"), f"{server.address}/r/app@{_sha512(manifest)}",
                  progress=Progress(quiet=True))
    assert pulled.id == image_id   # the image ID is the config's sha256, whatever the registry named it


# -- subject and referrers -----------------------------------------------------------------------

def test_referrers_of_an_unknown_subject_is_an_empty_index(client):
    answer = client.request("GET", f"/v2/r/x/referrers/{_sha256(b'nothing')}")
    assert answer.header("Content-Type") == mf.OCI_INDEX
    assert answer.json() == {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": []}


def test_a_manifest_with_a_subject_answers_oci_subject_and_is_listed_with_its_artifact_type(client):
    image, image_digest = _image_manifest(client, "r/app", b"layer")
    _put_manifest(client, "r/app", "v1", image)
    subject = {"mediaType": mf.OCI_MANIFEST, "digest": image_digest, "size": len(image)}
    sbom, sbom_digest = _image_manifest(client, "r/app", b'{"spdx": 1}', artifactType=SBOM_TYPE, subject=subject,
                                        annotations={"org.example": "sbom"})
    put = _put_manifest(client, "r/app", sbom_digest, sbom)
    assert put.header("OCI-Subject") == image_digest
    listed = client.request("GET", f"/v2/r/app/referrers/{image_digest}").json()
    assert listed["manifests"] == [{"mediaType": mf.OCI_MANIFEST, "digest": sbom_digest, "size": len(sbom),
                                    "artifactType": SBOM_TYPE, "annotations": {"org.example": "sbom"}}]


def test_referrers_filter_by_artifact_type_and_say_so(client):
    image, image_digest = _image_manifest(client, "r/app", b"layer")
    _put_manifest(client, "r/app", "v1", image)
    subject = {"mediaType": mf.OCI_MANIFEST, "digest": image_digest, "size": len(image)}
    for artifact_type, content in ((SBOM_TYPE, b"sbom"), (SIGNATURE_TYPE, b"sig")):
        data, digest = _image_manifest(client, "r/app", content, artifactType=artifact_type, subject=subject)
        _put_manifest(client, "r/app", digest, data)
    everything = client.request("GET", f"/v2/r/app/referrers/{image_digest}")
    assert [d["artifactType"] for d in everything.json()["manifests"]] == [SBOM_TYPE, SIGNATURE_TYPE]
    assert everything.header("OCI-Filters-Applied") is None
    only = client.request("GET", f"/v2/r/app/referrers/{image_digest}?artifactType={SIGNATURE_TYPE}")
    assert [d["artifactType"] for d in only.json()["manifests"]] == [SIGNATURE_TYPE]
    assert only.header("OCI-Filters-Applied") == "artifactType"


def test_a_subject_that_does_not_exist_yet_is_accepted(client):
    missing = _sha256(b"an image pushed later")
    data, digest = _image_manifest(client, "r/app", b"sig", artifactType=SIGNATURE_TYPE,
                                   subject={"mediaType": mf.OCI_MANIFEST, "digest": missing, "size": 10})
    assert _put_manifest(client, "r/app", digest, data).header("OCI-Subject") == missing
    assert client.request("GET", f"/v2/r/app/referrers/{missing}").json()["manifests"][0]["digest"] == digest


def test_an_index_with_a_subject_is_a_referrer_too_and_deleting_it_unlists_it(client):
    image, image_digest = _image_manifest(client, "r/app", b"layer")
    _put_manifest(client, "r/app", image_digest, image)
    index = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "artifactType": SBOM_TYPE,
                        "manifests": [{"mediaType": mf.OCI_MANIFEST, "digest": image_digest, "size": len(image)}],
                        "subject": {"mediaType": mf.OCI_MANIFEST, "digest": image_digest,
                                    "size": len(image)}}).encode()
    client.request("PUT", f"/v2/r/app/manifests/{_sha256(index)}", headers={"Content-Type": mf.OCI_INDEX},
                   body=index, expect=(201,))
    assert [d["mediaType"] for d in client.request("GET", f"/v2/r/app/referrers/{image_digest}").json()[
        "manifests"]] == [mf.OCI_INDEX]
    client.request("DELETE", f"/v2/r/app/manifests/{_sha256(index)}", expect=(202,))
    assert client.request("GET", f"/v2/r/app/referrers/{image_digest}").json()["manifests"] == []


def test_a_subject_that_is_not_a_descriptor_is_manifest_invalid_and_nothing_is_stored(server, client):
    data, digest = _image_manifest(client, "r/app", b"sig", subject="sha256:" + "0" * 64)
    answer = _put_manifest(client, "r/app", digest, data, expect=(400,))
    assert answer.json()["errors"][0]["code"] == "MANIFEST_INVALID"
    assert not server.blobs.exists(digest)


def test_our_client_attaches_an_sbom_to_a_pushed_image_and_finds_it_again(server, tmp_path):
    store = ImageStore(tmp_path / "store")
    make_image(store, "app:v1", whiteout_image_layers("docker"))
    ref = f"{server.address}/demo/app:v1"
    store.tag("app:v1", ref)
    image_digest = push(store, ref, progress=Progress(quiet=True))
    sbom = json.dumps({"spdxVersion": "SPDX-2.3", "name": "app"}).encode()
    attached = attach(ref, SBOM_TYPE, sbom, annotations={"org.opencontainers.image.created": "2026-12-01"})
    found = referrers(ref, artifact_type=SBOM_TYPE)
    assert [d["digest"] for d in found] == [attached]
    assert found[0]["artifactType"] == SBOM_TYPE
    assert referrers(ref, artifact_type=SIGNATURE_TYPE) == []
    manifest = RegistryClient(server.address).request("GET", f"/v2/demo/app/manifests/{attached}").json()
    assert manifest["subject"]["digest"] == image_digest
    assert manifest["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"


# -- non-distributable layers ---------------------------------------------------------------------

def test_a_manifest_with_a_foreign_layer_is_stored_without_its_blob(server, client):
    _upload(client, "r/win", EMPTY, _sha256(EMPTY))
    foreign = {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
               "digest": _sha256(b"never uploaded"), "size": 14, "urls": ["https://example.invalid/layer"]}
    data = json.dumps({"schemaVersion": 2, "mediaType": mf.DOCKER_MANIFEST,
                       "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                  "digest": _sha256(EMPTY), "size": 2}, "layers": [foreign]}).encode()
    client.request("PUT", "/v2/r/win/manifests/v1", headers={"Content-Type": mf.DOCKER_MANIFEST}, body=data,
                   expect=(201,))
    assert client.request("GET", "/v2/r/win/manifests/v1").body == data
    assert not server.blobs.exists(foreign["digest"])
    # an ordinary layer still needs its blob
    ordinary = {**foreign, "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip"}
    data = json.dumps({"schemaVersion": 2, "mediaType": mf.DOCKER_MANIFEST,
                       "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                                  "digest": _sha256(EMPTY), "size": 2}, "layers": [ordinary]}).encode()
    answer = client.request("PUT", "/v2/r/win/manifests/v2", headers={"Content-Type": mf.DOCKER_MANIFEST},
                            body=data, expect=(400,))
    assert answer.json()["errors"][0]["code"] == "MANIFEST_BLOB_UNKNOWN"


# -- deletion and garbage collection --------------------------------------------------------------

def test_deleting_a_tag_keeps_the_manifest_deleting_a_digest_removes_it_and_its_tags(client):
    data, digest = _image_manifest(client, "r/app", b"layer")
    _put_manifest(client, "r/app", "v1", data)
    _put_manifest(client, "r/app", "v2", data)
    client.request("DELETE", "/v2/r/app/manifests/v1", expect=(202,))
    assert client.request("GET", "/v2/r/app/tags/list").json()["tags"] == ["v2"]
    assert client.request("GET", f"/v2/r/app/manifests/{digest}").body == data
    client.request("DELETE", f"/v2/r/app/manifests/{digest}", expect=(202,))
    assert client.request("GET", "/v2/r/app/tags/list").json()["tags"] == []
    assert client.request("GET", f"/v2/r/app/manifests/{digest}", expect=(404,)).json()["errors"][0]["code"] \
        == "MANIFEST_UNKNOWN"
    assert client.request("DELETE", "/v2/r/app/manifests/v9", expect=(404,)).json()["errors"][0]["code"] \
        == "MANIFEST_UNKNOWN"


def test_gc_removes_only_the_blobs_no_manifest_references(cli, server, client, tmp_path):
    kept, kept_digest = _image_manifest(client, "r/keep", b"kept layer")
    _put_manifest(client, "r/keep", "v1", kept)
    gone, gone_digest = _image_manifest(client, "r/gone", b"layer of a deleted image")
    _put_manifest(client, "r/gone", "v1", gone)
    client.request("DELETE", f"/v2/r/gone/manifests/{gone_digest}", expect=(202,))
    _upload(client, "r/gone", b"an orphan blob", _sha256(b"an orphan blob"))
    root = str(server.root)
    dry = cli("registry", "gc", "--root", root, "--dry-run")
    assert dry.code == 0, dry
    assert sorted(line.split()[-1] for line in dry.out.splitlines() if line.startswith("blob eligible")) == sorted(
        [gone_digest, _sha256(b"layer of a deleted image"), _sha256(b"an orphan blob")])
    assert server.blobs.exists(gone_digest)
    done = cli("registry", "gc", "--root", root)
    assert done.code == 0 and "3 eligible for deletion" in done.out, done
    for digest in (gone_digest, _sha256(b"layer of a deleted image"), _sha256(b"an orphan blob")):
        assert not server.blobs.exists(digest), digest
    for digest in (kept_digest, _sha256(b"kept layer"), _sha256(EMPTY)):   # EMPTY is shared: still referenced
        assert server.blobs.exists(digest), digest
    assert client.request("GET", "/v2/r/keep/manifests/v1").body == kept
    client.request("GET", f"/v2/r/gone/blobs/{_sha256(b'an orphan blob')}", expect=(404,))


# -- bad input: the spec's error code, nothing stored ----------------------------------------------

def test_a_manifest_over_4_mib_is_refused_and_not_stored(server, client):
    huge = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST, "annotations": {"x": "y" * (4 << 20)},
                       "config": {}, "layers": []}).encode()
    answer = _put_manifest(client, "r/big", "v1", huge, expect=(413,))
    assert answer.json()["errors"][0]["code"] == "SIZE_INVALID"
    assert client.request("GET", "/v2/r/big/tags/list", expect=(404,)).json()["errors"][0]["code"] == "NAME_UNKNOWN"
    assert not server.blobs.exists(_sha256(huge))


def test_an_upload_session_of_another_repository_is_unknown(server, client):
    start = client.request("POST", "/v2/r/mine/blobs/uploads/", expect=(202,))
    uuid = start.header("Location").rsplit("/", 1)[1]
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        answer = client.request(method, f"/v2/r/other/blobs/uploads/{uuid}?digest={_sha256(b'x')}", body=b"x",
                                expect=(404,))
        assert answer.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN", method
    assert not server.blobs.exists(_sha256(b"x"))
    client.request("GET", f"/v2/r/mine/blobs/uploads/{uuid}", expect=(204,))   # still the owner's


# -- Bearer tokens from our own token server -------------------------------------------------------

@pytest.fixture
def token_server(tmp_path):
    (tmp_path / "htpasswd").write_text(htpasswd_line("bob", "secret") + "\n")
    with RegistryServer(tmp_path / "tokreg", ("127.0.0.1", 0), htpasswd=tmp_path / "htpasswd",
                        token_auth=True) as srv:
        yield srv


def test_token_auth_challenges_with_the_scope_and_our_client_logs_in_through_the_token_server(
        token_server, tmp_path):
    status, headers, _ = _raw(token_server, "GET", "/v2/demo/app/manifests/v1")
    assert status == 401
    challenge = headers["WWW-Authenticate"]
    assert challenge == (f'Bearer realm="http://{token_server.address}/token",service="minidocker-registry",'
                         'scope="repository:demo/app:pull"')
    store = ImageStore(tmp_path / "store")
    make_image(store, "app:v1", whiteout_image_layers("docker"))
    ref = f"{token_server.address}/demo/app:v1"
    store.tag("app:v1", ref)
    with pytest.raises(Unauthorized, match="refused anonymous access"):
        push(store, ref, progress=Progress(quiet=True))
    with pytest.raises(Unauthorized, match="refused the credentials"):
        push(store, ref, progress=Progress(quiet=True), credentials=("bob", "wrong"))
    push(store, ref, progress=Progress(quiet=True), credentials=("bob", "secret"))
    image = pull(ImageStore(tmp_path / "dst"), ref, progress=Progress(quiet=True), credentials=("bob", "secret"))
    assert image.id == store.resolve("app:v1")


def _raw(server: RegistryServer, method: str, path: str, headers: dict[str, str] | None = None,
         body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request as sent, no challenge answered (RegistryClient would log in by itself)."""
    import http.client

    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        conn.close()


def _token(server: RegistryServer, *scopes: str) -> str:
    query = "&".join(f"scope={s}" for s in scopes)
    status, _, body = _raw(server, "GET", f"/token?service=minidocker-registry&{query}",
                           {"Authorization": _basic("bob", "secret")})
    assert status == 200, body
    return json.loads(body)["token"]


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_a_token_allows_only_its_scope(token_server):
    pull_only = {"Authorization": "Bearer " + _token(token_server, "repository:demo/app:pull")}
    assert _raw(token_server, "GET", "/v2/", pull_only)[0] == 200
    assert _raw(token_server, "GET", "/v2/demo/app/tags/list", pull_only)[0] == 404   # allowed, just empty
    status, headers, _ = _raw(token_server, "POST", "/v2/demo/app/blobs/uploads/", pull_only)
    assert status == 401
    assert 'error="insufficient_scope"' in headers["WWW-Authenticate"]
    assert 'scope="repository:demo/app:pull,push"' in headers["WWW-Authenticate"]
    assert _raw(token_server, "GET", "/v2/other/app/tags/list", pull_only)[0] == 401
    assert _raw(token_server, "GET", "/v2/demo/app/tags/list")[0] == 401   # no token at all


@pytest.mark.parametrize("forge", ["alg-none", "other-secret", "edited-claims", "garbage"])
def test_a_forged_token_is_refused(token_server, forge):
    import base64

    from minidocker.registry.token import TokenIssuer

    good = _token(token_server, "repository:demo/app:pull")
    header, claims, signature = good.split(".")
    everything = [{"type": "repository", "name": "secret/app", "actions": ["pull", "push", "delete"]}]
    if forge == "alg-none":
        token = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode() + f".{claims}."
    elif forge == "other-secret":
        token = TokenIssuer(service="minidocker-registry").issue("bob", everything)
    elif forge == "edited-claims":
        decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
        decoded["access"] = everything
        token = header + "." + base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode() + \
            "." + signature
    else:
        token = "not.a.token"
    status, _, body = _raw(token_server, "GET", "/v2/secret/app/tags/list", {"Authorization": f"Bearer {token}"})
    assert status == 401 and json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"


def test_a_mount_from_a_repository_the_token_does_not_cover_starts_an_upload_and_links_nothing(token_server):
    digest = _sha256(b"private bytes")
    both = {"Authorization": "Bearer " + _token(token_server, "repository:private/src:pull,push")}
    assert _raw(token_server, "POST", f"/v2/private/src/blobs/uploads/?digest={digest}", both, b"private bytes")[
        0] == 201
    mine = {"Authorization": "Bearer " + _token(token_server, "repository:mine/dst:pull,push")}
    status, headers, _ = _raw(token_server, "POST", f"/v2/mine/dst/blobs/uploads/?mount={digest}&from=private/src",
                              mine)
    assert status == 202 and headers["Location"].startswith("/v2/mine/dst/blobs/uploads/")
    assert not token_server.linked("mine/dst", digest)
    assert _raw(token_server, "GET", f"/v2/mine/dst/blobs/{digest}", mine)[0] == 404
    # with pull on the source too, the same request mounts
    covered = {"Authorization": "Bearer " + _token(token_server, "repository:mine/dst:pull,push",
                                                   "repository:private/src:pull")}
    assert _raw(token_server, "POST", f"/v2/mine/dst/blobs/uploads/?mount={digest}&from=private/src",
                covered)[0] == 201
    assert token_server.linked("mine/dst", digest)


@pytest.mark.peers
def test_skopeo_gets_a_token_from_our_token_server(token_server, tmp_path):
    import shutil
    import subprocess

    from imagekit import layer_tar, write_layout

    if shutil.which("skopeo") is None:
        missing_feature("skopeo is not installed (it is in the Makefile's APT_PACKAGES)")
    write_layout(tmp_path / "layout", [layer_tar([("file", "f", b"x")])], tag="v1")
    ref = f"{token_server.address}/tok/app:v1"
    copy = subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", "bob:secret",
                           f"oci:{tmp_path / 'layout'}:v1", f"docker://{ref}"], capture_output=True, text=True,
                          timeout=60)
    assert copy.returncode == 0, copy.stderr
    anonymous = subprocess.run(["skopeo", "inspect", "--tls-verify=false", f"docker://{ref}"], capture_output=True,
                               text=True, timeout=60)
    assert anonymous.returncode != 0 and "unauthorized" in anonymous.stderr.lower(), anonymous.stderr
    inspected = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--creds", "bob:secret",
                                f"docker://{ref}"], capture_output=True, text=True, timeout=60)
    assert inspected.returncode == 0, inspected.stderr


@pytest.mark.docker
def test_docker_logs_in_pushes_and_pulls_through_our_token_server(dockerd, token_server, tmp_path):
    import subprocess

    from minidocker.image.archive import save_archive

    store = ImageStore(tmp_path / "store")
    make_image(store, "tokapp:v1", whiteout_image_layers("docker"))
    with open(tmp_path / "app.tar", "wb") as out:
        save_archive(store, ["tokapp:v1"], out)
    ref = f"{token_server.address}/tok/app:v1"
    dockerd.docker("load", "-i", str(tmp_path / "app.tar"))
    dockerd.docker("tag", "tokapp:v1", ref)
    login = ("login", "-u", "bob", "--password-stdin", token_server.address)
    try:
        assert "Login Succeeded" in dockerd.docker(*login, input=b"secret")
        assert "digest: sha256:" in dockerd.docker("push", ref)
        dockerd.docker("rmi", ref)
        dockerd.docker("logout", token_server.address)
        refused = subprocess.run(["docker", "pull", ref], env=dockerd.env, capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0 and "unauthorized" in refused.stderr.lower(), refused.stderr
        assert "Login Succeeded" in dockerd.docker(*login, input=b"secret")
        dockerd.docker("pull", ref)
        assert dockerd.docker("image", "inspect", "-f", "{{.Id}}", ref).strip() == store.resolve("tokapp:v1")
    finally:
        dockerd.docker("logout", token_server.address, check=False)
        dockerd.docker("rmi", "-f", ref, "tokapp:v1", check=False)
