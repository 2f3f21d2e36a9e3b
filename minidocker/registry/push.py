"""Push an image from the store to a registry. Like ``docker push``. Chapter 07.

For each blob (layers, then the config), in parallel::

    HEAD /v2/<name>/blobs/<digest>                    200: "Layer already exists"
    POST /v2/<name>/blobs/uploads/?mount=<d>&from=<r> 201: "Mounted from r" (a repository we pulled it from)
    POST /v2/<name>/blobs/uploads/                    202 + Location: an upload session
    PATCH <Location>  Content-Range: 0-N  (bytes)     202 + a *new* Location (always use the newest)
    PUT <Location>&digest=sha256:...                  201: the registry verified the digest

then ``PUT /v2/<name>/manifests/<tag>`` with ``Content-Type`` = the manifest's media type,
which the registry accepts only once every blob it references is in the repository.
See: https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence

from minidocker.errors import DigestMismatch, InvalidArgument
from minidocker.image.blobs import sha256_digest
from minidocker.image.reference import parse_reference
from minidocker.image.store import ImageStore
from minidocker.registry.client import RegistryClient, RegistryError
from minidocker.registry.credentials import load_credentials
from minidocker.registry.parallel import in_threads
from minidocker.registry.progress import Progress

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import BinaryIO

__all__ = ["push", "upload_blob", "with_query"]


def with_query(url: str, **params: str) -> str:
    """``url`` with more query parameters (a Location may already carry ``?_state=...``)."""
    parts = urllib.parse.urlsplit(url)
    query = "&".join(filter(None, [parts.query, urllib.parse.urlencode(params)]))
    return urllib.parse.urlunsplit(parts._replace(query=query))


def upload_blob(client: RegistryClient, repository: str, source: BinaryIO, digest: str, size: int,
                chunk_size: int | None = None, on_progress=None, location: str | None = None) -> None:
    """Upload one blob: POST a session, PATCH the bytes (in chunks of ``chunk_size``), PUT the digest.

    Args:
        location: an upload session already opened (a mount that fell back to 202).
    """
    if location is None:
        response = client.request("POST", f"/v2/{repository}/blobs/uploads/", expect=(202,),
                                  what=f"upload of {digest[7:19]} to {repository}")
        location = urllib.parse.urljoin(response.url, response.header("Location", ""))
    chunk = chunk_size or size or 1
    offset = 0
    while offset < size:
        length = min(chunk, size - offset)
        body = _Limited(source, length, on_progress)
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length),
                   "Content-Range": f"{offset}-{offset + length - 1}"}
        response = client.request("PATCH", location, headers=headers, body=body, expect=(202,),
                                  what=f"upload of {digest[7:19]} to {repository}")
        location = urllib.parse.urljoin(response.url, response.header("Location", location))
        offset += length
    client.request("PUT", with_query(location, digest=digest), headers={"Content-Length": "0"}, body=b"",
                   expect=(201,), what=f"upload of {digest[7:19]} to {repository}")


class _Limited:
    """At most ``length`` bytes of ``source`` as a request body, reporting progress."""

    def __init__(self, source: BinaryIO, length: int, on_progress) -> None:
        self.source, self.left, self.on_progress = source, length, on_progress
        self.start, self.length = source.tell(), length

    def tell(self) -> int:
        return self.length - self.left

    def seek(self, offset: int) -> None:
        """Rewind for a resend (a stale connection, a 401 when a token expired mid-push)."""
        self.source.seek(self.start + offset)
        self.left = self.length - offset

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.source.read(n) if n else b""
        self.left -= len(data)
        if self.on_progress is not None and data:
            self.on_progress(len(data))
        return data


def push(store: ImageStore, reference: str, *, progress: Progress | None = None,
         client: RegistryClient | None = None, insecure_registries: Sequence[str] = (),
         credentials: tuple[str, str] | None = None, chunk_size: int | None = None, workers: int = 3,
         source: str | None = None) -> str:
    """Push ``reference`` (``host[:port]/name:tag``) from ``store``; returns the manifest digest.

    ``source`` pushes another local image under that name (default: the image ``reference`` names).

    Raises:
        NotFound: no such image here. RegistryError, Unauthorized: the registry's answer.
    """
    ref = parse_reference(reference)
    if ref.digest:
        raise InvalidArgument(f"cannot push a digest reference: {reference}", hint="push a name:tag")
    progress = progress or Progress()
    image_id = store.resolve(source or reference)
    manifest, media_type = store.manifest_of(image_id)
    repository = ref.path
    if client is None:
        client = RegistryClient(ref.domain, credentials=credentials or load_credentials(ref.domain),
                                scopes=[f"repository:{repository}:pull,push"],
                                insecure_registries=insecure_registries)
    sources = [d.split("@")[0] for d in store.record(image_id).get("repoDigests", [])]
    mount_from = [parse_reference(s, None).path for s in sources
                  if parse_reference(s, None).domain == ref.domain
                  and parse_reference(s, None).path != repository]
    progress.line(f"The push refers to repository [{ref.name}]")
    layers = store.layers_of(image_id)
    blobs = [(layer.digest, layer.size) for layer in reversed(layers)]
    for digest, _ in blobs:
        progress.update(digest[7:19], "Preparing")

    def one(blob: tuple[str, int]) -> None:
        _push_blob(store, client, repository, blob[0], blob[1], mount_from, progress, chunk_size)

    outcomes = in_threads(one, blobs, workers, name="push")
    errors = [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    if errors:
        raise errors[0]
    config = store.blobs.read(image_id)
    _push_blob(store, client, repository, image_id, len(config), [], None, chunk_size)
    digest = sha256_digest(manifest)
    response = client.request("PUT", f"/v2/{repository}/manifests/{ref.tag}",
                              headers={"Content-Type": media_type}, body=manifest, expect=(201,),
                              what=f"manifest {ref.familiar}")
    announced = response.header("Docker-Content-Digest")
    if announced and announced != digest:
        raise DigestMismatch(f"the registry stored manifest {ref.familiar} as {announced}, expected {digest}")
    progress.line(f"{ref.tag}: digest: {digest} size: {len(manifest)}")
    client.close()
    return digest


def _push_blob(store: ImageStore, client: RegistryClient, repository: str, digest: str, size: int,
               mount_from: list[str], progress: Progress | None, chunk_size: int | None) -> None:
    short = digest[7:19]
    update = progress.update if progress is not None else (lambda *a, **k: None)
    exists = client.request("HEAD", f"/v2/{repository}/blobs/{digest}", expect=(200, 404),
                            what=f"blob {short} in {repository}")
    if exists.status == 200:
        update(short, "Layer already exists")
        return
    location = None
    for source in mount_from:
        response = client.request("POST", f"/v2/{repository}/blobs/uploads/?"
                                  + urllib.parse.urlencode({"mount": digest, "from": source}),
                                  expect=(201, 202), scopes=[f"repository:{source}:pull"],
                                  what=f"mount of {short} from {source}")
        if response.status == 201:
            update(short, f"Mounted from {source}")
            return
        location = urllib.parse.urljoin(response.url, response.header("Location", ""))
        break   # a fresh upload session: use it
    done = [0]

    def on_progress(n: int) -> None:
        done[0] += n
        update(short, "Pushing", done[0], size)

    with store.open_blob(digest) as f:   # a stored blob, or an uncompressed layer rebuilt from its tree
        try:
            upload_blob(client, repository, f, digest, size, chunk_size, on_progress, location)
        except RegistryError:
            raise
    update(short, "Pushed")
