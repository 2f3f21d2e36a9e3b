"""The actions behind each command: parse result in, exit code out.

Each is a few lines: call one engine function, print, return. Imports are local so
that ``minidocker --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["doctor", "exec_", "images", "ps", "rm", "run", "stats", "system_prune"]


def run(args: argparse.Namespace) -> int:
    from minidocker.engine.resources import ResourceFlags
    from minidocker.engine.run import RunOptions, run_container

    _require_root()
    resources = ResourceFlags(
        memory=args.memory, memory_swap=args.memory_swap, cpus=args.cpus, cpu_shares=args.cpu_shares,
        cpu_period=args.cpu_period, cpu_quota=args.cpu_quota, pids_limit=args.pids_limit,
    )
    options = RunOptions(
        image=args.image, command=args.command, name=args.name, hostname=args.hostname, env=args.env,
        workdir=args.workdir, user=args.user, entrypoint=args.entrypoint, interactive=args.interactive,
        tty=args.tty, init=args.init, remove=args.remove, read_only=args.read_only, resources=resources,
    )
    status = run_container(options)
    if status.oom_killed:
        print(f"minidocker: container {status.describe()}: it reached its memory limit", file=sys.stderr)
    return status.exit_code


def stats(args: argparse.Namespace) -> int:
    import time

    from minidocker.engine.stats import format_json, format_table, sample_stats

    _require_root()
    while True:
        rows = sample_stats(args.containers, interval=args.interval)
        text = format_json(rows) if args.format == "json" else format_table(rows)
        if not args.no_stream and args.format == "table":
            text = "\033[2J\033[H" + text  # clear the screen, like docker stats
        print(text, flush=True)
        if args.no_stream or not rows:
            return 0
        time.sleep(0.01)


def exec_(args: argparse.Namespace) -> int:
    from minidocker.engine.exec import exec_container

    _require_root()
    return exec_container(args.container, args.command, args.env, args.workdir).exit_code


def ps(args: argparse.Namespace) -> int:
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
        status = "Up" if c.status == "running" else f"Exited ({c.exit_code})" if c.exit_code is not None else c.status
        print(f"{c.id[:12]:<14}{c.image:<18}{command:<24}{status:<18}{c.name}")
    return 0


def rm(args: argparse.Namespace) -> int:
    from minidocker.engine.remove import remove_container

    _require_root()
    failed = 0
    for ref in args.containers:
        try:
            remove_container(ref, force=args.force)
            print(ref)
        except Exception as err:  # noqa: BLE001 - report each, go on, like docker rm
            print(f"minidocker: {err}", file=sys.stderr)
            failed = 1
    return failed


def images(args: argparse.Namespace) -> int:
    from minidocker.image import ImageStore
    from minidocker.paths import state_roots

    print(f"{'REPOSITORY':<24}{'TAG':<12}")
    for image in ImageStore(state_roots().images).list():
        print(f"{image.name:<24}{image.tag:<12}")
    return 0


def doctor(args: argparse.Namespace) -> int:
    from minidocker.doctor import format_report, run_checks

    checks = run_checks()
    print(format_report(checks))
    return 0 if all(c.ok or not c.required for c in checks) else 1


def system_prune(args: argparse.Namespace) -> int:
    from minidocker.engine.remove import prune

    _require_root()
    removed = prune()
    for line in removed:
        print(line)
    print(f"Total: {len(removed)} removed")
    return 0


def _require_root() -> None:
    import os

    from minidocker.errors import MinidockerError

    if os.geteuid() != 0:
        raise MinidockerError("this command needs root: it creates namespaces and mounts",
                              hint="run it with sudo, or as root in a VM made for the course")
