"""Volume endpoints: what ``docker volume create|ls|inspect|rm|prune`` and docker-py's ``volumes`` send.

::

    GET    /volumes                VolumeList     filters: dangling, name, label, driver
                                          -> {"Volumes", "Warnings"}
    POST   /volumes/create         VolumeCreate   {"Name", "Driver", "DriverOpts", "Labels"} -> 201 the volume
    GET    /volumes/{name}         VolumeInspect
    DELETE /volumes/{name}         VolumeDelete   force -> 204; 409 while a container uses it
    POST   /volumes/prune          VolumePrune    filters: label, all -> {"VolumesDeleted", "SpaceReclaimed"}

The volumes are chapter 10's (engine/volumes.py): the same store, the same rules, so
a volume made through the API is the one ``minidocker run -v NAME:/dir`` mounts.
See: the Docker Engine API reference, "Volume".
"""

from __future__ import annotations

import os

from minidocker.api.filters import parse_filters
from minidocker.api.server import Reply, Request
from minidocker.engine.system import API_VERSION
from minidocker.errors import InvalidArgument

__all__ = ["ROUTES", "volume_create", "volume_delete", "volume_inspect", "volume_list", "volume_prune"]


def _as_flags(filters: dict[str, list[str]]) -> list[str]:
    """``{"label": ["a=b"]}`` -> ``["label=a=b"]``: the spelling of ``volume ls --filter``."""
    return [f"{key}={value}" for key, values in filters.items() for value in values]


def volume_list(request: Request) -> Reply:
    from minidocker.engine.volumes import list_volumes

    filters = parse_filters(request.arg("filters"), ("dangling", "name", "label", "driver"))
    volumes = list_volumes(request.daemon.roots, _as_flags(filters))
    return Reply.json({"Volumes": [v.inspect() for v in volumes], "Warnings": []})


def volume_create(request: Request) -> Reply:
    from minidocker.engine.volumes import create_volume

    body = request.json(required=False) or {}
    if not isinstance(body, dict):
        raise InvalidArgument("invalid JSON: a volume create body is an object")
    for key, kind in (("Name", str), ("Driver", str), ("DriverOpts", dict), ("Labels", dict)):
        if body.get(key) is not None and not isinstance(body[key], kind):
            raise InvalidArgument(f"invalid JSON: {key} must be a {'string' if kind is str else 'map'}")
    volume = create_volume(request.daemon.roots, body.get("Name") or None, body.get("Driver") or "local",
                           [f"{k}={v}" for k, v in (body.get("DriverOpts") or {}).items()],
                           [f"{k}={v}" for k, v in (body.get("Labels") or {}).items()])
    request.daemon.events.publish("volume", "create", volume.name, {"driver": volume.driver})
    return Reply.json(volume.inspect(), 201)


def volume_inspect(request: Request) -> Reply:
    from minidocker.engine.volumes import inspect_volumes

    return Reply.json(inspect_volumes(request.daemon.roots, [request.params["name"]])[0])


def volume_delete(request: Request) -> Reply:
    from minidocker.engine.volumes import remove_volume

    name = request.params["name"]
    if remove_volume(request.daemon.roots, name, force=request.flag("force")):
        request.daemon.events.publish("volume", "destroy", name, {"driver": "local"})
    return Reply.empty(204)


def volume_prune(request: Request) -> Reply:
    from minidocker.engine.volumes import prune_volumes, volume_store

    filters = parse_filters(request.arg("filters"), ("label", "label!", "all"))
    # Before API 1.42 (dockerd 20.10, our version) prune took every unused volume; since, only
    # anonymous ones unless all=true.
    version = tuple(int(x) for x in (request.api_version or API_VERSION).split("."))
    everything = version < (1, 42) or any(v.lower() in ("1", "true") for v in filters.pop("all", []))
    filters.pop("all", None)
    flags = [f"label!={v}" for v in filters.pop("label!", [])] + _as_flags(filters)
    store = volume_store(request.daemon.roots)
    sizes = {v.name: _size(v.mountpoint) for v in store.list()}
    removed = prune_volumes(request.daemon.roots, all_volumes=everything, filters=flags)
    for name in removed:
        request.daemon.events.publish("volume", "destroy", name, {"driver": "local"})
    return Reply.json({"VolumesDeleted": removed or None,
                       "SpaceReclaimed": sum(sizes.get(n, 0) for n in removed)})


def _size(directory: str) -> int:
    """Bytes of the regular files under ``directory`` (what prune reclaims)."""
    total = 0
    for parent, _, files in os.walk(directory):
        for name in files:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except OSError:
                continue
    return total


# dockerd's routes are /volumes/{name:.*}: a name with a slash is "no such volume", not "page not found".
_NAME = r"(?P<name>.+)"

ROUTES = [
    ("GET", "/volumes", volume_list),
    ("POST", "/volumes/create", volume_create),
    ("POST", "/volumes/prune", volume_prune),
    ("GET", f"/volumes/{_NAME}", volume_inspect),
    ("DELETE", f"/volumes/{_NAME}", volume_delete),
]
