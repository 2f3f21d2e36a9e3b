"""The actions behind each command: parse result in, exit code out.

Each is a few lines: call one engine function, print, return. Imports are local so
that ``minidocker --help`` stays fast.
"""

from __future__ import annotations

import sys

from minidocker.cli.flags import Values

__all__ = ["build", "kill", "logs", "restart", "start", "stop", "wait", "commit", "doctor", "login", "logout",
           "pull", "push", "registry_gc", "registry_serve", "exec_", "export", "history", "image_inspect",
           "image_prune", "images", "import_",
           "load", "network_connect", "network_create", "network_disconnect", "network_inspect", "network_ls",
           "network_prune", "network_rm", "ps", "rm", "rmi", "run", "save", "stats", "system_prune", "tag",
           "pause", "unpause", "rename", "top", "port", "daemon_start", "daemon_stop", "daemon_status",
           "volume_create", "volume_inspect", "volume_ls", "volume_prune", "volume_rm"]


def run(args: Values) -> int:
    remote = _daemon()
    if remote is not None:
        from minidocker.cli import remote as r

        return r.run(remote, args)
    if args.detach:
        from minidocker.cli.remote import needs_daemon

        needs_daemon("run -d")
    from minidocker.engine.resources import ResourceFlags
    from minidocker.engine.run import RunOptions, run_container
    from minidocker.security.options import SecurityFlags

    _require_root(rootless=True)
    resources = ResourceFlags(
        memory=args.memory, memory_swap=args.memory_swap, cpus=args.cpus, cpu_shares=args.cpu_shares,
        cpu_period=args.cpu_period, cpu_quota=args.cpu_quota, pids_limit=args.pids_limit,
    )
    options = RunOptions(
        image=args.image, command=args.command, name=args.name, hostname=args.hostname, env=args.env,
        workdir=args.workdir, user=args.user, entrypoint=args.entrypoint, interactive=args.interactive,
        tty=args.tty, init=args.init, remove=args.remove, read_only=args.read_only,
        network=args.network, network_aliases=args.network_alias, mac_address=args.mac_address,
        publish=args.publish, publish_all=args.publish_all, expose=args.expose, resources=resources,
        pull=args.pull, platform=args.platform, insecure_registries=args.insecure_registry,
        quiet=args.quiet, volumes=args.volumes, mounts=args.mounts, tmpfs=args.tmpfs,
        volumes_from=args.volumes_from,
        security=SecurityFlags(args.privileged, args.cap_add, args.cap_drop, args.security_opt, args.device,
                               args.userns),
    )
    status = run_container(options)
    if status.oom_killed:
        print(f"minidocker: container {status.describe()}: it reached its memory limit", file=sys.stderr)
    return status.exit_code


def stats(args: Values) -> int:
    remote = _daemon()
    if remote is not None:   # minidockerd answers: its /containers/{id}/stats, docker's columns
        from minidocker.cli import remote as r

        return r.stats(remote, args)
    from minidocker.engine.stats import format_json, format_table, sample_stats
    from minidocker.errors import InvalidArgument

    _require_root()
    if args.format not in ("table", "json"):
        raise InvalidArgument(f"invalid --format {args.format!r}", hint="use table or json")
    try:
        interval = float(args.interval)
    except ValueError:
        raise InvalidArgument(f"invalid --interval {args.interval!r}: not a number of seconds") from None
    while True:
        rows = sample_stats(args.containers, interval=interval)
        text = format_json(rows) if args.format == "json" else format_table(rows)
        if not args.no_stream and args.format == "table":
            text = "\033[2J\033[H" + text  # clear the screen, like docker stats
        print(text, flush=True)
        if args.no_stream or not rows:
            return 0


def exec_(args: Values) -> int:
    from minidocker.engine.exec import exec_container

    _require_root(rootless=True)
    return exec_container(args.container, args.command, args.env, args.workdir).exit_code


def ps(args: Values) -> int:
    remote = _daemon()
    if remote is not None:
        from minidocker.cli import remote as r

        return r.ps(remote, args)
    from minidocker.engine.container import list_containers
    from minidocker.paths import state_roots

    shown = [c for c in list_containers(state_roots()) if args.all or c.status == "running"]
    if args.quiet:
        print("\n".join(c.id[:12] for c in shown))
        return 0
    print(f"{'CONTAINER ID':<14}{'IMAGE':<18}{'COMMAND':<24}{'STATUS':<18}NAMES")
    for c in shown:
        command = " ".join(c.command)
        command = f'"{command[:19]}…"' if len(command) > 20 else f'"{command}"'
        if c.status == "running":
            status = "Up"
        else:
            status = f"Exited ({c.exit_code})" if c.exit_code is not None else c.status
        print(f"{c.id[:12]:<14}{c.image:<18}{command:<24}{status:<18}{c.name}")
    return 0


def rm(args: Values) -> int:
    remote = _daemon()
    if remote is not None:
        from minidocker.cli import remote as r

        return r.rm(remote, args)
    from minidocker.engine.remove import remove_container

    _require_root(rootless=True)
    failed = 0
    for ref in args.containers:
        try:
            if args.volumes:
                from minidocker.engine.volumes import remove_with_volumes

                remove_with_volumes(ref, force=args.force)
            else:
                remove_container(ref, force=args.force)
            print(ref)
        except Exception as err:  # noqa: BLE001 - report each, go on, like docker rm
            print(f"minidocker: {err}", file=sys.stderr)
            failed = 1
    return failed


def images(args: Values) -> int:
    from minidocker.cli.format import image_rows

    print("\n".join(image_rows(_store().list(), quiet=args.quiet, no_trunc=args.no_trunc)))
    return 0


def image_inspect(args: Values) -> int:
    import json

    from minidocker.image.inspect import inspect_image

    store = _store(*args.images)
    print(json.dumps([inspect_image(store, ref) for ref in args.images], indent=4))
    return 0


def tag(args: Values) -> int:
    _store(args.source).tag(args.source, args.target)
    return 0


def rmi(args: Values) -> int:
    from minidocker.engine.images import remove_image

    failed = 0
    for ref in args.images:
        try:
            print("\n".join(remove_image(ref, force=args.force)))
        except Exception as err:  # noqa: BLE001 - report each, go on, like docker rmi
            print(f"minidocker: {err}", file=sys.stderr)
            failed = 1
    return failed


def history(args: Values) -> int:
    from minidocker.cli.format import history_rows
    from minidocker.image.inspect import image_history

    print("\n".join(history_rows(image_history(_store(args.image), args.image), no_trunc=args.no_trunc)))
    return 0


def save(args: Values) -> int:
    from minidocker.image.archive import save_archive
    from minidocker.image.oci import save_oci_layout

    if args.format not in ("docker", "oci"):
        _fail(f"invalid --format {args.format!r}: use docker or oci")
    if args.format == "oci":
        output = args.output or _fail("save --format oci needs -o DIRECTORY")
        save_oci_layout(_store(*args.images), args.images, output)
        return 0
    with _output(args.output) as out:
        save_archive(_store(*args.images), args.images, out)
    return 0


def load(args: Values) -> int:
    import os

    from minidocker.image.archive import load_archive
    from minidocker.image.oci import load_oci_layout

    if not args.input:
        _fail("load needs -i PATH (docker reads stdin; minidocker does not yet)")
    store = _store()
    lines = (load_oci_layout(store, args.input, name=args.name) if os.path.isdir(args.input)
             else load_archive(store, args.input, name=args.name))
    if not args.quiet:
        print("\n".join(lines))
    return 0


def import_(args: Values) -> int:
    from minidocker.image.imports import import_tarball

    print(import_tarball(_store(), args.file, args.reference, message=args.message).id)
    return 0


def export(args: Values) -> int:
    from minidocker.engine.images import export_container

    _require_root()
    with _output(args.output) as out:
        export_container(args.container, out)
    return 0


def commit(args: Values) -> int:
    from minidocker.engine.images import commit_container

    print(commit_container(args.container, args.reference, message=args.message, author=args.author).id)
    return 0


def image_prune(args: Values) -> int:
    deleted = _store().gc()
    print("\n".join(f"deleted layer: {d}" for d in deleted) or "nothing to remove")
    return 0


def pull(args: Values) -> int:
    from minidocker.registry.progress import Progress
    from minidocker.registry.pull import pull as pull_image

    from minidocker.image.reference import parse_reference

    pull_image(_store(), args.reference, platform=args.platform, progress=Progress(quiet=args.quiet),
               insecure_registries=args.insecure_registry)
    print(args.reference if args.quiet else parse_reference(args.reference))   # as docker pull ends
    return 0


def push(args: Values) -> int:
    from minidocker.registry.progress import Progress
    from minidocker.registry.push import push as push_image

    digest = push_image(_store(args.reference), args.reference, progress=Progress(quiet=args.quiet),
                        insecure_registries=args.insecure_registry)
    if args.quiet:
        print(digest)
    return 0


def login(args: Values) -> int:
    import getpass

    from minidocker.registry.credentials import login as login_registry

    server = args.server or "docker.io"
    username = args.username or input("Username: ")
    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else \
        args.password if args.password is not None else getpass.getpass("Password: ")
    if args.password is not None:
        print("WARNING! Using --password via the CLI is insecure. Use --password-stdin.", file=sys.stderr)
    path = login_registry(server, username, password, tuple(args.insecure_registry))
    print(f"Login Succeeded (credentials stored in {path})")
    return 0


def logout(args: Values) -> int:
    from minidocker.registry.credentials import erase_credentials

    server = args.server or "docker.io"
    print(f"Removing login credentials for {server}" if erase_credentials(server)
          else f"Not logged in to {server}")
    return 0


def registry_serve(args: Values) -> int:
    from minidocker.paths import state_roots
    from minidocker.registry.progress import Progress
    from minidocker.registry.server import RegistryServer

    host, _, port = args.addr.rpartition(":")
    root = args.root or state_roots().lib / "registry"
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    server = RegistryServer(root, (host or "127.0.0.1", int(port)), htpasswd=args.htpasswd, log=log,
                            token_auth=args.token_auth)
    print(f"minidocker registry listening on {server.url} (storage: {root})", flush=True)
    if args.seed:   # pushed by a thread while this one serves
        import threading

        from minidocker.registry.classroom import seed_registry

        def seed() -> None:
            bound = server.server_address[0]
            address = f"{'127.0.0.1' if bound in ('0.0.0.0', '') else bound}:{server.server_address[1]}"
            seeded = seed_registry(_store("busybox"), address, progress=Progress(quiet=True),
                                   insecure_registries=[address])
            print("seeded: " + ", ".join(s.split("/", 1)[1] for s in seeded), flush=True)
            print(f"students: export MINIDOCKER_REGISTRY_MIRROR=http://<this host>:{port}", flush=True)

        threading.Thread(target=seed, daemon=True).start()
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def registry_gc(args: Values) -> int:
    from minidocker.cli.format import human_size
    from minidocker.paths import state_roots
    from minidocker.registry.gc import collect_garbage

    report = collect_garbage(args.root or state_roots().lib / "registry", dry_run=args.dry_run)
    for digest in report.removed:
        print(f"blob eligible for deletion: {digest}")
    verb = "would free" if args.dry_run else "freed"
    print(f"{len(report.marked)} blobs marked, {len(report.removed)} eligible for deletion, {verb} "
          f"{human_size(report.freed)}")
    return 0


def _store(*named: str):
    """The image store; the built-in busybox made first if ``named`` (images read by name) names it."""
    from minidocker.image import ImageStore
    from minidocker.paths import state_roots

    store = ImageStore(state_roots().images)
    if not named:
        return store
    from minidocker.engine.images import with_default_image

    return with_default_image(store, named)


def _output(path: str | None):
    """A binary file to write to: ``path``, else stdout (refused when it is a terminal, like docker)."""
    import contextlib

    from minidocker.errors import InvalidArgument

    if path:
        return open(path, "wb")
    if sys.stdout.isatty():
        raise InvalidArgument("refusing to write an archive to a terminal",
                              hint="use -o FILE or redirect stdout")
    sys.stdout.flush()
    return contextlib.nullcontext(sys.stdout.buffer)


def _fail(message: str):
    from minidocker.errors import InvalidArgument

    raise InvalidArgument(message)


def doctor(args: Values) -> int:
    from minidocker.doctor import format_report, run_checks

    checks = run_checks()
    print(format_report(checks))
    return 0 if all(c.ok or not c.required for c in checks) else 1


def system_prune(args: Values) -> int:
    from minidocker.engine.remove import prune

    _require_root()
    removed = prune()
    if args.volumes:
        from minidocker.engine.volumes import prune_volumes
        from minidocker.paths import state_roots

        removed += [f"deleted volume {name}" for name in prune_volumes(state_roots())]
    for line in removed:
        print(line)
    print(f"Total: {len(removed)} removed")
    return 0


def network_create(args: Values) -> int:
    from minidocker.engine.networks import create_network
    from minidocker.errors import InvalidArgument
    from minidocker.paths import state_roots

    _require_root()
    if args.driver != "bridge":
        raise InvalidArgument(f"unsupported network driver {args.driver!r}",
                              hint="only bridge is implemented")
    print(create_network(state_roots(), args.name, args.subnet).id)
    return 0


def network_ls(args: Values) -> int:
    from minidocker.engine.networks import list_networks
    from minidocker.paths import state_roots

    rows = list_networks(state_roots())
    if args.quiet:
        print("\n".join(r["name"] for r in rows))
        return 0
    print(f"{'NETWORK ID':<14}{'NAME':<20}{'DRIVER':<10}SUBNET")
    for r in rows:
        print(f"{r['id']:<14}{r['name']:<20}{r['driver']:<10}{r['subnet']}")
    return 0


def network_inspect(args: Values) -> int:
    import json

    from minidocker.engine.networks import inspect_network
    from minidocker.paths import state_roots

    print(json.dumps([inspect_network(state_roots(), ref) for ref in args.networks], indent=2))
    return 0


def network_rm(args: Values) -> int:
    from minidocker.engine.networks import remove_network
    from minidocker.paths import state_roots

    _require_root()
    failed = 0
    for ref in args.networks:
        try:
            remove_network(state_roots(), ref)
            print(ref)
        except Exception as err:  # noqa: BLE001 - report each, go on, like docker network rm
            print(f"minidocker: {err}", file=sys.stderr)
            failed = 1
    return failed


def network_prune(args: Values) -> int:
    from minidocker.engine.networks import prune_networks
    from minidocker.paths import state_roots

    _require_root()
    for line in prune_networks(state_roots()):
        print(line)
    return 0


def network_connect(args: Values) -> int:
    from minidocker.engine.networks import connect
    from minidocker.paths import state_roots

    _require_root()
    connect(state_roots(), args.network, args.container)
    return 0


def network_disconnect(args: Values) -> int:
    from minidocker.engine.networks import disconnect
    from minidocker.paths import state_roots

    _require_root()
    disconnect(state_roots(), args.network, args.container)
    return 0


def _daemon():
    """minidockerd's client if one answers (chapter 13), else None: direct mode."""
    from minidocker.cli.remote import daemon_client

    return daemon_client()


def _supervised(name: str):
    """An action that only the daemon can do: it runs there, or says how to start one."""
    def action(args: Values) -> int:
        from minidocker.cli import remote

        return getattr(remote, name)(remote.needs_daemon(name), args)

    action.__name__ = name
    return action


logs, start, stop, restart, kill, wait = (_supervised(n) for n in ("logs", "start", "stop", "restart", "kill",
                                                                   "wait"))
pause, unpause, rename, top, port = (_supervised(n) for n in ("pause", "unpause", "rename", "top", "port"))


def _require_root(rootless: bool = False) -> None:
    """Root, or for ``rootless`` commands a kernel that lets this user make a user namespace."""
    import os

    from minidocker.errors import MinidockerError

    if os.geteuid() != 0 and rootless:
        from minidocker.security.rootless import check_rootless

        check_rootless()
    elif os.geteuid() != 0:
        raise MinidockerError("this command needs root: it creates namespaces and mounts",
                              hint="run it with sudo, or as root in a VM made for the course")


def volume_create(args: Values) -> int:
    from minidocker.engine.volumes import create_volume
    from minidocker.paths import state_roots

    _require_root()
    name = args.volume or args.name
    if args.volume and args.name and args.volume != args.name:
        _fail(f"conflicting names: --name {args.name} and {args.volume}")
    print(create_volume(state_roots(), name, args.driver, args.options, args.labels).name)
    return 0


def volume_ls(args: Values) -> int:
    from minidocker.engine.volumes import list_volumes
    from minidocker.paths import state_roots

    volumes = list_volumes(state_roots(), args.filters)
    if args.quiet:
        print("\n".join(v.name for v in volumes))
        return 0
    print("\n".join([f"{'DRIVER':<10}VOLUME NAME", *(f"{v.driver:<10}{v.name}" for v in volumes)]))
    return 0


def volume_inspect(args: Values) -> int:
    import json

    from minidocker.engine.volumes import inspect_volumes
    from minidocker.paths import state_roots

    print(json.dumps(inspect_volumes(state_roots(), args.volumes), indent=4))
    return 0


def volume_rm(args: Values) -> int:
    from minidocker.engine.volumes import remove_volume
    from minidocker.paths import state_roots

    _require_root()
    failed = 0
    for name in args.volumes:
        try:
            remove_volume(state_roots(), name, force=args.force)
            print(name)
        except Exception as err:  # noqa: BLE001 - report each, go on, like docker volume rm
            print(f"minidocker: {err}", file=sys.stderr)
            failed = 1
    return failed


def volume_prune(args: Values) -> int:
    from minidocker.engine.volumes import prune_volumes
    from minidocker.paths import state_roots

    _require_root()
    removed = prune_volumes(state_roots(), all_volumes=args.all, filters=args.filters)
    print("\n".join(["Deleted Volumes:", *removed]) if removed else "nothing to remove")
    return 0
def build(args: Values) -> int:
    """``minidocker build``: chapter 08 (minidocker/build/, through engine/building.py)."""
    from minidocker.build.builder import BuildOptions
    from minidocker.engine.building import build_image, default_build_network

    import os

    _require_root()
    # --build-arg NAME=value, or NAME alone: its value from our environment (as docker build does)
    build_args = {k: (v if sep else os.environ.get(k))
                  for k, sep, v in (a.partition("=") for a in args.build_arg)}
    labels = dict(item.partition("=")[::2] for item in args.label)
    dockerfile_text, context = None, args.context
    if args.file == "-" or args.context == "-":
        data = sys.stdin.buffer.read()
        if args.context == "-" and not _looks_like_tar(data):
            dockerfile_text, context = data, None      # docker build - < Dockerfile: no context at all
        elif args.context == "-":
            import io

            context = io.BytesIO(data)
        else:
            dockerfile_text = data
    empty = None
    if context is None:
        import tempfile

        context = empty = tempfile.mkdtemp(prefix="minidocker-build-")
    file = args.file if args.file and args.file != "-" else "Dockerfile"
    if args.file and args.file != "-" and isinstance(context, str) and os.path.isabs(args.file):
        file = os.path.relpath(args.file, context)
    options = BuildOptions(dockerfile=file, dockerfile_text=dockerfile_text, tags=args.tag,
                           build_args=build_args, target=args.target, no_cache=args.no_cache, pull=args.pull,
                           network=args.network or default_build_network(), labels=labels, quiet=args.quiet,
                           timings=args.progress == "plain")

    def show(event: dict) -> None:
        if "stream" in event:
            sys.stdout.write(event["stream"])
            sys.stdout.flush()

    from minidocker.build.builder import BuildError
    from minidocker.errors import MinidockerError

    try:
        result = build_image(context, options, show, log=None if args.quiet else sys.stderr)
    except MinidockerError as err:
        if not isinstance(err, BuildError):
            err.exit_code = 1      # docker build's code for a build that failed (a RUN's own code otherwise)
        raise
    finally:
        if empty is not None:
            os.rmdir(empty)
    if args.quiet:
        print(result.image_id)
    if args.iidfile:
        with open(args.iidfile, "w") as f:
            f.write(result.image_id)
    return 0


def _looks_like_tar(data: bytes) -> bool:
    # gzip, bzip2, xz; else a plain tar's "ustar" magic at offset 257
    compressed = data[:2] == b"\x1f\x8b" or data[:3] == b"BZh" or data[:6] == b"\xfd7zXZ\x00"
    return compressed or data[257:262] == b"ustar"


def _in_daemon_module(name: str):
    """``minidocker daemon start|stop|status``: the function of minidockerd's module, imported when run
    (the other commands do not load it)."""
    def action(args: Values) -> int:
        from minidocker.cli import daemon

        return getattr(daemon, name)(args)

    action.__name__ = name
    return action


daemon_start, daemon_stop, daemon_status = (_in_daemon_module(n) for n in ("daemon_start", "daemon_stop",
                                                                           "daemon_status"))
