"""The Engine API's transport: HTTP/1.1 on a unix socket (and mutual-TLS TCP), one thread per connection.

::

    server = ApiServer(socket_path, route)        # bind, chmod 0660, chgrp minidocker, listen
    server = ApiServer(path, route, tcp=[("127.0.0.1", 2376)], tls=context)   # and TCP, TLS only
    server.serve_forever()                         # accept; each connection in its own thread
    server.shutdown()                              # from a signal handler or another thread

Who may connect: on the unix socket, root and the socket's group (mode 0660: connect(2)
needs write permission on it, unix(7)); on TCP, only a client whose certificate the
daemon's CA signed (``ssl.CERT_REQUIRED``), checked in the TLS handshake, before one byte
of HTTP is read. Plain TCP is refused at start (engine/config.py), as it hands root to
anyone who can reach the port. What they may send: a request line and headers of at most
:data:`MAX_HEAD` bytes (431), a JSON body of at most :data:`MAX_JSON_BODY` (413, refused
from its declared ``Content-Length`` or chunk sizes, so a 10 GiB body is never read).

A connection carries requests one after the other (keep-alive) until the client closes
it, an error makes framing uncertain, or a handler takes the socket over. What
clients send and expect (see the Docker Engine API documentation and RFC 9112):

- a request body framed by ``Content-Length`` or ``Transfer-Encoding: chunked``
  (``docker build``, ``load`` and ``cp`` stream chunked uploads; ``http.server`` cannot);
- a reply with ``Content-Length``, or **chunked and flushed per message** for streams
  (``/events``, ``wait``, ``logs -f``): :meth:`Request.stream`;
- ``Upgrade: tcp`` on attach and exec start: ``101 UPGRADED``, then the socket is raw
  bytes both ways (:meth:`Request.hijack`);
- ``Api-Version``, ``Ostype`` and ``Docker-Experimental`` on every reply, the ping's too:
  the docker CLI reads the first to choose its API version;
- ``Expect: 100-continue`` (curl with ``-T`` or a large ``--data``): ``100 Continue`` when the
  handler starts reading the body; a request answered without reading it closes the
  connection instead (the client may be holding the body back). RFC 9110 §10.1.1.

One slow or stalled client costs one thread and blocks no one: the request head
must arrive within :data:`HEAD_TIMEOUT`, a body read stalls only its own handler.
The handler threads never fork: container setup is exec'd (see engine/ and the
process model in the package README).
See: RFC 9112 (HTTP/1.1 messages), unix(7), accept(2).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
import select
import socket
import threading
import time
from email.utils import formatdate
from urllib.parse import parse_qs, unquote, urlsplit

from minidocker import __version__
from minidocker.engine.system import API_VERSION

__all__ = ["ApiServer", "BadRequest", "Reply", "Request", "HEAD_TIMEOUT", "COMMON_HEADERS"]

log = logging.getLogger("minidockerd")

HEAD_TIMEOUT = 60.0       # seconds for a request line and headers to arrive (Go's ReadHeaderTimeout)
MAX_HEAD = 1 << 20        # bytes of request line + headers, like Go's DefaultMaxHeaderBytes
MAX_JSON_BODY = 32 << 20  # a JSON body larger than this is refused (a create is ~2 KB)
COMMON_HEADERS = (("Api-Version", API_VERSION), ("Docker-Experimental", "false"), ("Ostype", "linux"),
                  ("Server", f"Minidocker/{__version__} (linux)"))
_REASONS = {101: "UPGRADED", 200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified",
            400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 411: "Length Required", 413: "Payload Too Large", 417: "Expectation Failed",
            431: "Request Header Fields Too Large",
            500: "Internal Server Error", 501: "Not Implemented"}


_ACCEPT_RETRY = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM, errno.ECONNABORTED, errno.EPROTO)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 §5.6.2: a method is a token


class BadRequest(Exception):
    """The bytes on the wire are not HTTP/1.1 we can frame: answer ``status`` and close."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Reply:
    """A complete answer: status, body bytes, content type, extra headers."""

    __slots__ = ("status", "body", "content_type", "headers")

    def __init__(self, status: int = 200, body: bytes = b"", content_type: str | None = None,
                 headers: tuple[tuple[str, str], ...] = ()) -> None:
        self.status, self.body, self.content_type, self.headers = status, body, content_type, headers

    @classmethod
    def json(cls, obj: object, status: int = 200) -> Reply:
        return cls(status, json.dumps(obj, separators=(",", ":")).encode() + b"\n", "application/json")

    @classmethod
    def empty(cls, status: int = 204) -> Reply:
        return cls(status)


class _Body:
    """A request body as a file: ``Content-Length`` bytes, or chunked, decoded. Never reads past its end."""

    def __init__(self, reader, length: int | None, chunked: bool, send_continue=None) -> None:
        self._reader, self._left, self._chunked, self._done = reader, length or 0, chunked, False
        self.length = length              # the declared Content-Length (None when chunked)
        self.limit: int | None = None     # set by a reader that refuses more: checked against the declared
        self._declared = 0                # chunk sizes announced so far
        self._send_continue = send_continue  # "Expect: 100-continue": called once, before the first read
        if not chunked and not length:
            self._done = True

    def _too_large(self) -> None:
        from minidocker.api.errors import PayloadTooLarge

        raise PayloadTooLarge(f"request body is larger than the limit of {self.limit} bytes")

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (all that is left if negative); b"" at the end. One socket read per call."""
        if self.limit is not None and self.length is not None and self.length > self.limit:
            self._too_large()  # refused from its Content-Length: not one byte of it is read
        if self._send_continue is not None and not self._done:
            self._send_continue()
            self._send_continue = None
        parts = []
        while not self._done:
            if self._left == 0:
                if not self._chunked:
                    self._done = True
                    break
                self._next_chunk()
                continue
            n = self._left if size < 0 else min(size, self._left)
            data = self._reader.read(n) if size < 0 else self._reader.read1(n)
            if not data:
                raise BadRequest("unexpected end of request body")
            self._left -= len(data)
            parts.append(data)
            if self._left == 0 and self._chunked:
                self._reader.readline(3)  # the CRLF after a chunk's data
            if size >= 0:
                break
        return b"".join(parts)

    def _next_chunk(self) -> None:
        line = self._reader.readline(1026)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise BadRequest(f"invalid chunk size {size_text[:20]!r}") from None
        if size == 0:
            while self._reader.readline(1026) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            self._done = True
            return
        self._declared += size
        if self.limit is not None and self._declared > self.limit:
            self._too_large()  # refused from the chunk's announced size, before its data
        self._left = size

    def drain(self, limit: int = 1 << 20) -> bool:
        """Read and drop the rest (so the next request can follow); False if it was more than ``limit``."""
        if self.length is not None and self._left > limit:
            return False  # a huge body left unread (a refused upload): close rather than read it
        if self._send_continue is not None and not self._done:
            return False  # never asked for: the client may not send it (or only after its timeout)
        self.limit = None
        while not self._done:
            limit -= len(self.read(65536))
            if limit < 0:
                return False
        return True


class Request:
    """One HTTP request, and the ways to answer it that are not a :class:`Reply`.

    Attributes: ``method``, ``path`` (without the ``/vX.Y`` prefix), ``api_version``
    (``"1.41"``, or None when unversioned), ``query`` (name -> list of values),
    ``headers`` (lower-case names), ``body`` (a file-like reader), ``params`` (from the route).
    """

    def __init__(self, conn: _Connection, method: str, target: str, headers: dict[str, str],
                 body: _Body) -> None:
        self.conn, self.method, self.target, self.headers, self.body = conn, method, target, headers, body
        split = urlsplit(target)
        self.raw_path = unquote(split.path)
        self.query = parse_qs(split.query, keep_blank_values=True)
        self.path, self.api_version = self.raw_path, None
        self.params: dict[str, str] = {}
        self.answered = False
        self.status = 0

    # -- reading -------------------------------------------------------------------------------

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean query parameter, read like dockerd: '', 0, no, false, none are false."""
        value = self.arg(name)
        if value is None:
            return default
        return value.strip().lower() not in ("", "0", "no", "false", "none")

    def json(self, required: bool = True) -> object:
        """The body as JSON; a body that is not JSON raises InvalidArgument (400, Docker 23+'s status)."""
        from minidocker.errors import InvalidArgument

        ctype = self.headers.get("content-type", "").split(";")[0].strip()
        self.body.limit = MAX_JSON_BODY
        parts, size = [], 0
        while size <= MAX_JSON_BODY:  # one piece per socket read, joined once (never bytes += bytes)
            more = self.body.read(MAX_JSON_BODY + 1 - size)
            if not more:
                break
            parts.append(more)
            size += len(more)
        data = b"".join(parts)
        if size > MAX_JSON_BODY:
            self.body._too_large()
        if not data.strip():
            if required:
                raise InvalidArgument("invalid JSON: EOF: the request body is empty")
            return None
        if ctype and ctype != "application/json":
            raise InvalidArgument(f"Content-Type specified ({ctype}) must be 'application/json'")
        try:
            return json.loads(data)
        except (ValueError, UnicodeDecodeError) as err:
            raise InvalidArgument(f"invalid JSON: {err}") from None

    def client_gone(self, timeout: float = 0) -> bool:
        """True when the client closed its side (EOF) or the socket failed: ends long streams.

        A half-closed attach also reads EOF: callers that expect stdin do not ask this.
        """
        sock = self.conn.sock
        try:
            if self.conn.tls and sock.pending():
                return False
            ready, _, _ = select.select([sock], [], [], timeout)
            if not ready:
                return False
            if not self.conn.tls:
                return sock.recv(1, socket.MSG_PEEK) == b""
            data = sock.recv(1)  # TLS cannot peek: the byte joins what the reader has buffered
            self.conn.reader.buffer += data
            return data == b""
        except (OSError, ValueError):
            return True

    # -- answering -----------------------------------------------------------------------------

    def _head(self, status: int, headers: list[tuple[str, str]]) -> bytes:
        self.answered, self.status = True, status
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        lines += [f"{k}: {v}" for k, v in (*COMMON_HEADERS, ("Date", formatdate(usegmt=True)), *headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def send(self, reply: Reply) -> None:
        headers = list(reply.headers)
        if reply.content_type:
            headers.append(("Content-Type", reply.content_type))
        body = reply.body
        if reply.status not in (204, 304):
            headers.append(("Content-Length", str(len(body))))
        else:
            body = b""
        if self.method == "HEAD":
            body = b""
        self.conn.sock.sendall(self._head(reply.status, headers) + body)

    def stream(self, status: int = 200, content_type: str | None = "application/json",
               headers: tuple[tuple[str, str], ...] = ()) -> _ChunkWriter:
        """Start a chunked reply; every ``write`` is one chunk, sent at once. ``headers``: more of them."""
        headers = [*headers, ("Transfer-Encoding", "chunked")]
        if content_type:
            headers.append(("Content-Type", content_type))
        self.conn.sock.sendall(self._head(status, headers))
        return _ChunkWriter(self.conn.sock)

    def hijack(self, content_type: str = "application/vnd.docker.raw-stream",
               send: bool = True) -> tuple[socket.socket, bytes, bytes]:
        """Take the connection over: 101 UPGRADED (or 200 to a client that did not ask to upgrade).

        Returns the socket, the bytes the client already sent behind its request (the
        first raw bytes: ``docker run -i`` may write stdin at once), and the answer's head:
        sent already, or (``send=False``) for the caller to send once it is ready for the
        client's next move (an attach is registered before the client may ``start``). The
        connection is not reused for HTTP after this.
        """
        upgrade = "upgrade" in self.headers.get("connection", "").lower()
        headers = [("Content-Type", content_type)]
        if upgrade:
            headers += [("Connection", "Upgrade"), ("Upgrade", "tcp")]
        head = self._head(101 if upgrade else 200, headers)
        if send:
            self.conn.sock.sendall(head)
        self.conn.keep_alive = False
        self.conn.hijacked = True
        early = self.conn.reader.take()
        if self.conn.tls:
            # A TLS socket cannot be handed on (dup, or to the supervisor as an fd): a plain
            # socket pair stands in for it, and a thread relays between the pair and TLS.
            inner, outer = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            threading.Thread(target=_relay_tls, args=(self.conn.sock, outer), name="tls-relay",
                             daemon=True).start()
            self.conn.sock = inner  # the connection closes its copy; the relay owns the TLS socket
        return self.conn.sock, early, b"" if send else head


def _relay_tls(tls, plain: socket.socket) -> None:
    """Copy bytes both ways between a hijacked TLS socket and its stand-in, in one thread (OpenSSL's
    objects must not be read and written from two threads). The client's EOF half-closes the stand-in."""
    reading = True
    try:
        while True:
            if reading and tls.pending():
                ready = [tls]
            else:
                ready, _, _ = select.select([tls, plain] if reading else [plain], [], [])
            if tls in ready:
                data = tls.recv(65536)
                if data:
                    plain.sendall(data)
                else:
                    reading = False
                    plain.shutdown(socket.SHUT_WR)
            if plain in ready:
                data = plain.recv(65536)
                if not data:
                    break
                tls.sendall(data)
    except (OSError, ValueError) as err:
        log.debug("tls relay ended: %s", err)
    finally:
        for sock in (plain, tls):
            try:
                sock.close()
            except OSError:
                pass


class _ChunkWriter:
    """The body of a chunked reply: ``write(data)`` sends one chunk; ``close()`` the last, empty one."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.closed = sock, False

    def write(self, data: bytes) -> None:
        if data:
            self.sock.sendall(_chunk(data))

    def close(self, last: bytes = b"") -> None:
        """End the body; ``last``: a final chunk, sent with the end in one write (a client reading
        to the end, as ``docker run`` reads its wait, then gets both at once)."""
        if not self.closed:
            self.closed = True
            self.sock.sendall((_chunk(last) if last else b"") + b"0\r\n\r\n")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class _SocketReader:
    """Buffered reads from a socket whose unread bytes can be taken back (for a hijacked connection).

    ``socket.makefile`` buffers too, but hides what it read ahead: after a 101 the bytes a
    client sent straight behind its request (``docker run -i``'s stdin) must go with
    the socket to whoever serves the raw stream (:meth:`take`).
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buffer = sock, bytearray()

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def readline(self, limit: int = -1) -> bytes:
        start = 0
        while True:
            end = self.buffer.find(b"\n", start)
            if end >= 0:
                end += 1
                break
            if 0 <= limit <= len(self.buffer):
                end = limit
                break
            start = len(self.buffer)
            if not self._fill():
                end = len(self.buffer)
                break
        if 0 <= limit < end:
            end = limit
        line = bytes(self.buffer[:end])
        del self.buffer[:end]
        return line

    def read1(self, n: int) -> bytes:
        if not self.buffer and not self._fill():
            return b""
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def read(self, n: int) -> bytes:
        while len(self.buffer) < n and self._fill():
            pass
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def take(self) -> bytes:
        """What was received but not read; the buffer is empty afterwards."""
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def close(self) -> None:
        self.buffer.clear()


class _Connection:
    """One client connection: parse requests, dispatch, answer, repeat (keep-alive)."""

    def __init__(self, sock: socket.socket, server: ApiServer, tls: bool = False) -> None:
        self.sock, self.server, self.tls = sock, server, tls
        self.reader = _SocketReader(sock)
        self.keep_alive, self.hijacked = True, False

    def serve(self) -> None:
        try:
            while self.keep_alive and not self.server.stopping:
                if not self._one_request():
                    break
        except (ConnectionError, TimeoutError, socket.timeout, OSError) as err:
            log.debug("connection closed: %s", err)
        finally:
            try:
                self.reader.close()
                self.sock.close()
            except OSError:
                pass
            self.server.forget(self)

    def _read_head(self) -> tuple[str, str, dict[str, str]] | None:
        self.sock.settimeout(HEAD_TIMEOUT)
        line = self.reader.readline(MAX_HEAD)
        while line in (b"\r\n", b"\n"):  # RFC 9112 §2.2: ignore empty lines before a request
            line = self.reader.readline(MAX_HEAD)
        if not line:
            return None
        if not line.endswith(b"\n"):
            if len(line) >= MAX_HEAD:
                raise BadRequest("request line too long", 431)
            raise BadRequest("unexpected end of the request line")
        parts = line.decode("latin-1").split()
        if len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1") or not _TOKEN.match(parts[0]) \
                or not parts[1].isprintable():
            raise BadRequest("malformed HTTP request line")
        method, target, version = parts
        headers: dict[str, str] = {}
        total = len(line)
        while True:
            line = self.reader.readline(MAX_HEAD)
            total += len(line)
            if total > MAX_HEAD:
                raise BadRequest("request header fields too large", 431)
            if not line.endswith(b"\n"):
                raise BadRequest("unexpected end of request headers")
            if line in (b"\r\n", b"\n"):
                break
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep or not name.strip() or name != name.strip():
                raise BadRequest("malformed HTTP header")
            key = name.lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        self.sock.settimeout(None)
        if version == "HTTP/1.0" or "close" in headers.get("connection", "").lower():
            self.keep_alive = False
        return method, target, headers

    def _one_request(self) -> bool:
        try:
            head = self._read_head()
            if head is None:
                return False
            started = time.monotonic()
            method, target, headers = head
            send_continue = self._continue if self._expects_continue(headers) else None
            body = self._body(headers, self.reader, send_continue)
        except BadRequest as err:
            self._bare_error(err.status, str(err))
            return False
        request = Request(self, method, target, headers, body)
        try:
            self.server.route(request)
        finally:
            elapsed = (time.monotonic() - started) * 1000
            log.debug("%s %s -> %s (%.1f ms)", method, target, request.status or "-", elapsed)
        if self.hijacked or not request.answered:
            return False
        try:
            return body.drain()  # False: too much left to read; the connection closes instead
        except BadRequest:
            return False  # the body ended early: the client is gone or lied about its length

    @staticmethod
    def _body(headers: dict[str, str], reader, send_continue=None) -> _Body:
        encoding = headers.get("transfer-encoding", "").lower()
        if encoding:
            if encoding != "chunked":
                raise BadRequest(f"unsupported transfer encoding {encoding!r}", 501)
            return _Body(reader, None, True, send_continue)
        length = headers.get("content-length")
        if length is None:
            return _Body(reader, 0, False)
        if not length.isdigit():
            raise BadRequest("invalid Content-Length")
        return _Body(reader, int(length), False, send_continue)

    @staticmethod
    def _expects_continue(headers: dict[str, str]) -> bool:
        expect = headers.get("expect", "").lower()
        if expect and expect != "100-continue":
            raise BadRequest(f"unsupported expectation {expect!r}", 417)  # RFC 9110 §10.1.1
        return bool(expect)

    def _continue(self) -> None:
        """The interim answer that tells a client holding its body back to send it."""
        self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _bare_error(self, status: int, message: str) -> None:
        """For bytes that are not HTTP we can frame: a status line, ``{"message"}`` as every error has,
        and close.

        (Go's net/http answers these in plain text; a JSON body costs clients nothing and
        keeps the one rule: every error has a message.)
        """
        log.debug("bad request: %s", message)
        text = json.dumps({"message": f"{status} {_REASONS.get(status, 'Bad Request')}: {message}"}).encode()
        try:
            self.sock.sendall(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                              b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
                              % (status, _REASONS.get(status, "Bad Request").encode(), len(text), text))
        except OSError:
            pass


class ApiServer:
    """A listening unix socket (and TCP ones, mutual TLS only) and the threads serving their connections.

    Args:
        path: the socket's path; a stale socket there is replaced, a live one refused.
        route: called with each :class:`Request`; it must answer it (api/router.py).
        group: the group that may use the socket (mode 0660), if it exists; else root only.
        tcp: (address, port) to listen on too, each with ``tls``, an ``ssl.SSLContext`` that
            requires a client certificate: the handshake comes before any HTTP, and a client
            without a certificate its CA signed never gets to send a request.
    """

    def __init__(self, path: str, route, group: str = "minidocker", tcp: tuple[tuple[str, int], ...] = (),
                 tls=None) -> None:
        if tcp and tls is None:
            raise ValueError("TCP listeners need a TLS context (mutual TLS)")
        self.path, self.route, self.tls = path, route, tls
        self.stopping = False
        self._connections: set[_Connection] = set()
        self._lock = threading.Lock()
        self.sock = _listen(path, group)
        self.tcp_socks: list[socket.socket] = []
        try:
            for address, port in tcp:
                self.tcp_socks.append(_listen_tcp(address, port))
        except BaseException:
            for sock in (self.sock, *self.tcp_socks):
                sock.close()
            os.unlink(path)
            raise

    def serve_forever(self) -> None:
        threading.stack_size(512 * 1024)  # 100 streaming clients: 100 threads, small stacks
        for sock in self.tcp_socks:
            threading.Thread(target=self._accept, args=(sock, True), name="accept-tcp", daemon=True).start()
        self._accept(self.sock, False)

    def _accept(self, listener: socket.socket, tls: bool) -> None:
        delay = 0.005
        while not self.stopping:
            try:
                client, _ = listener.accept()
            except OSError as err:
                if self.stopping:
                    break
                if err.errno not in _ACCEPT_RETRY:
                    raise
                # Out of descriptors (a client holding many connections): wait and retry, as Go's
                # net/http does, instead of ending the daemon. Those who leave give them back.
                log.warning("accept failed: %s; retrying in %d ms", err.strerror, delay * 1000)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            delay = 0.005
            target = self._serve_tls if tls else self._serve
            try:
                threading.Thread(target=target, args=(client,), name="conn", daemon=True).start()
            except RuntimeError as err:  # no thread to be had (memory, a limit): the client goes, not us
                log.warning("cannot serve a connection: %s", err)
                client.close()

    def _serve(self, client: socket.socket, tls: bool = False) -> None:
        conn = _Connection(client, self, tls)
        with self._lock:
            self._connections.add(conn)
        conn.serve()

    def _serve_tls(self, client: socket.socket) -> None:
        """The TLS handshake (a client certificate required), then HTTP as on the unix socket."""
        import ssl

        client.settimeout(HEAD_TIMEOUT)
        try:
            wrapped = self.tls.wrap_socket(client, server_side=True)
        except (ssl.SSLError, OSError) as err:
            log.debug("TLS handshake refused: %s", err)
            client.close()
            return
        self._serve(wrapped, tls=True)

    def forget(self, conn: _Connection) -> None:
        with self._lock:
            self._connections.discard(conn)

    @property
    def connections(self) -> int:
        return len(self._connections)

    def shutdown(self) -> None:
        """Stop accepting, remove the socket file, close every connection (streams end)."""
        if self.stopping:
            return
        self.stopping = True
        for sock in (self.sock, *self.tcp_socks):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        with self._lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _listen_tcp(address: str, port: int) -> socket.socket:
    """A listening TCP socket on ``address:port`` (IPv6 when the address has a colon)."""
    from minidocker.errors import Conflict

    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((address, port))
    except OSError as err:
        sock.close()
        raise Conflict(f"failed to listen on tcp://{address}:{port}: {err.strerror}") from None
    sock.listen(512)
    return sock


def _listen(path: str, group: str) -> socket.socket:
    """Bind ``path`` (replacing a stale socket, never a live one), mode 0660, group ``group`` if it exists."""
    from minidocker.errors import Conflict

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # nobody listens: a crashed daemon's socket
        else:
            raise Conflict(f"failed to listen on {path}: another daemon is listening there",
                           hint="stop it first (minidocker daemon stop), or choose another socket with -H")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o117)  # born 0660: no window in which others could connect
    try:
        sock.bind(path)
    finally:
        os.umask(old)
    os.chmod(path, 0o660)
    try:
        import grp

        os.chown(path, 0, grp.getgrnam(group).gr_gid)
    except (KeyError, PermissionError):
        pass
    sock.listen(512)
    return sock
