"""Graded tests of chapter 07: a registry client by hand.

Run: ``make grade CH=07`` (all tasks) or ``make grade CH=07 TASK=7_3`` (one task).
``tasks`` is your exercises/ch07/tasks.py (the reference with ``--solutions``).
minidocker's own client and server are the oracles: task 7.4 talks to a real
``minidocker.registry.server.RegistryServer`` on 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from minidocker.registry.auth import parse_challenge

pytestmark = [pytest.mark.ch07]


# --- task 7.1: parse_challenge -------------------------------------------------------------------

CHALLENGES = [
    'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
    'scope="repository:library/busybox:pull"',
    'Basic realm="edu realm"',
    'Bearer realm="http://127.0.0.1:8081/token",service="edu-registry",scope="repository:busybox:pull,push",'
    'error="insufficient_scope"',
    'Bearer Realm="r", Service=svc, scope="a:b:pull c:d:push"',
    r'Basic realm="say \"hi\", twice"',
]


@pytest.mark.task7_1
@pytest.mark.parametrize("header", CHALLENGES)
def test_parse_challenge_agrees_with_minidocker(tasks, header):
    expected = parse_challenge(header)
    assert tasks.parse_challenge(header) == (expected.scheme, expected.params)


@pytest.mark.task7_1
@pytest.mark.parametrize("header", ['Bearer realm="unterminated', ""])
def test_parse_challenge_refuses_garbage(tasks, header):
    with pytest.raises(ValueError):
        tasks.parse_challenge(header)


# --- task 7.2: pick_platform ---------------------------------------------------------------------

INDEX = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
    {"digest": "sha256:" + "a" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
    {"digest": "sha256:" + "b" * 64, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
    {"digest": "sha256:" + "c" * 64, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
    {"digest": "sha256:" + "d" * 64, "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
]}


@pytest.mark.task7_2
@pytest.mark.parametrize(("platform", "letter"), [(("linux", "amd64", None), "a"), (("linux", "arm", "v7"), "b"),
                                                  (("linux", "arm64", None), "c"), (("linux", "arm64", "v8"), "c")])
def test_pick_platform_chooses_the_matching_entry(tasks, platform, letter):
    assert tasks.pick_platform(INDEX, *platform) == "sha256:" + letter * 64


@pytest.mark.task7_2
def test_pick_platform_names_what_the_index_offers(tasks):
    with pytest.raises(LookupError) as info:
        tasks.pick_platform(INDEX, "linux", "s390x")
    assert all(p in str(info.value) for p in ("linux/amd64", "linux/arm/v7", "linux/arm64/v8"))
    with pytest.raises(LookupError):
        tasks.pick_platform(INDEX, "linux", "arm", "v6")


# --- task 7.3: download_verified -----------------------------------------------------------------

def _chunks(data: bytes, fail_after: int | None = None):
    for i in range(0, len(data), 1000):
        if fail_after is not None and i >= fail_after:
            raise ConnectionResetError("the registry dropped the connection")
        yield data[i:i + 1000]


DATA = os.urandom(1) * 10 + bytes(range(256)) * 40


@pytest.mark.task7_3
def test_download_verified_keeps_a_right_blob(tasks, tmp_path):
    digest = "sha256:" + hashlib.sha256(DATA).hexdigest()
    assert tasks.download_verified(_chunks(DATA), digest, tmp_path / "blob") == len(DATA)
    assert (tmp_path / "blob").read_bytes() == DATA
    assert os.listdir(tmp_path) == ["blob"]


@pytest.mark.task7_3
def test_download_verified_refuses_wrong_bytes_and_leaves_nothing(tasks, tmp_path):
    with pytest.raises(ValueError):
        tasks.download_verified(_chunks(DATA), "sha256:" + "0" * 64, tmp_path / "blob")
    assert os.listdir(tmp_path) == []


@pytest.mark.task7_3
def test_download_verified_leaves_nothing_when_the_connection_drops(tasks, tmp_path):
    digest = "sha256:" + hashlib.sha256(DATA).hexdigest()
    with pytest.raises(ConnectionResetError):
        tasks.download_verified(_chunks(DATA, fail_after=5000), digest, tmp_path / "blob")
    assert os.listdir(tmp_path) == []


# --- task 7.4: fetch_manifest --------------------------------------------------------------------

@pytest.fixture
def registry(tmp_path):
    """Our registry server with one image pushed: (address, manifest bytes, digest)."""
    from minidocker.registry.client import RegistryClient
    from minidocker.registry.server import RegistryServer

    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": config_digest, "size": len(config)}, "layers": []},
                          indent=3).encode()
    with RegistryServer(tmp_path / "registry", ("127.0.0.1", 0)) as server:
        client = RegistryClient(server.address)
        client.request("POST", f"/v2/course/app/blobs/uploads/?digest={config_digest}", body=config, expect=(201,))
        client.request("PUT", "/v2/course/app/manifests/v1", body=manifest, expect=(201,),
                       headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        client.close()
        yield server, manifest, "sha256:" + hashlib.sha256(manifest).hexdigest()


@pytest.mark.task7_4
def test_fetch_manifest_by_tag_and_by_digest(tasks, registry):
    server, manifest, digest = registry
    for reference in ("v1", digest):
        document, media_type, found = tasks.fetch_manifest(server.address, "course/app", reference)
        assert document == json.loads(manifest)
        assert media_type == "application/vnd.oci.image.manifest.v1+json"
        assert found == digest


@pytest.mark.task7_4
def test_fetch_manifest_missing_is_a_lookup_error(tasks, registry):
    server, _, _ = registry
    with pytest.raises(LookupError):
        tasks.fetch_manifest(server.address, "course/app", "nope")


@pytest.mark.task7_4
def test_fetch_manifest_checks_the_digest_it_was_asked_for(tasks, registry):
    server, manifest, digest = registry
    tampered = manifest.replace(b'"amd64"', b'"arm64"') if b'"amd64"' in manifest else manifest + b" "
    server.blobs.path(digest).write_bytes(tampered)   # the registry's storage is corrupted
    with pytest.raises(ValueError):
        tasks.fetch_manifest(server.address, "course/app", digest)


# --- task 7.5: referrers_index -------------------------------------------------------------------

def _artifact(subject: str, artifact_type: str | None, config_type: str, note: str) -> bytes:
    document = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": config_type, "digest": "sha256:" + hashlib.sha256(b"{}").hexdigest(),
                           "size": 2}, "layers": [],
                "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject,
                            "size": 10}, "annotations": {"note": note}}
    if artifact_type:
        document["artifactType"] = artifact_type
    return json.dumps(document, indent=2).encode()   # pretty-printed: the digest is of these bytes


@pytest.fixture
def pushed_artifacts(tmp_path):
    """Three manifests pushed to our registry server: two name subject A, one subject B."""
    from minidocker.registry.client import RegistryClient
    from minidocker.registry.server import RegistryServer

    subject_a, subject_b = ("sha256:" + hashlib.sha256(x).hexdigest() for x in (b"image a", b"image b"))
    manifests = [
        _artifact(subject_a, "application/spdx+json", "application/vnd.oci.empty.v1+json", "sbom of a"),
        _artifact(subject_b, "application/spdx+json", "application/vnd.oci.empty.v1+json", "sbom of b"),
        _artifact(subject_a, None, "application/vnd.example.signature.v1", "signature of a"),  # type from config
    ]
    with RegistryServer(tmp_path / "registry", ("127.0.0.1", 0)) as server:
        client = RegistryClient(server.address)
        client.request("POST", f"/v2/course/app/blobs/uploads/?digest=sha256:{hashlib.sha256(b'{}').hexdigest()}",
                       body=b"{}", expect=(201,))
        for data in manifests:
            client.request("PUT", f"/v2/course/app/manifests/sha256:{hashlib.sha256(data).hexdigest()}", body=data,
                           expect=(201,), headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
        yield server, client, manifests, subject_a, subject_b
        client.close()


@pytest.mark.task7_5
@pytest.mark.parametrize("artifact_type", [None, "application/spdx+json", "application/vnd.example.signature.v1",
                                           "application/unknown"])
def test_referrers_index_agrees_with_our_registry(tasks, pushed_artifacts, artifact_type):
    server, client, manifests, subject_a, _ = pushed_artifacts
    query = f"?artifactType={artifact_type}" if artifact_type else ""
    expected = client.request("GET", f"/v2/course/app/referrers/{subject_a}{query.replace('+', '%2B')}").json()
    assert tasks.referrers_index(manifests, subject_a, artifact_type) == expected


@pytest.mark.task7_5
def test_referrers_index_of_a_subject_nothing_names_is_empty(tasks, pushed_artifacts):
    _, _, manifests, _, _ = pushed_artifacts
    unknown = "sha256:" + hashlib.sha256(b"nothing").hexdigest()
    assert tasks.referrers_index(manifests, unknown) == {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}
