"""``docker commit`` through the daemon: a container's upper directory becomes an image's new layer.

::

    image = commit(service, "web", "myapp:v2", comment="fixed", author="me",
                   changes=["ENV MODE=prod", 'CMD ["serve"]'], config={})

The new image is the container's image plus one layer (the overlay upper directory as a
layer tar, chapter 05: ``ImageStore.add_upper_layer``). Its config is the *container's*
(the image's, with what ``docker create`` overrode: Cmd, Env, WorkingDir ...), then the
request's ``config`` on top, then the ``--change`` instructions (the builder's own code,
build/builder.py: ``apply_changes``). History gets one entry whose ``created_by`` is the
container's command, as dockerd writes it.
See: docker-container-commit(1), the Engine API reference "ImageCommit".
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["commit", "container_config"]

# The create fields that override the image's (Env and the maps merge, see container_config).
_OVERRIDES = ("User", "WorkingDir", "StopSignal", "Hostname", "Domainname", "Tty", "OpenStdin", "StdinOnce",
              "AttachStdin", "AttachStdout", "AttachStderr", "Healthcheck", "Shell")


def container_config(image_config: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The config a container runs with: its image's, overridden by its create body (as dockerd merges)."""
    config = dict(image_config)
    for key in _OVERRIDES:
        if body.get(key) not in (None, ""):
            config[key] = body[key]
    env = {item.split("=", 1)[0]: item for item in config.get("Env") or []}
    for item in body.get("Env") or []:
        env[item.split("=", 1)[0]] = item
    if env:
        config["Env"] = list(env.values())
    for key in ("Labels", "ExposedPorts", "Volumes"):
        merged = {**(config.get(key) or {}), **(body.get(key) or {})}
        config[key] = merged or None
    if body.get("Entrypoint") is not None:
        config["Entrypoint"] = body["Entrypoint"] or None
        config["Cmd"] = body.get("Cmd")
    elif body.get("Cmd"):
        config["Cmd"] = body["Cmd"]
    config["Image"] = body.get("Image") or config.get("Image", "")
    return config


def commit(service, ref: str, reference: str | None = None, comment: str = "", author: str = "",
           changes: list[str] | None = None, config: dict[str, Any] | None = None, pause: bool = True):
    """Make an image of the container ``ref``; returns it (``Image``). Like ``docker commit``.

    ``pause``: a running container is frozen while its upper directory is read (``docker
    commit --pause``, on by default), so that the layer is one moment of it.
    """
    import contextlib
    import json

    from minidocker.engine.archive import frozen

    from minidocker.build.builder import apply_changes
    from minidocker.errors import InvalidArgument, NotFound
    from minidocker.image import ImageStore
    from minidocker.image import manifest as mf
    from minidocker.image.reference import parse_reference

    if reference:
        try:
            reference = str(parse_reference(reference))
        except (ValueError, InvalidArgument):
            raise InvalidArgument(f"invalid reference format: {reference!r}") from None
    if config is not None and not isinstance(config, dict):
        raise InvalidArgument("invalid commit config: expected a JSON object")
    store = ImageStore(service.roots.images)
    container = service.get(ref)
    parent = store.load_image(container.image_id) if container.image_id else store.get(container.image)
    upper = container.directory(service.roots) / "upper"
    if not upper.is_dir():
        raise NotFound(f"container {container.id[:12]} has no filesystem left to commit")
    document = json.loads(store.blobs.read(parent.id))
    running = container_config(document.get("config") or {}, container.config or {})
    new_config = container_config(running, config or {}) if config else dict(running)
    if changes:
        new_config = apply_changes(new_config, changes)
    with store.lock("gc", shared=True):
        with frozen(service, container) if pause else contextlib.nullcontext():
            layer = store.add_upper_layer(upper)
        document["rootfs"]["diff_ids"].append(layer.diff_id)
        document["created"] = mf.now_rfc3339()
        document["container"] = container.id
        document["container_config"] = running
        document["config"] = new_config
        if author:
            document["author"] = author
        if comment:
            document["comment"] = comment
        entry = mf.history_entry(" ".join(container.command), comment=comment, created=document["created"])
        if author:
            entry["author"] = author
        document.setdefault("history", []).append(entry)
        layers = store.layers_of(parent.id) + [layer]
        return store.add_image(mf.canonical_json(document), layers, tags=[reference] if reference else [],
                               parent=parent.id)
