"""A container's files: ``docker cp``, ``diff``, ``export``, ``commit``. Handlers named after operation ids.

::

    HEAD /containers/{id}/archive?path=P     ContainerArchiveInfo   200 + X-Docker-Container-Path-Stat; 404
    GET  /containers/{id}/archive?path=P     ContainerArchive       application/x-tar rooted at P's base name
    PUT  /containers/{id}/archive?path=D     PutContainerArchive    200; the tar body unpacked into
                                                                    directory D
         &noOverwriteDirNonDir=1&copyUIDGID=1
    GET  /containers/{id}/changes            ContainerChanges       [{"Path","Kind"}] (0 changed, 1 added,
                                                                    2 deleted)
    GET  /containers/{id}/export             ContainerExport        the whole filesystem as a tar
    POST /commit?container=C&repo=R&tag=T    ImageCommit            201 {"Id"}; comment, author, changes=...

The path stat header is base64 of ``{"name","size","mode","mtime","linkTarget"}``, ``mode``
in Go's FileMode bits: the docker CLI decides from it whether ``cp`` goes into a
directory or onto a file. The engine does the work (engine/archive.py, engine/commit.py);
running, created and stopped containers alike.
See: the Docker Engine API reference, "Container" and "Image".
"""

from __future__ import annotations

import base64
import json

from minidocker.api.server import Reply, Request

__all__ = ["ROUTES"]

_STAT_HEADER = "X-Docker-Container-Path-Stat"


def _service(request: Request):
    return request.daemon.containers


def _path(request: Request) -> str:
    from minidocker.errors import InvalidArgument

    path = request.arg("path")
    if not path:
        raise InvalidArgument("bad parameter: path cannot be empty")
    return path


def _stat_header(found) -> tuple[tuple[str, str], ...]:
    text = json.dumps(found.docker_json(), separators=(",", ":"))
    return ((_STAT_HEADER, base64.b64encode(text.encode()).decode()),)


def container_archive_info(request: Request) -> Reply:
    from minidocker.engine.archive import container_root, stat_path

    path, ref = _path(request), request.params["id"]
    with container_root(_service(request), ref) as (_container, root):
        found = stat_path(root, path, ref)
    return Reply(200, b"", None, _stat_header(found))


def container_archive(request: Request) -> None:
    from minidocker.api.images import _ChunkFile
    from minidocker.engine.archive import archive_path, container_root, stat_path

    path, ref = _path(request), request.params["id"]
    service = _service(request)
    with container_root(service, ref) as (container, root):
        found = stat_path(root, path, ref)   # 404 and 400 before the answer begins
        out = _ChunkFile(request.stream(200, "application/x-tar", _stat_header(found)))
        archive_path(root, path, out, ref)
        out.flush()
    # before the last chunk: the CLI may hang up once it has the tar
    service._event(container, "archive-path")
    out.stream.close()


def put_container_archive(request: Request) -> Reply:
    from minidocker.engine.archive import container_owner, container_root, extract_to_dir

    path, ref = _path(request), request.params["id"]
    service = _service(request)
    with container_root(service, ref, freeze=True) as (container, root):
        owner = None
        user = (container.config or {}).get("User") or _image_user(service, container)
        # without a User, dockerd keeps the tar's owners (as without -a)
        if request.flag("copyUIDGID") and user:
            owner = container_owner(root, user)
        extract_to_dir(root, path, request.body, ref,
                       no_overwrite_dir_non_dir=request.flag("noOverwriteDirNonDir"), owner=owner,
                       read_only=bool((container.host_config or {}).get("ReadonlyRootfs")))
    service._event(container, "extract-to-dir")
    return Reply(200, b"", None)


def _image_user(service, container) -> str:
    from minidocker.image import ImageStore

    try:
        store = ImageStore(service.roots.images)
        image = store.load_image(container.image_id) if container.image_id else store.get(container.image)
        return (image.document.get("config") or {}).get("User") or ""
    except Exception:  # noqa: BLE001 - an image removed meanwhile: root, as without a User
        return ""


def container_changes(request: Request) -> Reply:
    from minidocker.engine.archive import container_changes as changes

    found = changes(_service(request), request.params["id"])
    return Reply.json([{"Path": c.path, "Kind": c.kind} for c in found] or None)


def container_export(request: Request) -> None:
    from minidocker.api.images import _ChunkFile
    from minidocker.engine.archive import container_root, export_root

    service = _service(request)
    with container_root(service, request.params["id"]) as (container, root):
        out = _ChunkFile(request.stream(200, "application/x-tar"))
        export_root(root, out)
        out.flush()
    service._event(container, "export")
    out.stream.close()


def image_commit(request: Request) -> Reply:
    from minidocker.engine.commit import commit
    from minidocker.errors import InvalidArgument

    ref = request.arg("container")
    if not ref:
        raise InvalidArgument("bad parameter: container cannot be empty")
    repo, tag = request.arg("repo") or "", request.arg("tag") or ""
    reference = f"{repo}:{tag}" if repo and tag else repo or None
    config = request.json(required=False)
    service = _service(request)
    container = service.get(ref)
    image = commit(service, container.id, reference, comment=request.arg("comment") or "",
                   author=request.arg("author") or "", changes=request.query.get("changes") or [],
                   config=config or None, pause=request.flag("pause", True))
    shown = ""
    if reference:
        from minidocker.image.reference import parse_reference

        shown = parse_reference(reference).familiar   # "evimg:v1", as dockerd names it in events
        labels = (image.document.get("config") or {}).get("Labels") or {}
        request.daemon.events.publish("image", "tag", image.id, {**labels, "name": shown})
    service._event(container, "commit", {"comment": request.arg("comment") or "", "imageID": image.id,
                                         "imageRef": shown})
    return Reply.json({"Id": image.id}, 201)


ROUTES = [
    ("HEAD", "/containers/{id}/archive", container_archive_info),
    ("GET", "/containers/{id}/archive", container_archive),
    ("PUT", "/containers/{id}/archive", put_container_archive),
    ("GET", "/containers/{id}/changes", container_changes),
    ("GET", "/containers/{id}/export", container_export),
    ("POST", "/commit", image_commit),
]
