"""Registries: pull, push, login, and a registry server of our own. Chapter 07.

    pull(store, "busybox:latest") -> Image               pull.py      (manifest, platform, parallel layers)
    push(store, "127.0.0.1:5000/demo/app:v1") -> digest  push.py      (HEAD, mount, POST/PATCH/PUT, manifest)
    login / logout, load_credentials                     credentials.py (Docker's config.json format)
    RegistryClient(domain)                               client.py    (HTTP, 401 challenges, tokens,
                                                                      redirects)
    parse_challenge('Bearer realm="...",scope="..."')    auth.py
    Progress(stream)                                     progress.py  (Docker's bars on a tty, lines
                                                                      otherwise)
    RegistryServer(root, addr).serve_forever()           server.py    (distribution API v2 on a blob store)

A registry is a content-addressable HTTP store: blobs by digest, manifests by digest or
tag, and a token dance in front. Nothing here is imported by ``minidocker run``.
See: https://github.com/opencontainers/distribution-spec/blob/main/spec.md
"""

__all__: list[str] = []
