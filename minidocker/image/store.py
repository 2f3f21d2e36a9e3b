"""A simple image store: one directory per image, holding its root filesystem.

Layout (a teaching object; ``tree /var/lib/minidocker/images`` shows it)::

    images/<name>/<tag>/rootfs/       the files of the image (the overlay's lower layer)
    images/<name>/<tag>/config.json   Cmd, Entrypoint, Env, WorkingDir, User (Docker's names)

The embedded default image ``busybox`` is made from the host's static busybox
(Debian's ``busybox-static``), so no registry is needed to run a first container.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from minidocker.atomic import read_json, write_json
from minidocker.errors import InvalidArgument, NotFound

__all__ = ["BUSYBOX_CANDIDATES", "Image", "ImageStore", "parse_reference"]

TYPE_CHECKING = False  # typing costs 3 ms of start-up; annotations are strings here anyway
if TYPE_CHECKING:
    from typing import Any

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
_NAME = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class Image:
    """An image as the runtime needs it: its layers (top first) and its config.

    A plain class rather than a dataclass: importing dataclasses costs 7 ms, on every
    ``minidocker run`` (see bench/README.md).
    """

    FIELDS = ("name", "tag", "layers", "config")

    def __init__(self, name: str, tag: str, layers: list[Path], config: dict[str, Any] | None = None) -> None:
        self.name = name
        self.tag = tag
        self.layers = layers
        self.config = {} if config is None else config

    def __repr__(self) -> str:
        return f"Image({', '.join(f'{k}={getattr(self, k)!r}' for k in self.FIELDS)})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable, like a dataclass with eq

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.tag}"


def parse_reference(reference: str) -> tuple[str, str]:
    """``busybox`` -> ("busybox", "latest"); ``busybox:1.36`` -> ("busybox", "1.36")."""
    name, tag = reference, "latest"
    last = reference.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = reference.rsplit(":", 1)
    for prefix in ("docker.io/library/", "docker.io/"):
        name = name.removeprefix(prefix)
    if not _NAME.match(name) or not _TAG.match(tag):
        raise InvalidArgument(f"invalid reference format {reference!r}",
                              hint="a name is lower-case letters, digits and separators, like busybox:latest")
    return name, tag


class ImageStore:
    """Images under ``root`` (``/var/lib/minidocker/images``)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def get(self, reference: str) -> Image:
        """The image named ``reference``; the default busybox is created on first use.

        Raises:
            NotFound: no such image.
        """
        name, tag = parse_reference(reference)
        directory = self.root / name / tag
        if not (directory / "config.json").exists():
            if (name, tag) == ("busybox", "latest"):
                return self.create_busybox()
            raise NotFound(f"unable to find image '{name}:{tag}' locally",
                           hint="list images with 'minidocker images'; 'busybox' is built in")
        return Image(name, tag, [directory / "rootfs"], read_json(directory / "config.json"))

    def list(self) -> list[Image]:
        """Every image in the store."""
        found = []
        for config in sorted(self.root.glob("**/config.json")):
            directory = config.parent
            name = str(directory.parent.relative_to(self.root))
            found.append(Image(name, directory.name, [directory / "rootfs"], read_json(config)))
        return found

    def create_busybox(self, busybox: str | None = None) -> Image:
        """Build the default image ``busybox:latest`` from the host's static busybox.

        One binary, a symlink per applet (``busybox --list-full``), the usual
        directories, and an /etc/passwd and /etc/group with root and nobody.
        """
        import shutil  # lazily: rarely needed, and start-up time matters
        import subprocess

        source = busybox or next((p for p in BUSYBOX_CANDIDATES if os.path.exists(p)), None)
        if source is None:
            raise NotFound("cannot create the default image 'busybox': busybox is not installed",
                           hint="apt-get install busybox-static")
        final = self.root / "busybox" / "latest"
        staging = final.with_name(f".latest.tmp-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        rootfs = staging / "rootfs"
        for directory in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "root",
                          "home", "var", "tmp", "run"):
            (rootfs / directory).mkdir(parents=True, exist_ok=True)
        os.chmod(rootfs / "tmp", 0o1777)
        os.chmod(rootfs / "root", 0o700)
        shutil.copy2(source, rootfs / "bin" / "busybox")
        applets = subprocess.run([source, "--list-full"], capture_output=True, text=True, check=True).stdout
        for applet in applets.split():
            link = rootfs / applet
            if applet != "bin/busybox" and not link.exists():
                link.parent.mkdir(parents=True, exist_ok=True)
                os.symlink("/bin/busybox", link)
        (rootfs / "etc" / "passwd").write_text(
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
        (rootfs / "etc" / "group").write_text("root:x:0:\nnobody:x:65534:\n")
        config = {"Cmd": ["sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}
        write_json(staging / "config.json", config)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staging, final)  # atomic: a half-built image is never visible
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another process won the race
        return self.get("busybox")
