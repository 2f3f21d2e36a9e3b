"""The image store: content-addressable blobs, unpacked layers, names. Chapter 06.

Layout (a teaching object: ``tree $MINIDOCKER_ROOT/lib/images``)::

    repositories.json        {"docker.io/library/busybox:latest": "sha256:<image id>", ...}
    imagedb/<id>.json        one image: its manifest digest, layers (digest, diff_id, sizes), repo digests
    blobs/sha256/<hex>       manifests, configs and layer blobs, named by their sha256
    layers/<diff_id hex>/    a layer unpacked once, whiteouts in overlay form: an overlay lowerdir
    layers/<diff_id hex>.json   its size and entry count
    layers/<diff_id hex>.tar-split.json.gz   an uncompressed layer's tar minus file contents: its
                             blob is rebuilt from this and the tree, not stored twice (tarsplit.py)
    tmp/                     staging; renamed into place only when complete and verified
    locks/                   flock(2) files: refs (names), gc (loads share it, rmi takes it alone)

The image ID is the sha256 of the config blob, as in Docker; the manifest digest is
another value. ``get`` is on the hot path of ``run``: it reads repositories.json and
the config blob, and nothing else (no hashing, no tar). The store only answers: an image
it does not hold is ``ImageNotFound``; making the built-in ``busybox`` on first use is the
engine's decision (``minidocker.engine.images.local_image``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from minidocker.atomic import read_json, write_json
from minidocker.errors import (Conflict, DigestMismatch, ImageNotFound, InvalidArgument, MinidockerError,
                               NotFound)
from minidocker.image.reference import Reference, id_prefix, is_full_id, looks_like_id, parse_reference
from minidocker.record import Record

__all__ = ["Image", "ImageStore", "LayerInfo", "looks_like_id", "parse_reference"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence
    from typing import Any, BinaryIO


class Image(Record):
    """An image as the engine needs it.

    Attributes:
        name, tag: the familiar name (``busybox``) and tag it was asked for.
        layers: the unpacked layer directories, **top first**: the overlay lowerdirs.
        config: the runtime part of the config (``Cmd``, ``Entrypoint``, ``Env``, ...).
        id: the image ID, ``sha256:`` of the config blob.
        document: the whole config document (``rootfs``, ``history``, ``created`` ...).
        size: the unpacked size in bytes (filled by ``list``).

    Equal when name, tag, layers, config and id are (``COMPARED``): the document and the
    size are what they were read from.
    """

    FIELDS = ("name", "tag", "layers", "config", "id", "document", "size")
    DEFAULTS = {"config": {}, "id": "", "document": {}, "size": 0}
    COMPARED = ("name", "tag", "layers", "config", "id")

    def __post_init__(self) -> None:
        self.config = {} if self.config is None else self.config
        self.document = {} if self.document is None else self.document

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.tag}"

    @property
    def short_id(self) -> str:
        return self.id.removeprefix("sha256:")[:12]


class LayerInfo(Record):
    """One stored layer: blob digest and media type, its diff_id, blob and tar sizes."""

    FIELDS = ("digest", "diff_id", "size", "diff_size", "media_type")
    KEYS = {"diff_id": "diffID", "diff_size": "diffSize", "media_type": "mediaType"}


class ImageStore:
    """Images under ``root`` (``/var/lib/minidocker/images``)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- paths ------------------------------------------------------------------------------

    @property
    def blobs(self):
        from minidocker.image.blobs import BlobStore

        return BlobStore(self.root / "blobs")

    def layer_path(self, diff_id: str) -> Path:
        return self.root / "layers" / _hex(diff_id)

    def _split_path(self, diff_id: str) -> Path:
        return self.root / "layers" / f"{_hex(diff_id)}.tar-split.json.gz"

    def _has_split(self, digest: str) -> bool:
        """Is this blob an uncompressed layer kept as its tree and tar-split? Such a blob's digest is
        its diff_id, a sha256; a blob named by sha512 is always stored as itself."""
        return digest.startswith("sha256:") and self._split_path(digest).exists()

    def has_blob(self, digest: str) -> bool:
        """A blob is stored, or (an uncompressed layer) can be rebuilt from its tree."""
        return self.blobs.exists(digest) or self._has_split(digest)

    def open_blob(self, digest: str) -> BinaryIO:
        """A stored blob, or an uncompressed layer rebuilt from its tree and tar-split (checked
        against its digest as it is read). Raises NotFound."""
        if not self.blobs.exists(digest) and self._has_split(digest):
            from minidocker.storage.tarsplit import JoinedTar

            return JoinedTar(self.layer_path(digest), self._split_path(digest), digest)
        return self.blobs.open(digest)

    def read_blob(self, digest: str) -> bytes:
        """The bytes of a blob, stored or rebuilt (see ``open_blob``)."""
        with self.open_blob(digest) as blob:
            return blob.read()

    def _record_path(self, image_id: str) -> Path:
        return self.root / "imagedb" / f"{_hex(image_id)}.json"

    def _config_path(self, image_id: str) -> Path:
        return self.root / "blobs" / "sha256" / _hex(image_id)

    # -- reading (the hot path) -------------------------------------------------------------

    def refs(self) -> dict[str, str]:
        """Every name:tag -> image ID."""
        try:
            with open(self.root / "repositories.json", "rb") as f:
                return json.loads(f.read())
        except FileNotFoundError:
            return {}

    def get(self, reference: str) -> Image:
        """The image ``reference`` names (a name, name:tag, name@digest or an ID prefix).

        Raises:
            ImageNotFound: no such image here.
            NotFound: the image is named but its config or a layer is missing (a damaged store).
        """
        ref = None if looks_like_id(reference) else parse_reference(reference)
        image_id = self.refs().get(str(ref)) if ref and ref.tag else None
        if image_id is None:
            image_id = self.resolve(reference)
        return self.load_image(image_id, ref)

    def load_image(self, image_id: str, ref: Reference | None = None) -> Image:
        """The Image of an ID: reads its config blob, checks its layers are unpacked."""
        try:
            with open(self._config_path(image_id), "rb") as f:
                document = json.loads(f.read())
        except FileNotFoundError:
            raise NotFound(f"image {image_id} has no config blob in {self.root}",
                           hint="the store is damaged; remove the image and load it again") from None
        layers = [self.layer_path(d) for d in reversed(document.get("rootfs", {}).get("diff_ids", []))]
        for layer in layers:
            if not layer.is_dir():
                raise NotFound(f"layer {layer.name[:12]} of image {image_id[7:19]} is not unpacked in "
                               f"{layer.parent}",
                               hint="load the image again")
        name, tag = (ref.familiar_name, ref.tag or ref.digest or "") if ref else ("<none>", "<none>")
        return Image(name, tag, layers, dict(document.get("config") or {}), image_id, document)

    def resolve(self, reference: str) -> str:
        """The image ID of a reference: name:tag, name@digest, full ID or unique ID prefix.

        Raises:
            ImageNotFound: no such image here.
            Conflict: an ID prefix that more than one image starts with.
        """
        refs = self.refs()
        if not looks_like_id(reference):
            ref = parse_reference(reference)
            if ref.digest:
                for image_id, record in self._records():
                    if f"{ref.name}@{ref.digest}" in record.get("repoDigests", []) or \
                            ref.digest == record.get("manifest"):
                        return image_id
            elif str(ref) in refs:
                return refs[str(ref)]
        prefix = id_prefix(reference)
        if prefix is not None:
            ids = [i for i, _ in self._records() if i[7:].startswith(prefix)]
            if len(ids) == 1:
                return ids[0]
            if len(ids) > 1:
                raise Conflict(f"image ID prefix {prefix!r} is ambiguous: {len(ids)} images match")
        shown = reference if looks_like_id(reference) else parse_reference(reference).familiar
        raise ImageNotFound(f"unable to find image '{shown}' locally",
                       hint="list images with 'minidocker images'; load one with 'minidocker load -i FILE'")

    def record(self, image_id: str) -> dict[str, Any]:
        try:
            return read_json(self._record_path(image_id))
        except FileNotFoundError:
            raise ImageNotFound(f"no such image: {image_id}") from None

    def _records(self) -> Iterator[tuple[str, dict[str, Any]]]:
        directory = self.root / "imagedb"
        if not directory.is_dir():
            return
        for name in sorted(os.listdir(directory)):
            if name.endswith(".json") and not name.startswith("."):
                try:
                    yield f"sha256:{name[:-5]}", read_json(directory / name)
                except (FileNotFoundError, ValueError):
                    continue

    def image_ids(self) -> set[str]:
        """The ID of every image stored, named or not (a build's intermediate images too)."""
        try:
            names = os.listdir(self.root / "imagedb")
        except FileNotFoundError:
            return set()
        return {f"sha256:{n[:-5]}" for n in names if n.endswith(".json") and not n.startswith(".")}

    def list(self) -> list[Image]:
        """Every image, once per name:tag; images without a name as ``<none>:<none>``."""
        refs = self.refs()
        found = []
        named = set()
        for ref_text, image_id in sorted(refs.items()):
            ref = parse_reference(ref_text)
            found.append(self._summary(image_id, ref.familiar_name, ref.tag or ""))
            named.add(image_id)
        records = list(self._records())
        parents = {record.get("parent") for _, record in records}
        for image_id, _ in records:
            if image_id not in named and image_id not in parents:   # intermediate build images are hidden
                found.append(self._summary(image_id, "<none>", "<none>"))
        return found

    def _summary(self, image_id: str, name: str, tag: str) -> Image:
        try:
            record = self.record(image_id)
            document = read_json(self._config_path(image_id))
        except (NotFound, FileNotFoundError):
            return Image(name, tag, [], {}, image_id)
        layers = [self.layer_path(d) for d in reversed(document.get("rootfs", {}).get("diff_ids", []))]
        return Image(name, tag, layers, dict(document.get("config") or {}), image_id, document,
                     size=sum(layer["diffSize"] for layer in record.get("layers", [])))

    def layers_of(self, image_id: str) -> list[LayerInfo]:
        """The stored layers of an image, bottom first."""
        return [LayerInfo.from_json(layer) for layer in self.record(image_id)["layers"]]

    def manifest_of(self, image_id: str) -> tuple[bytes, str]:
        """The manifest bytes of an image and their media type."""
        record = self.record(image_id)
        data = self.blobs.read(record["manifest"])
        return data, record.get("manifestMediaType") or json.loads(data).get("mediaType") or ""

    # -- writing ----------------------------------------------------------------------------

    def lock(self, name: str, shared: bool = False) -> _Lock:
        """flock(2) on ``locks/<name>`` (a context manager): ``refs`` guards names, ``gc`` keeps
        rmi away from loads (loads share it, gc takes it alone)."""
        return _Lock(self.root / "locks" / name, shared)

    def staging(self) -> _Staging:
        """A fresh directory under tmp/ (a context manager), removed afterwards unless renamed away."""
        return _Staging(self.root / "tmp")

    def ingest_layer(self, source: BinaryIO, *, digest: str | None = None, size: int | None = None,
                     media_type: str | None = None, diff_id: str | None = None,
                     allow_devices: bool = False) -> LayerInfo:
        """Store a layer blob read from ``source`` and unpack it for overlay, in one pass.

        The blob is hashed as it streams in (checked against ``digest`` and ``size``), the
        tar inside is hashed (checked against ``diff_id``) and extracted into a staging
        directory. Only when every check passes are the blob and the layer renamed into
        place; otherwise nothing is left in the store. If extraction fails while ``source``
        is a download (it has an ``abort()`` method), the download is aborted, so that an
        error or a Ctrl-C never waits for the network.

        Raises:
            DigestMismatch: the blob or the tar does not hash to what was announced.
            UnsafeLayer: an entry extraction refuses (nothing is kept).
        """
        from minidocker.image.compression import NONE, PeekReader, detect, media_type_of
        from minidocker.image.pump import BlobPump
        from minidocker.storage.layer import apply_layer
        from minidocker.storage.tarsplit import TarSplitter

        have_blob = digest is not None and self.has_blob(digest)
        have_layer = diff_id is not None and (self.root / "layers" / f"{_hex(diff_id)}.json").exists()
        if have_blob and have_layer:
            return self._known_layer(digest, diff_id, media_type)
        start = source.tell() if getattr(source, "seekable", bool)() else None   # to read it again
        peek = PeekReader(source)
        compression = detect(peek.peek(4), media_type)
        # an uncompressed layer is kept as its tree and a tar-split, not written twice (tarsplit.py)
        split = compression == NONE and not have_blob and not have_layer and start is not None
        writer = None if have_blob or split else self.blobs.writer(hashed=False)   # the pump hashes it
        try:
            with self.staging() as stage:
                tree = stage / "layer"
                tree.mkdir()
                # a thread reads, hashes, stores and decompresses; this one extracts (see pump.py)
                pump = BlobPump(peek, compression, copy_to=writer, abort=getattr(source, "abort", None),
                                algorithm=digest.partition(":")[0] if digest else "sha256")
                tar = TarSplitter(pump, stage / "tar-split.json.gz") if split else pump
                try:
                    if not have_layer:
                        stats = apply_layer(tar, tree, overlay=True, allow_devices=allow_devices,
                                            split=tar if split else None)
                        tar.drain()
                    pump.finish()
                except BaseException as err:
                    pump.stop()
                    if isinstance(err, MinidockerError) or not isinstance(err, Exception):
                        raise
                    _raise_unreadable(pump.blob, digest, err)   # a corrupt blob: say which check failed
                finally:
                    if split:
                        tar.close()
                raw, plain = pump.blob, pump.tar
                if digest is not None and raw.digest != digest:
                    raise DigestMismatch(f"failed to verify layer blob {digest}: it hashes to {raw.digest}")
                if size is not None and raw.size != size:
                    raise DigestMismatch(f"failed to verify layer blob {raw.digest}: size {raw.size}, "
                                         f"expected {size}")
                if diff_id is not None and plain.digest != diff_id:
                    raise DigestMismatch(f"failed to verify layer {digest or ''}: its tar hashes to "
                                         f"{plain.digest}, the config says diff_id {diff_id}")
                if writer is not None:
                    writer.commit(raw.digest)
                if split and stats.replaced:   # an entry replaced an earlier file: its contents are gone
                    self._copy_blob(source, start, raw.digest)
                    os.unlink(stage / "tar-split.json.gz")
                if not have_layer:
                    self._install_layer(tree, plain.digest, plain.size, stats.entries)
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
        media = media_type or media_type_of(compression)
        return LayerInfo(raw.digest, plain.digest, raw.size, plain.size, media)

    def add_directory_layer(self, tree: Path) -> LayerInfo:
        """Make a layer of a finished directory (overlay form): tar it into a blob, move it in."""
        from minidocker.image.compression import media_type_of
        from minidocker.storage.diff import write_tree_tar

        with self.blobs.writer() as writer:
            write_tree_tar(tree, writer)
            digest, size = writer.digest, writer.size
            writer.commit()
        entries = sum(len(files) + len(dirs) for _, dirs, files in os.walk(tree)) + 1
        self._install_layer(tree, digest, size, entries)
        return LayerInfo(digest, digest, size, size, media_type_of("none"))

    def add_upper_layer(self, upper: Path, move: bool = False) -> LayerInfo:
        """Make a layer of a container's upper directory (``docker commit``, a build step).

        The diff is written as a layer tar (whiteouts and opaque directories in tar form,
        storage/diff.py). By default the tar is ingested like a pulled layer. With ``move`` (the
        upper directory is unmounted and no longer needed: a finished build step) the directory
        itself, already in the overlay form the store keeps, is renamed into place after
        overlay's bookkeeping xattrs are removed: nothing is written twice or deleted (on this
        machine's ext4, unlinking 1,000 files costs more than writing them).
        """
        from minidocker.storage.diff import write_layer_tar

        if move:
            from minidocker.image.compression import media_type_of

            with self.blobs.writer() as writer:
                write_layer_tar(upper, writer)
                digest, size = writer.digest, writer.size
                writer.commit()
            entries = _strip_overlay_xattrs(upper)
            if not self.layer_path(digest).is_dir():
                self._install_layer(upper, digest, size, entries)
            return LayerInfo(digest, digest, size, size, media_type_of("none"))
        with self.staging() as stage:
            tar_path = stage / "layer.tar"
            with open(tar_path, "wb") as out:
                write_layer_tar(upper, out)
            with open(tar_path, "rb") as source:
                return self.ingest_layer(source)

    def _copy_blob(self, source: BinaryIO, start: int, digest: str) -> None:
        """Store a blob by reading ``source`` again from ``start`` (verified against ``digest``)."""
        source.seek(start)
        with self.blobs.writer() as writer:
            while chunk := source.read(1 << 20):
                writer.write(chunk)
            writer.commit(digest)

    def _install_layer(self, tree: Path, diff_id: str, size: int, entries: int) -> None:
        """Rename a complete, verified layer (and its tar-split) into place.

        No fsync of the tree: a syncfs(2) here costs 0.15-0.25 s per 100 MiB load on the
        course machine (it flushes every dirty file of the filesystem); see bench/README.md.
        """
        final = self.layer_path(diff_id)
        final.parent.mkdir(parents=True, exist_ok=True)
        split = tree.parent / "tar-split.json.gz"
        if split.exists():
            os.rename(split, self._split_path(diff_id))
        write_json(final.parent / f"{final.name}.json", {"diffID": diff_id, "size": size, "entries": entries})
        try:
            os.rename(tree, final)
        except OSError:
            if not final.is_dir():   # another load installed the same layer first: fine
                raise

    def _known_layer(self, digest: str, diff_id: str, media_type: str | None) -> LayerInfo:
        meta = read_json(self.root / "layers" / f"{_hex(diff_id)}.json")
        size = self.blobs.size(digest) if self.blobs.exists(digest) else meta["size"]   # else: a tar-split
        return LayerInfo(digest, diff_id, size, meta["size"],
                         media_type or "application/vnd.oci.image.layer.v1.tar")

    def add_image(self, config: bytes, layers: Sequence[LayerInfo], *, tags: Sequence[str] = (),
                  manifest: bytes | None = None, manifest_media_type: str | None = None,
                  repo_digests: Sequence[str] = (), parent: str | None = None) -> Image:
        """Record an image whose layers are stored: config and manifest blobs, record, names.

        Without ``manifest``, an OCI manifest is written for the config and layers. ``parent``:
        the image a build step started from (``docker images`` hides untagged parents).

        Raises:
            DigestMismatch: the config's diff_ids are not the layers'.
        """
        from minidocker.image import manifest as mf

        document = json.loads(config)
        diff_ids = document.get("rootfs", {}).get("diff_ids", [])
        if list(diff_ids) != [layer.diff_id for layer in layers]:
            raise DigestMismatch(f"the config's diff_ids {[d[7:19] for d in diff_ids]} are not the layers' "
                                 f"{[layer.diff_id[7:19] for layer in layers]}")
        blobs = self.blobs
        image_id = blobs.put(config)
        if manifest is None:
            config_type = mf.OCI_CONFIG
            manifest = mf.canonical_json(mf.new_manifest(
                mf.descriptor(config_type, image_id, len(config)),
                [mf.descriptor(layer.media_type, layer.digest, layer.size) for layer in layers]))
            manifest_media_type = mf.OCI_MANIFEST
        manifest_digest = blobs.put(manifest)
        record_path = self._record_path(image_id)
        record_path.parent.mkdir(parents=True, exist_ok=True)
        old = read_json(record_path) if record_path.exists() else {}
        write_json(record_path, {
            "id": image_id, "manifest": manifest_digest, "manifestMediaType": manifest_media_type,
            "layers": [layer.to_json() for layer in layers],
            "repoDigests": sorted(set(old.get("repoDigests", [])) | set(repo_digests)),
            **({"parent": parent or old.get("parent")} if parent or old.get("parent") else {}),
        })
        for tag in tags:
            self.tag(image_id, tag)
        return self.load_image(image_id, parse_reference(tags[0]) if tags else None)

    def tag(self, source: str, target: str) -> str:
        """Give image ``source`` the name ``target``; returns the normalised name. Like ``docker tag``."""
        image_id = source if is_full_id(source) else self.resolve(source)
        ref = parse_reference(target)
        if ref.digest:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {target}")
        if self.refs().get(str(ref)) == image_id:
            return str(ref)            # already so: no write (a cached rebuild tags again)
        with self.lock("refs"):
            refs = self.refs()
            refs[str(ref)] = image_id
            self.root.mkdir(parents=True, exist_ok=True)
            write_json(self.root / "repositories.json", dict(sorted(refs.items())))
        return str(ref)

    def untag(self, reference: str) -> str:
        """Remove one name; returns the image ID it pointed to."""
        ref = parse_reference(reference)
        with self.lock("refs"):
            refs = self.refs()
            if str(ref) not in refs:
                raise ImageNotFound(f"no such image: {reference}")
            image_id = refs.pop(str(ref))
            write_json(self.root / "repositories.json", refs)
        return image_id

    def remove(self, reference: str, force: bool = False) -> list[str]:
        """Untag, and delete the image when no name is left. Like ``docker rmi``.

        Returns docker's lines: ``Untagged: busybox:latest``, ``Deleted: sha256:...``.
        """
        image_id = self.resolve(reference)
        refs = self.refs()
        names = _names(refs, image_id)
        # A name first, as docker rmi reads it; else an ID or an ID prefix (a 12-hex short ID is a valid
        # name too)
        by_name = not looks_like_id(reference) and str(parse_reference(reference)) in refs
        lines = []
        if by_name and len(names) > 1:
            self.untag(reference)
            return [f"Untagged: {parse_reference(reference).familiar}"]
        if not by_name and len(names) > 1 and not force:
            raise Conflict(f"unable to delete {image_id[7:19]} (must be forced): image is referenced in "
                           f"multiple repositories", hint="use rmi -f, or remove the names one by one")
        for name in names:
            self.untag(name)
            lines.append(f"Untagged: {parse_reference(name).familiar}")
        parent = self.record(image_id).get("parent")
        self._record_path(image_id).unlink(missing_ok=True)
        lines.append(f"Deleted: {image_id}")
        lines += [f"Deleted: {i}" for i in self._remove_unused_parents(parent)]
        lines += [f"Deleted: {d}" for d in self.gc()]
        return lines

    def _remove_unused_parents(self, parent: str | None) -> list[str]:
        """A build's intermediate images, up the chain while untagged and nobody's parent (docker rmi's
        rule)."""
        removed = []
        while parent:
            refs = set(self.refs().values())
            records = dict(self._records())
            if (parent in refs or parent not in records
                    or any(r.get("parent") == parent for r in records.values())):
                break
            self._record_path(parent).unlink(missing_ok=True)
            removed.append(parent)
            parent = records[parent].get("parent")
        return removed

    def gc(self) -> list[str]:
        """Delete blobs and unpacked layers no image refers to; returns the deleted layer diff_ids."""
        with self.lock("gc"):
            keep_blobs, keep_layers = set(), set()
            for image_id, record in self._records():
                keep_blobs |= {image_id, record["manifest"]}
                for layer in record.get("layers", []):
                    keep_blobs.add(layer["digest"])
                    keep_layers.add(_hex(layer["diffID"]))
            blobs = self.blobs
            for digest in blobs.digests():
                if digest not in keep_blobs:
                    blobs.delete(digest)
            deleted = []
            layers = self.root / "layers"
            for name in sorted(os.listdir(layers)) if layers.is_dir() else []:
                hex_id = name.split(".")[0]      # <hex>, <hex>.json, <hex>.tar-split.json.gz
                if hex_id not in keep_layers:
                    path = layers / name
                    if path.is_dir():
                        import shutil

                        shutil.rmtree(path)
                        deleted.append(f"sha256:{hex_id}")
                    else:
                        path.unlink(missing_ok=True)
            import shutil

            self._drop_remapped_copies(keep_layers)
            shutil.rmtree(self.root / "tmp", ignore_errors=True)  # staging of dead or finished loads
        return deleted

    def _drop_remapped_copies(self, keep_layers: set[str]) -> None:
        """Delete the owner-shifted copies (remapped/<uid>.<gid>/<hex>, storage/remap.py) of layers
        that are gone, and half-made ones (.<hex>.<pid>) of those: they go with their layer."""
        import shutil

        remapped = self.root / "remapped"
        for mapping in os.listdir(remapped) if remapped.is_dir() else []:
            for name in os.listdir(remapped / mapping):
                if name.lstrip(".").split(".")[0] not in keep_layers:
                    shutil.rmtree(remapped / mapping / name, ignore_errors=True)


class _Lock:
    def __init__(self, path: Path, shared: bool) -> None:
        self.path, self.shared, self.fd = path, shared, -1

    def __enter__(self) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)   # closing drops the lock


class _Staging:
    def __init__(self, parent: Path) -> None:
        self.directory = parent / f"{os.getpid()}-{os.urandom(6).hex()}"

    def __enter__(self) -> Path:
        self.directory.mkdir(parents=True)
        return self.directory

    def __exit__(self, *exc: object) -> None:
        if self.directory.exists():
            import shutil

            shutil.rmtree(self.directory, ignore_errors=True)


def _strip_overlay_xattrs(tree: Path) -> int:
    """Remove overlay's own xattrs (origin, impure ...) but ``opaque`` from a former upper directory;
    returns the number of entries."""
    count = 0
    for directory, dirs, files in os.walk(tree):
        for name in (*dirs, *files, *(() if count else ("",))):
            path = os.path.join(directory, name) if name else directory
            count += 1
            try:
                names = os.listxattr(path, follow_symlinks=False)
            except OSError:
                continue
            for key in names:
                if key.startswith("trusted.overlay.") and key != "trusted.overlay.opaque":
                    os.removexattr(path, key, follow_symlinks=False)
    return count


def _raise_unreadable(raw: Any, digest: str | None, err: Exception) -> None:
    """A layer that cannot be decompressed or untarred: a digest mismatch if it is one."""
    try:
        raw.drain()
    except Exception:  # noqa: BLE001, S110 - the digest below tells what went wrong
        pass
    if digest is not None and raw.digest != digest:
        raise DigestMismatch(f"failed to verify layer blob {digest}: it hashes to {raw.digest}") from err
    raise InvalidArgument(f"failed to unpack layer {digest or ''}: {err}".replace("  ", " ")) from err


def _hex(digest: str) -> str:
    if not digest.startswith("sha256:") or len(digest) != 71:
        raise InvalidArgument(f"invalid digest {digest!r}")
    return digest[7:]


def _names(refs: dict[str, str], image_id: str) -> list[str]:
    return sorted(name for name, target in refs.items() if target == image_id)
