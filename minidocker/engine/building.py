"""``docker build`` in the engine: the builder with the engine's pulls and networks. Chapter 08.

The builder (:mod:`minidocker.build`) sits beside the runtime and knows only the image
store; two things it needs live up here, in the engine, and are handed down as hooks:

    find_image(reference, pull, platform)   FROM's image: the local one, else pulled (run's --pull rules)
    attach_network(id, spec, dir)   RUN on the default bridge: an address, the veth wired
                                    before the command starts, the endpoint forgotten after

``build_image`` is what ``minidocker build`` and, later, the Engine API's ``POST /build``
call: a context (directory or tar stream) in, progress events out.
"""

from __future__ import annotations

import os

from minidocker.build import BuildOptions, BuildResult, build
from minidocker.paths import StateRoots, state_roots

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO

__all__ = ["build_image", "default_build_network"]


def default_build_network() -> str:
    """Docker's default for RUN is the bridge; ``MINIDOCKER_BRIDGE=none`` (dockerd --bridge=none) makes
    it none."""
    return "none" if os.environ.get("MINIDOCKER_BRIDGE") == "none" else "bridge"


def build_image(context: str | os.PathLike[str] | BinaryIO, options: BuildOptions,
                on_event: Callable[[dict[str, Any]], None] | None = None,
                roots: StateRoots | None = None, log: Any = None) -> BuildResult:
    """Build an image, FROM images pulled when missing (``--pull``: always), RUN on the bridge if asked."""
    roots = roots or state_roots()

    def find_image(reference: str, pull: bool, platform: str | None = None):
        from minidocker.engine.pulling import image_for_run
        from minidocker.image import ImageStore

        return image_for_run(ImageStore(roots.images), reference, "always" if pull else "missing",
                             platform=platform, log=log)

    def attach_network(container_id: str, spec: dict[str, Any], directory: Any):
        from minidocker.engine import networks
        from minidocker.engine.run import _NAME_FILES, _bind_name_files

        plan = networks.plan_network("bridge", [], [])
        endpoint = networks.attach(roots, container_id, container_id[:12], container_id[:12], plan, directory)
        _bind_name_files(spec, directory, _NAME_FILES)   # attach wrote all three
        return ((lambda pid: networks.wire(endpoint, container_id, pid)),
                (lambda: networks.detach(roots, container_id)))

    options.find_image = options.find_image or find_image
    if options.network == "bridge" and options.attach_network is None:
        options.attach_network = attach_network
    return build(context, options, on_event, roots)
