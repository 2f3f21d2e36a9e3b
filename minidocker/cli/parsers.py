"""The argument parsers, apart from the actions they call (commands.py)."""

from __future__ import annotations

import argparse
import sys

__all__ = ["build_parser"]

TYPE_CHECKING = False  # typing costs 3 ms of start-up; annotations are strings here anyway
if TYPE_CHECKING:
    from typing import NoReturn


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors exit with 125 like docker's and name the command."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"minidocker: {message}\nSee '{self.prog} --help'.\n")
        sys.exit(125)


def build_parser() -> argparse.ArgumentParser:
    from minidocker.cli import commands

    parser = _Parser(prog="minidocker", description="A container runtime built to learn how Docker works.")
    parser.add_argument("--version", action="version", version=f"minidocker {_version()}")
    sub = parser.add_subparsers(metavar="COMMAND", parser_class=_Parser)

    run = sub.add_parser("run", help="run a command in a new container", add_help=False,
                         description="Run a command in a new container (direct mode: no daemon).")
    run.add_argument("--help", action="help", help="show this help message and exit")
    run.add_argument("--rm", dest="remove", action="store_true", help="remove the container when it exits")
    run.add_argument("-i", "--interactive", action="store_true", help="keep stdin open")
    run.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-terminal")
    run.add_argument("--name", help="name the container")
    run.add_argument("-h", "--hostname", help="container hostname (default: the short ID)")
    run.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE",
                     help="set an environment variable (repeatable)")
    run.add_argument("-w", "--workdir", help="working directory inside the container")
    run.add_argument("-u", "--user", help="UID[:GID] to run as")
    run.add_argument("--entrypoint", help="override the image's ENTRYPOINT")
    run.add_argument("--init", action="store_true", help="run an init as PID 1 that reaps and forwards signals")
    run.add_argument("--read-only", action="store_true", help="mount the root filesystem read-only")
    run.add_argument("--network", "--net", dest="network", metavar="NETWORK",
                     help="bridge (default), none, host, container:NAME or a network's name")
    run.add_argument("-p", "--publish", action="append", default=[], metavar="[IP:][HOST_PORT:]PORT[/udp]",
                     help="publish a container port on the host (repeatable)")
    run.add_argument("-P", "--publish-all", action="store_true", help="publish every exposed port on a random port")
    run.add_argument("--expose", action="append", default=[], metavar="PORT[/udp]", help="expose a port")
    run.add_argument("image", help="image name, e.g. busybox")
    run.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments")
    run.set_defaults(action=commands.run)

    exec_ = sub.add_parser("exec", help="run a command in a running container")
    exec_.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE")
    exec_.add_argument("-w", "--workdir", default="/")
    exec_.add_argument("container")
    exec_.add_argument("command", nargs=argparse.REMAINDER)
    exec_.set_defaults(action=commands.exec_)

    ps = sub.add_parser("ps", help="list containers")
    ps.add_argument("-a", "--all", action="store_true", help="show stopped containers too")
    ps.add_argument("-q", "--quiet", action="store_true", help="only IDs")
    ps.set_defaults(action=commands.ps)

    rm = sub.add_parser("rm", help="remove stopped containers")
    rm.add_argument("-f", "--force", action="store_true", help="kill a running container first")
    rm.add_argument("containers", nargs="+")
    rm.set_defaults(action=commands.rm)

    images = sub.add_parser("images", help="list images")
    images.set_defaults(action=commands.images)

    doctor = sub.add_parser("doctor", help="check that this machine can run containers")
    doctor.set_defaults(action=commands.doctor)

    _network_parsers(sub)

    system = sub.add_parser("system", help="manage minidocker's state")
    system_sub = system.add_subparsers(metavar="COMMAND", parser_class=_Parser)
    prune = system_sub.add_parser("prune", help="remove stopped containers and everything they left")
    prune.add_argument("-f", "--force", action="store_true", help="do not ask (accepted for docker compatibility)")
    prune.set_defaults(action=commands.system_prune)
    return parser


def _network_parsers(sub: argparse._SubParsersAction) -> None:
    from minidocker.cli import commands

    network = sub.add_parser("network", help="manage networks")
    network.set_defaults(action=lambda _args: network.print_help() or 0)
    net = network.add_subparsers(metavar="COMMAND", parser_class=_Parser)
    create = net.add_parser("create", help="create a bridge network")
    create.add_argument("-d", "--driver", default="bridge", help="only bridge")
    create.add_argument("--subnet", help="CIDR, e.g. 10.214.7.0/24 (default: a free /24)")
    create.add_argument("name")
    create.set_defaults(action=commands.network_create)
    ls = net.add_parser("ls", aliases=["list"], help="list networks")
    ls.add_argument("-q", "--quiet", action="store_true", help="only names")
    ls.set_defaults(action=commands.network_ls)
    inspect = net.add_parser("inspect", help="show networks as JSON, with their containers")
    inspect.add_argument("networks", nargs="+")
    inspect.set_defaults(action=commands.network_inspect)
    rm = net.add_parser("rm", aliases=["remove"], help="remove networks")
    rm.add_argument("networks", nargs="+")
    rm.set_defaults(action=commands.network_rm)
    prune = net.add_parser("prune", help="remove networks without containers")
    prune.add_argument("-f", "--force", action="store_true", help="do not ask (accepted for docker compatibility)")
    prune.set_defaults(action=commands.network_prune)
    for verb, text in (("connect", "connect a running container to a network"),
                       ("disconnect", "disconnect a container from a network")):
        p = net.add_parser(verb, help=text)
        p.add_argument("network")
        p.add_argument("container")
        p.set_defaults(action=getattr(commands, f"network_{verb}"))


def _version() -> str:
    from minidocker import __version__

    return __version__
