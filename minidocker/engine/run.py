"""``minidocker run`` in direct mode: image + options -> OCI config -> runtime.

What ``docker run`` makes dockerd, containerd and runc do, in one process::

    image = local_image(store, "busybox")            the image's layers and config (pulled if missing)
    snapshot = Snapshot.create(layers, dir).mount()   a writable overlay of them
    spec = build_spec(image, options, rootfs)         how Docker merges image and flags
    runtime.run(spec)                                 cgroup, namespaces, pivot_root, exec
    snapshot.unmount() (and remove with --rm)

With a bridge network (chapter 09) the engine also allocates an address before
the runtime starts, wires the veth between create and start, and forgets the
endpoint after the exit; ``--network none`` does none of it and imports nothing.
"""

from __future__ import annotations

import os
import sys

from minidocker.atomic import write_json
from minidocker.cgroups import CGROUP_PARENT
from minidocker.engine.container import Container, release_name
from minidocker.engine.resources import ResourceFlags, resources_from_flags
from minidocker.errors import Conflict, ImageNotFound, InvalidArgument
from minidocker.image import Image, ImageStore
from minidocker.image.runconfig import RunArgs, apply_image_config
from minidocker.paths import StateRoots, state_roots
from minidocker.record import Record
from minidocker.runtime import ExitStatus, default_spec
from minidocker.runtime import run as runtime_run
from minidocker.runtime.run import empty_stdin
from minidocker.runtime.init import INIT_ANNOTATION
from minidocker.runtime.spec import validate, validate_hostname
from minidocker.security.options import SecurityFlags, configure
from minidocker.storage import Snapshot

__all__ = ["RunOptions", "build_spec", "parse_env", "run_container", "write_config"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any


class RunOptions(Record):
    """The flags of ``run`` that direct mode understands.

    A Record, not a dataclass: see minidocker/record.py.
    """

    FIELDS = ("image", "command", "name", "hostname", "env", "workdir", "user", "entrypoint",
              "interactive", "tty", "init", "remove", "read_only", "network", "network_aliases",
              "mac_address", "publish", "publish_all", "expose", "resources", "pull", "platform",
              "insecure_registries", "quiet", "volumes", "mounts", "tmpfs", "volumes_from", "security")

    def __init__(self, image: str, command: list[str] | None = None, name: str | None = None,
                 hostname: str | None = None, env: list[str] | None = None, workdir: str | None = None,
                 user: str | None = None, entrypoint: str | None = None, interactive: bool = False,
                 tty: bool = False, init: bool = False, remove: bool = False,
                 read_only: bool = False, network: str | None = None,
                 network_aliases: list[str] | None = None, mac_address: str | None = None,
                 publish: list[str] | None = None, publish_all: bool = False, expose: list[str] | None = None,
                 resources: ResourceFlags | None = None, pull: str = "missing", platform: str | None = None,
                 insecure_registries: list[str] | None = None, quiet: bool = False,
                 volumes: list[str] | None = None, mounts: list[str] | None = None,
                 tmpfs: list[str] | None = None, volumes_from: list[str] | None = None,
                 security: SecurityFlags | None = None) -> None:
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
        self.network = network  # bridge (default), none, host, container:NAME or a network's name
        self.network_aliases = [] if network_aliases is None else network_aliases  # --network-alias
        self.mac_address = mac_address  # --mac-address, else the one of its address (ipam.mac_of)
        self.publish = [] if publish is None else publish  # -p [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/udp]
        self.publish_all = publish_all  # -P: every exposed port on a random host port
        self.expose = [] if expose is None else expose  # --expose PORT[/udp]
        self.resources = resources or ResourceFlags()  # --memory, --cpus, --pids-limit ... (chapter 04)
        self.pull = pull  # --pull missing|always|never (chapter 07, engine/pulling.py)
        self.platform = platform  # --platform os/arch[/variant], for that pull
        self.insecure_registries = [] if insecure_registries is None else insecure_registries
        self.quiet = quiet  # -q: no pull output
        # Chapter 10 (engine/volumes.py): -v SRC:DST[:OPTS], --mount K=V,..., --tmpfs DST[:OPTS],
        # --volumes-from C
        self.volumes = [] if volumes is None else volumes
        self.mounts = [] if mounts is None else mounts
        self.tmpfs = [] if tmpfs is None else tmpfs
        self.volumes_from = [] if volumes_from is None else volumes_from
        self.security = security or SecurityFlags()  # --privileged, --cap-add ... (chapter 11)





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


def build_spec(image: Image, options: RunOptions, rootfs: str, container_id: str,
               network: Any = None, directory: os.PathLike[str] | None = None,
               roots: StateRoots | None = None, volumes: Any = None) -> dict[str, Any]:
    """The OCI config for this run, whole: the one place a container's spec is assembled.

    The image's config combined with the flags, as Docker does (the combining rules
    live with the image, :mod:`minidocker.image.runconfig`), then what is the engine's
    own: hostname, ``--init``, ``--read-only``, the cgroup, and the network plan's
    namespaces and name files (``network``: a plan of :func:`_plan_network`, None for
    ``--network none``), the ``volumes`` plan's mounts (engine/volumes.py). Pure: it reads,
    creates nothing; ``_prepare_network`` and the plan's ``prepare`` do what this spec expects.
    """
    hostname = validate_hostname(options.hostname) if options.hostname else container_id[:12]
    spec = default_spec(rootfs, ["true"], hostname=hostname, readonly_rootfs=options.read_only)
    run = RunArgs(command=list(options.command), entrypoint=options.entrypoint, env=parse_env(options.env),
                  workdir=options.workdir, user=options.user, tty=options.tty)
    apply_image_config(spec, image.config, image.layers, run, hostname=hostname)
    if options.init:
        spec.setdefault("annotations", {})[INIT_ANNOTATION] = "true"
    # Every container gets a cgroup (for `stats` and a clean kill), like Docker's; limits only if asked.
    spec["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/{container_id}"
    resources = resources_from_flags(options.resources)
    if resources:
        spec["linux"].setdefault("resources", {}).update(resources)
    if network is not None:
        _network_spec(spec, network, container_id, directory, roots or state_roots())
    if volumes is not None:
        volumes.apply(spec)   # engine/volumes.py: bind and tmpfs entries in spec["mounts"]
    for warning in configure(spec, options.security):  # capabilities, seccomp ... once the user is known
        print(warning, file=sys.stderr)
    if os.geteuid() != 0:   # rootless (chapter 11): the user's own user namespace, overlay mounted inside
        import pwd

        from minidocker.security.rootless import ROOTFS_ANNOTATION, configure_rootless, rootless_overlay

        for warning in configure_rootless(spec, pwd.getpwuid(os.getuid()).pw_name, bool(resources)):
            print(warning, file=sys.stderr)
        overlay = rootless_overlay(image.layers, os.path.dirname(rootfs))
        spec.setdefault("annotations", {})[ROOTFS_ANNOTATION] = overlay
    elif os.environ.get("MINIDOCKER_USERNS_REMAP"):   # like dockerd --userns-remap (chapter 11)
        from minidocker.security.userns import configure_remap

        configure_remap(spec, rootfs, options.security, os.environ["MINIDOCKER_USERNS_REMAP"])
    validate(spec)
    return spec


def _network_spec(spec: dict[str, Any], plan: Any, container_id: str, directory: os.PathLike[str] | None,
                  roots: StateRoots) -> None:
    """The spec's side of the network plan: which netns, which hostname, which name files are bound."""
    namespaces = spec["linux"]["namespaces"]
    if plan.mode == "host":
        import socket

        namespaces[:] = [n for n in namespaces if n["type"] != "network"]
        if spec.get("hostname") == container_id[:12]:
            spec["hostname"] = socket.gethostname()
        names = [n for n in ("hosts", "resolv.conf") if os.path.exists(f"/etc/{n}")] + ["hostname"]
        _bind_name_files(spec, directory, names)  # type: ignore[arg-type]
    elif plan.mode == "container":
        from minidocker.engine.container import find_container

        other = find_container(roots, plan.container)
        if not other.is_running():  # its PID 1 checked with its start time (linux/procfs.py)
            raise Conflict(f"cannot join the network of container {other.name}: it is not running")
        for entry in namespaces:
            if entry["type"] == "network":
                entry["path"] = f"/proc/{other.pid}/ns/net"
        other_dir = other.directory(roots)
        _bind_name_files(spec, other_dir,
                         [n for n in _NAME_FILES if os.path.exists(os.path.join(other_dir, n))])
    else:
        _bind_name_files(spec, directory, _NAME_FILES)  # type: ignore[arg-type]  # attach writes all three


def run_container(options: RunOptions, roots: StateRoots | None = None) -> ExitStatus:
    """Run a container to completion in this process. Like ``docker run`` (without ``-d``)."""
    roots = roots or state_roots()
    if os.geteuid() != 0:   # rootless (chapter 11): what it cannot have is refused before anything exists
        from minidocker.security.rootless import check_rootless_options

        types = []
        if options.volumes or options.mounts:
            from minidocker.engine.volumes import parse_mount, parse_volume

            types = [parse_volume(v).type for v in options.volumes]
            types += [parse_mount(m).type for m in options.mounts]
        check_rootless_options(options, types)
    image = _find_image(options, roots)   # before anything of the container exists
    plan = _plan_network(options, image, roots)
    volumes = _plan_volumes(options, image, roots)   # every -v/--mount checked before anything exists
    container = Container.for_run(roots, options.name, image.reference, options.command, image.id,
                                  auto_remove=options.remove)
    directory = container.directory(roots)
    try:
        spec = build_spec(image, options, str(directory / "rootfs"), container.id, plan, directory, roots,
                          volumes)
        container.command = spec["process"]["args"]
        snapshot = Snapshot.create(image.layers, directory)
    except BaseException:   # no record yet (a bad --user, -w): the name is free again, in this process too
        import shutil

        shutil.rmtree(directory, ignore_errors=True)
        release_name(roots.containers, container.name, container.id)
        raise
    # A --rm container's record is deleted when it exits: no fsync for it (atomic.write_bytes).
    durable = not options.remove
    endpoint = None
    try:
        container.save(roots, durable)
        before_start = None
        if plan is not None:
            endpoint, before_start = _prepare_network(plan, spec["hostname"], container, roots)
        write_config(directory, spec)
        if "org.minidocker.userns-root" in spec.get("annotations", {}):
            from minidocker.security.userns import give_to_remapped_root, remapped_layers

            give_to_remapped_root(spec, snapshot.upper, directory)
            snapshot.lowers, _ = remapped_layers(spec, snapshot.lowers, directory, roots.images / "remapped")
        if "org.minidocker.rootless-overlay" not in spec.get("annotations", {}):
            snapshot.mount()   # (rootless: the runtime mounts it, inside the user namespace)
        if volumes is not None:
            volumes.prepare(snapshot.rootfs, directory, durable)   # volumes created, copy-up from the image
        _make_workdir(snapshot.upper if os.geteuid() else snapshot.rootfs, spec["process"]["cwd"])
        stdin = 0 if options.interactive else empty_stdin()
        try:
            def started(pid: int) -> None:
                container.status, container.pid = "running", pid
                container.save(roots, durable)

            # The runtime's lifecycle, in this process: create, (network), start, wait, delete.
            # Pipes for its stdout and stderr (and stdin with -i), relayed by the runtime, as Docker's shim
            # does (with -t, a pty): never our own fds, which a container's root could fchmod (they are
            # the user's terminal or files).
            status = runtime_run(spec, stdio=(stdin, 1, 2), on_started=started, before_start=before_start,
                                 root=str(roots.run / "runtime"), container_id=container.id,
                                 bundle=str(directory),
                                 pipe_output=True, pipe_input=options.interactive)
        finally:
            if stdin != 0:
                os.close(stdin)
        container.status, container.pid, container.exit_code = "exited", None, status.exit_code
        container.oom_killed = status.oom_killed or None
        if not options.remove:  # with --rm the record is about to go: do not write it a third time
            container.save(roots)
        return status
    except BaseException:
        container.status, container.pid = "exited", None
        if directory.exists() and not options.remove:
            container.save(roots)
        raise
    finally:
        if endpoint is not None:
            from minidocker.engine.networks import detach

            detach(roots, container.id)  # the veth goes with the netns, in the kernel's own time
        snapshot.unmount()
        if volumes is not None:
            volumes.release(container.id, remove_anonymous=options.remove)
        if options.remove:
            from minidocker.engine.remove import delete_later

            delete_later(directory)


def _find_image(options: RunOptions, roots: StateRoots) -> Image:
    """The image to run: the local one (the hot path, no more imports), else as ``--pull`` says."""
    from minidocker.engine.images import local_image

    store = ImageStore(roots.images)
    if options.pull == "missing":
        try:
            return local_image(store, options.image)
        except ImageNotFound:
            pass   # pulled, or a better error, below
    from minidocker.engine.pulling import image_for_run

    return image_for_run(store, options.image, options.pull, platform=options.platform,
                         insecure_registries=options.insecure_registries,
                         log=None if options.quiet else sys.stderr)


def _plan_network(options: RunOptions, image: Image, roots: StateRoots) -> Any:
    """The network plan, or None for ``--network none`` (the fast path: no import, no state)."""
    # dockerd --bridge=none: no default network. The test suite sets it outside its network sandbox.
    mode = options.network or ("none" if os.environ.get("MINIDOCKER_BRIDGE") == "none" else "bridge")
    if mode == "none" and not options.publish and not options.network_aliases:
        return None
    from minidocker.engine.networks import check_network_exists, plan_endpoint, plan_network
    from minidocker.network.ports import parse_expose

    exposed = []
    if options.publish_all:
        keys = [*(image.config.get("ExposedPorts") or {}), *options.expose]
        exposed = sorted({parse_expose(k) for k in keys})
    plan = plan_network(mode, options.publish, exposed)
    check_network_exists(roots, plan)
    return plan_endpoint(plan, options.network_aliases, options.mac_address)


def _plan_volumes(options: RunOptions, image: Image, roots: StateRoots) -> Any:
    """The mounts plan (engine/volumes.py), or None when there is nothing to mount (no import then)."""
    if not (options.volumes or options.mounts or options.tmpfs or options.volumes_from
            or image.config.get("Volumes")):
        return None
    from minidocker.engine import volumes as v

    requests = ([v.parse_volume(x) for x in options.volumes] + [v.parse_mount(x) for x in options.mounts]
                + [v.parse_tmpfs(x) for x in options.tmpfs])
    return v.plan_mounts(roots, image.config, requests, options.volumes_from)


def _prepare_network(plan: Any, hostname: str, container: Container,
                     roots: StateRoots) -> tuple[dict[str, Any] | None, Any]:
    """Do what the spec's network part expects (see _network_spec); for a bridge, return the wiring hook."""
    from minidocker.engine import networks

    directory = container.directory(roots)
    if plan.mode == "host":
        import shutil

        for name in ("hosts", "resolv.conf"):
            if os.path.exists(f"/etc/{name}"):
                shutil.copyfile(f"/etc/{name}", directory / name)
        (directory / "hostname").write_text(hostname + "\n")
        return None, None
    if plan.mode == "container":
        return None, None
    endpoint = networks.attach(roots, container.id, container.name, hostname, plan, directory)

    def wire(pid: int) -> None:
        networks.wire(endpoint, container.id, pid)

    return endpoint, wire


_NAME_FILES = ("hosts", "hostname", "resolv.conf")


def _bind_name_files(spec: dict[str, Any], directory: os.PathLike[str], names: Sequence[str]) -> None:
    """Bind-mount the container's hosts, hostname and resolv.conf over the image's, as Docker does."""
    for name in names:
        spec["mounts"].append({"destination": f"/etc/{name}", "type": "bind",
                               "source": os.path.join(directory, name), "options": ["rbind", "rprivate"]})


def _make_workdir(rootfs: os.PathLike[str], cwd: str) -> None:
    """Docker creates a missing working directory in the container's filesystem."""
    if cwd != "/":
        from minidocker.rootfs import secure_join

        os.makedirs(secure_join(rootfs, cwd), exist_ok=True)


def write_config(directory: os.PathLike[str], spec: Mapping[str, Any]) -> None:
    """The bundle's ``config.json``, as the runtime reads it: compact, as containerd writes it
    (indented, its 9 KB with the seccomp profile go through json's Python encoder: ~1 ms
    more per run here); rewritten at every start, so no fsync (atomic.write_bytes)."""
    write_json(os.path.join(directory, "config.json"), spec, durable=False, indent=None)
