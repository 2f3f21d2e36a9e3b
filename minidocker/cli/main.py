"""Entry point: parse, dispatch to one action, turn errors into ``minidocker: <message>``.

Kept lean on purpose: ``minidocker --help`` imports argparse and nothing else of
ours; each action imports what it needs when it runs.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from minidocker.cli.parsers import build_parser

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "action", None):
        parser.print_help()
        return 0
    try:
        return args.action(args)
    except KeyboardInterrupt:
        return 130
    except Exception as err:
        from minidocker.errors import MinidockerError

        if isinstance(err, MinidockerError):
            print(f"minidocker: {err}", file=sys.stderr)
            return err.exit_code
        if isinstance(err, OSError):
            print(f"minidocker: {err.strerror or err}: {err.filename or ''}".rstrip(": "), file=sys.stderr)
            if isinstance(err, PermissionError):
                print("hint: minidocker needs root: try sudo", file=sys.stderr)
            return 125
        raise


if __name__ == "__main__":
    sys.exit(main())
