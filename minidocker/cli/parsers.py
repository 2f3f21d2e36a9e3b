"""The command line as data: every command, its flags and arguments (actions in commands.py).

Read with :func:`minidocker.cli.flags.parse`; the flag rules are docker's (see flags.py).
"""

from __future__ import annotations

from minidocker.cli import commands
from minidocker.cli.flags import Argument, Command, Option

__all__ = ["build_commands", "daemon_options"]


def build_commands() -> Command:
    """The ``minidocker`` command tree."""
    run = Command(
        "run", "Run a command in a new container (direct mode: no daemon)", commands.run,
        options=[
            Option("--rm", "remove the container when it exits", dest="remove"),
            Option("-d --detach", "run in the background and print its ID (needs minidockerd)"),
            Option("--restart", "no, on-failure[:N], always or unless-stopped (with minidockerd)", "value",
                   "POLICY"),
            Option("--log-driver", "json-file (default) or none (with minidockerd)", "value", "DRIVER",
                   dest="log_driver"),
            Option("--log-opt", "max-size=SIZE, max-file=N (repeatable; with minidockerd)", "list", "OPT",
                   dest="log_opt"),
            Option("-i --interactive", "keep stdin open"),
            Option("-t --tty", "allocate a pseudo-terminal"),
            Option("--name", "name the container", "value", "NAME"),
            Option("-h --hostname", "container hostname (default: the short ID)", "value", "NAME"),
            Option("-e --env", "set an environment variable (repeatable)", "list", "KEY=VALUE"),
            Option("-w --workdir", "working directory inside the container", "value", "DIR"),
            Option("-u --user", "UID[:GID] to run as", "value", "UID[:GID]"),
            Option("--entrypoint", "override the image's ENTRYPOINT", "value", "CMD"),
            Option("--init", "run an init as PID 1 that reaps zombies and forwards signals"),
            Option("--read-only", "mount the root filesystem read-only"),
            Option("--network --net", "bridge (default), none, host, container:NAME or a network's name",
                   "value", "NETWORK", dest="network"),
            Option("--network-alias", "another name peers on its user network resolve it by (repeatable)",
                   "list", "ALIAS", dest="network_alias"),
            Option("--mac-address", "the container's MAC address (default: 02:42 and its IPv4 address)",
                   "value", "MAC"),
            Option("-p --publish", "publish a container port on the host (repeatable)", "list",
                   "[IP:][HOST_PORT:]PORT[/udp]"),
            Option("-P --publish-all", "publish every exposed port on a random host port"),
            Option("--expose", "expose a port (repeatable)", "list", "PORT[/udp]"),
            *_resource_options(),
            Option("--pull", "pull the image first: missing (default), always or never", "value", "POLICY",
                   default="missing"),
            _platform_option(), Option("-q --quiet", "do not print the pull's progress"), _insecure_option(),
            *_mount_options(),
            *_security_options(),
        ],
        arguments=[Argument("image"), Argument("command", "rest")],
        interspersed=False,
    )
    exec_ = Command(
        "exec", "Run a command in a running container", commands.exec_,
        options=[
            Option("-e --env", "set an environment variable (repeatable)", "list", "KEY=VALUE"),
            Option("-w --workdir", "working directory inside the container", "value", "DIR", default="/"),
        ],
        arguments=[Argument("container"), Argument("command", "rest")],
        interspersed=False,
    )
    ps = Command("ps", "List containers", commands.ps, options=[
        Option("-a --all", "show stopped containers too"),
        Option("-q --quiet", "only IDs"),
    ])
    rm = Command("rm", "Remove stopped containers", commands.rm,
                 options=[Option("-f --force", "kill a running container first"),
                          Option("-v --volumes", "remove the container's anonymous volumes too")],
                 arguments=[Argument("containers", "many")])
    stats = Command("stats", "Show running containers' resource usage (their cgroups, or minidockerd's)",
                    commands.stats,
                    options=[
                        Option("--no-stream", "print one reading and exit"),
                        Option("--format", "table or json (one object per line)", "value", "FORMAT",
                               default="table"),
                        Option("--interval", "seconds between the two readings CPU % comes from", "value",
                               "SECONDS", default="1"),
                    ],
                    arguments=[Argument("containers", "rest")])
    images_flags = [Option("-q --quiet", "only image IDs"),
                    Option("--no-trunc", "full image IDs", dest="no_trunc")]
    images = Command("images", "List images", commands.images, options=images_flags)
    doctor = Command("doctor", "Check that this machine can run containers", commands.doctor)
    prune = Command("prune", "Remove stopped containers and everything they left", commands.system_prune,
                    options=[Option("-f --force", "do not ask (accepted for docker compatibility)"),
                             Option("--volumes", "remove unused anonymous volumes too")])
    system = Command("system", "Manage minidocker's state", subcommands=[prune])
    network = _network_commands()
    registry = _registry_commands()
    daemon = _daemon_commands()
    build = _build_command()
    supervised = _supervised_commands()
    return Command(
        "minidocker", "A container runtime built to learn how Docker works",
        options=[Option("-v --version", "print the version and exit")],
        subcommands=[run, exec_, ps, rm, stats, images, *_image_commands(images_flags), *registry, doctor,
                     network, system, _volume_commands(), build, daemon, *supervised],
    )


def _security_options() -> list[Option]:
    """--privileged, --cap-add, --cap-drop, --security-opt. Chapter 11."""
    return [
        Option("--privileged", "every capability, no seccomp, the host's devices: root on the host"),
        Option("--cap-add", "add a capability, e.g. NET_ADMIN, or ALL (repeatable)", "list", "CAP",
               dest="cap_add"),
        Option("--cap-drop", "drop a capability, e.g. NET_RAW, or ALL (repeatable)", "list", "CAP",
               dest="cap_drop"),
        Option("--security-opt", "no-new-privileges[=true], seccomp=unconfined|PROFILE.json, "
               "systempaths=unconfined (repeatable)", "list", "OPT", dest="security_opt"),
        Option("--device", "add a host device (repeatable)", "list", "HOST[:CONTAINER][:rwm]", dest="device"),
        Option("--userns", "host: no user namespace even with MINIDOCKER_USERNS_REMAP set", "value", "MODE"),
    ]


def _image_commands(images_flags: list[Option]) -> list[Command]:
    """tag, rmi, history, save, load, import, export, commit, and ``image <verb>``. Chapters 05-06."""
    def tag(name: str = "tag") -> Command:
        return Command(name, "Give an image another name", commands.tag,
                       arguments=[Argument("source"), Argument("target")])

    def rmi(name: str = "rmi") -> Command:
        return Command(name, "Remove images", commands.rmi,
                       options=[Option("-f --force", "remove even if containers use it")],
                       arguments=[Argument("images", "many")])

    def history(name: str = "history") -> Command:
        return Command(name, "Show the layers of an image", commands.history,
                       options=[Option("--no-trunc", "do not truncate CREATED BY", dest="no_trunc")],
                       arguments=[Argument("image")])

    def save(name: str = "save") -> Command:
        return Command(name, "Save images to a tar archive (docker save format) or an OCI layout",
                       commands.save,
                       options=[Option("-o --output", "write to this file (a directory for --format oci)",
                                       "value", "PATH"),
                                Option("--format", "docker (default) or oci", "value", "FORMAT",
                                       default="docker")],
                       arguments=[Argument("images", "many")])

    def load(name: str = "load") -> Command:
        return Command(name, "Load images from a docker save tar or an OCI layout (directory or tar)",
                       commands.load,
                       options=[Option("-i --input", "the archive or layout to read", "value", "PATH"),
                                Option("--name", "repository for OCI layouts whose tags carry none", "value",
                                       "NAME"),
                                Option("-q --quiet", "print nothing")])

    def import_(name: str = "import") -> Command:
        return Command(name, "Make an image of a root filesystem tarball", commands.import_,
                       options=[Option("-m --message", "message for the history", "value", "TEXT",
                                       default="")],
                       arguments=[Argument("file"), Argument("reference", "optional")])

    export = Command("export", "Export a container's filesystem as a tar archive", commands.export,
                     options=[Option("-o --output", "write to this file instead of stdout", "value", "FILE")],
                     arguments=[Argument("container")])
    commit = Command("commit", "Create a new image from a container's changes", commands.commit,
                     options=[Option("-m --message", "commit message", "value", "TEXT", default=""),
                              Option("-a --author", "author", "value", "NAME", default="")],
                     arguments=[Argument("container"), Argument("reference", "optional")])
    inspect = Command("inspect", "Show images as JSON", commands.image_inspect,
                      arguments=[Argument("images", "many")])
    prune = Command("prune", "Remove blobs and layers no image uses", commands.image_prune)
    image = Command("image", "Manage images", subcommands=[
        Command("ls", "List images", commands.images, options=images_flags), inspect, tag(), rmi("rm"),
        history(), save(), load(), import_(), prune])
    return [tag(), rmi(), history(), save(), load(), import_(), export, commit, image]


def _registry_commands() -> list[Command]:
    """pull, push, login, logout, ``registry serve`` (chapter 07)."""
    insecure = _insecure_option()
    quiet = Option("-q --quiet", "print only the image reference / digest")
    pull = Command("pull", "Download an image from a registry", commands.pull, options=[
        _platform_option(), quiet, insecure], arguments=[Argument("reference")])
    push = Command("push", "Upload an image to a registry", commands.push, options=[quiet, insecure],
                   arguments=[Argument("reference")])
    login = Command("login", "Log in to a registry (credentials go to ~/.minidocker/config.json)",
                    commands.login,
                    options=[Option("-u --username", "user name", "value", "USER"),
                             Option("-p --password", "password (prefer --password-stdin)", "value",
                                    "PASSWORD"),
                             Option("--password-stdin", "read the password from stdin",
                                    dest="password_stdin"),
                             insecure],
                    arguments=[Argument("server", "optional")])
    logout = Command("logout", "Forget a registry's credentials", commands.logout,
                     arguments=[Argument("server", "optional")])
    serve = Command("serve", "Run a registry server (distribution API v2)", commands.registry_serve, options=[
        Option("--addr", "address to listen on", "value", "HOST:PORT", default="127.0.0.1:5000"),
        Option("--root", "storage directory (default: $MINIDOCKER_ROOT/lib/registry)", "value", "DIR"),
        Option("--htpasswd", "require Basic auth with these bcrypt users (htpasswd -B)", "value", "FILE"),
        Option("--token-auth", "require Bearer tokens from our own token server at /token "
               "(its users: --htpasswd)", dest="token_auth"),
        Option("--seed", "push every local image into it first (a classroom mirror of Docker Hub)"),
        Option("-q --quiet", "no access log")])
    gc = Command("gc", "Remove the blobs no manifest of a stopped registry references", commands.registry_gc,
                 options=[Option("--root", "storage directory (default: $MINIDOCKER_ROOT/lib/registry)",
                                 "value", "DIR"),
                          Option("--dry-run", "only list what would be removed", dest="dry_run")])
    return [pull, push, login, logout, Command("registry", "Run a registry", subcommands=[serve, gc])]


def _build_command() -> Command:
    """``minidocker build`` (chapter 08): docker build's flags, the legacy builder's output."""
    return Command("build", "Build an image from a Dockerfile", commands.build, options=[
        Option("-t --tag", "name and optionally a tag, NAME[:TAG] (repeatable)", "list", "NAME:TAG",
               dest="tag"),
        Option("-f --file", "the Dockerfile (default: CONTEXT/Dockerfile; - for stdin)", "value", "FILE",
               dest="file"),
        Option("--build-arg", "set a build-time variable (repeatable)", "list", "KEY[=VALUE]",
               dest="build_arg"),
        Option("--target", "build up to this stage", "value", "STAGE"),
        Option("--no-cache", "do not use the cache", dest="no_cache"),
        Option("--pull", "always pull the FROM images"),
        Option("--network", "network for RUN: bridge (default), none or host", "value", "MODE"),
        Option("--label", "set a label on the image (repeatable)", "list", "KEY=VALUE"),
        Option("-q --quiet", "print only the image ID"),
        Option("--progress", "auto, plain (with timings per step) or tty", "value", "MODE", default="auto"),
        Option("--iidfile", "write the image ID to this file", "value", "FILE"),
    ], arguments=[Argument("context")])


def _insecure_option() -> Option:
    """``--insecure-registry``, of pull, push, login and run (which pulls)."""
    return Option("--insecure-registry", "use plain HTTP for this registry (repeatable; loopback always is)",
                  "list", "HOST[:PORT]", dest="insecure_registry")


def _platform_option() -> Option:
    """``--platform``, of pull and run (which pulls)."""
    return Option("--platform", "os/arch[/variant] to choose from a multi-platform image", "value",
                  "PLATFORM")


def _resource_options() -> list[Option]:
    """``run``'s cgroup flags (chapter 04), as docker's; values are checked in engine/resources.py."""
    return [
        Option("-m --memory", "memory limit, e.g. 64m or 1g (at least 6m)", "value", "SIZE"),
        Option("--memory-swap", "memory + swap limit; -1: unlimited swap (default: twice --memory)", "value",
               "SIZE"),
        Option("--cpus", "CPUs' worth of time per period, e.g. 0.5", "value", "N"),
        Option("-c --cpu-shares", "relative CPU weight (default 1024)", "value", "N"),
        Option("--cpu-period", "CFS period in microseconds", "value", "US"),
        Option("--cpu-quota", "CFS quota in microseconds per period", "value", "US"),
        Option("--pids-limit", "maximum number of processes (-1: unlimited)", "value", "N"),
    ]


def _supervised_commands() -> list[Command]:
    """logs, start, stop, restart, kill, wait, pause, unpause, rename, top, port (chapter 13): through
    minidockerd, which supervises."""
    many = [Argument("containers", "many")]
    grace = Option("-t --time", "seconds to wait before SIGKILL (default: the container's, else 10)",
                   "value", "N")
    return [
        Command("logs", "Show a container's output (its json-file log)", commands.logs, options=[
            Option("-f --follow", "follow the log until the container stops"),
            Option("-n --tail", "number of lines from the end (default all)", "value", "N"),
            Option("-t --timestamps", "prefix each line with its RFC 3339 time"),
            Option("--since", "only lines since this Unix time", "value", "TIMESTAMP")],
                arguments=[Argument("container")]),
        Command("start", "Start stopped containers", commands.start, arguments=many),
        Command("stop", "Stop containers: SIGTERM (or STOPSIGNAL), the grace period, SIGKILL", commands.stop,
                options=[grace], arguments=many),
        Command("restart", "Stop then start containers", commands.restart, options=[grace], arguments=many),
        Command("kill", "Send a signal to containers (default SIGKILL)", commands.kill,
                options=[Option("-s --signal", "signal name or number", "value", "SIGNAL")], arguments=many),
        Command("wait", "Wait for containers to stop, print their exit codes", commands.wait, arguments=many),
        Command("pause", "Freeze every process of containers (the cgroup freezer)", commands.pause,
                arguments=many),
        Command("unpause", "Thaw paused containers", commands.unpause, arguments=many),
        Command("rename", "Rename a container", commands.rename,
                arguments=[Argument("container"), Argument("new_name")]),
        Command("top", "Show a container's processes (ps options after its name)", commands.top,
                arguments=[Argument("container"), Argument("ps_args", "rest")], interspersed=False),
        Command("port", "List a container's published ports, or the host addresses of one", commands.port,
                arguments=[Argument("container"), Argument("private_port", "optional")]),
    ]


def _daemon_commands() -> Command:
    """``minidocker daemon start|stop|status`` (chapter 13): minidockerd in the background."""
    start = Command("start", "Start minidockerd in the background", commands.daemon_start,
                    options=[*daemon_options(), Option("-D --debug", "one log line per request")])
    return Command("daemon", "Start, stop or check minidockerd", subcommands=[
        start,
        Command("stop", "Stop minidockerd (containers keep running)", commands.daemon_stop,
                options=daemon_options()),
        Command("status", "Say whether minidockerd runs and answers", commands.daemon_status,
                options=daemon_options()),
    ])


def daemon_options():
    """The flags minidockerd and ``minidocker daemon start|stop|status`` share."""
    return [
        Option("-H --host", "the socket to listen on (unix:///PATH; default /run/minidocker/minidocker.sock)",
               "list", "unix:///PATH"),
        Option("--root", "state root (both lib/ and run/ under it; default /var/lib and /run/minidocker)",
               "value", "DIR"),
        Option("-p --pidfile", "where the daemon writes its PID (default <run>/minidockerd.pid)", "value",
               "FILE"),
        Option("--config-file", "daemon configuration file (default /etc/minidocker/daemon.json)", "value",
               "FILE", dest="config_file"),
        Option("--tlsverify", "mutual TLS on tcp:// hosts: clients need a certificate --tlscacert signed"),
        Option("--tlscacert", "CA certificate that client certificates must be signed by", "value", "FILE"),
        Option("--tlscert", "the daemon's certificate", "value", "FILE"),
        Option("--tlskey", "the daemon's private key", "value", "FILE"),
    ]


def _network_commands() -> Command:
    """``minidocker network create/ls/inspect/rm/prune/connect/disconnect`` (chapter 09)."""
    pair = [Argument("network"), Argument("container")]
    return Command("network", "Manage networks", subcommands=[
        Command("create", "Create a bridge network", commands.network_create, options=[
            Option("-d --driver", "network driver (only bridge)", "value", "DRIVER", default="bridge"),
            Option("--subnet", "CIDR, e.g. 10.214.7.0/24 (default: a free /24)", "value", "CIDR"),
        ], arguments=[Argument("name")]),
        Command("ls", "List networks", commands.network_ls, options=[Option("-q --quiet", "only names")]),
        Command("inspect", "Show networks and their containers as JSON", commands.network_inspect,
                arguments=[Argument("networks", "many")]),
        Command("rm", "Remove networks", commands.network_rm, arguments=[Argument("networks", "many")]),
        Command("prune", "Remove networks without containers", commands.network_prune,
                options=[Option("-f --force", "do not ask (accepted for docker compatibility)")]),
        Command("connect", "Connect a running container to a network", commands.network_connect,
                arguments=pair),
        Command("disconnect", "Disconnect a container from a network", commands.network_disconnect,
                arguments=pair),
    ])


def _mount_options() -> list[Option]:
    """``run``'s -v, --mount, --tmpfs, --volumes-from (chapter 10); checked in engine/volumes.py."""
    return [
        Option("-v --volume", "bind a host path or mount a volume; OPTS: ro, nocopy, rslave ... (repeatable)",
               "list", "[SRC:]DST[:OPTS]", dest="volumes"),
        Option("--mount", "type=bind|volume|tmpfs,src=...,dst=...[,readonly] (repeatable)", "list", "SPEC",
               dest="mounts"),
        Option("--tmpfs", "mount a tmpfs, e.g. /run:size=64m,mode=1777 (repeatable)", "list", "DST[:OPTS]"),
        Option("--volumes-from", "mount the volumes of a container (repeatable)", "list", "CONTAINER[:ro|rw]",
               dest="volumes_from"),
    ]


def _volume_commands() -> Command:
    """``minidocker volume create/ls/inspect/rm/prune`` (chapter 10)."""
    labels = Option("--label", "set metadata (repeatable)", "list", "KEY=VALUE", dest="labels")
    return Command("volume", "Manage volumes", subcommands=[
        Command("create", "Create a volume", commands.volume_create, options=[
            Option("-d --driver", "volume driver (only local)", "value", "DRIVER", default="local"),
            Option("-o --opt", "the local driver's options: type=, device=, o= (repeatable)", "list",
                   "KEY=VALUE", dest="options"),
            labels, Option("--name", "the volume's name", "value", "NAME"),
        ], arguments=[Argument("volume", "optional")]),
        Command("ls", "List volumes", commands.volume_ls, options=[
            Option("-q --quiet", "only names"),
            Option("-f --filter", "dangling=true|false, name=..., label=K[=V], driver=local (repeatable)",
                   "list", "FILTER", dest="filters"),
        ]),
        Command("inspect", "Show volumes as JSON", commands.volume_inspect,
                arguments=[Argument("volumes", "many")]),
        Command("rm", "Remove volumes (refused while a container uses one)", commands.volume_rm, options=[
            Option("-f --force", "do not fail for a volume that does not exist")],
            arguments=[Argument("volumes", "many")]),
        Command("prune", "Remove unused anonymous volumes", commands.volume_prune, options=[
            Option("-a --all", "all unused volumes, named ones too"),
            Option("-f --force", "do not ask (accepted for docker compatibility)"),
            Option("--filter", "label=K[=V] or label!=K[=V] (repeatable)", "list", "FILTER", dest="filters"),
        ]),
    ])
