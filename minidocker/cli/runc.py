"""The actions of ``minidocker-runc`` / ``minidocker runtime``: runc's command line over minidocker.runtime.

Each action parses nothing (runc_parsers.py did), calls one library function and
prints what runc prints. Errors: exit status 1 and the message on stderr (and in
``--log``, as a JSON line ``{"level": "error", "msg": ..., "time": ...}`` with
``--log-format json``: containerd's shim reads the error from there), as runc.

    minidocker-runc [--root DIR] [--log FILE] [--log-format text|json] [--debug] COMMAND ...
"""

from __future__ import annotations

import os
import sys

from minidocker.atomic import dumps, loads  # json through _json: no `import json` (re, enum) per command

__all__ = ["main", "main_and_exit"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from minidocker.cli.flags import Values
    from typing import Any


class _Globals:
    prog = "minidocker-runc"
    root = ""
    log: str | None = None
    log_format = "text"
    debug = False


G = _Globals()


def main(argv: list[str] | None = None, prog: str = "minidocker-runc") -> int:
    """Parse runc's global flags, then the command; run it; errors become exit status 1."""
    from minidocker.cli.flags import UsageError, format_help, parse
    from minidocker.cli.runc_parsers import GLOBAL_OPTIONS, build_runc_commands

    argv = list(sys.argv[1:] if argv is None else argv)
    G.prog = prog
    tree = build_runc_commands(prog)
    try:
        rest = _read_globals(argv, GLOBAL_OPTIONS)
    except ValueError as err:
        return _fail(str(err))
    if rest is None:
        print(format_help(tree) + "\n\nGlobal options:\n" + "\n".join(
            f"  {name:<18}{text}" for name, (_, text) in GLOBAL_OPTIONS.items()))
        return 0
    if rest and rest[0] in ("-v", "--version"):
        from minidocker import __version__
        from minidocker.runtime.spec import OCI_VERSION

        print(f"{prog} version {__version__}\nspec: {OCI_VERSION}")
        return 0
    try:
        command, args = parse(tree, rest)
    except UsageError as err:
        return _fail(f"{err}\nSee '{err.command.path} --help'.")
    if args.help or command.action is None:
        print(format_help(command))
        return 0
    if G.debug:
        _log("debug", f"{prog} {' '.join(argv)}")
    try:
        return command.action(args)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - the one place errors become messages
        from minidocker.errors import MinidockerError

        if isinstance(err, MinidockerError):
            return _fail(str(err))
        if isinstance(err, OSError):
            return _fail(f"{err.strerror or err}: {err.filename or ''}".rstrip(": "))
        raise


def main_and_exit(argv: list[str] | None = None) -> None:
    """What the installed ``minidocker-runc`` calls: :func:`main`, then a quick exit (see cli/main.py)."""
    code = main(argv)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        sys.exit(code)
    os._exit(code)


def _read_globals(argv: list[str], options: dict[str, tuple[bool, str]]) -> list[str] | None:
    """Consume the global flags at the front of ``argv`` (``--x v``, ``--x=v``, ``-x v``); None for --help."""
    from minidocker.runtime.state import default_root

    G.root, G.log, G.log_format, G.debug = default_root(), None, "text", False
    while argv and argv[0].startswith("-") and argv[0] not in ("-v", "--version"):
        arg = argv.pop(0)
        if arg in ("-h", "--help"):
            return None
        name, has_value, value = ("-" + arg.lstrip("-")).partition("=")
        name = "-" + name if not name.startswith("--") else name
        if name not in options:
            raise ValueError(f"unknown global flag: {arg}")
        takes_value, _ = options[name]
        if takes_value and not has_value:
            if not argv:
                raise ValueError(f"flag needs an argument: {name}")
            value = argv.pop(0)
        if name == "--root":
            G.root = os.path.abspath(value)
        elif name == "--log":
            G.log = value
        elif name == "--log-format":
            if value not in ("text", "json"):
                raise ValueError(f"invalid --log-format {value!r}: expected text or json")
            G.log_format = value
        elif name == "--debug":
            G.debug = True
        elif name == "--systemd-cgroup":
            raise ValueError("--systemd-cgroup is not supported: minidocker drives cgroupfs itself\n"
                             "hint: drop the flag (dockerd: --exec-opt native.cgroupdriver=cgroupfs)")
    return argv


def _fail(message: str) -> int:
    print(f"{G.prog}: {message}", file=sys.stderr)
    _log("error", message)
    return 1


def _log(level: str, message: str) -> None:
    if not G.log:
        return
    import time

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if G.log_format == "json":
        line = dumps({"level": level, "msg": message, "time": now})
    else:
        line = f'time="{now}" level={level} msg={dumps(message)}'
    try:
        with open(G.log, "a") as f:
            f.write(line + "\n")
    except OSError:
        pass


# ---- actions ------------------------------------------------------------------------------------


def create(args: Values) -> int:
    from minidocker.runtime import create as create_container

    create_container(G.root, args.container_id, args.bundle, pid_file=args.pid_file,
                     console_socket=args.console_socket, no_pivot=args.no_pivot,
                     preserve_fds=_count(args.preserve_fds))
    return 0


def start(args: Values) -> int:
    from minidocker.runtime import start as start_container

    start_container(G.root, args.container_id)
    return 0


def state(args: Values) -> int:
    from minidocker.runtime import state as container_state

    print(dumps(container_state(G.root, args.container_id), indent=2))
    return 0


def kill(args: Values) -> int:
    from minidocker.runtime import kill as kill_container

    kill_container(G.root, args.container_id, args.signal or "SIGTERM", all_processes=args.all)
    return 0


def delete(args: Values) -> int:
    from minidocker.runtime import delete as delete_container

    delete_container(G.root, args.container_id, force=args.force)
    return 0


def pause(args: Values) -> int:
    from minidocker.runtime import pause as pause_container

    pause_container(G.root, args.container_id)
    return 0


def resume(args: Values) -> int:
    from minidocker.runtime import resume as resume_container

    resume_container(G.root, args.container_id)
    return 0


def run(args: Values) -> int:
    """create + start; then, unless --detach, wait as the container's parent and delete it."""
    from minidocker.runtime import create as create_container
    from minidocker.runtime import load_config
    from minidocker.runtime import start as start_container

    bundle = os.path.abspath(args.bundle or os.getcwd())
    if args.detach or args.console_socket:
        if not args.detach:
            return _fail("run with --console-socket needs --detach (the socket's owner handles the terminal)")
        create_container(G.root, args.container_id, bundle, pid_file=args.pid_file,
                         console_socket=args.console_socket, no_pivot=args.no_pivot,
                         preserve_fds=_count(args.preserve_fds))
        start_container(G.root, args.container_id)
        return 0
    from minidocker.runtime import ContainerProcess

    proc = ContainerProcess(load_config(bundle), root=G.root, container_id=args.container_id, bundle=bundle)
    try:
        with proc.forwarding_signals():
            pid = proc.create()
            if args.pid_file:
                from minidocker.atomic import write_bytes

                write_bytes(os.path.abspath(args.pid_file), str(pid).encode(), durable=False)
            proc.start()
            return proc.wait().exit_code
    finally:
        if args.keep:
            proc._created = False  # noqa: SLF001 - --keep: leave the stopped container for `delete`
        proc.destroy()


def _bundle_config(bundle: str) -> dict:
    """The container's config.json (for exec: its linux.seccomp); {} if the bundle is gone."""
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            return loads(f.read())
    except (OSError, ValueError):
        return {}


def exec_(args: Values) -> int:
    """Run a process in the container: from --process FILE, or the arguments and flags."""
    from minidocker.errors import InvalidArgument, InvalidState
    from minidocker.runtime import exec_in, load
    from minidocker.runtime.status import Status

    container = load(G.root, args.container_id)
    if container.status is not Status.RUNNING:
        raise InvalidState(f"cannot exec in container {args.container_id}: it is {container.status}")
    process = _process_from(args)
    if not process.get("args"):
        raise InvalidArgument("exec needs a command, or --process FILE")
    sock = None
    if process.get("terminal"):
        if not args.console_socket:
            raise InvalidArgument("exec with a terminal needs --console-socket",
                                  hint="the socket's owner (containerd's shim) receives the pty master")
        from minidocker.runtime.create import console_connection

        sock = console_connection(args.console_socket)
    env = dict(item.split("=", 1) for item in process.get("env", []) if "=" in item)
    # The process's own user and capabilities, the container's seccomp filter: as runc exec does.
    spec = {**_bundle_config(container.bundle), "process": process}
    try:
        result = exec_in(container.pid, process["args"], env or None,  # type: ignore[arg-type]
                         process.get("cwd", "/"), user=process.get("user"), detach=args.detach,
                         preserve_fds=_count(args.preserve_fds), console_socket=sock, spec=spec)
    finally:
        if sock is not None:
            sock.close()
    if args.detach:
        if args.pid_file:
            from minidocker.atomic import write_bytes

            write_bytes(os.path.abspath(args.pid_file), str(result).encode(), durable=False)
        return 0
    return result.exit_code


def list_(args: Values) -> int:
    from minidocker.runtime import list_states

    states = list_states(G.root)
    if args.quiet:
        print("\n".join(s.id for s in states))
    elif args.format == "json":
        print(dumps([s.to_oci() for s in states]))
    else:
        print(f"{'ID':<16}{'PID':<10}{'STATUS':<10}{'BUNDLE':<40}{'CREATED':<32}OWNER")
        for s in states:
            oci = s.to_oci()
            print(f"{s.id:<16}{oci['pid']:<10}{s.status.value:<10}{s.bundle:<40}{s.created:<32}root")
    return 0


def ps(args: Values) -> int:
    from minidocker.errors import InvalidState
    from minidocker.runtime import load

    container = load(G.root, args.container_id)
    if not container.status.can_kill():
        raise InvalidState(f"cannot list the processes of container {args.container_id}: "
                           f"it is {container.status}")
    pids = [container.pid]
    if container.cgroup:
        from minidocker.cgroups import open_cgroup

        pids = open_cgroup(container.cgroup).procs()
    if args.format == "json":
        print(dumps(sorted(pids)))
        return 0
    import subprocess

    lines = subprocess.run(["ps", *(args.ps_args or ["-ef"])], capture_output=True, text=True,
                           check=True).stdout.splitlines()
    column = lines[0].split().index("PID")
    print("\n".join([lines[0], *(line for line in lines[1:] if int(line.split()[column]) in pids)]))
    return 0


def spec(args: Values) -> int:
    from minidocker.errors import Conflict
    from minidocker.runtime.features import runc_default_spec

    path = os.path.join(args.bundle or ".", "config.json")
    if os.path.exists(path):
        raise Conflict(f"failed to write {path}: the file exists", hint="remove it first")
    with open(path, "x") as f:
        f.write(dumps(runc_default_spec(rootless=args.rootless), indent=2) + "\n")
    return 0


def features(args: Values) -> int:
    from minidocker.runtime.features import features as runtime_features

    print(dumps(runtime_features(), indent=2))
    return 0


def _count(text: str | int) -> int:
    from minidocker.errors import InvalidArgument

    if not str(text).isdigit():
        raise InvalidArgument(f"invalid --preserve-fds {text!r}: expected a number")
    return int(text)


def _process_from(args: Values) -> dict[str, Any]:
    """The process to exec: ``--process FILE`` (a config.json ``process``), else the flags."""
    from minidocker.errors import InvalidArgument

    if args.process:
        try:
            with open(args.process, "rb") as f:
                process = loads(f.read())
        except (OSError, ValueError) as err:
            raise InvalidArgument(f"failed to load process {args.process}: {err}") from None
        if not isinstance(process, dict) or not isinstance(process.get("args"), list):
            raise InvalidArgument(f"invalid process {args.process}: args must be a list of strings")
        return process
    user: dict[str, Any] = {}
    if args.user:
        uid, _, gid = args.user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise InvalidArgument(f"invalid --user {args.user!r}: expected UID[:GID] (numbers)")
        user = {"uid": int(uid), "gid": int(gid or 0)}
        if args.additional_gids:
            user["additionalGids"] = [int(g) for g in args.additional_gids]
    from minidocker.runtime.spec import DEFAULT_PATH

    return {"args": list(args.command), "env": [DEFAULT_PATH, *args.env], "cwd": args.cwd or "/",
            "user": user, "terminal": args.tty}


if __name__ == "__main__":
    from minidocker.cli.runc import main_and_exit as _main  # the module runc_parsers imports, not __main__

    _main()
