"""``minidocker run`` in direct mode: image + options -> OCI config -> runtime.

What ``docker run`` makes dockerd, containerd and runc do, in one process::

    image = store.get("busybox")                     the image's layers and config
    snapshot = Snapshot.create(layers, dir).mount()   a writable overlay of them
    spec = build_spec(image, options, rootfs)         how Docker merges image and flags
    runtime.run(spec)                                 cgroup, namespaces, pivot_root, exec
    snapshot.unmount() (and remove with --rm)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from minidocker.cgroups import CGROUP_PARENT
from minidocker.engine.container import Container
from minidocker.engine.resources import ResourceFlags, resources_from_flags
from minidocker.errors import Conflict, InvalidArgument
from minidocker.image import Image, ImageStore
from minidocker.paths import StateRoots, state_roots
from minidocker.runtime import ExitStatus, default_spec
from minidocker.runtime import run as runtime_run
from minidocker.runtime.init import INIT_ANNOTATION
from minidocker.runtime.spec import DEFAULT_PATH, validate, validate_hostname
from minidocker.storage import Snapshot

__all__ = ["RunOptions", "build_spec", "parse_env", "run_container"]


@dataclass
class RunOptions:
    """The flags of ``run`` that direct mode understands."""

    image: str
    command: list[str] = field(default_factory=list)
    name: str | None = None
    hostname: str | None = None
    env: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    entrypoint: str | None = None
    interactive: bool = False
    tty: bool = False
    init: bool = False
    remove: bool = False
    read_only: bool = False
    resources: ResourceFlags = field(default_factory=ResourceFlags)  # --memory, --cpus, --pids-limit ...


def parse_env(items: Sequence[str], host_env: Mapping[str, str] | None = None) -> list[str]:
    """``-e`` values as Docker reads them: ``K=V`` as is, a bare ``K`` from the host if set there."""
    host_env = os.environ if host_env is None else host_env
    result = []
    for item in items:
        key, sep, _ = item.partition("=")
        if not key or any(c.isspace() for c in key):
            raise InvalidArgument(f"invalid environment variable {item!r}", hint="use -e KEY=VALUE")
        if sep:
            result.append(item)
        elif key in host_env:
            result.append(f"{key}={host_env[key]}")
    return result


def merge_env(image_env: Sequence[str], overrides: Sequence[str]) -> list[str]:
    """Image ``Env`` first, each ``-e`` replacing a variable of the same name."""
    merged: dict[str, str] = {}
    for item in [*image_env, *overrides]:
        key, _, value = item.partition("=")
        merged[key] = value
    return [f"{k}={v}" for k, v in merged.items()]


def command_for(config: Mapping[str, Any], command: Sequence[str], entrypoint: str | None) -> list[str]:
    """Docker's rule: Entrypoint + (run's command, or the image's Cmd).

    ``--entrypoint`` replaces the image's Entrypoint and drops its Cmd.
    """
    if entrypoint is not None:
        return [entrypoint, *command] if entrypoint else list(command)
    image_entrypoint = list(config.get("Entrypoint") or [])
    return image_entrypoint + (list(command) if command else list(config.get("Cmd") or []))


def parse_user(user: str | None, config: Mapping[str, Any]) -> tuple[int, int]:
    """``-u UID[:GID]`` (numeric in direct mode), else the image's ``User``, else root."""
    value = user if user is not None else config.get("User") or "0"
    uid_text, _, gid_text = value.partition(":")
    try:
        uid = int(uid_text)
        gid = int(gid_text) if gid_text else (0 if uid == 0 else uid)
    except ValueError:
        raise InvalidArgument(f"invalid user {value!r}", hint="use a numeric UID[:GID]") from None
    if uid < 0 or gid < 0:
        raise InvalidArgument(f"invalid user {value!r}: ids must be >= 0")
    return uid, gid


def build_spec(image: Image, options: RunOptions, rootfs: str, container_id: str) -> dict[str, Any]:
    """The OCI config for this run: the image's config combined with the flags, as Docker does."""
    config = image.config
    args = command_for(config, options.command, options.entrypoint)
    if not args:
        raise InvalidArgument(f"no command specified for image {image.reference!r}",
                              hint="give one after the image name: minidocker run IMAGE COMMAND")
    hostname = validate_hostname(options.hostname) if options.hostname else container_id[:12]
    uid, gid = parse_user(options.user, config)
    env = merge_env(config.get("Env") or [DEFAULT_PATH], parse_env(options.env))
    if options.tty:
        env = merge_env(env, ["TERM=xterm"])
    spec = default_spec(
        rootfs, args, env=[*env, f"HOSTNAME={hostname}"], cwd=options.workdir or config.get("WorkingDir") or "/",
        hostname=hostname, terminal=options.tty, uid=uid, gid=gid, readonly_rootfs=options.read_only,
    )
    if options.init:
        spec["annotations"] = {INIT_ANNOTATION: "true"}
    # Every container gets a cgroup (for `stats` and a clean kill), like Docker's; limits only if asked.
    spec["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/{container_id}"
    resources = resources_from_flags(options.resources)
    if resources:
        spec["linux"]["resources"] = resources
    validate(spec)
    return spec


def run_container(options: RunOptions, roots: StateRoots | None = None) -> ExitStatus:
    """Run a container to completion in this process. Like ``docker run`` (without ``-d``)."""
    roots = roots or state_roots()
    image = ImageStore(roots.images).get(options.image)
    if options.name is not None:
        _check_name(roots, options.name)
    container = Container.new(options.name, image.reference, options.command)
    spec = build_spec(image, options, str(container.directory(roots) / "rootfs"), container.id)
    container.command = spec["process"]["args"]
    directory = container.directory(roots)
    snapshot = Snapshot.create(image.layers, directory)
    try:
        container.save(roots)
        _write_config(directory, spec)
        snapshot.mount()
        stdin = 0 if options.interactive else os.open(os.devnull, os.O_RDONLY)
        try:
            def started(pid: int) -> None:
                container.status, container.pid = "running", pid
                container.save(roots)

            status = runtime_run(spec, stdio=(stdin, 1, 2), on_started=started)
        finally:
            if stdin != 0:
                os.close(stdin)
        container.status, container.pid, container.exit_code = "exited", None, status.exit_code
        container.oom_killed = status.oom_killed or None
        container.save(roots)
        return status
    except BaseException:
        container.status, container.pid = "exited", None
        if directory.exists() and not options.remove:
            container.save(roots)
        raise
    finally:
        snapshot.unmount()
        if options.remove:
            snapshot.remove()


def _check_name(roots: StateRoots, name: str) -> None:
    from minidocker.engine.container import list_containers

    if any(c.name == name for c in list_containers(roots)):
        raise Conflict(f'the container name "/{name}" is already in use',
                       hint=f"remove it with 'minidocker rm {name}' or choose another --name")


def _write_config(directory: os.PathLike[str], spec: Mapping[str, Any]) -> None:
    from minidocker.atomic import write_json

    write_json(os.path.join(directory, "config.json"), spec)
