"""A pull for the daemon, in a process of its own: ``POST /images/create?fromImage=...``. Chapter 14.

The pull downloads several layers in forked children (registry/pull.py). A daemon has
one thread per connection, and a fork of a multithreaded process copies only the
calling thread, with every lock the others held: so the daemon never forks, it runs
this module as a fresh interpreter and relays what it prints::

    python -m minidocker.engine.pull_job REFERENCE [PLATFORM]
    stdin: {"auth": {"username", "password"}, "insecure_registries": [...]}

stdout carries the Engine API's progress lines (registry/progress.JsonProgress), then
one last line: ``{"result": {"id": ..., "reference": ...}}`` or ``{"error": MESSAGE,
"errorDetail": {"message": MESSAGE}, "class": "NotFound"}``. The class (one of
minidocker.errors) lets the daemon answer a failure that comes before any progress with
the HTTP status its one table gives that class (404 for a missing manifest, as dockerd
does) instead of a stream.
"""

from __future__ import annotations

import json
import sys

__all__ = ["error_class", "main", "pull_command"]


def pull_command(reference: str, platform: str | None = None) -> list[str]:
    """The command line the daemon runs for a pull."""
    return [sys.executable, "-m", "minidocker.engine.pull_job", reference, *([platform] if platform else [])]


def main(argv: list[str]) -> int:
    from minidocker.paths import state_roots
    from minidocker.registry.progress import JsonProgress
    from minidocker.registry.pull import pull

    reference, platform = argv[0], (argv[1] if len(argv) > 1 else None)
    try:
        options = json.loads(sys.stdin.read() or "{}")
    except ValueError:
        options = {}
    credentials = _credentials(options.get("auth"))

    def write(line: str) -> None:
        sys.stdout.write(line)
        sys.stdout.flush()

    try:
        from minidocker.image import ImageStore

        image = pull(ImageStore(state_roots().images), reference, platform=platform, progress=JsonProgress(write),
                     credentials=credentials, insecure_registries=options.get("insecure_registries") or ())
    except Exception as err:  # noqa: BLE001 - every failure becomes the last line, with its class
        write(json.dumps({"error": str(err), "errorDetail": {"message": str(err)}, "class": error_class(err)})
              + "\n")
        return 1
    write(json.dumps({"result": {"id": image.id, "reference": reference}}) + "\n")
    return 0


def error_class(err: BaseException) -> str:
    """The name of the nearest minidocker.errors class of ``err`` (the daemon raises it again)."""
    from minidocker import errors

    for cls in type(err).__mro__:
        if getattr(errors, cls.__name__, None) is cls:
            return cls.__name__
    return "MinidockerError"


def _credentials(auth: object) -> tuple[str, str] | None:
    """``{"username", "password"}`` from the client's X-Registry-Auth, as the daemon passed it on."""
    if isinstance(auth, dict) and auth.get("username") and auth.get("password"):
        return auth["username"], auth["password"]
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
