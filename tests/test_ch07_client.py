"""Chapter 07 unit tests: challenges, scopes, endpoints, credentials, platforms, progress."""

from __future__ import annotations

import base64
import io
import json

import pytest

from minidocker.errors import NotFound
from minidocker.registry.auth import Challenge, merge_scopes, parse_challenge, parse_scope
from minidocker.registry.client import endpoint_of, is_insecure
from minidocker.registry.credentials import erase_credentials, load_credentials, server_key, store_credentials
from minidocker.registry.progress import JsonProgress, Progress, human_size, progress_bar
from minidocker.registry.pull import parse_platform, select_manifest
from minidocker.registry.push import with_query

pytestmark = [pytest.mark.ch07]


def test_bearer_challenge_with_quoted_commas_and_colons():
    header = ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
              'scope="repository:library/busybox:pull,push"')
    assert parse_challenge(header) == Challenge("bearer", {
        "realm": "https://auth.docker.io/token", "service": "registry.docker.io",
        "scope": "repository:library/busybox:pull,push"})


def test_challenge_error_and_basic_and_escapes():
    assert parse_challenge('Basic realm="edu realm"') == Challenge("basic", {"realm": "edu realm"})
    c = parse_challenge('Bearer realm="r", error="insufficient_scope", scope="a:b:pull b:c:push"')
    assert c.params["error"] == "insufficient_scope" and c.scopes == ["a:b:pull", "b:c:push"]
    assert parse_challenge(r'Basic realm="say \"hi\""').params["realm"] == 'say "hi"'
    with pytest.raises(ValueError):
        parse_challenge('Bearer realm="unterminated')


def test_scopes_split_at_first_and_last_colon_and_merge_actions():
    assert parse_scope("repository:127.0.0.1:5000/app:pull,push") == ("repository", "127.0.0.1:5000/app",
                                                                      ["pull", "push"])
    assert merge_scopes(["repository:a:pull"], ["repository:a:push", "repository:b:pull"]) == [
        "repository:a:pull,push", "repository:b:pull"]


@pytest.mark.parametrize(("domain", "url"), [
    ("docker.io", "https://registry-1.docker.io"), ("127.0.0.1:5000", "http://127.0.0.1:5000"),
    ("localhost:5000", "http://localhost:5000"), ("registry.example:5000", "https://registry.example:5000")])
def test_endpoints_follow_dockers_insecure_rule(domain, url):
    assert endpoint_of(domain) == url


def test_insecure_registry_option_allows_plain_http():
    assert not is_insecure("10.0.0.5:5000")
    assert is_insecure("10.0.0.5:5000", ["10.0.0.5:5000"])
    assert endpoint_of("class.lan:5000", ["class.lan:5000"]) == "http://class.lan:5000"


def test_credentials_round_trip_in_dockers_format(tmp_path):
    env = {"HOME": str(tmp_path)}
    path = store_credentials("127.0.0.1:5000", "alice", "s3cret", env)
    data = json.loads(path.read_text())
    assert data == {"auths": {"127.0.0.1:5000": {"auth": base64.b64encode(b"alice:s3cret").decode()}}}
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_credentials("127.0.0.1:5000", env) == ("alice", "s3cret")
    assert erase_credentials("127.0.0.1:5000", env) and load_credentials("127.0.0.1:5000", env) is None
    assert server_key("docker.io") == "https://index.docker.io/v1/"


def test_dockers_own_config_is_read_when_ours_has_nothing(tmp_path):
    (tmp_path / ".docker").mkdir()
    (tmp_path / ".docker" / "config.json").write_text(json.dumps(
        {"auths": {"https://index.docker.io/v1/": {"auth": base64.b64encode(b"bob:pw").decode()}}}))
    assert load_credentials("docker.io", {"HOME": str(tmp_path)}) == ("bob", "pw")


INDEX = {"manifests": [
    {"digest": "sha256:" + "a" * 64, "platform": {"os": "linux", "architecture": "amd64"}},
    {"digest": "sha256:" + "b" * 64, "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
    {"digest": "sha256:" + "c" * 64, "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}}]}


def test_platform_selection_from_an_index():
    assert select_manifest(INDEX, ("linux", "arm64", "v8"))["digest"] == "sha256:" + "c" * 64
    assert select_manifest(INDEX, parse_platform("linux/arm/v7"))["digest"] == "sha256:" + "b" * 64
    with pytest.raises(NotFound, match="no matching manifest for linux/riscv64"):
        select_manifest(INDEX, ("linux", "riscv64", None))


def test_upload_location_keeps_its_state_when_the_digest_is_added():
    assert with_query("http://h/v2/a/blobs/uploads/u?_state=xyz", digest="sha256:1") == \
        "http://h/v2/a/blobs/uploads/u?_state=xyz&digest=sha256%3A1"


def test_dockers_sizes_and_bar():
    assert human_size(527) == "527B" and human_size(12_600_000) == "12.6MB"
    bar = progress_bar(25, 100)
    assert bar.startswith("[" + "=" * 11 + ">") and bar.endswith("25B/100B")


def test_progress_redraws_in_place_on_a_tty_and_logs_lines_otherwise():
    tty = io.StringIO()
    p = Progress(tty, tty=True)
    p.update("abc", "Downloading", 1, 10)
    p.update("abc", "Pull complete")
    assert "\x1b[1A" in tty.getvalue() and "Pull complete" in tty.getvalue()
    plain = io.StringIO()
    p = Progress(plain, tty=False)
    p.update("abc", "Downloading", 1, 10)
    p.update("abc", "Downloading", 5, 10)
    p.update("abc", "Pull complete")
    assert plain.getvalue() == "abc: Downloading\nabc: Pull complete\n"


def test_json_progress_speaks_the_engine_api_stream():
    out = []
    p = JsonProgress(out.append)
    p.line("Pulling from demo/app")
    p.update("abc", "Downloading", 5, 10)
    assert [json.loads(line) for line in out] == [
        {"status": "Pulling from demo/app"},
        {"status": "Downloading", "id": "abc", "progressDetail": {"current": 5, "total": 10},
         "progress": progress_bar(5, 10)}]
