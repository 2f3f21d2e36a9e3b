"""Images. Chapters 05-06 (the content-addressable store) and 07 (registries).

For now a simple store: an image is a root filesystem directory plus a Docker-style
config. The chapter on layers and images replaces it behind the same interface:

    ImageStore(root).get(reference) -> Image(name, tag, layers, config)
    ImageStore(root).create_busybox()   the embedded default image
"""

from minidocker.image.store import Image, ImageStore, parse_reference

__all__ = ["Image", "ImageStore", "parse_reference"]
