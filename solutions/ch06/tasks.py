"""Chapter 06 reference solutions: image references, digests, manifests, config merging.

    normalize_reference(text)                  task 6.1  Docker's normalisation: busybox -> docker.io/library/busybox:latest
    diff_id_of(blob)                           task 6.2  the diff_id of a layer blob (gzip, zstd or plain tar)
    resolve_tag(layout, tag)                   task 6.3  manifest digest and image ID of a tag in an OCI layout, verified
    merge_run_config(config, command, ...)     task 6.4  argv and env of a container, as dockerd combines them

See: https://github.com/distribution/reference, the OCI image spec (manifest.md, config.md,
image-layout.md), moby's daemon/commit.go (merge).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["diff_id_of", "merge_run_config", "normalize_reference", "resolve_tag"]


def normalize_reference(text: str) -> str:
    """The full form of an image reference, as ``docker pull`` understands it.

    The first component is a registry domain only if it contains "." or ":" or is
    "localhost"; otherwise the domain is ``docker.io``, and a one-component name gets
    ``library/``. No tag and no digest means ``:latest``; a digest (``@sha256:...``) is
    kept and no tag is added. ``index.docker.io`` is ``docker.io``.
    ``busybox`` -> ``docker.io/library/busybox:latest``;
    ``host:5000/app`` -> ``host:5000/app:latest``.

    Hint: split off ``@digest`` first, then a ``:tag`` only if the last ":" comes after
    the last "/" (why?).
    Questions: why is ``localhost/app`` not on Docker Hub but ``local/app`` is?

    See: https://github.com/distribution/reference/blob/main/normalize.go
    """
    name, _, digest = text.partition("@")
    tag = None
    if name.rfind(":") > name.rfind("/"):
        name, tag = name.rsplit(":", 1)
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        domain, path = first, rest
    else:
        domain, path = "docker.io", name
    if domain == "index.docker.io":
        domain = "docker.io"
    if domain == "docker.io" and "/" not in path:
        path = f"library/{path}"
    if tag is None and not digest:
        tag = "latest"
    return f"{domain}/{path}" + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def diff_id_of(blob: str | os.PathLike[str]) -> str:
    """``sha256:<hex>`` of the *uncompressed* tar inside a layer blob file.

    Tell the compression by the first bytes: ``1f 8b`` gzip, ``28 b5 2f fd`` zstd, anything
    else a plain tar. Stream it: a layer can be gigabytes.

    Hint: ``gzip.open``, ``zstandard.ZstdDecompressor().stream_reader(f)``, ``hashlib.sha256``
    updated chunk by chunk.
    Questions: why do two registries store one layer under two digests but one diff_id?
    Which of the two does ``docker save`` name its layer.tar files after?

    See: https://github.com/opencontainers/image-spec/blob/main/config.md (rootfs.diff_ids)
    """
    h = hashlib.sha256()
    with open(blob, "rb") as raw:
        magic = raw.read(4)
        raw.seek(0)
        if magic.startswith(b"\x1f\x8b"):
            import gzip

            stream = gzip.GzipFile(fileobj=raw)
        elif magic == b"\x28\xb5\x2f\xfd":
            import zstandard

            stream = zstandard.ZstdDecompressor().stream_reader(raw)
        else:
            stream = raw
        while chunk := stream.read(1 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def resolve_tag(layout: str | os.PathLike[str], tag: str) -> tuple[str, str]:
    """In an OCI image layout, the (manifest digest, image ID) of the image tagged ``tag``.

    The tag is the ``org.opencontainers.image.ref.name`` annotation of an entry of
    ``index.json``; the entry's digest names the manifest blob in ``blobs/sha256/``; the
    manifest's ``config.digest`` is the image ID. Verify both blobs: raise ``ValueError``
    if a blob's sha256 is not its name, ``KeyError`` if no entry has that tag.

    Hint: ``json.loads``, ``hashlib.sha256(data).hexdigest()``; hash the bytes of the file,
    never ``json.dumps`` of what you parsed.
    Questions: why does the image ID not change when the image is re-pushed with other
    compression, while the manifest digest does?

    See: https://github.com/opencontainers/image-spec/blob/main/image-layout.md
    """
    layout = Path(layout)
    index = json.loads((layout / "index.json").read_bytes())
    for entry in index.get("manifests", []):
        if (entry.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag:
            manifest = _verified(layout, entry["digest"])
            config_digest = json.loads(manifest)["config"]["digest"]
            _verified(layout, config_digest)
            return entry["digest"], config_digest
    raise KeyError(f"no image tagged {tag!r} in {layout}")


def _verified(layout: Path, digest: str) -> bytes:
    data = (layout / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise ValueError(f"blob {digest} does not hash to its name")
    return data


def merge_run_config(config: dict[str, Any], command: Sequence[str] = (), entrypoint: str | None = None,
                     env: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """The argv and the environment of a container, as ``docker run`` combines them.

    ``config`` is the image's runtime config (``Entrypoint``, ``Cmd``, ``Env``), all optional.
    argv: ``--entrypoint`` (``entrypoint``) replaces the image's Entrypoint *and drops its
    Cmd* (an empty string clears the entrypoint); otherwise Entrypoint + (``command`` if given,
    else the image's Cmd). env: the ``-e`` values (``env``) first, then each image variable
    whose name ``-e`` did not set.

    Hint: treat ``None`` and ``[]`` alike; compare variable names with ``item.partition("=")[0]``.
    Questions: an image has ``ENTRYPOINT ["nginx"]`` and ``CMD ["-g", "daemon off;"]``: what
    does ``docker run img -t`` execute? And ``docker run --entrypoint sh img``?

    See: https://github.com/moby/moby/blob/master/daemon/commit.go (merge)
    """
    if entrypoint is not None:
        args = ([entrypoint] if entrypoint else []) + list(command)
    else:
        args = list(config.get("Entrypoint") or []) + (list(command) or list(config.get("Cmd") or []))
    names = {item.partition("=")[0] for item in env}
    merged = list(env) + [item for item in config.get("Env") or [] if item.partition("=")[0] not in names]
    return args, merged
