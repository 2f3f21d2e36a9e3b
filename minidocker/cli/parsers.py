"""The argument parsers, apart from the actions they call (commands.py)."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

__all__ = ["build_parser"]


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
    _add_resource_flags(run)
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

    stats = sub.add_parser("stats", help="show running containers' resource usage (from their cgroups)")
    stats.add_argument("--no-stream", action="store_true", help="print one reading and exit")
    stats.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    stats.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                       help="time between the readings CPU %% is computed from (default 1)")
    stats.add_argument("containers", nargs="*", help="containers (default: all running)")
    stats.set_defaults(action=commands.stats)

    images = sub.add_parser("images", help="list images")
    images.set_defaults(action=commands.images)

    doctor = sub.add_parser("doctor", help="check that this machine can run containers")
    doctor.set_defaults(action=commands.doctor)

    system = sub.add_parser("system", help="manage minidocker's state")
    system_sub = system.add_subparsers(metavar="COMMAND", parser_class=_Parser)
    prune = system_sub.add_parser("prune", help="remove stopped containers and everything they left")
    prune.add_argument("-f", "--force", action="store_true", help="do not ask (accepted for docker compatibility)")
    prune.set_defaults(action=commands.system_prune)
    return parser


def _add_resource_flags(run: argparse.ArgumentParser) -> None:
    """docker run's cgroup flags (chapter 04); values are checked by engine/resources.py."""
    group = run.add_argument_group("resource limits (cgroups)")
    group.add_argument("-m", "--memory", metavar="SIZE", help="memory limit, e.g. 64m, 1g (at least 6m)")
    group.add_argument("--memory-swap", metavar="SIZE",
                       help="memory + swap limit; -1 for unlimited swap (default: twice --memory)")
    group.add_argument("--cpus", type=float, metavar="N", help="CPUs' worth of time, e.g. 0.5")
    group.add_argument("--cpu-shares", "-c", type=int, metavar="N", help="relative CPU weight (default 1024)")
    group.add_argument("--cpu-period", type=int, metavar="US", help="CFS period in µs")
    group.add_argument("--cpu-quota", type=int, metavar="US", help="CFS quota in µs per period")
    group.add_argument("--pids-limit", type=int, metavar="N", help="maximum number of processes (-1: unlimited)")


def _version() -> str:
    from minidocker import __version__

    return __version__
