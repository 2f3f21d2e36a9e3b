"""Test peers for chapter 07: Debian's docker-registry, a token server, images to push, a faulty registry.

    DistributionRegistry(tmp, auth="plain"|"htpasswd"|"token", token_server=...)  registry 2.8 on a free port
    TokenServer(users={"alice": "pw"})     the token endpoint registry 2.8 trusts (ES256 JWTs, kid from its cert)
    FaultyRegistry(image, fault=...)        a tiny registry serving one image with a chosen fault
    make_image(store, name, layers)         an image of given layer tars in an ImageStore
    free_port()

Everything listens on 127.0.0.1 only and is stopped by its own object (by PID for subprocesses).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["DistributionRegistry", "FaultyRegistry", "TokenServer", "free_port", "htpasswd_line", "make_image"]

REGISTRY = "/usr/bin/docker-registry"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def htpasswd_line(user: str, password: str) -> str:
    """A bcrypt htpasswd entry (registry 2.8 accepts only bcrypt): htpasswd -B, else libxcrypt."""
    if shutil.which("htpasswd"):
        out = subprocess.run(["htpasswd", "-nbBC", "5", user, password], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    return f"{user}:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=1 << 5))}"


def make_image(store, reference: str, layers: list[bytes], compression: str = "gzip", cmd=("sh",)):
    """Add an image made of these uncompressed layer tars to ``store``; returns the Image."""
    import io

    from minidocker.image import manifest as mf
    from minidocker.image.compression import compress_writer

    infos = []
    for tar in layers:
        buf = io.BytesIO()
        w = compress_writer(buf, compression)
        w.write(tar)
        w.close()
        infos.append(store.ingest_layer(io.BytesIO(buf.getvalue())))
    config = mf.canonical_json(mf.new_config([i.diff_id for i in infos], {"Cmd": list(cmd)}))
    return store.add_image(config, infos, tags=[reference])


# -- token server ---------------------------------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_key_id(public_key) -> str:
    """Docker's libtrust key ID: sha256 of the DER SubjectPublicKeyInfo, 30 bytes, base32, 12 groups of 4."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode().rstrip("=")
    return ":".join(b32[i:i + 4] for i in range(0, 48, 4))


class TokenServer:
    """The token endpoint of the Docker token spec: ``GET /token?service=&scope=`` with optional Basic.

    Anonymous callers get ``pull`` only; users with the right password get what they ask for;
    a wrong password gets 401. ``requests`` records every query.
    """

    def __init__(self, tmp: Path, users: dict[str, str] | None = None, issuer: str = "edu-token-issuer",
                 service: str = "edu-registry") -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.users, self.issuer, self.service = users or {}, issuer, service
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edu-token-signer")])
        now = __import__("datetime").datetime.now(__import__("datetime").timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - __import__("datetime").timedelta(1))
                .not_valid_after(now + __import__("datetime").timedelta(1)).sign(self.key, hashes.SHA256()))
        self.cert_path = tmp / "token-cert.pem"
        self.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.kid = libtrust_key_id(self.key.public_key())
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(parts.query)
                status, body = outer.answer(query, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def answer(self, query: dict, authorization: str | None) -> tuple[int, dict]:
        account = None
        if authorization and authorization.startswith("Basic "):
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            if self.users.get(user) != password:
                return 401, {"details": "incorrect username or password"}
            account = user
        scopes = [s for value in query.get("scope", []) for s in value.split()]
        self.requests.append({"account": account, "scopes": scopes, "service": query.get("service")})
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = actions.split(",")
            granted = wanted if account else [a for a in wanted if a == "pull"]
            access.append({"type": kind, "name": name, "actions": granted})
        return 200, {"token": self.sign(account or "", access), "expires_in": 300}

    def sign(self, subject: str, access: list[dict]) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        now = int(time.time())
        header = {"alg": "ES256", "kid": self.kid, "typ": "JWT"}
        claims = {"iss": self.issuer, "sub": subject, "aud": self.service, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": os.urandom(8).hex(), "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return f"{signing_input}.{_b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


# -- registry 2.8 ---------------------------------------------------------------------------------

class DistributionRegistry:
    """Debian's docker-registry (distribution 2.8) on a free loopback port, storage in ``tmp``."""

    def __init__(self, tmp: Path, auth: str = "plain", users: dict[str, str] | None = None,
                 token_server: TokenServer | None = None, redirect_base: str | None = None) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        config = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(tmp / "data")}, "delete": {"enabled": True}},
            "http": {"addr": self.address, "secret": "minidocker-tests",
                     "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }
        if auth == "htpasswd":
            (tmp / "htpasswd").write_text("".join(htpasswd_line(u, p) + "\n" for u, p in (users or {}).items()))
            config["auth"] = {"htpasswd": {"realm": "edu-realm", "path": str(tmp / "htpasswd")}}
        elif auth == "token":
            assert token_server is not None
            config["auth"] = {"token": {"realm": token_server.realm, "service": token_server.service,
                                        "issuer": token_server.issuer,
                                        "rootcertbundle": str(token_server.cert_path)}}
        if redirect_base:
            config["middleware"] = {"storage": [{"name": "redirect", "options": {"baseurl": redirect_base}}]}
        (tmp / "config.yml").write_text(json.dumps(config))   # JSON is YAML
        self.log = open(tmp / "registry.log", "wb")
        self.proc = subprocess.Popen([REGISTRY, "serve", str(tmp / "config.yml")], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"docker-registry did not start:\n{self.log_text()}") from None
                time.sleep(0.02)

    @property
    def data(self) -> Path:
        return self.tmp / "data"

    def log_text(self) -> str:
        return (self.tmp / "registry.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# -- a faulty registry ----------------------------------------------------------------------------

class FaultyRegistry:
    """A registry serving one image read from an ImageStore, with one fault.

    Faults: ``None``; ``"bad-blob"`` (a layer's bytes changed); ``"missing-blob"`` (404 for a
    layer); ``"bad-json"`` (a manifest that is not JSON); ``"drop"`` (the connection closes
    halfway through a layer, ``drops`` times); ``"bad-manifest-digest"`` (Docker-Content-Digest lies);
    ``"stall"`` (half of a layer, then nothing until ``stop``; ``stalled`` is set by then).
    ``hits`` counts GETs per path; ``Range: bytes=N-`` is honoured (206) unless ``ranges=False``,
    and ``range_requests`` records the offsets asked for.
    """

    def __init__(self, store, image_ref: str, repository: str = "demo/app", tag: str = "v1",
                 fault: str | None = None, drops: int = 10**6, ranges: bool = True) -> None:
        image_id = store.resolve(image_ref)
        manifest, media_type = store.manifest_of(image_id)
        self.manifest, self.media_type = manifest, media_type
        self.blobs = {image_id: store.blobs.read(image_id)}
        for layer in store.layers_of(image_id):
            self.blobs[layer.digest] = store.read_blob(layer.digest)   # uncompressed: rebuilt
        self.layer = store.layers_of(image_id)[-1].digest
        self.repository, self.tag, self.fault, self.drops = repository, tag, fault, drops
        self.hits: dict[str, int] = {}
        self.ranges, self.range_requests = ranges, []
        self.stalled, self._release = threading.Event(), threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                outer.hits[self.path] = outer.hits.get(self.path, 0) + 1
                outer.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        self.reference = f"{self.address}/{repository}:{tag}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        prefix = f"/v2/{self.repository}"
        digest = hashlib.sha256(self.manifest).hexdigest()
        if h.path in (f"{prefix}/manifests/{self.tag}", f"{prefix}/manifests/sha256:{digest}"):
            body = b"{not json" if self.fault == "bad-json" else self.manifest
            announced = "sha256:" + ("0" * 64 if self.fault == "bad-manifest-digest"
                                     else hashlib.sha256(body).hexdigest())
            return self.send(h, 200, body, {"Content-Type": self.media_type, "Docker-Content-Digest": announced})
        if h.path.startswith(f"{prefix}/blobs/"):
            digest = h.path.rsplit("/", 1)[1]
            data = self.blobs.get(digest)
            if data is None or (self.fault == "missing-blob" and digest == self.layer):
                return self.send(h, 404, json.dumps({"errors": [{"code": "BLOB_UNKNOWN",
                                                                 "message": "blob unknown to registry"}]}).encode())
            if digest == self.layer and self.fault == "bad-blob":
                data = data[:-10] + b"X" * 10
            if digest == self.layer and self.fault == "drop" and self.drops > 0:
                self.drops -= 1
                h.send_response(200)
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
                h.wfile.write(data[: len(data) // 2])
                h.wfile.flush()
                h.close_connection = True
                h.connection.shutdown(socket.SHUT_RDWR)
                return None
            if digest == self.layer and self.fault == "stall":
                h.send_response(200)
                h.send_header("Content-Length", str(len(data)))
                h.end_headers()
                h.wfile.write(data[: len(data) // 2])
                h.wfile.flush()
                self.stalled.set()
                self._release.wait(30)
                h.close_connection = True
                return None
            wanted = h.headers.get("Range")
            if wanted and self.ranges:
                start = int(wanted.removeprefix("bytes=").split("-")[0])
                self.range_requests.append(start)
                return self.send(h, 206, data[start:], {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
            return self.send(h, 200, data, {"Content-Type": "application/octet-stream"})
        return self.send(h, 404, b'{"errors":[{"code":"NOT_FOUND","message":"no such thing"}]}')

    @staticmethod
    def send(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict | None = None) -> None:
        h.send_response(status)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def stop(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def urlopen_json(url: str, headers: dict | None = None):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
        return json.loads(r.read())
