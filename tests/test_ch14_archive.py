"""Chapter 14: a container's files through minidockerd: ``docker cp`` both ways, ``diff``, ``export``, ``commit``.

The real docker CLI and docker-py against our daemon, on created, running and exited
containers; every attack a ``cp`` tar can carry (``..``, absolute names, a symlink then a
file through it, device nodes, hard links out, a container symlink to the host's ``/``)
is a test that checks the host afterwards; and the same commands against a private
dockerd, outputs normalised and compared, exit codes equal.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import stat
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest
from daemonkit import busybox_in_dockerd, daemon_fixture, ok

pytestmark = [pytest.mark.ch14, pytest.mark.root]


daemon = daemon_fixture("md-archive", busybox=True)


def _create(daemon, *args: str) -> str:
    return ok(daemon, "create", "--network", "none", *args, "busybox", "sh").strip()


def _tar(*entries) -> bytes:
    """A tar of (TarInfo, data or None) pairs, made by hand so that any name or type can be written."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes | None = None, link: str = "", **fields):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o755 if kind == tarfile.DIRTYPE else 0o644
    for key, value in fields.items():
        setattr(info, key, value)
    return info, (data if data is not None else (b"x\n" if kind == tarfile.REGTYPE else None))


def _put(daemon, cid: str, path: str, body: bytes, query: str = "") -> tuple[int, dict]:
    status, _, answer = daemon.request("PUT", f"/v1.41/containers/{cid}/archive?path={path}{query}", body=body,
                                       headers={"Content-Type": "application/x-tar"})
    return status, (json.loads(answer) if answer.strip() else {})


def _get(daemon, cid: str, path: str) -> tuple[int, dict, bytes]:
    return daemon.request("GET", f"/v1.41/containers/{cid}/archive?path={path}")


def _stat(daemon, cid: str, path: str) -> tuple[int, dict | None]:
    status, headers, _ = daemon.request("HEAD", f"/v1.41/containers/{cid}/archive?path={path}")
    header = headers.get("x-docker-container-path-stat")
    return status, json.loads(base64.b64decode(header)) if header else None


def _unmounted_soon(path, timeout: float = 5.0) -> bool:
    """The CLI may exit as soon as it has read the tar's end, a moment before the daemon unmounts."""
    import time

    deadline = time.monotonic() + timeout
    while path.is_mount():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return tar.getnames()


# -- docker cp ------------------------------------------------------------------------------------

def test_cp_into_and_out_of_a_created_container(daemon, tmp_path):
    cid = _create(daemon)
    (tmp_path / "f.txt").write_text("hello\n")
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "y").write_text("why\n")
    ok(daemon, "cp", str(tmp_path / "f.txt"), f"{cid}:/f.txt")
    ok(daemon, "cp", str(tmp_path / "tree"), f"{cid}:/tmp/")
    out = tmp_path / "out"
    out.mkdir()
    ok(daemon, "cp", f"{cid}:/f.txt", str(out / "back.txt"))
    ok(daemon, "cp", f"{cid}:/tmp/tree", str(out))
    assert (out / "back.txt").read_text() == "hello\n"
    assert (out / "tree" / "sub" / "y").read_text() == "why\n"
    assert _unmounted_soon(daemon.root.joinpath("lib", "containers", cid, "rootfs")), \
        "a created container's root is mounted only while cp runs"


def test_cp_into_a_running_container_is_seen_inside_it(daemon, tmp_path):
    cid = ok(daemon, "run", "-d", "--network", "none", "busybox", "sleep", "60").strip()
    try:
        (tmp_path / "note").write_text("from the host\n")
        ok(daemon, "cp", str(tmp_path / "note"), f"{cid}:/tmp/note")
        assert ok(daemon, "exec", cid, "cat", "/tmp/note") == "from the host\n"
        ok(daemon, "exec", cid, "sh", "-c", "echo made inside > /made")
        ok(daemon, "cp", f"{cid}:/made", str(tmp_path / "made"))
        assert (tmp_path / "made").read_text() == "made inside\n"
        assert daemon.root.joinpath("lib", "containers", cid, "rootfs").is_mount(), "cp left its root mounted"
    finally:
        daemon.docker("rm", "-f", cid)


def _frozen(cgroups_path: str) -> bool:
    from minidocker.cgroups import detect_mode, open_cgroup

    cgroup = open_cgroup(cgroups_path)
    if detect_mode() == "unified":
        with open(os.path.join(cgroup.dir, "cgroup.events")) as f:
            return "frozen 1" in f.read()
    with open(os.path.join(cgroup.dir("freezer"), "freezer.state")) as f:
        return f.read().strip() == "FROZEN"


def test_a_put_into_a_running_container_freezes_it_meanwhile(daemon):
    """Its processes cannot swap a directory for a symlink while we write (CVE-2018-15664's race)."""
    import time

    from daemonkit import UnixHTTPConnection

    cid = ok(daemon, "run", "-d", "--network", "none", "busybox", "sleep", "60").strip()
    try:
        spec = json.loads(daemon.root.joinpath("lib", "containers", cid, "config.json").read_text())
        path = spec["linux"]["cgroupsPath"]
        body = _tar(_entry("slow.txt", data=b"y" * 100_000))
        conn = UnixHTTPConnection(daemon.socket)
        conn.putrequest("PUT", f"/v1.41/containers/{cid}/archive?path=/tmp")
        conn.putheader("Content-Type", "application/x-tar")
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders()
        conn.send(body[:1024])
        deadline = time.monotonic() + 10
        while not _frozen(path):
            assert time.monotonic() < deadline, "the container was not frozen during the PUT"
            time.sleep(0.02)
        conn.send(body[1024:])
        assert conn.getresponse().status == 200
        conn.close()
        assert not _frozen(path), "thawed after the PUT"
        assert ok(daemon, "exec", cid, "wc", "-c", "/tmp/slow.txt").split()[0] == "100000"
    finally:
        daemon.docker("rm", "-f", cid)


def test_head_sends_dockers_path_stat_with_go_file_modes(daemon):
    cid = _create(daemon)
    status, found = _stat(daemon, cid, "/bin/sh")
    assert status == 200 and found["name"] == "sh" and found["linkTarget"] == "/bin/busybox"
    assert found["mode"] == (1 << 27) | 0o777, "a symlink: Go's ModeSymlink"
    assert _stat(daemon, cid, "/bin")[1]["mode"] == (1 << 31) | 0o755, "a directory: Go's ModeDir"
    assert _stat(daemon, cid, "/tmp")[1]["mode"] == (1 << 31) | (1 << 20) | 0o777, "sticky: Go's ModeSticky"
    assert _stat(daemon, cid, "/tmp/.")[1]["name"] == "."
    assert _stat(daemon, cid, "/")[1]["name"] == "/"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", found["mtime"]), found


def test_get_roots_the_tar_at_the_base_name_and_never_follows_the_last_symlink(daemon):
    cid = _create(daemon)
    status, headers, data = _get(daemon, cid, "/bin/sh")
    assert status == 200 and headers["content-type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        (only,) = tar.getmembers()
    assert only.name == "sh" and only.issym() and only.linkname == "/bin/busybox"
    assert "x-docker-container-path-stat" in headers, "the CLI reads the stat from the GET too"
    names = _names(_get(daemon, cid, "/etc")[2])
    assert names[0] == "etc" and "etc/passwd" in names
    assert _names(_get(daemon, cid, "/etc/.")[2])[:2] == [".", "./group"]


def test_missing_paths_and_files_used_as_directories_get_dockers_errors(daemon, tmp_path):
    cid = _create(daemon, "--name", "errs")
    status, _, body = _get(daemon, "errs", "/nonexist")
    assert status == 404 and json.loads(body) == {"message": "Could not find the file /nonexist in container errs"}
    assert _stat(daemon, "errs", "/nonexist") == (404, None)
    assert _put(daemon, cid, "/nonexist", _tar(_entry("f")))[0] == 404
    assert _put(daemon, cid, "/etc/passwd", _tar(_entry("f"))) == (400, {"message": "extraction point is not a directory"})
    assert _get(daemon, cid, "/etc/passwd/")[0] == 400
    assert _get(daemon, cid, "")[0] == 400
    assert _get(daemon, "no-such-box", "/")[0] == 404
    assert _put(daemon, cid, "/tmp", b"this is not a tar" * 40)[0] == 400
    (tmp_path / "f").write_text("x")
    result = daemon.docker("cp", str(tmp_path / "f"), f"{cid}:/nodir/x")
    assert result.returncode == 1 and b"Could not find the file /nodir in container" in result.stderr, result.stderr
    daemon.docker("rm", "-f", cid)


@pytest.mark.parametrize("path", ["%00", "a" * 5000, "/".join(["a"] * 3000), "%ff", "/bin/sh/.", "/etc/passwd/",
                                  "/proc/self/root/etc", "%2e%2e/%2e%2e/etc"])
def test_odd_paths_get_a_4xx_never_a_500(daemon, path):
    cid = _create(daemon)
    for method in ("HEAD", "GET", "PUT"):
        status, _, body = daemon.request(method, f"/v1.41/containers/{cid}/archive?path={path}",
                                         body=_tar(_entry("f")) if method == "PUT" else None)
        assert status in (200, 400, 404), (method, path[:40], status, body[:200])
    daemon.docker("rm", cid)


def test_a_name_that_is_not_utf8_goes_in_and_out_as_its_bytes(daemon):
    cid = _create(daemon)
    name = b"weird\xff\xfename".decode("utf-8", "surrogateescape")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT, errors="surrogateescape") as tar:
        info = tarfile.TarInfo(name)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    assert _put(daemon, cid, "/tmp", buffer.getvalue())[0] == 200
    with tarfile.open(fileobj=io.BytesIO(_get(daemon, cid, "/tmp")[2]), errors="surrogateescape") as tar:
        assert f"tmp/{name}" in tar.getnames()
    daemon.docker("rm", cid)


def test_no_overwrite_dir_non_dir_refuses_both_ways(daemon):
    cid = _create(daemon)
    query = "&noOverwriteDirNonDir=true"
    status, answer = _put(daemon, cid, "/", _tar(_entry("etc/passwd", tarfile.DIRTYPE)), query)
    assert status == 400 and answer["message"] == 'cannot overwrite non-directory "/etc/passwd" with directory "/"'
    status, answer = _put(daemon, cid, "/", _tar(_entry("etc")), query)
    assert status == 400 and answer["message"] == 'cannot overwrite directory "/etc" with non-directory "/"'
    assert _put(daemon, cid, "/", _tar(_entry("etc/passwd", tarfile.DIRTYPE)))[0] == 200, "without it, tar's rule"


def test_put_keeps_the_tars_owners_and_copy_uid_gid_takes_the_containers_user(daemon):
    cid = _create(daemon, "--user", "nobody")
    entry = _entry("owned", uid=1234, gid=5678)
    assert _put(daemon, cid, "/tmp", _tar(entry))[0] == 200
    assert _put(daemon, cid, "/tmp", _tar(_entry("mine", uid=1234, gid=5678)), "&copyUIDGID=true")[0] == 200
    with tarfile.open(fileobj=io.BytesIO(_get(daemon, cid, "/tmp")[2])) as tar:
        owners = {m.name: (m.uid, m.gid) for m in tar.getmembers()}
    assert owners["tmp/owned"] == (1234, 5678)
    assert owners["tmp/mine"] == (65534, 65534), "busybox's /etc/passwd: nobody is 65534:65534"


def test_cp_both_ways_on_an_exited_container_leaves_nothing_mounted(daemon, tmp_path):
    name = f"exited-{uuid.uuid4().hex[:6]}"
    ok(daemon, "run", "--name", name, "--network", "none", "busybox", "sh", "-c", "echo done > /result")
    (tmp_path / "input").write_text("later\n")
    ok(daemon, "cp", str(tmp_path / "input"), f"{name}:/input")
    ok(daemon, "cp", f"{name}:/result", str(tmp_path / "result"))
    assert (tmp_path / "result").read_text() == "done\n"
    cid = ok(daemon, "inspect", "-f", "{{.Id}}", name).strip()
    assert _unmounted_soon(daemon.root.joinpath("lib", "containers", cid, "rootfs"))
    ok(daemon, "start", "-a", name)   # the copied file is in its filesystem when it runs again
    assert ok(daemon, "diff", name).splitlines() == ["A /input", "A /result"]
    daemon.docker("rm", name)


def test_a_read_only_root_refuses_a_put(daemon):
    cid = _create(daemon, "--read-only")
    assert _put(daemon, cid, "/tmp", _tar(_entry("f"))) == (400, {"message": "container rootfs is marked read-only"})
    daemon.docker("rm", cid)


# -- attacks: nothing is written outside the container's root --------------------------------------

@pytest.fixture
def sentinel(tmp_path):
    """A host directory an attack aims at; the test checks it stays empty."""
    target = tmp_path / f"target-{uuid.uuid4().hex[:8]}"
    target.mkdir()
    yield target
    assert list(target.iterdir()) == [], "something was written on the host"


def _depth_up(path) -> str:
    return "../" * 12 + str(path).lstrip("/")


@pytest.mark.parametrize("attack", ["dotdot", "absolute", "symlink-then-write", "device", "hardlink-absolute",
                                    "hardlink-dotdot"])
def test_an_unsafe_tar_is_refused_and_writes_nothing_on_the_host(daemon, sentinel, attack):
    cid = _create(daemon)
    entries = {
        "dotdot": [_entry(_depth_up(sentinel / "escaped"))],
        "absolute": [_entry(str(sentinel / "escaped"))],
        "symlink-then-write": [_entry("out", tarfile.SYMTYPE, link=str(sentinel)), _entry("out/escaped")],
        "device": [_entry("null2", tarfile.CHRTYPE, devmajor=1, devminor=3)],
        "hardlink-absolute": [_entry("hl", tarfile.LNKTYPE, link="/etc/passwd")],
        "hardlink-dotdot": [_entry("hl", tarfile.LNKTYPE, link=_depth_up("/etc/passwd"))],
    }[attack]
    status, answer = _put(daemon, cid, "/", _tar(*entries))
    assert status == 400, answer
    assert "refusing" in answer["message"], answer
    changes = json.loads(daemon.request("GET", f"/v1.41/containers/{cid}/changes")[2]) or []
    assert not [c for c in changes if c["Path"] in ("/null2", "/hl")], changes
    daemon.docker("rm", "-f", cid)


def test_a_container_symlink_to_the_hosts_root_leads_to_the_containers_root(daemon, sentinel):
    cid = _create(daemon)
    links = _tar(_entry("hostroot", tarfile.SYMTYPE, link="/"), _entry("hosttarget", tarfile.SYMTYPE, link=str(sentinel)),
                 _entry("up", tarfile.SYMTYPE, link="../" * 12))
    assert _put(daemon, cid, "/", links)[0] == 200
    marker = f"planted-{uuid.uuid4().hex[:8]}"
    assert _put(daemon, cid, "/hostroot", _tar(_entry(marker)))[0] == 200
    assert not os.path.exists(f"/{marker}"), "written into the host's /"
    assert _stat(daemon, cid, f"/{marker}")[0] == 200, "it landed in the container's /"
    assert _put(daemon, cid, "/up", _tar(_entry(marker + "-up")))[0] == 200
    assert not os.path.exists(f"/{marker}-up") and _stat(daemon, cid, f"/{marker}-up")[0] == 200
    assert _put(daemon, cid, "/hosttarget", _tar(_entry("escaped")))[0] == 404, \
        "the host directory does not exist in the container"
    assert _put(daemon, cid, f"/up{sentinel}", _tar(_entry("escaped")))[0] == 404


def test_get_never_follows_a_container_symlink_onto_the_host(daemon, tmp_path):
    secret_dir = tmp_path / f"secret-{uuid.uuid4().hex[:8]}"
    secret_dir.mkdir()
    (secret_dir / "secret").write_text("host secret\n")
    cid = _create(daemon)
    links = _tar(_entry("link", tarfile.SYMTYPE, link=str(secret_dir)), _entry("up", tarfile.SYMTYPE, link="../" * 12),
                 _entry("file", tarfile.SYMTYPE, link=str(secret_dir / "secret")))
    assert _put(daemon, cid, "/", links)[0] == 200
    for path in ("/link/secret", "/link/", f"/up{secret_dir}/secret", f"/up{secret_dir}/."):
        status, _, body = _get(daemon, cid, path)
        assert status == 404 and b"host secret" not in body, (path, status, body[:200])
    status, _, body = _get(daemon, cid, "/file")
    assert status == 200 and b"host secret" not in body, "the symlink itself, not what it names"
    assert _stat(daemon, cid, "/file")[1]["linkTarget"] == str(secret_dir / "secret")


# -- diff, export, commit ---------------------------------------------------------------------------

def test_diff_lists_additions_changes_and_whiteouts_as_deletions(daemon):
    name = f"differ-{uuid.uuid4().hex[:6]}"
    ok(daemon, "run", "--name", name, "--network", "none", "busybox", "sh", "-c",
       "rm /bin/ls && echo hi > /etc/motd && mkdir /data")
    lines = ok(daemon, "diff", name).splitlines()
    assert lines == ["C /bin", "D /bin/ls", "A /data", "C /etc", "A /etc/motd"], lines
    kinds = {c["Path"]: c["Kind"] for c in json.loads(daemon.request("GET", f"/v1.41/containers/{name}/changes")[2])}
    assert kinds == {"/bin": 0, "/bin/ls": 2, "/data": 1, "/etc": 0, "/etc/motd": 1}
    assert daemon.request("GET", f"/v1.41/containers/{_create(daemon)}/changes")[2].strip() == b"null"
    daemon.docker("rm", name)


def test_export_is_the_flattened_filesystem(daemon, tmp_path):
    name = f"exporter-{uuid.uuid4().hex[:6]}"
    ok(daemon, "run", "--name", name, "--network", "none", "busybox", "sh", "-c",
       "rm /bin/ls && echo hi > /etc/motd")
    ok(daemon, "export", "-o", str(tmp_path / "fs.tar"), name)
    with tarfile.open(tmp_path / "fs.tar") as tar:
        names = set(tar.getnames())
        assert tar.extractfile("etc/motd").read() == b"hi\n"
    assert "bin/busybox" in names and "bin/ls" not in names, "the deletion is applied, no whiteout is shipped"
    assert not any(".wh." in n for n in names)
    cid = ok(daemon, "inspect", "-f", "{{.Id}}", name).strip()
    assert _unmounted_soon(daemon.root.joinpath("lib", "containers", cid, "rootfs")), "nothing left mounted"
    daemon.docker("rm", name)


def test_commit_with_changes_message_and_author_makes_a_runnable_image(daemon):
    name = f"committer-{uuid.uuid4().hex[:6]}"
    ok(daemon, "run", "--name", name, "--network", "none", "-e", "FOO=1", "busybox", "sh", "-c",
       "echo committed > /greeting")
    image_id = ok(daemon, "commit", "-c", "ENV BAR=2", "-c", 'CMD ["cat", "/greeting"]', "-m", "a message",
                  "-a", "me", name, "committed/box:v1").strip()
    assert image_id.startswith("sha256:")
    assert ok(daemon, "run", "--rm", "--network", "none", "committed/box:v1") == "committed\n"
    inspected = json.loads(ok(daemon, "image", "inspect", "committed/box:v1"))[0]
    assert inspected["Comment"] == "a message" and inspected["Author"] == "me"
    assert {"FOO=1", "BAR=2"} <= set(inspected["Config"]["Env"]), "the container's env, then the change"
    busybox = json.loads(ok(daemon, "image", "inspect", "busybox"))[0]
    assert inspected["RootFS"]["Layers"][:-1] == busybox["RootFS"]["Layers"]
    history = ok(daemon, "history", "--no-trunc", "committed/box:v1").splitlines()
    assert "sh -c echo committed > /greeting" in history[1], history[1]
    bad = daemon.docker("commit", "-c", "RUN true", name)
    assert bad.returncode == 1 and b"run is not a valid change command" in bad.stderr, bad.stderr
    ok(daemon, "rmi", "committed/box:v1")
    daemon.docker("rm", name)


# -- docker-py --------------------------------------------------------------------------------------

def test_docker_py_put_get_archive_diff_export_and_commit(daemon):
    import docker  # docker-py: requirements.txt

    client = docker.DockerClient(base_url=daemon.host)
    container = client.containers.create("busybox", "sh", network_mode="none")
    try:
        assert container.put_archive("/tmp", _tar(_entry("py.txt", data=b"from docker-py\n")))
        chunks, found = container.get_archive("/tmp/py.txt")
        assert found["name"] == "py.txt" and found["size"] == len(b"from docker-py\n")
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            assert tar.extractfile("py.txt").read() == b"from docker-py\n"
        assert {"Path": "/tmp/py.txt", "Kind": 1} in container.diff()
        exported = b"".join(container.export())
        assert "tmp/py.txt" in _names(exported)
        image = container.commit("pycommit/box", "v1", message="from py", changes=["LABEL made=by-py"])
        assert image.labels.get("made") == "by-py" and "pycommit/box:v1" in image.tags
        with pytest.raises(docker.errors.NotFound):
            container.get_archive("/nothing/here")
        client.images.remove("pycommit/box:v1")
    finally:
        container.remove(force=True)
        client.close()


# -- the same commands against dockerd --------------------------------------------------------------

_DOCKERD_INIT = {".dockerenv", "dev/console", "dev/pts", "dev/shm", "etc/hostname", "etc/hosts", "etc/mtab",
                 "etc/resolv.conf", "dev", "etc", "proc", "sys"}


def _normalise(text: str, cid: str) -> str:
    text = text.replace(cid, "<ID>").replace(cid[:12], "<ID>")
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "<TIME>", text)


@pytest.mark.docker
def test_cp_diff_export_and_commit_match_dockerd(daemon, dockerd, tmp_path):
    (tmp_path / "f.txt").write_text("hello\n")
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "tree" / "sub" / "y").write_text("why\n")

    def run(env: dict, *args: str) -> tuple[int, str, str]:
        done = subprocess.run(["docker", *args], env=env, capture_output=True, timeout=60, check=False)
        return done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")

    def session(env: dict) -> list:
        name = f"cmp-{uuid.uuid4().hex[:6]}"
        out_dir = tmp_path / name
        out_dir.mkdir()
        cid = run(env, "create", "--name", name, "--network", "none", "busybox", "sh")[1].strip()
        run(env, "create", "--name", f"{name}-ro", "--read-only", "--network", "none", "busybox", "sh")
        steps = [
            ("cp", str(tmp_path / "f.txt"), f"{name}:/f.txt"),
            ("cp", str(tmp_path / "tree"), f"{name}:/tmp/"),
            ("cp", str(tmp_path / "f.txt"), f"{name}:/etc/passwd/x"),
            ("cp", str(tmp_path / "f.txt"), f"{name}:/nodir/x"),
            ("cp", f"{name}:/nonexist", str(out_dir)),
            ("cp", f"{name}:/tmp/tree", str(out_dir)),
            ("cp", f"{name}:/bin/sh", str(out_dir / "sh")),
            ("cp", "-L", f"{name}:/bin/sh", str(out_dir / "sh-followed")),
            ("cp", str(tmp_path / "f.txt"), f"{name}-ro:/tmp/"),
            ("cp", f"{name}:/tmp/.", str(out_dir / "tmp-contents")),
            ("diff", name),
            ("commit", "-c", "RUN true", name),
            ("commit", "-c", "ENV X=1", name, f"{name}:v1"),
        ]
        results = []
        for step in steps:
            code, out, err = run(env, *step)
            out = "" if step[0] == "commit" and code == 0 else out   # the new image's ID
            lines = sorted(out.splitlines()) if step[0] == "diff" else out.splitlines()
            results.append((step[0], code, lines, _normalise(err.replace(name, "<NAME>"), cid).strip()))
        results.append(("tree", sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*")),
                        os.readlink(out_dir / "sh") if (out_dir / "sh").is_symlink() else None))
        exported = subprocess.run(["docker", "export", name], env=env, capture_output=True, timeout=60).stdout
        names = {n.rstrip("/") for n in _names(exported)} - _DOCKERD_INIT
        results.append(("export", sorted(n for n in names if not n.startswith(("bin/", "sbin/", "usr/")))))
        inspect = json.loads(run(env, "image", "inspect", f"{name}:v1")[1])[0]
        results.append(("commit", sorted(e for e in inspect["Config"]["Env"]), inspect["Config"]["Cmd"]))
        run(env, "rm", "-f", name, f"{name}-ro")
        run(env, "rmi", f"{name}:v1")
        return results

    with busybox_in_dockerd(dockerd, daemon.root / "lib" / "images", tmp_path):
        ours, theirs = session(daemon.env), session(dockerd.env)
    assert ours == theirs


# -- the resolution race, made deterministic -----------------------------------------------------------

def test_a_directory_swapped_for_a_symlink_after_resolution_is_caught(tmp_path, monkeypatch):
    """A running container can rename a directory and put a symlink to the host in its place between
    secure_join's answer and the open: the pinned directory's real path then is not under the root."""
    import minidocker.rootfs as rootfs
    from minidocker.engine.archive import archive_path, extract_to_dir, stat_path
    from minidocker.errors import InvalidArgument

    root, host = tmp_path / "root", tmp_path / "host"
    (root / "etc").mkdir(parents=True)
    host.mkdir()
    (host / "secret").write_text("host secret\n")
    resolve = rootfs.secure_join

    def racing(base, path):
        found = resolve(base, path)
        if not (root / "etc").is_symlink():   # the container's move, after the resolution
            os.rename(root / "etc", root / "etc.old")
            os.symlink(host, root / "etc")
        return found

    monkeypatch.setattr(rootfs, "secure_join", racing)
    with pytest.raises(InvalidArgument, match="leads out of the container's root"):
        stat_path(root, "/etc/secret")
    out = io.BytesIO()
    for attempt in (lambda: archive_path(root, "/etc/secret", out),
                    lambda: extract_to_dir(root, "/etc/x", io.BytesIO(_tar(_entry("planted"))))):
        os.unlink(root / "etc")
        os.rename(root / "etc.old", root / "etc")
        (root / "etc" / "x").mkdir(exist_ok=True)
        with pytest.raises(InvalidArgument, match="leads out of the container's root"):
            attempt()
    assert b"host secret" not in out.getvalue()
    assert sorted(p.name for p in host.iterdir()) == ["secret"], "nothing was written on the host"


# -- property: whatever the tar, nothing outside the destination, and only a clear error -----------------

_PARTS = ("a", "b", "..", ".", "", ".wh.a", "link", "abs", "secret")


def _tar_entries():
    from hypothesis import strategies as st

    name = st.lists(st.sampled_from(_PARTS), min_size=1, max_size=4).map("/".join)
    names = st.one_of(name, name.map(lambda n: "/" + n))
    kinds = st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
                             tarfile.FIFOTYPE])
    targets = st.one_of(names, st.just("OUTSIDE"), st.just("OUTSIDE/secret"), st.just(""))
    return st.lists(st.tuples(names, kinds, targets), min_size=1, max_size=8)


@pytest.mark.parametrize("mode", ["cp", "layer", "overlay-layer"])
def test_any_tar_writes_only_under_the_destination_or_fails_clearly(mode):
    """Random names (``..``, absolute, ``.wh.``), types (devices, hard and symbolic links) and link
    targets, extracted into a tree that has symlinks out of it already: what is outside is unchanged,
    and a refusal is an InvalidArgument (a 400), never another exception (a 500). The same for
    chapter 05's layers (flat, and overlay form: a pulled image), which share the extractor."""
    import shutil
    import tempfile

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from minidocker.errors import InvalidArgument
    from minidocker.storage.layer import apply_layer, extract_into

    extract = {"cp": extract_into, "layer": lambda tar, dest, **kw: apply_layer(tar, dest, overlay=False),
               "overlay-layer": lambda tar, dest, **kw: apply_layer(tar, dest, overlay=True)}[mode]

    mode_ = mode

    @settings(max_examples=int(os.environ.get("MD_PROPERTY_EXAMPLES", "300")), deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_tar_entries(), st.booleans())
    def check(entries, no_overwrite):
        base = tempfile.mkdtemp(prefix="mdcp-prop.")
        try:
            outside, dest = os.path.join(base, "outside"), os.path.join(base, "root", "dest")
            os.makedirs(outside)
            os.makedirs(dest)
            with open(os.path.join(outside, "secret"), "w") as f:
                f.write("host secret\n")
            with open(os.path.join(dest, "a"), "w") as f:
                f.write("existing\n")
            os.symlink("../../outside", os.path.join(dest, "link"))
            os.symlink(outside, os.path.join(dest, "abs"))
            os.utime(os.path.join(outside, "secret"), (1_000_000, 1_000_000))
            before = [(st.st_mode, st.st_uid, st.st_mtime) for st in map(os.lstat, (outside, f"{outside}/secret"))]
            tar = []
            for name, kind, target in entries:
                target = target.replace("OUTSIDE", outside)
                data = b"x\n" if kind == tarfile.REGTYPE else None
                tar.append(_entry(name, kind, data=data, link=target if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE)
                                  else "", devmajor=1, devminor=3))
            try:
                extract(io.BytesIO(_tar(*tar)), dest, no_overwrite_dir_non_dir=no_overwrite)
            except InvalidArgument:
                pass
            assert sorted(os.listdir(base)) == ["outside", "root"]
            assert os.listdir(outside) == ["secret"]
            assert open(os.path.join(outside, "secret")).read() == "host secret\n"
            after = [(st.st_mode, st.st_uid, st.st_mtime) for st in map(os.lstat, (outside, f"{outside}/secret"))]
            assert after == before, "the owner, mode or time of a host file changed"
            assert os.listdir(os.path.join(base, "root")) == ["dest"]
            for parent, dirs, files in os.walk(dest):
                for entry in dirs + files:
                    st_ = os.lstat(os.path.join(parent, entry))
                    whiteout = stat.S_ISCHR(st_.st_mode) and st_.st_rdev == 0 and mode_ == "overlay-layer"
                    assert whiteout or not (stat.S_ISCHR(st_.st_mode) or stat.S_ISBLK(st_.st_mode)), \
                        "a device node was made"
        finally:
            shutil.rmtree(base, ignore_errors=True)

    check()


def test_resolution_errors_leave_no_descriptor_open(tmp_path):
    from minidocker.engine.archive import stat_path
    from minidocker.errors import InvalidArgument, NotFound

    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(50):
        for path in ("/etc/passwd/", "/etc/passwd/x", "/nothing", "/etc/passwd/."):
            with pytest.raises((InvalidArgument, NotFound)):
                stat_path(tmp_path, path)
        assert stat_path(tmp_path, "/etc/passwd").size == 26
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.docker
def test_docker_py_get_archive_stats_match_dockerd(daemon, dockerd, tmp_path):
    """The same docker-py calls to both daemons: the stat header's fields (mtime aside; a directory's
    size is the filesystem's) and the error class for each path."""
    import docker  # docker-py: requirements.txt

    paths = ["/bin", "/bin/sh", "/bin/sh/", "/etc/passwd", "/etc/passwd/", "/tmp/.", "/", "/nonexist", "relative/x",
             "/etc/../etc/group"]

    def stats(host: str) -> list:
        client = docker.DockerClient(base_url=host)
        container = client.containers.create("busybox", "sh", network_mode="none")
        try:
            found = []
            for path in paths:
                try:
                    chunks, stat_ = container.get_archive(path)
                    members = [n for n in _names(b"".join(chunks)) if n != "/.dockerenv"]   # dockerd's init layer
                    dir_bit = bool(stat_["mode"] & (1 << 31))
                    found.append((path, stat_["name"], stat_["mode"], stat_["linkTarget"],
                                  None if dir_bit else stat_["size"], members[:3]))
                except docker.errors.APIError as err:
                    found.append((path, type(err).__name__))
            return found
        finally:
            container.remove(force=True)
            client.close()

    with busybox_in_dockerd(dockerd, daemon.root / "lib" / "images", tmp_path):
        ours, theirs = stats(daemon.host), stats(dockerd.host)
    assert ours == theirs


@pytest.mark.parametrize("change, expected", [
    ("ENV A=1 B=$A", {"Env": ["PATH=/bin", "A=1", "B="]}),   # one ENV line expands with what came before it
    ("CMD echo hi", {"Cmd": ["/bin/sh", "-c", "echo hi"]}),
    ('ENTRYPOINT ["top"]', {"Entrypoint": ["top"], "Cmd": None}),
    ("WORKDIR data", {"WorkingDir": "/data"}),
    ("EXPOSE 80/udp 443", {"ExposedPorts": {"80/udp": {}, "443/tcp": {}}}),
    ("LABEL a=b", {"Labels": {"a": "b"}}),
    ("USER 1000:1000", {"User": "1000:1000"}),
    ("VOLUME /data", {"Volumes": {"/data": {}}}),
    ("STOPSIGNAL SIGINT", {"StopSignal": "SIGINT"}),
    ("ONBUILD RUN make", {"OnBuild": ["RUN make"]}),
])
def test_commit_changes_are_the_builders_instructions(change, expected):
    from minidocker.build.builder import apply_changes

    config = apply_changes({"Cmd": ["sh"], "Env": ["PATH=/bin"]}, [change])
    assert {key: config.get(key) for key in expected} == expected


@pytest.mark.parametrize("change", ["RUN true", "FROM busybox", "ARG x", "COPY a b", "MAINTAINER me", "SHELL [\"sh\"]"])
def test_only_the_config_instructions_are_commit_changes(change):
    from minidocker.build.builder import apply_changes
    from minidocker.errors import InvalidArgument

    with pytest.raises(InvalidArgument, match=f"^{change.split()[0].lower()} is not a valid change command$"):
        apply_changes({}, [change])


def test_writes_into_one_container_go_one_at_a_time(daemon):
    """A second PUT waits for the first: it could otherwise swap a directory the first one checked for a
    symlink out of the root. The first is held open (its body half sent) while the second is sent."""
    import threading
    import time

    from daemonkit import UnixHTTPConnection

    cid = _create(daemon)
    first = _tar(_entry("one.txt"))
    conn = UnixHTTPConnection(daemon.socket)
    conn.putrequest("PUT", f"/v1.41/containers/{cid}/archive?path=/tmp")
    conn.putheader("Content-Length", str(len(first)))
    conn.endheaders()
    conn.send(first[:512])
    time.sleep(0.3)   # the first is inside the extraction, waiting for the rest of its tar
    done = []
    second = threading.Thread(target=lambda: done.append(_put(daemon, cid, "/tmp", _tar(_entry("two.txt")))[0]))
    second.start()
    second.join(1.0)
    assert not done, "the second write ran while the first was not finished"
    conn.send(first[512:])
    assert conn.getresponse().status == 200
    conn.close()
    second.join(10)
    assert done == [200]
    daemon.docker("rm", cid)


def test_a_directory_replaced_by_a_symlink_does_not_get_its_metadata_set_through_it(tmp_path):
    """``b/secret/`` (a directory, metadata set at the end), then ``b`` as a symlink to the host: the end
    must not chmod, chown or touch ``host/secret`` through it. Found by the property test above; it held
    for layers (apply_layer: a pulled or loaded image) as well as for docker cp."""
    from minidocker.storage.layer import apply_layer, extract_into

    for extract in (lambda tar, dest: extract_into(tar, dest),
                    lambda tar, dest: apply_layer(tar, dest, overlay=False),
                    lambda tar, dest: apply_layer(tar, dest, overlay=True)):   # a pulled image's layer
        host, dest = tmp_path / "host", tmp_path / "dest"
        host.mkdir()
        dest.mkdir()
        (host / "secret").write_text("host secret\n")
        os.chmod(host / "secret", 0o600)
        os.utime(host / "secret", (1_000_000, 1_000_000))
        tar = _tar(_entry("b/secret", tarfile.DIRTYPE, mode=0o777), _entry("b", tarfile.SYMTYPE, link=str(host)))
        extract(io.BytesIO(tar), dest)
        st = os.stat(host / "secret")
        assert (stat.S_IMODE(st.st_mode), st.st_mtime) == (0o600, 1_000_000), "changed through the symlink"
        import shutil

        shutil.rmtree(host)
        shutil.rmtree(dest)


@pytest.mark.parametrize("overlay", [True, False])
def test_a_layer_whose_root_entry_is_a_symlink_is_refused(tmp_path, overlay):
    """``./`` as a symlink to the host, then ``a/a``: the old extractor replaced the layer directory with
    the symlink and made ``host/a/a``. Found by the property test above (a pulled image could do it)."""
    from minidocker.storage.layer import UnsafeLayer, apply_layer

    host, dest = tmp_path / "host", tmp_path / "dest"
    host.mkdir()
    dest.mkdir()
    tar = _tar(_entry(".", tarfile.SYMTYPE, link=str(host)), _entry("a/a"))
    with pytest.raises(UnsafeLayer, match="the root of the tree can only be a directory"):
        apply_layer(io.BytesIO(tar), dest, overlay=overlay)
    assert list(host.iterdir()) == [] and dest.is_dir() and not dest.is_symlink()


@pytest.mark.parametrize("running", [False, True], ids=["stopped", "running"])
def test_cp_reaches_the_containers_volumes_and_a_read_only_one_stays_read_only(daemon, tmp_path, running):
    """dockerd mounts a container's volumes for a copy: a cp into /data lands in the volume, not under it."""
    volume, bound = f"cpvol-{uuid.uuid4().hex[:8]}", tmp_path / "bound"
    bound.mkdir()
    (bound / "seen").write_text("from the host\n")
    (tmp_path / "note").write_text("into the volume\n")
    command = ("sh", "-c", "sleep 1000") if running else ("true",)
    cid = ok(daemon, "create", "--network", "none", "-v", f"{volume}:/data", "-v", f"{bound}:/ro:ro",
             "busybox", *command).strip()
    try:
        ok(daemon, "start", *(() if running else ("-a",)), cid)   # a stopped one ran once: its mount points exist
        ok(daemon, "cp", str(tmp_path / "note"), f"{cid}:/data/note")
        data = Path(ok(daemon, "volume", "inspect", "-f", "{{.Mountpoint}}", volume).strip())
        assert (data / "note").read_text() == "into the volume\n"
        out = tmp_path / "out"
        ok(daemon, "cp", f"{cid}:/ro/seen", str(out))
        assert out.read_text() == "from the host\n"
        refused = daemon.docker("cp", str(tmp_path / "note"), f"{cid}:/ro/note")
        assert refused.returncode != 0 and not (bound / "note").exists(), refused
        if running:
            assert ok(daemon, "exec", cid, "cat", "/data/note") == "into the volume\n"
    finally:
        ok(daemon, "rm", "-f", cid)
        ok(daemon, "volume", "rm", volume)
