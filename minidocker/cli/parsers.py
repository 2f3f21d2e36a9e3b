"""The command line as data: every command, its flags and arguments (actions in commands.py).

Read with :func:`minidocker.cli.flags.parse`; the flag rules are docker's (see flags.py).
"""

from __future__ import annotations

from minidocker.cli import commands
from minidocker.cli.flags import Argument, Command, Option

__all__ = ["build_commands"]


def build_commands() -> Command:
    """The ``minidocker`` command tree."""
    run = Command(
        "run", "Run a command in a new container (direct mode: no daemon)", commands.run,
        options=[
            Option("--rm", "remove the container when it exits", dest="remove"),
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
                 options=[Option("-f --force", "kill a running container first")],
                 arguments=[Argument("containers", "many")])
    images = Command("images", "List images", commands.images)
    doctor = Command("doctor", "Check that this machine can run containers", commands.doctor)
    prune = Command("prune", "Remove stopped containers and everything they left", commands.system_prune,
                    options=[Option("-f --force", "do not ask (accepted for docker compatibility)")])
    system = Command("system", "Manage minidocker's state", subcommands=[prune])
    return Command(
        "minidocker", "A container runtime built to learn how Docker works",
        options=[Option("-v --version", "print the version and exit")],
        subcommands=[run, exec_, ps, rm, images, doctor, system],
    )
