"""``run --pull``: the image a container starts from, pulled first when it is missing. Chapter 07.

What the docker CLI does around ``ContainerCreate`` (cli/command/container/create.go)::

    --pull missing (default)   the local image; if there is none:
                                   Unable to find image 'busybox:latest' locally     (stderr)
                                   ... the pull's progress ...                        (stderr)
    --pull always              pull first, even if the image is here (a registry that is down fails the run)
    --pull never               the local image, else "No such image: busybox:latest"

The pull is ``minidocker pull``'s own (:func:`minidocker.registry.pull.pull`): same client,
credentials, ``--insecure-registry`` rule and ``MINIDOCKER_REGISTRY_MIRROR``. It is imported
only when a pull happens, so running a local image costs nothing more. An image named by
its ID is never pulled; one named ``name@sha256:...`` is pulled by that digest.
"""

from __future__ import annotations

from minidocker.errors import ImageNotFound, InvalidArgument, MinidockerError
from minidocker.image import Image, ImageStore
from minidocker.image.reference import parse_reference
from minidocker.image.store import looks_like_id

__all__ = ["PULL_POLICIES", "image_for_run"]

PULL_POLICIES = ("missing", "always", "never")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import TextIO


def image_for_run(store: ImageStore, reference: str, policy: str = "missing", *, platform: str | None = None,
                  insecure_registries: Sequence[str] = (), log: TextIO | None = None) -> Image:
    """The image ``reference`` names, pulled first as ``policy`` says. Like ``docker run --pull``.

    Args:
        policy: ``missing`` (docker's default), ``always`` or ``never``.
        platform: ``os/arch[/variant]`` for the pull (default: this machine's).
        log: where the "Unable to find" line and the pull's progress go (docker run: stderr);
            None: nowhere (``run -q``).

    Raises:
        InvalidArgument: an unknown policy.
        NotFound: ``never`` and no such image here ("No such image: busybox:latest").
        RegistryError, Unauthorized, NotFound, DigestMismatch: the pull failed (nothing of it is
            kept); their exit code is docker run's 125.
    """
    if policy not in PULL_POLICIES:
        raise InvalidArgument(f"invalid pull option: {policy!r}: must be one of \"always\", \"missing\" or "
                              "\"never\"")
    from minidocker.engine.images import local_image

    if looks_like_id(reference):   # docker pulls names only
        return store.get(reference)
    if policy != "always":
        try:
            return local_image(store, reference)
        except ImageNotFound:
            pass   # not here at all (an image here but unreadable is a NotFound that says how)
        familiar = parse_reference(reference).familiar
        if policy == "never":
            raise ImageNotFound(f"No such image: {familiar}") from None
        _write(log, f"Unable to find image '{familiar}' locally\n")
    try:
        _pull(store, reference, platform, insecure_registries, log)
    except MinidockerError as err:
        err.exit_code = 125   # docker run's code for "the daemon failed" (docker pull's is 1)
        raise
    return store.get(reference)


def _pull(store: ImageStore, reference: str, platform: str | None, insecure_registries: Sequence[str],
          log: TextIO | None) -> None:
    from minidocker.registry.progress import Progress
    from minidocker.registry.pull import pull

    pull(store, reference, platform=platform, progress=Progress(log, quiet=log is None),
         insecure_registries=insecure_registries)


def _write(log: TextIO | None, text: str) -> None:
    if log is not None:
        log.write(text)
        log.flush()
