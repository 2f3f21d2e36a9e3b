"""Images: references, a content-addressable store, formats. Chapter 06.

    ImageStore(root).get("app:v1") -> Image(name, tag, layers, config, id)    store.py (or ImageNotFound)
    create_busybox(store): the built-in busybox:latest from the host's busybox   busybox.py
    parse_reference("busybox") -> docker.io/library/busybox:latest            reference.py
    BlobStore, sha256_digest                                                  blobs.py
    BlobPump: read, hash, store, decompress a layer blob on a thread         pump.py
    manifests, configs, media types                                           manifest.py
    apply_image_config(spec, image, RunArgs(...))                             runconfig.py
    save_archive / load_archive (docker save format)                          archive.py
    save_oci_layout / load_oci_layout                                         oci.py
    import_tarball                                                            imports.py

Only store.py and reference.py are imported eagerly: ``run`` needs nothing else.
"""

from minidocker.image.reference import Reference, parse_reference
from minidocker.image.store import Image, ImageStore, LayerInfo

__all__ = ["Image", "ImageStore", "LayerInfo", "Reference", "parse_reference"]
