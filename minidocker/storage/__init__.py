"""Container filesystems: overlay snapshots of image layers. Chapter 05.

    Snapshot.create(lowers, directory)   upper/ and work/ beside a merged rootfs/
    snapshot.mount() / snapshot.unmount() / snapshot.remove()
"""

from minidocker.storage.overlay import Snapshot, overlay_options

__all__ = ["Snapshot", "overlay_options"]
