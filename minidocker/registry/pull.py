"""Pull an image from a registry into the image store. Like ``docker pull``. Chapter 07.

::

    GET /v2/<name>/manifests/<tag>      Accept: OCI + Docker manifests and indexes
      an index?  pick linux/<arch>, GET /v2/<name>/manifests/<digest of that manifest>
    GET /v2/<name>/blobs/<config>       small: read, verify, parse (diff_ids)
    GET /v2/<name>/blobs/<layer>  x N   in parallel, each in one pass as it arrives: hashed
                                        and written to the blob store, decompressed, hashed
                                        again against the diff_id, extracted in staging
                                        (ImageStore.ingest_layer); in forked children when
                                        there are several (tar in Python holds the GIL; layers
                                        unpack into separate directories)

Nothing is trusted: every manifest and blob is hashed and compared with the digest it was
asked by (for a tag, with ``Docker-Content-Digest``). A blob or layer lands in the store
only once complete and verified (rename), so an interrupted pull leaves nothing
half-written and the next pull skips what is complete: a downloaded blob is not fetched
again, an unpacked layer "Already exists". A dropped connection is resumed with a Range
request (3 connections in all, ``BlobDownload``), then reported.
See: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pulling-manifests
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Sequence

from minidocker.errors import DigestMismatch, InvalidArgument, MinidockerError, NotFound
from minidocker.forked import ChildFailed, call_in_child
from minidocker.image import manifest as mf
from minidocker.image.blobs import check_digest, digest_of, sha256_digest
from minidocker.image.reference import Reference, parse_reference
from minidocker.image.store import Image, ImageStore, LayerInfo
from minidocker.registry.client import RegistryClient, RegistryError
from minidocker.registry.credentials import load_credentials
from minidocker.registry.parallel import in_threads
from minidocker.registry.progress import Progress

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ACCEPT", "BlobDownload", "fetch_manifest", "host_platform", "parse_platform", "pull",
           "select_manifest"]

ACCEPT = ", ".join((mf.OCI_MANIFEST, mf.OCI_INDEX, mf.DOCKER_MANIFEST, mf.DOCKER_LIST))
_JSON_LIMIT = 4 << 20
_CHUNK = 1 << 20
_ARCH = {"x86_64": ("amd64", None), "aarch64": ("arm64", "v8"), "armv7l": ("arm", "v7"),
         "armv6l": ("arm", "v6"), "i686": ("386", None), "ppc64le": ("ppc64le", None),
         "s390x": ("s390x", None), "riscv64": ("riscv64", None)}


def host_platform() -> tuple[str, str, str | None]:
    """(os, architecture, variant) of this machine in OCI terms: ``("linux", "amd64", None)``."""
    arch, variant = _ARCH.get(os.uname().machine, (os.uname().machine, None))
    return "linux", arch, variant


def parse_platform(text: str | None) -> tuple[str, str, str | None]:
    """``linux/arm64/v8`` -> ("linux", "arm64", "v8"); None -> the host's platform."""
    if not text:
        return host_platform()
    parts = text.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise InvalidArgument(f"invalid platform {text!r}", hint="use os/arch[/variant], like linux/arm64")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def select_manifest(index: dict[str, Any], platform: tuple[str, str, str | None]) -> dict[str, Any]:
    """The descriptor of ``index`` for ``platform``; NotFound lists what the index offers."""
    os_name, arch, variant = platform
    for entry in index.get("manifests", []):
        p = entry.get("platform") or {}
        if p.get("os") == os_name and p.get("architecture") == arch and \
                (variant is None or p.get("variant") in (None, variant)):
            return entry
    offered = sorted({"/".join(filter(None, (p.get("os"), p.get("architecture"), p.get("variant"))))
                      for p in (e.get("platform") or {} for e in index.get("manifests", [])) if p})
    wanted = "/".join(filter(None, platform))
    raise NotFound(f"no matching manifest for {wanted} in the manifest list entries",
                   hint=f"this image is for {', '.join(offered) or 'no platform'}; "
                        "choose one with --platform")


def _is_digest(reference: str) -> bool:
    return reference.startswith(("sha256:", "sha512:"))


def fetch_manifest(client: RegistryClient, repository: str, reference: str) -> tuple[bytes, str, str]:
    """GET a manifest or index by tag or digest, verified; returns (bytes, media type, digest)."""
    response = client.request("GET", f"/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT},
                              what=f"manifest for {repository}:{reference}")
    body = response.body
    if len(body) > _JSON_LIMIT:
        raise InvalidArgument(f"refusing manifest {repository}:{reference}: {len(body)} bytes is too large")
    announced = response.header("Docker-Content-Digest")
    expected = reference if _is_digest(reference) else announced
    digest = digest_of(body, expected.partition(":")[0] if expected and _is_digest(expected) else "sha256")
    if expected is not None and expected != digest:
        raise DigestMismatch(f"failed to verify manifest {repository}:{reference}: it hashes to {digest}, "
                             f"expected {expected}")
    try:
        document = json.loads(body)
    except ValueError as err:
        raise InvalidArgument(f"failed to parse manifest {repository}:{reference}: {err}") from None
    if not isinstance(document, dict):
        raise InvalidArgument(f"failed to parse manifest {repository}:{reference}: not a JSON object")
    media_type = document.get("mediaType") or (response.header("Content-Type") or "").split(";")[0].strip()
    if not media_type:
        media_type = mf.OCI_INDEX if "manifests" in document else mf.OCI_MANIFEST
    return body, media_type, digest


def _fetch_small_blob(client: RegistryClient, repository: str, descriptor: dict[str, Any]) -> bytes:
    digest = check_digest(descriptor.get("digest", ""))
    if descriptor.get("size", 0) > _JSON_LIMIT:
        raise InvalidArgument(f"refusing config {digest}: {descriptor['size']} bytes is too large")
    data = client.request("GET", f"/v2/{repository}/blobs/{digest}", what=f"config blob {digest}").body
    found = digest_of(data, digest.partition(":")[0])
    if found != digest or len(data) != descriptor.get("size", len(data)):
        raise DigestMismatch(f"failed to verify blob {digest}: it hashes to {found} "
                             f"({len(data)} bytes)")
    return data


def pull(store: ImageStore, reference: str, *, platform: str | None = None, progress: Progress | None = None,
         client: RegistryClient | None = None, insecure_registries: Sequence[str] = (),
         credentials: tuple[str, str] | None = None, workers: int = 3, attempts: int = 3,
         backoff: float = 1.0) -> Image:
    """Pull ``reference`` into ``store`` and return the image. Like ``docker pull``.

    Args:
        platform: ``os/arch[/variant]`` to pick from an index (default: this machine's).
        client: a RegistryClient to use (default: one for the reference's registry, with the
            stored credentials, if any). Without one, Docker Hub images are pulled from
            ``$MINIDOCKER_REGISTRY_MIRROR`` (a URL such as ``http://teacher:5000``) first,
            as dockerd does with ``registry-mirrors``.
        workers: layers downloaded at once (docker: 3).
        attempts: tries per layer when the connection fails mid-blob.
        backoff: seconds before the first retry (then 2x, 3x ...).

    Raises:
        RegistryError, Unauthorized, NotFound: the registry's answer (with its message).
        DigestMismatch: a manifest, config or layer is not what its digest says; nothing of
            it is kept.
    """
    ref = parse_reference(reference)
    progress = progress or Progress()
    repository = ref.path
    scopes = [f"repository:{repository}:pull"]
    hub = client is None and ref.domain == "docker.io"
    mirror = os.environ.get("MINIDOCKER_REGISTRY_MIRROR") if hub else None
    if mirror:   # like dockerd's registry-mirrors: Docker Hub images from a (classroom) mirror first
        try:
            return _pull(store, ref, RegistryClient(ref.domain, endpoint=mirror, scopes=scopes), progress,
                         platform, workers, attempts, backoff)
        except (NotFound, RegistryError) as err:
            progress.line(f"mirror {mirror} failed ({str(err).splitlines()[0]}): trying Docker Hub")
    if client is None:
        creds = credentials or load_credentials(ref.domain)
        client = RegistryClient(ref.domain, credentials=creds, scopes=scopes,
                                insecure_registries=insecure_registries)
    return _pull(store, ref, client, progress, platform, workers, attempts, backoff)


def _pull(store: ImageStore, ref: Reference, client: RegistryClient, progress: Progress, platform: str | None,
          workers: int, attempts: int, backoff: float) -> Image:
    repository = ref.path
    progress.line(f"{ref.tag or ref.digest}: Pulling from {repository}" if ref.tag else
                  f"{ref.digest[7:19]}: Pulling from {repository}")
    body, media_type, top_digest = fetch_manifest(client, repository, ref.digest or ref.tag or "latest")
    document = json.loads(body)
    if media_type in mf.INDEX_TYPES or "manifests" in document:
        entry = select_manifest(document, parse_platform(platform))
        body, media_type, _ = fetch_manifest(client, repository, check_digest(entry.get("digest", "")))
    manifest = mf.parse_manifest(body, media_type)
    config = _fetch_small_blob(client, repository, manifest["config"])
    config_doc = json.loads(config)
    diff_ids = (config_doc.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(manifest["layers"]):
        raise InvalidArgument(f"invalid image {ref.familiar}: {len(manifest['layers'])} layers but "
                              f"{len(diff_ids)} diff_ids in its config")
    image_id = sha256_digest(config)
    before = store.refs().get(str(ref)) if ref.tag else None
    with store.lock("gc", shared=True):
        layers, fetched = _pull_layers(store, client, repository, manifest["layers"], diff_ids, progress,
                                       workers, attempts, backoff)
        image = store.add_image(config, layers, tags=[str(ref)] if ref.tag else [], manifest=body,
                                manifest_media_type=media_type, repo_digests=[f"{ref.name}@{top_digest}"])
    progress.line(f"Digest: {top_digest}")
    fresh = fetched or before != image_id
    progress.line(f"Status: {'Downloaded newer image' if fresh else 'Image is up to date'} "
                  f"for {ref.familiar}")
    return image   # the full reference after it: the docker CLI's line, not the daemon's (cli/commands.pull)


def _pull_layers(store: ImageStore, client: RegistryClient, repository: str,
                 descriptors: list[dict[str, Any]], diff_ids: list[str], progress: Progress, workers: int,
                 attempts: int, backoff: float) -> tuple[list[LayerInfo], int]:
    """Every layer of a manifest, bottom first: known ones from the store, the rest downloaded."""
    results: list[LayerInfo | None] = [None] * len(descriptors)
    todo = []
    for i, (descriptor, diff_id) in enumerate(zip(descriptors, diff_ids)):
        digest = check_digest(descriptor.get("digest", ""))
        short = digest[7:19]
        if store.blobs.exists(digest) and (store.root / "layers" / f"{diff_id[7:]}.json").exists():
            results[i] = store.ingest_layer(None, digest=digest, diff_id=diff_id,   # known: no I/O
                                            media_type=descriptor.get("mediaType"))
            progress.update(short, "Already exists")
        else:
            progress.update(short, "Pulling fs layer")
            todo.append(i)
    if len(todo) == 1:   # the main thread pulls a lone layer: Ctrl-C interrupts it where it waits
        i = todo[0]
        short = descriptors[i]["digest"][7:19]
        results[i] = _pull_layer(store, client, repository, descriptors[i], diff_ids[i],
                                 lambda *status: progress.update(short, *status), attempts, backoff)
    elif todo:
        for i, info in zip(todo, _pull_in_children(store, client, repository, descriptors, diff_ids, todo,
                                                   progress, workers, attempts, backoff)):
            results[i] = info
    client.close()
    return [r for r in results if r is not None], len(todo)


def _pull_in_children(store: ImageStore, client: RegistryClient, repository: str,
                      descriptors: list[dict[str, Any]], diff_ids: list[str], todo: list[int],
                      progress: Progress, workers: int, attempts: int, backoff: float) -> list[LayerInfo]:
    """Several layers at once, each in a forked child: they unpack into separate directories,
    and tar extraction in Python holds the GIL (bench/registry.py measures it). A thread here
    waits for each child and relays its progress; the first failure stops the others."""
    _preload(descriptors)
    stop = threading.Event()

    def one(i: int) -> LayerInfo:
        short = descriptors[i]["digest"][7:19]

        def report(*status: Any) -> None:
            if stop.is_set():   # the child ends at its next report
                raise _Stopped(f"pull of layer {short} stopped: another layer failed")
            progress.update(short, *status)

        try:
            return _pull_layer_in_child(store, client, repository, descriptors[i], diff_ids[i], report,
                                        attempts, backoff)
        except BaseException:
            stop.set()
            raise

    try:
        outcomes = in_threads(one, todo, workers, name="pull")
    except BaseException:
        stop.set()   # Ctrl-C: the children got it too; one that did not ends at its next report
        raise
    errors = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    if errors:
        raise next((e for e in errors if not isinstance(e, _Stopped)), errors[0])
    return outcomes  # type: ignore[return-value]


class _Stopped(RegistryError):
    """Another layer failed: this one stopped early."""


def _pull_layer(store: ImageStore, client: RegistryClient, repository: str, descriptor: dict[str, Any],
                diff_id: str, report: Callable[..., None], attempts: int, backoff: float) -> LayerInfo:
    """Download, verify and unpack one layer in one pass, as its bytes arrive.

    ``report(status, ...)`` gets the progress. The store keeps the blob and the layer only
    when both digests match (see ``ImageStore.ingest_layer``).
    """
    digest, size, media_type = descriptor["digest"], descriptor.get("size"), descriptor.get("mediaType")
    if store.blobs.exists(digest):   # kept from an earlier pull that failed later
        report("Extracting")
        with store.blobs.open(digest) as f:
            info = store.ingest_layer(f, digest=digest, size=size, media_type=media_type, diff_id=diff_id)
    else:
        with BlobDownload(client, repository, digest, size, attempts=attempts, backoff=backoff,
                          on_status=report) as source:
            info = store.ingest_layer(source, digest=digest, size=size, media_type=media_type,
                                      diff_id=diff_id)
    report("Pull complete")
    return info


def _pull_layer_in_child(store: ImageStore, client: RegistryClient, repository: str,
                         descriptor: dict[str, Any], diff_id: str, report: Callable[..., None], attempts: int,
                         backoff: float) -> LayerInfo:
    """``_pull_layer`` in a forked child, its progress reported here through a pipe.

    If ``report`` raises (another layer failed), the child's next report fails and it ends,
    cleaning up as on any error.
    """
    def in_child(send: Callable[[Any], None]) -> LayerInfo:
        client.close()   # connections stay the parent's: this child opens its own
        return _pull_layer(store, client, repository, descriptor, diff_id, lambda *status: send(status),
                           attempts, backoff)

    try:
        return call_in_child(in_child, timeout=None, on_message=lambda status: report(*status))
    except ChildFailed as failed:
        if isinstance(failed.error, MinidockerError):
            raise failed.error from None
        raise RegistryError(f"failed to pull layer {descriptor['digest'][7:19]}: "
                            f"{str(failed).splitlines()[0]}") from None


class BlobDownload:
    """A blob's bytes as they arrive, read like a file; a dropped connection is resumed.

    When the connection fails mid-blob, ``read`` waits (``backoff`` seconds, then 2x, 3x
    ...), asks again from where it stopped (``Range: bytes=N-``; a registry answering 200
    instead of 206 sends it all again, and the part already read is skipped), and goes on:
    the reader sees one unbroken stream. After ``attempts`` connections in all it raises.
    It does not check the digest: whoever stores the bytes does. ``abort()``, from another
    thread, ends a read waiting for the network, without retrying.
    """

    def __init__(self, client: RegistryClient, repository: str, digest: str, size: int | None, *,
                 attempts: int = 3, backoff: float = 1.0,
                 on_status: Callable[..., None] | None = None) -> None:
        self.client, self.repository, self.digest, self.size = client, repository, digest, size
        self.attempts, self.backoff = attempts, backoff
        self.status = on_status or (lambda *status: None)
        self.received = 0
        self._attempt = 1
        self._aborted = False
        self._stream = client.open_blob(repository, digest)

    def read(self, n: int = -1) -> bytes:
        while True:
            try:
                data = self._stream.read(n)
            except RegistryError as err:
                if self._stream.failure is None:
                    raise
                self._resume(err)
                continue
            self.received += len(data)
            if data:
                total = self.size if self.size is not None else self._stream.length
                self.status("Downloading", self.received, total)
            return data

    def _resume(self, err: RegistryError) -> None:
        """Reconnect after ``err``, at the byte where it stopped; raise once out of attempts."""
        self._stream.close()
        if self._aborted:
            raise RegistryError(f"download of blob {self.digest} aborted") from None
        if self._attempt == self.attempts:
            raise RegistryError(f"failed to download blob {self.digest}: {err} (gave up after "
                                f"{self.attempts} attempts)",
                                hint="the store is consistent: pull again to resume") from None
        delay = self.backoff * self._attempt
        self._attempt += 1
        self.status(f"Retrying in {delay:g} second{'s' if delay != 1 else ''}")
        time.sleep(delay)
        self._stream = self.client.open_blob(self.repository, self.digest, offset=self.received)
        if self.received and self._stream.response.status != 206:   # no ranges here: skip what we have
            skip = self.received
            while skip:
                data = self._stream.read(min(skip, _CHUNK))
                if not data:
                    raise RegistryError(f"failed to download blob {self.digest}: it is shorter than before")
                skip -= len(data)

    def abort(self) -> None:
        self._aborted = True
        self._stream.abort()

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> BlobDownload:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _preload(descriptors: list[dict[str, Any]]) -> None:
    """Import what unpacking needs before threads start: a child forked while another thread
    holds the import lock would wait for it forever."""
    import gzip  # noqa: F401
    import shutil  # noqa: F401
    import tarfile  # noqa: F401

    import minidocker.image.compression  # noqa: F401
    import minidocker.image.pump  # noqa: F401
    import minidocker.storage.layer  # noqa: F401
    import minidocker.storage.tarsplit  # noqa: F401

    if any("zstd" in (d.get("mediaType") or "") for d in descriptors):
        import zstandard  # noqa: F401
