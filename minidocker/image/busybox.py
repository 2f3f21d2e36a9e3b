"""The default image ``busybox:latest``, made from the host's static busybox. Chapter 06.

No registry is needed for a first container: one binary (Debian's ``busybox-static``),
a symlink per applet (``busybox --list-full``), the usual directories and an
/etc/passwd and /etc/group with root and nobody. It becomes a real one-layer image:
the tree is tarred into a layer blob (its sha256 is the diff_id), a config and an
OCI manifest are written, and the tree itself is moved in as the unpacked layer.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from minidocker.errors import NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from minidocker.image.store import Image, ImageStore

__all__ = ["BUSYBOX_CANDIDATES", "BUSYBOX_DIRECTORIES", "DEFAULT_IMAGE", "build_busybox_tree",
           "create_busybox"]

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
DEFAULT_IMAGE = "docker.io/library/busybox:latest"   # the name it is made under

BUSYBOX_DIRECTORIES = ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "root", "home",
                       "var", "tmp", "run")


def build_busybox_tree(rootfs: Path, busybox: str) -> None:
    """Fill ``rootfs`` with a busybox system: the binary, applet links, /etc files."""
    for directory in BUSYBOX_DIRECTORIES:
        (rootfs / directory).mkdir(parents=True, exist_ok=True)
    os.chmod(rootfs / "tmp", 0o1777)
    os.chmod(rootfs / "root", 0o700)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    import subprocess  # only when the image is first made

    applets = subprocess.run([busybox, "--list-full"], capture_output=True, text=True, check=True).stdout
    for applet in applets.split():
        link = rootfs / applet
        if applet != "bin/busybox" and not os.path.lexists(link):
            link.parent.mkdir(parents=True, exist_ok=True)
            os.symlink("/bin/busybox", link)
    (rootfs / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\nnobody:x:65534:\n")
    mtime = os.stat(busybox).st_mtime   # the same busybox gives the same layer
    for directory, dirs, files in os.walk(rootfs):
        for name in dirs + files:
            os.utime(os.path.join(directory, name), (mtime, mtime), follow_symlinks=False)
    os.utime(rootfs, (mtime, mtime))


def create_busybox(store: ImageStore, busybox: str | None = None) -> Image:
    """Create ``busybox:latest`` in ``store``; returns the image.

    Called by the engine when a container, build or command needs ``busybox`` and the store
    has none (``minidocker.engine.images.local_image``), and by tests that want it up front.
    """
    from minidocker.image import manifest as mf
    from minidocker.runtime.spec import DEFAULT_PATH   # here: the doctor reads this module's candidates

    source = busybox or next((p for p in BUSYBOX_CANDIDATES if os.path.exists(p)), None)
    if source is None:
        raise NotFound("cannot create the default image 'busybox': busybox is not installed",
                       hint="apt-get install busybox-static")
    with store.lock("gc", shared=True), store.staging() as stage:
        tree = stage / "rootfs"
        tree.mkdir()
        build_busybox_tree(tree, source)
        layer = store.add_directory_layer(tree)
        import time

        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(os.stat(source).st_mtime))
        config = mf.new_config(
            [layer.diff_id], {"Env": [DEFAULT_PATH], "Cmd": ["sh"]},
            history=[mf.history_entry(f"minidocker: ADD {source} (busybox --list-full) in /",
                                      created=created)],
            created=created)
        return store.add_image(mf.canonical_json(config), [layer], tags=["busybox:latest"])
