"""``minidockerd`` (the daemon, in the foreground) and ``minidocker daemon start|stop|status``.

::

    minidockerd [-H unix:///run/minidocker/minidocker.sock] [--root DIR] [--pidfile FILE]
                [-D|--debug] [--config-file FILE] [--log-level LEVEL] [-G|--group GROUP]
                [-H tcp://ADDR:PORT --tlsverify --tlscacert CA --tlscert CERT --tlskey KEY]
    minidocker daemon start     the same, in the background, logging to <run>/minidockerd.log
    minidocker daemon stop      SIGTERM to the pidfile's PID, wait until it is gone
    minidocker daemon status    running or not (exit 0 / 3, like an init script's status)

``--root DIR`` moves both state roots, as ``MINIDOCKER_ROOT`` does. The installed
``minidockerd`` is a launcher like ``minidocker``'s (cli/launcher.py).
See: dockerd(8).
"""

from __future__ import annotations

import os
import sys
import time

from minidocker.cli.flags import Values

__all__ = ["daemon_start", "daemon_status", "daemon_stop", "main", "main_and_exit"]


def _command():
    from minidocker.cli.flags import Command, Option
    from minidocker.cli.parsers import daemon_options

    return Command("minidockerd", "minidocker's daemon: the Engine API on a unix socket", _serve, options=[
        *daemon_options(),
        Option("-D --debug", "debug logging: one line per request"),
        Option("-l --log-level", "debug, info, warn, error or fatal", "value", "LEVEL"),
        Option("-G --group", "group that may use the socket (default minidocker, if it exists)", "value",
               "GROUP"),
        Option("-v --version", "print the version and exit"),
    ])


def _config(args: Values):
    from minidocker.engine.config import load_config

    flags: dict[str, object] = {}
    if args.host:
        flags["hosts"] = list(args.host)
    for key, attr in (("root", "root"), ("pidfile", "pidfile"), ("log-level", "log_level"),
                      ("group", "group"), ("tlscacert", "tlscacert"), ("tlscert", "tlscert"),
                      ("tlskey", "tlskey")):
        if getattr(args, attr, None):
            flags[key] = getattr(args, attr)
    if getattr(args, "debug", False):
        flags["debug"] = True
    if getattr(args, "tlsverify", False):
        flags["tlsverify"] = True
    return load_config(args.config_file, flags)


def _serve(args: Values) -> int:
    import gc

    from minidocker.api.daemon import Daemon, setup_logging

    gc.enable()  # the launcher turned the cyclic collector off for start-up; a daemon runs for days
    config = _config(args)
    setup_logging(config.debug, config.log_level)
    if os.geteuid() != 0:
        print("minidockerd: warning: not running as root: containers cannot be created", file=sys.stderr)
    Daemon(config, reload=lambda: _config(args)).serve()
    return 0


def main(argv: list[str] | None = None) -> int:
    """minidockerd's entry point: usage errors exit 125, minidocker errors print
    ``minidockerd: <message>``."""
    from minidocker.cli.flags import UsageError, format_help, parse
    from minidocker.errors import MinidockerError

    try:
        command, args = parse(_command(), sys.argv[1:] if argv is None else argv)
    except UsageError as err:
        print(f"minidockerd: {err}\nSee 'minidockerd --help'.", file=sys.stderr)
        return 125
    if args.help:
        print(format_help(command))
        return 0
    if args.version:
        from minidocker import __version__

        print(f"minidockerd {__version__}")
        return 0
    try:
        return command.action(args)
    except MinidockerError as err:
        print(f"minidockerd: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def main_and_exit(argv: list[str] | None = None) -> None:
    sys.exit(main(argv))


# -- minidocker daemon start|stop|status ------------------------------------------------------------

def _paths(args: Values) -> tuple[str, str, str]:
    """(socket, pidfile, log file) for these flags and the config file."""
    from minidocker.api.daemon import default_pidfile

    config = _config(args)
    return config.socket, default_pidfile(config), str(config.roots.run / "minidockerd.log")


def _answers(socket_path: str) -> bool:
    import socket

    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect(socket_path)
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: minidocker\r\nConnection: close\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _daemon_argv(args: Values) -> list[str]:
    """How to start minidockerd: the launcher beside ours if installed, else ``python -m``."""
    beside = os.path.join(os.path.dirname(os.path.realpath(sys.argv[0] or "")), "minidockerd")
    argv = [beside] if os.access(beside, os.X_OK) else [sys.executable, "-m", "minidocker.cli.daemon"]
    for host in args.host:
        argv += ["-H", host]
    for flag, value in (("--root", args.root), ("--pidfile", args.pidfile),
                        ("--config-file", args.config_file), ("--tlscacert", args.tlscacert),
                        ("--tlscert", args.tlscert), ("--tlskey", args.tlskey)):
        if value:
            argv += [flag, value]
    if args.tlsverify:
        argv.append("--tlsverify")
    if getattr(args, "debug", False):
        argv.append("--debug")
    return argv


def daemon_start(args: Values) -> int:
    """Start minidockerd in the background (its own session, output to the log file); wait for its socket."""
    import subprocess

    from minidocker.api.daemon import read_pidfile
    from minidocker.errors import Conflict, MinidockerError

    socket_path, pidfile, logfile = _paths(args)
    pid = read_pidfile(pidfile)
    if pid is not None:
        raise Conflict(f"minidockerd is already running (pid {pid})", hint="minidocker daemon stop")
    os.makedirs(os.path.dirname(logfile), exist_ok=True)
    with open(logfile, "ab") as log, open(os.devnull, "rb") as null:
        proc = subprocess.Popen(_daemon_argv(args), stdin=null, stdout=log, stderr=log,
                                start_new_session=True, close_fds=True)
    deadline = time.monotonic() + 15
    while not _answers(socket_path):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = open(logfile, errors="replace").read()[-2000:]
            if proc.returncode is not None:
                why = f"it exited with status {proc.returncode}"
            else:
                why = f"no answer on {socket_path}"
            raise MinidockerError(f"failed to start minidockerd: {why}\n{tail.rstrip()}")
        time.sleep(0.02)
    print(f"minidockerd started (pid {proc.pid}, socket unix://{socket_path}, log {logfile})")
    return 0


def daemon_stop(args: Values) -> int:
    """SIGTERM the daemon of the pidfile and wait until it has gone (its containers keep running)."""
    import signal

    from minidocker.api.daemon import read_pidfile
    from minidocker.errors import MinidockerError

    _, pidfile, _ = _paths(args)
    pid = read_pidfile(pidfile)
    if pid is None:
        print("minidockerd is not running")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while read_pidfile(pidfile) == pid and _alive(pid):
        if time.monotonic() > deadline:
            raise MinidockerError(f"failed to stop minidockerd (pid {pid}): still running 30 s after SIGTERM")
        time.sleep(0.02)
    print(f"minidockerd stopped (pid {pid})")
    return 0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def daemon_status(args: Values) -> int:
    """0 and a line when the daemon runs and answers; 3 when it does not (LSB init script convention)."""
    from minidocker.api.daemon import read_pidfile

    socket_path, pidfile, _ = _paths(args)
    pid = read_pidfile(pidfile)
    if pid is not None and _answers(socket_path):
        print(f"minidockerd is running (pid {pid}, socket unix://{socket_path})")
        return 0
    if pid is not None:
        print(f"minidockerd (pid {pid}) is running but does not answer on unix://{socket_path}")
        return 1
    print("minidockerd is not running\nhint: start it with: minidocker daemon start")
    return 3


if __name__ == "__main__":
    main_and_exit()
