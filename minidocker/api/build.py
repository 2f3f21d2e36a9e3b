"""``POST /build``: what ``docker build`` (the legacy builder, DOCKER_BUILDKIT=0) and docker-py send.

::

    POST /build?t=NAME:TAG&t=...&dockerfile=F&buildargs={JSON}&target=S&nocache=1&q=1&labels={JSON}
               &pull=1&networkmode=none|host|bridge|default      body: the context, a tar (gzip too)

The answer streams the builder's events (chapter 08, minidocker/build/): ``{"stream":
"Step 1/3 : FROM busybox\\n"}`` ... ``{"aux": {"ID": "sha256:..."}}``, ``{"stream": "Successfully
built 3f2a9c1b7e4d\\n"}`` (docker-py finds the image by that line). A Dockerfile that does not
parse is a 400 before the stream; a failed RUN is an in-band ``error`` line whose
``errorDetail.code`` the CLI exits with. The build runs in its own interpreter
(engine/jobs.py): its RUN steps are containers, which a threaded daemon must not create.
See: the Docker Engine API reference, "ImageBuild".
"""

from __future__ import annotations

import json

from minidocker.api.jobs import relay_job
from minidocker.api.server import Request
from minidocker.errors import InvalidArgument

__all__ = ["ROUTES", "image_build"]

_UNSUPPORTED = ("remote", "cachefrom", "squash", "extrahosts", "shmsize", "cpusetcpus", "memory", "memswap",
                "cpushares", "cpuquota", "cpuperiod", "isolation", "ulimits", "outputs")


def image_build(request: Request) -> None:
    for name in _UNSUPPORTED:
        value = request.arg(name)
        if value not in (None, "", "[]", "{}", "0", "-1", "null"):
            raise InvalidArgument(f"build option {name} is not supported by minidocker")
    if request.arg("version") == "2":
        raise InvalidArgument("BuildKit builds (version=2) are not supported: use the legacy builder "
                              "(DOCKER_BUILDKIT=0)")
    network = request.arg("networkmode") or "default"
    if network not in ("default", "bridge", "none", "host"):
        raise InvalidArgument(f"network mode {network!r} is not supported for builds: "
                              "use bridge, none or host")
    options = {
        "tags": request.query.get("t", []), "dockerfile": request.arg("dockerfile") or "Dockerfile",
        "build_args": _json_map(request, "buildargs"), "labels": _json_map(request, "labels"),
        "target": request.arg("target") or None, "no_cache": request.flag("nocache"),
        "quiet": request.flag("q"), "pull": request.flag("pull"),
        "network": None if network == "default" else network,
    }

    def on_line(message: dict) -> None:
        image_id = (message.get("aux") or {}).get("ID")
        if image_id:
            request.daemon.events.publish("image", "build", image_id, {})

    relay_job(request, "build", [], options, send_body=True, on_line=on_line)


def _json_map(request: Request, name: str) -> dict:
    text = request.arg(name)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as err:
        raise InvalidArgument(f"invalid {name}: {err}") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid {name}: expected a JSON object")
    return value


ROUTES = [("POST", "/build", image_build)]
