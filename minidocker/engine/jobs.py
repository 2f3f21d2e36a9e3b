"""Work the daemon runs in a fresh interpreter: pulls and builds. Chapters 08, 14.

A pull downloads layers in forked children; a build runs each RUN step as a container,
which forks and creates namespaces. A daemon has one thread per connection, and a fork
of a multithreaded process copies only the calling thread, with every lock the others
held; namespaces are per thread. So the daemon never does either itself: it runs this
module and relays what it prints (api/jobs.py)::

    python -m minidocker.engine.jobs pull REFERENCE      stdin: one line of options (JSON)
    python -m minidocker.engine.jobs build               stdin: one line of options, then the context tar

stdout carries the Engine API's stream lines (progress, ``{"stream": ...}``, ``{"aux": ...}``),
and, when the work fails, one last line ``{"error": MESSAGE, "errorDetail": {"message": MESSAGE},
"class": "NotFound"}``. The class (one of minidocker.errors) lets the daemon answer a failure
that comes before any output with the HTTP status its one table gives that class (404 for
a missing manifest, 400 for a Dockerfile that does not parse), as dockerd does.
"""

from __future__ import annotations

import json
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO

__all__ = ["error_class", "error_line", "job_command", "main"]


def job_command(kind: str, *args: str) -> list[str]:
    """The command line the daemon runs for a job."""
    return [sys.executable, "-m", "minidocker.engine.jobs", kind, *args]


def error_class(err: BaseException) -> str:
    """The name of the nearest minidocker.errors class of ``err`` (the daemon raises it again)."""
    from minidocker import errors

    for cls in type(err).__mro__:
        if getattr(errors, cls.__name__, None) is cls:
            return cls.__name__
    return "MinidockerError"


def error_line(err: BaseException) -> dict[str, Any]:
    """The stream's error line; a failed RUN carries its exit code (the docker CLI exits with it)."""
    detail: dict[str, Any] = {"message": str(err)}
    code = getattr(err, "exit_code", None)
    if type(err).__name__ == "BuildError" and code:
        detail["code"] = code
    return {"error": str(err), "errorDetail": detail, "class": error_class(err)}


def _pull(args: list[str], options: dict[str, Any], write: Callable[[dict], None], _stdin: BinaryIO) -> None:
    from minidocker.image import ImageStore
    from minidocker.paths import state_roots
    from minidocker.registry.progress import JsonProgress
    from minidocker.registry.pull import pull

    auth = options.get("auth") or {}
    has_both = auth.get("username") and auth.get("password")
    credentials = (auth["username"], auth["password"]) if has_both else None
    pull(ImageStore(state_roots().images), args[0], platform=options.get("platform"),
         progress=JsonProgress(lambda line: write(json.loads(line))), credentials=credentials,
         insecure_registries=options.get("insecure_registries") or ())


def _build(_args: list[str], options: dict[str, Any], write: Callable[[dict], None], stdin: BinaryIO) -> None:
    from minidocker.build.builder import BuildOptions
    from minidocker.engine.building import build_image, default_build_network

    build_options = BuildOptions(
        dockerfile=options.get("dockerfile") or "Dockerfile", tags=options.get("tags") or [],
        build_args=options.get("build_args") or {}, target=options.get("target") or None,
        no_cache=bool(options.get("no_cache")), pull=bool(options.get("pull")),
        network=options.get("network") or default_build_network(), labels=options.get("labels") or {},
        quiet=bool(options.get("quiet")))

    def event(message: dict[str, Any]) -> None:
        write(message)
        image_id = (message.get("aux") or {}).get("ID")
        if build_options.quiet and image_id:   # q=1: dockerd's whole output is the ID, which the CLI prints
            write({"stream": image_id + "\n"})

    build_image(stdin, build_options, event)


_JOBS = {"pull": _pull, "build": _build}


def main(argv: list[str]) -> int:
    kind, args = argv[0], argv[1:]
    options = json.loads(sys.stdin.buffer.readline() or b"{}")

    def write(event: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()

    try:
        _JOBS[kind](args, options, write, sys.stdin.buffer)
    except Exception as err:  # noqa: BLE001 - every failure becomes the last line, with its class
        write(error_line(err))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
