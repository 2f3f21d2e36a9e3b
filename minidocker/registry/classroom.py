"""A course-local registry: serve the course images to a classroom, not Docker Hub. Chapter 07.

Docker Hub lets about 10 anonymous pulls per hour through per IPv4 address, and a classroom
sits behind one NAT: the 11th student gets "toomanyrequests". The teacher runs::

    sudo minidocker registry serve --addr 0.0.0.0:5000 --seed      # or: make classroom-registry

which pushes every named local image (``busybox``, ``debian:bookworm`` ...) into the registry
under its Docker Hub path (``library/busybox:latest``), so that it can act as a mirror::

    export MINIDOCKER_REGISTRY_MIRROR=http://TEACHER:5000   # students
    minidocker pull busybox                                 # served by the classroom registry

(``minidocker pull --insecure-registry TEACHER:5000 TEACHER:5000/library/busybox`` works too.)
"""

from __future__ import annotations

from collections.abc import Sequence

from minidocker.image.reference import parse_reference
from minidocker.image.store import ImageStore
from minidocker.registry.progress import Progress
from minidocker.registry.push import push

__all__ = ["seed_registry"]


def seed_registry(store: ImageStore, address: str, references: Sequence[str] | None = None,
                  progress: Progress | None = None, insecure_registries: Sequence[str] = ()) -> list[str]:
    """Push local images to the registry at ``address`` under their Docker Hub paths; returns the pushed
    names.

    Args:
        references: the images to push (default: every named image of ``store``).
    """
    progress = progress or Progress()
    names = list(references) if references is not None else sorted(store.refs())
    pushed = []
    for name in names:
        ref = parse_reference(name)
        target = f"{address}/{ref.path}:{ref.tag or 'latest'}"
        push(store, target, source=name, progress=progress, insecure_registries=insecure_registries)
        pushed.append(target)
    return pushed
