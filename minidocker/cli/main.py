"""Entry point: parse, dispatch to one action, turn errors into ``minidocker: <message>``.

Kept lean on purpose: parsing imports nothing but the command table; each action
imports what it needs when it runs.
"""

from __future__ import annotations

import os
import sys

__all__ = ["main", "main_and_exit"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["runtime"]:  # runc's command line (chapter 12): its own parser and exit codes
        from minidocker.cli import runc

        return runc.main(argv[1:], prog="minidocker runtime")
    from minidocker.cli.flags import UsageError, format_help, parse
    from minidocker.cli.parsers import build_commands

    argv = _global_host(list(sys.argv[1:] if argv is None else argv))
    try:
        command, args = parse(build_commands(), argv)
    except UsageError as err:
        print(f"minidocker: {err}\nSee '{err.command.path} --help'.", file=sys.stderr)
        return 125
    if getattr(args, "version", False):
        from minidocker import __version__

        print(f"minidocker {__version__}")
        return 0
    if args.help or command.action is None:
        print(format_help(command))
        return 0
    try:
        return command.action(args)
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # noqa: BLE001 - the one place errors become messages
        from minidocker.errors import MinidockerError

        if isinstance(err, MinidockerError):
            print(f"minidocker: {err}", file=sys.stderr)
            return err.exit_code
        if isinstance(err, OSError):
            print(f"minidocker: {err.strerror or err}: {err.filename or ''}".rstrip(": "), file=sys.stderr)
            if isinstance(err, PermissionError) and os.geteuid() != 0:
                print("hint: minidocker needs root: try sudo", file=sys.stderr)
            return 125
        raise


def _global_host(argv: list[str]) -> list[str]:
    """``-H/--host unix://PATH`` before the command (chapter 13): the daemon to talk to, as
    MINIDOCKER_HOST."""
    while argv and (argv[0] in ("-H", "--host") or argv[0].startswith("--host=")):
        flag = argv.pop(0)
        value = flag.split("=", 1)[1] if "=" in flag else (argv.pop(0) if argv else "")
        os.environ["MINIDOCKER_HOST"] = value
    return argv


def main_and_exit(argv: list[str] | None = None) -> None:
    """Run :func:`main` and leave at once with its exit code. What the installed command calls.

    A normal exit tears the interpreter down (every module, every object: about 4 ms
    after a ``run``) for a process that is about to vanish anyway. Everything we write
    is flushed and closed by then: files by ``with``, stdout and stderr here. If
    flushing fails (a closed pipe), the normal exit reports it as Python always does.
    See: _exit(2).
    """
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
        if code is not None and not isinstance(code, int):
            raise  # a message: let the interpreter print it and exit 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        sys.exit(code)
    os._exit(code or 0)


if __name__ == "__main__":
    sys.exit(main())
