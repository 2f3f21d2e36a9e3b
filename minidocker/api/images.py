"""Image endpoints: what ``docker images``, ``pull``, ``push``, ``tag``, ``rmi``, ``save``, ``load`` send.

::

    GET    /images/json                     ImageList        all, filters (reference, dangling, label, before,
                                                             since)
    GET    /images/{name}/json              ImageInspect     name may hold slashes and a registry port
    GET    /images/{name}/history           ImageHistory
    POST   /images/{name}/tag               ImageTag         repo, tag -> 201
    DELETE /images/{name}                   ImageDelete      force -> [{"Untagged"}, {"Deleted"}]
    POST   /images/create                   ImageCreate      fromImage+tag: a pull (a child process,
                                                             streamed); fromSrc=-: an import of the body
    POST   /images/{name}/push              ImagePush        tag, X-Registry-Auth; streamed
    GET    /images/{name}/get, /images/get  ImageGet(All)    a docker-archive tar, streamed
    POST   /images/load                     ImageLoad        a docker-archive or OCI tar body
    POST   /images/prune                    ImagePrune       layers no image uses
    POST   /auth                            SystemAuth       checked against the registry

A pull forks (one child per layer), so it runs in its own interpreter
(engine/jobs.py) and the handler relays its lines (api/jobs.py). Everything else is threads and
file I/O, done in the handler's thread. Streams are JSON lines, the last one an
``error`` line when something failed after the answer began (the CLI prints it, exit 1).
See: the Docker Engine API reference, "Image" and "System" (auth).
"""

from __future__ import annotations

import base64
import json
import os
import tempfile

from minidocker.api.filters import parse_filters
from minidocker.api.server import Reply, Request
from minidocker.errors import InvalidArgument

__all__ = ["ROUTES", "image_create", "image_delete", "image_get", "image_history", "image_inspect",
           "image_list", "image_load", "image_prune", "image_push", "image_tag", "system_auth"]

_NAME = r"(?P<name>.+?)"   # a reference: slashes, a registry's host:port, @sha256:...
_CHUNK = 1 << 20


def _store(request: Request):
    from minidocker.image import ImageStore

    return ImageStore(request.daemon.roots.images)


def _image_id(request: Request, name: str) -> str:
    """The image ID a path names; 404 "No such image: X" as dockerd words it (docker-py matches it)."""
    from minidocker.engine.images import find_image_id

    return find_image_id(_store(request), name)


# -- reading ----------------------------------------------------------------------------------------

def image_list(request: Request) -> Reply:
    """ImageList, from the engine's summaries (an unchanged store is answered from memory)."""
    filters = parse_filters(request.arg("filters"), ("reference", "dangling", "label", "before", "since"))
    return Reply.json(request.daemon.images.summaries(all_images=request.flag("all"), filters=filters,
                                                      digests=request.flag("digests")))


def image_inspect(request: Request) -> Reply:
    from minidocker.engine.images import image_details

    store = _store(request)
    return Reply.json(image_details(store, _image_id(request, request.params["name"])))


def image_history(request: Request) -> Reply:
    from minidocker.engine.images import unix_seconds
    from minidocker.image.inspect import image_history as history

    image_id = _image_id(request, request.params["name"])
    rows = history(_store(request), image_id)
    return Reply.json([{"Id": f"sha256:{row['image']}" if row["image"] != "<missing>" else "<missing>",
                        "Created": unix_seconds(row.get("created")), "CreatedBy": row.get("created_by", ""),
                        "Tags": None, "Size": row["size"], "Comment": row.get("comment", "")}
                       for row in rows] if rows else [])


# -- names ------------------------------------------------------------------------------------------

def image_tag(request: Request) -> Reply:
    repo, tag = request.arg("repo"), request.arg("tag") or "latest"
    if not repo:
        raise InvalidArgument("repository name must have at least one component")
    store = _store(request)
    image_id = _image_id(request, request.params["name"])
    target = f"{repo}:{tag}" if "@" not in repo else repo
    store.tag(image_id, target)
    request.daemon.events.publish("image", "tag", image_id, {"name": target})
    return Reply.empty(201)


def image_delete(request: Request) -> Reply:
    from minidocker.engine.images import remove_image

    from minidocker.engine.images import find_image_id

    name, store = request.params["name"], _store(request)
    # 404 in Docker's words before anything is touched
    image_id = find_image_id(store, name, make_default=False)
    images = store.image_ids()   # a "Deleted" line names an image (an event) or a layer (none)
    lines = remove_image(name, force=request.flag("force"), roots=request.daemon.roots)
    answer = []
    for line in lines:
        kind, _, value = line.partition(": ")
        answer.append({"Untagged" if kind == "Untagged" else "Deleted": value})
        # As dockerd 20.10 (daemon/images/image_delete.go): an "untag" per name, its actor and name
        # the image's ID, not the name; a "delete" per image removed (parents too), none per layer.
        if kind == "Untagged":
            request.daemon.events.publish("image", "untag", image_id, {"name": image_id})
        elif value in images:
            request.daemon.events.publish("image", "delete", value, {"name": value})
    return Reply.json(answer)


def image_prune(request: Request) -> Reply:
    before = {image.id for image in _store(request).list()}
    deleted = _store(request).gc()
    gone = before - {image.id for image in _store(request).list()}
    return Reply.json({"ImagesDeleted": [{"Deleted": i} for i in sorted(gone)] or None,
                       "SpaceReclaimed": 0, "LayersDeleted": deleted})


# -- pull, push, import -----------------------------------------------------------------------------

def image_create(request: Request) -> Reply | None:
    if request.arg("fromSrc") is not None:
        return _import(request)
    name = request.arg("fromImage")
    if not name:
        raise InvalidArgument("fromImage or fromSrc is required")
    tag = request.arg("tag")
    reference = name if not tag or "@" in name else (f"{name}@{tag}" if tag.startswith("sha256:") else
                                                     f"{name}:{tag}")
    from minidocker.api.jobs import relay_job

    def on_line(message: dict) -> None:
        if message.get("status", "").startswith("Status: "):
            request.daemon.events.publish("image", "pull", reference, {"name": reference})

    relay_job(request, "pull", [reference], {"auth": _registry_auth(request),
                                            "platform": request.arg("platform"),
                                            "insecure_registries": request.daemon.config.insecure_registries},
              on_line=on_line)
    return None


def image_push(request: Request) -> None:
    from minidocker.image.reference import parse_reference
    from minidocker.registry.progress import JsonProgress
    from minidocker.registry.push import push

    name, tag = request.params["name"], request.arg("tag")
    reference = f"{name}:{tag}" if tag else str(parse_reference(name))
    from minidocker.engine.images import with_default_image

    store = with_default_image(_store(request), [reference])
    store.resolve(reference)   # 404 before the stream: "No such image"
    auth = _registry_auth(request)
    has_both = auth.get("username") and auth.get("password")
    credentials = (auth["username"], auth["password"]) if has_both else None
    stream = request.stream()
    progress = JsonProgress(lambda line: stream.write(line.encode()))
    try:
        digest = push(store, reference, progress=progress, credentials=credentials,
                      insecure_registries=request.daemon.config.insecure_registries)
        size = len(store.manifest_of(store.resolve(reference))[0])
        ref = parse_reference(reference)
        aux = {"Tag": ref.tag, "Digest": digest, "Size": size}
        stream.write(json.dumps({"progressDetail": {}, "aux": aux})
                     .encode() + b"\n")
        request.daemon.events.publish("image", "push", reference, {"name": reference})
    except Exception as err:  # noqa: BLE001 - after the answer began, an error is a stream line
        stream.write(json.dumps({"errorDetail": {"message": str(err)}, "error": str(err)}).encode() + b"\n")
    stream.close()


def _import(request: Request) -> None:
    from minidocker.image.imports import import_tarball

    source = request.arg("fromSrc")
    if source != "-":
        raise InvalidArgument(f"importing from {source!r} is not supported: "
                              "send the tar as the body (fromSrc=-)")
    repo, tag = request.arg("repo"), request.arg("tag")
    reference = f"{repo}:{tag}" if repo and tag else repo
    with _spooled(request) as path:
        image = import_tarball(_store(request), path, reference, message=request.arg("message") or "")
    request.daemon.events.publish("image", "import", image.id, {"name": reference or image.id})
    stream = request.stream()
    stream.write(json.dumps({"status": image.id}).encode() + b"\n")
    stream.close()


# -- save, load ------------------------------------------------------------------------------------

def image_get(request: Request) -> None:
    from minidocker.image.archive import save_archive

    names = [request.params["name"]] if "name" in request.params else request.query.get("names", [])
    if not names:
        raise InvalidArgument("no image names given")
    store = _store(request)
    for name in names:
        _image_id(request, name)
    stream = request.stream(content_type="application/x-tar")
    out = _ChunkFile(stream)
    save_archive(store, names, out)
    out.flush()
    stream.close()


def image_load(request: Request) -> None:
    from minidocker.image.archive import load_archive

    with _spooled(request) as path:
        lines = load_archive(_store(request), path)
    stream = request.stream()
    for line in lines:
        stream.write(json.dumps({"stream": line + "\n"}).encode() + b"\n")
        request.daemon.events.publish("image", "load", line.rpartition(" ")[2], {})
    stream.close()


class _ChunkFile:
    """A write-only file over a chunked reply, buffering to 1 MiB chunks."""

    def __init__(self, stream) -> None:
        self.stream, self.buffer = stream, bytearray()

    def write(self, data: bytes) -> int:
        self.buffer += data
        if len(self.buffer) >= _CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buffer:
            self.stream.write(bytes(self.buffer))
            self.buffer.clear()

    def tell(self) -> int:
        raise OSError("not seekable")


class _spooled:
    """The request body in a temporary file under the daemon's run root (a context manager)."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.path = None

    def __enter__(self) -> str:
        directory = self.request.daemon.roots.run / "uploads"
        directory.mkdir(parents=True, exist_ok=True)
        fd, self.path = tempfile.mkstemp(dir=directory, suffix=".tar")
        with os.fdopen(fd, "wb") as out:
            while chunk := self.request.body.read(_CHUNK):
                out.write(chunk)
        return self.path

    def __exit__(self, *exc: object) -> None:
        os.unlink(self.path)


# -- auth -------------------------------------------------------------------------------------------

def system_auth(request: Request) -> Reply:
    """``docker login``: the credentials are checked against the registry; the CLI keeps them."""
    from minidocker.registry.credentials import check_login

    body = request.json()
    if not isinstance(body, dict) or not body.get("username"):
        raise InvalidArgument("username is required")
    server = body.get("serveraddress") or "docker.io"
    check_login(server, body["username"], body.get("password") or "",
                tuple(request.daemon.config.insecure_registries))
    return Reply.json({"IdentityToken": "", "Status": "Login Succeeded"})


def _registry_auth(request: Request) -> dict:
    """X-Registry-Auth: base64url of ``{"username", "password", "serveraddress"}`` ("e30=" is ``{}``)."""
    header = request.headers.get("x-registry-auth", "")
    if not header:
        return {}
    try:
        document = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except ValueError:
        raise InvalidArgument("invalid X-Registry-Auth header: not base64 JSON") from None
    return document if isinstance(document, dict) else {}


ROUTES = [
    ("GET", "/images/json", image_list),
    ("POST", "/images/create", image_create),
    ("POST", "/images/load", image_load),
    ("POST", "/images/prune", image_prune),
    ("GET", "/images/get", image_get),
    ("GET", f"/images/{_NAME}/json", image_inspect),
    ("GET", f"/images/{_NAME}/history", image_history),
    ("POST", f"/images/{_NAME}/tag", image_tag),
    ("POST", f"/images/{_NAME}/push", image_push),
    ("GET", f"/images/{_NAME}/get", image_get),
    ("DELETE", f"/images/{_NAME}", image_delete),
    ("POST", "/auth", system_auth),
]
