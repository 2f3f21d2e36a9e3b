"""Relaying a job (engine/jobs.py: a pull, a build) from its own interpreter to the client.

The job's stdout is the reply's stream, line by line, flushed per line. A failure
before the job printed anything becomes an HTTP error instead, with the status the
one table (api/errors.py) gives the error's class: what dockerd answers for a missing
manifest (404) or a Dockerfile that does not parse (400). A request body (a build's
context) is copied into the job's stdin by a thread while its output is read.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading

from minidocker.api.server import Request
from minidocker.errors import MinidockerError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["relay_job"]

_CHUNK = 1 << 20


def relay_job(request: Request, kind: str, args: list[str], options: dict[str, Any], send_body: bool = False,
              on_line=None) -> None:
    """Run job ``kind`` for ``request``; stream its lines, or raise its early failure."""
    from minidocker.engine.jobs import job_command

    job = subprocess.Popen(job_command(kind, *args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, env=_job_env(request))
    feeder = threading.Thread(target=_feed, args=(job, options, request if send_body else None), daemon=True)
    feeder.start()
    stream = None
    try:
        for line in job.stdout:
            message = json.loads(line)
            if "error" in message and stream is None:
                raise _error_of(message)
            if on_line is not None:
                on_line(message)
            if stream is None:
                stream = request.stream()
            message.pop("class", None)
            stream.write(json.dumps(message).encode() + b"\n")
        if stream is None:
            raise MinidockerError(f"the {kind} ended without a word (exit status {job.wait()})")
        stream.close()
    finally:
        if job.poll() is None:
            job.kill()
        job.wait()
        feeder.join(5)


def _feed(job: subprocess.Popen, options: dict[str, Any], request: Request | None) -> None:
    """The options line, then the request body if asked; EOF at the end (the job reads to it)."""
    try:
        job.stdin.write(json.dumps(options).encode() + b"\n")
        if request is not None:
            while chunk := request.body.read(_CHUNK):
                job.stdin.write(chunk)
        job.stdin.close()
    except (BrokenPipeError, OSError):
        pass   # the job ended early (an error it reports on stdout)


def _job_env(request: Request) -> dict[str, str]:
    """This environment, with the daemon's roots and registry mirror (a job has no daemon config)."""
    config, roots = request.daemon.config, request.daemon.roots
    env = {k: v for k, v in os.environ.items() if k not in ("MINIDOCKER_ROOT", "MINIDOCKER_REGISTRY_MIRROR")}
    if roots.lib.name == "lib" and roots.run == roots.lib.parent / "run":   # MINIDOCKER_ROOT's (paths.py)
        env["MINIDOCKER_ROOT"] = str(roots.lib.parent)
    if config.registry_mirrors:   # daemon.json's registry-mirrors: the first one serves Docker Hub names
        env["MINIDOCKER_REGISTRY_MIRROR"] = config.registry_mirrors[0]
    return env


def _error_of(message: dict[str, Any]) -> Exception:
    from minidocker import errors

    cls = getattr(errors, message.get("class", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, MinidockerError)):
        cls = MinidockerError
    return cls(message.get("error", "failed"))
