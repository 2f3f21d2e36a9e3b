"""``minidocker run`` in direct mode: image + options -> OCI config -> runtime.

What ``docker run`` makes dockerd, containerd and runc do, in one process::

    image = store.get("busybox")                     the image's layers and config
    snapshot = Snapshot.create(layers, dir).mount()   a writable overlay of them
    spec = build_spec(image, options, rootfs)         how Docker merges image and flags
    runtime.run(spec)                                 namespaces, pivot_root, exec
    snapshot.unmount() (and remove with --rm)
"""

from __future__ import annotations

import os

from minidocker.engine.container import Container
from minidocker.errors import Conflict, InvalidArgument
from minidocker.image import Image, ImageStore
from minidocker.image.runconfig import RunArgs, apply_image_config
from minidocker.paths import StateRoots, state_roots
from minidocker.runtime import ExitStatus, default_spec
from minidocker.runtime import run as runtime_run
from minidocker.runtime.init import INIT_ANNOTATION
from minidocker.runtime.spec import validate, validate_hostname
from minidocker.storage import Snapshot

__all__ = ["RunOptions", "build_spec", "parse_env", "run_container"]

TYPE_CHECKING = False  # typing costs 3 ms of start-up; annotations are strings here anyway
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any


class RunOptions:
    """The flags of ``run`` that direct mode understands.

    A plain class rather than a dataclass: importing dataclasses costs 7 ms, on every
    ``minidocker run`` (see bench/README.md).
    """

    FIELDS = ("image", "command", "name", "hostname", "env", "workdir", "user", "entrypoint",
              "interactive", "tty", "init", "remove", "read_only")

    def __init__(self, image: str, command: list[str] | None = None, name: str | None = None,
                 hostname: str | None = None, env: list[str] | None = None, workdir: str | None = None,
                 user: str | None = None, entrypoint: str | None = None, interactive: bool = False,
                 tty: bool = False, init: bool = False, remove: bool = False,
                 read_only: bool = False) -> None:
        self.image = image
        self.command = [] if command is None else command
        self.name = name
        self.hostname = hostname
        self.env = [] if env is None else env
        self.workdir = workdir
        self.user = user
        self.entrypoint = entrypoint
        self.interactive = interactive
        self.tty = tty
        self.init = init
        self.remove = remove
        self.read_only = read_only

    def __repr__(self) -> str:
        return f"RunOptions({', '.join(f'{k}={getattr(self, k)!r}' for k in self.FIELDS)})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable, like a dataclass with eq


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


def build_spec(image: Image, options: RunOptions, rootfs: str, container_id: str) -> dict[str, Any]:
    """The OCI config for this run: the image's config combined with the flags, as Docker does.

    The combining rules live with the image (:mod:`minidocker.image.runconfig`); the engine
    adds what is its own: hostname, ``--init``, ``--read-only``.
    """
    hostname = validate_hostname(options.hostname) if options.hostname else container_id[:12]
    spec = default_spec(rootfs, ["true"], hostname=hostname, readonly_rootfs=options.read_only)
    run = RunArgs(command=list(options.command), entrypoint=options.entrypoint, env=parse_env(options.env),
                  workdir=options.workdir, user=options.user, tty=options.tty)
    apply_image_config(spec, image.config, image.layers, run, hostname=hostname)
    if options.init:
        spec.setdefault("annotations", {})[INIT_ANNOTATION] = "true"
    validate(spec)
    return spec


def run_container(options: RunOptions, roots: StateRoots | None = None) -> ExitStatus:
    """Run a container to completion in this process. Like ``docker run`` (without ``-d``)."""
    roots = roots or state_roots()
    image = ImageStore(roots.images).get(options.image)
    if options.name is not None:
        _check_name(roots, options.name)
    container = Container.new(options.name, image.reference, options.command, image_id=image.id)
    spec = build_spec(image, options, str(container.directory(roots) / "rootfs"), container.id)
    container.command = spec["process"]["args"]
    directory = container.directory(roots)
    snapshot = Snapshot.create(image.layers, directory)
    # A --rm container's record is deleted when it exits: no fsync for it (atomic.write_bytes).
    durable = not options.remove
    try:
        container.save(roots, durable)
        _write_config(directory, spec)
        snapshot.mount()
        _make_workdir(snapshot.rootfs, spec["process"]["cwd"])
        stdin = 0 if options.interactive else os.open(os.devnull, os.O_RDONLY)
        try:
            def started(pid: int) -> None:
                container.status, container.pid = "running", pid
                container.save(roots, durable)

            status = runtime_run(spec, stdio=(stdin, 1, 2), on_started=started)
        finally:
            if stdin != 0:
                os.close(stdin)
        container.status, container.pid, container.exit_code = "exited", None, status.exit_code
        if not options.remove:  # with --rm the record is about to go: do not write it a third time
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
            from minidocker.engine.remove import delete_later

            delete_later(directory)


def _check_name(roots: StateRoots, name: str) -> None:
    from minidocker.engine.container import list_containers

    if any(c.name == name for c in list_containers(roots)):
        raise Conflict(f'the container name "/{name}" is already in use',
                       hint=f"remove it with 'minidocker rm {name}' or choose another --name")


def _make_workdir(rootfs: os.PathLike[str], cwd: str) -> None:
    """Docker creates a missing working directory in the container's filesystem."""
    if cwd != "/":
        from minidocker.rootfs import secure_join

        os.makedirs(secure_join(rootfs, cwd), exist_ok=True)


def _write_config(directory: os.PathLike[str], spec: Mapping[str, Any]) -> None:
    from minidocker.atomic import write_json

    # Rewritten at every start and read only by the runtime: no fsync (atomic.write_bytes).
    write_json(os.path.join(directory, "config.json"), spec, durable=False)
