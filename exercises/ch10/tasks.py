"""Chapter 10 exercises: volumes. Fill in the three functions.

Read exercises/ch10/README.md first; grade with ``make grade CH=10`` (or ``TASK=10_2``).

    parse_volume(text)                      task 10.1  Docker's -v syntax as a mount request
    copy_up(source, destination)            task 10.2  fill an empty volume from an image directory
    oci_mounts(requests, volumes_root)      task 10.3  mount requests as OCI ``mounts`` entries

See: https://docs.docker.com/storage/volumes/, mount(2), the OCI runtime spec's config.md "Mounts".
"""

from __future__ import annotations

import os
import stat  # noqa: F401
from collections.abc import Sequence
from pathlib import Path  # noqa: F401

__all__ = ["MODES", "PROPAGATIONS", "copy_up", "oci_mounts", "parse_volume"]

PROPAGATIONS = ("shared", "slave", "private", "rshared", "rslave", "rprivate")
MODES = ("ro", "rw", "z", "Z", "nocopy", *PROPAGATIONS)


def parse_volume(text: str) -> dict:
    """Read one ``-v`` value the way Docker does; return a dict with these keys:

    ``type`` ("bind" when the source is an absolute path, else "volume"), ``source`` (the host
    path, the volume's name, or "" for an anonymous volume), ``target``, ``readonly`` (bool),
    ``propagation`` (one of PROPAGATIONS, or "" when not given), ``nocopy`` (bool).

    Forms: ``/ctr`` (anonymous volume), ``SRC:/ctr``, ``SRC:/ctr:MODES`` where MODES is a
    comma-separated list taken from MODES. Raise ``ValueError`` for: more than three parts, an
    empty source or target, a target that is not absolute, an unknown mode, two modes of one
    kind (``ro,rw``, two propagations), and ``/ctr:ro`` (a mode without a source).

    Hint: ``text.split(":")`` and a ``len`` switch, as moby's linux_parser.go does.
    Questions: why can Docker not tell ``-v data:/x`` (a volume) from a relative host path?
    What does Docker do with a missing host directory given to ``-v``, and to ``--mount``?

    See: https://docs.docker.com/storage/bind-mounts/, moby volume/mounts/linux_parser.go.
    """
    # TODO(task 10.1): read the -v value into the dict
    raise NotImplementedError("task 10.1: read the -v value into the dict")


def copy_up(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> int:
    """Copy the content of image directory ``source`` into the empty directory ``destination``.

    Keep what Docker keeps: owner and group, mode bits (setuid and sticky too), modification
    times; symlinks are copied as symlinks (never followed), hard links stay hard links (one
    inode in the copy), fifos and devices are re-created. ``destination`` itself takes
    ``source``'s owner and mode. Return the number of entries copied (not counting the top).

    Hint: ``os.walk(source)`` does not follow symlinks to directories; ``os.lstat``,
    ``os.readlink``, ``os.mknod``, ``shutil.copyfileobj``; ``os.chown(..., follow_symlinks=False)``
    before ``os.chmod`` (why?); set a directory's times after filling it (why?).
    Questions: what would go wrong with ``shutil.copytree(source, destination)``'s defaults?
    And if the image's directory held a symlink to /etc/shadow?

    See: https://docs.docker.com/storage/volumes/ "Populate a volume using a container", lstat(2), mknod(2).
    """
    # TODO(task 10.2): copy the image directory, keeping everything
    raise NotImplementedError("task 10.2: copy the image directory, keeping everything")


def oci_mounts(requests: Sequence[dict], volumes_root: str | os.PathLike[str]) -> list[dict]:
    """Turn mount requests into OCI runtime-spec ``mounts`` entries, as dockerd does for runc.

    A request is a dict like task 10.1's, with ``type`` "bind", "volume" or "tmpfs" (a tmpfs
    request may carry ``options``, a list such as ["size=64m", "mode=1777"]). Entries:

    - bind: ``{"destination": target, "type": "bind", "source": source, "options": ["rbind",
      PROPAGATION]}`` with PROPAGATION the request's or "rprivate", then "ro" if read-only;
    - volume: the same bind, its source ``VOLUMES_ROOT/NAME/_data``;
    - tmpfs: ``{"destination": target, "type": "tmpfs", "source": "tmpfs", "options":
      ["nosuid", "noexec", "nodev", *options]}`` (Docker's defaults, then the user's).

    Sorted so that a parent comes before what is mounted inside it (fewer path components
    first, the order of the requests otherwise). Raise ``ValueError`` for two requests with
    the same target, a target of "/", or a volume request without a name (the engine names
    anonymous volumes before this step).

    Hint: ``sorted`` is stable; count ``[p for p in target.split("/") if p]``.
    Questions: why must /data be mounted before /data/cache? Why "rbind" and not "bind"?

    See: the OCI runtime spec's config.md "Mounts", mount(2) "Creating a bind mount".
    """
    # TODO(task 10.3): build the OCI mounts entries
    raise NotImplementedError("task 10.3: build the OCI mounts entries")
