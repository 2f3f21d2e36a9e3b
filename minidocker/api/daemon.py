"""minidockerd, the process: one per state root, in the foreground, serving the Engine API.

::

    daemon = Daemon(config)        # lock the state root, write the pidfile, listen on the socket
    daemon.serve()                 # until SIGTERM or SIGINT; then close and remove both files

What it holds is small and all of it can be rebuilt: the event bus (in memory, as
dockerd's) and the listening socket. Containers are not its children's business:
their state is on disk and they outlive it (the process model in the package README).
Logging goes to stderr, as dockerd's: ``time=... level=info msg=...``; ``--debug``
adds one line per request.
See: dockerd(8), flock(2).
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import sys
import time

from minidocker.engine.config import DaemonConfig
from minidocker.engine.events import EventBus
from minidocker.errors import Conflict

__all__ = ["Daemon", "default_pidfile", "read_pidfile", "setup_logging", "tls_context"]

log = logging.getLogger("minidockerd")


def default_pidfile(config: DaemonConfig) -> str:
    return config.pidfile or str(config.roots.run / "minidockerd.pid")


def read_pidfile(path: str) -> int | None:
    """The PID in ``path`` if that process is alive, else None."""
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


class _DockerFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        level = {"WARNING": "warning", "CRITICAL": "fatal"}.get(record.levelname, record.levelname.lower())
        text = record.getMessage().replace('"', '\\"')
        if record.exc_info:
            text += " " + self.formatException(record.exc_info).replace("\n", "\\n")
        return f'time="{stamp}" level={level} msg="{text}"'


def setup_logging(debug: bool, level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_DockerFormatter())
    log.handlers[:] = [handler]
    log.propagate = False
    names = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING, "error": logging.ERROR,
             "fatal": logging.CRITICAL}
    log.setLevel(logging.DEBUG if debug else names.get(level, logging.INFO))


class Daemon:
    """The daemon's state: its config, roots, event bus and server. Routes reach it as ``request.daemon``."""

    def __init__(self, config: DaemonConfig, reload=None) -> None:
        from minidocker.api.router import Router
        from minidocker.api.server import ApiServer
        from minidocker.engine.images import ImageSummaryCache

        self.config, self.roots = config, config.roots
        self._reload = reload
        self.events = EventBus()
        self.images = ImageSummaryCache(self.roots.images)   # docker images' answers
        self.started = time.time()
        self.roots.lib.mkdir(parents=True, exist_ok=True)
        self.roots.run.mkdir(parents=True, exist_ok=True)
        self._lock = _lock_root(self.roots.lib / "minidockerd.lock")
        self.pidfile = default_pidfile(config)
        self._write_pidfile()
        try:
            self.router = Router(_route_modules(), self)
            tcp = tuple(config.tcp_hosts)
            self.server = ApiServer(config.socket, self.router, group=config.group, tcp=tcp,
                                    tls=tls_context(config) if tcp else None)
        except BaseException:
            self._remove_pidfile()
            raise
        try:
            self._start_supervision()
        except BaseException:
            self.server.shutdown()
            self._remove_pidfile()
            raise

    def _start_supervision(self) -> None:
        """Find the supervisor (or start one), hear its events, fold in what happened while we were away."""
        from minidocker.engine.containers import ContainerService
        from minidocker.engine.supervision import SupervisorClient

        self.containers = ContainerService(self.roots, self.config, self.events)
        self.supervisor = SupervisorClient(self.roots.run / "supervisor.sock",
                                           self.containers.on_supervisor_event,
                                           log_path=str(self.roots.run / "supervisor.log"))
        self.containers.supervisor = self.supervisor
        if not self.supervisor.ensure_running():
            log.info("live restore: found the supervisor of the running containers")
        self.supervisor.subscribe(on_lost=self._supervisor_lost)
        for line in self.containers.reconcile():
            log.info("reconciled: %s", line)
        for cid in self.containers.restart_at_boot():
            log.info("restarted %s (its restart policy)", cid)

    def _supervisor_lost(self) -> None:
        """The supervisor died (kill -9?): its containers lost their monitor. Start a new one, reconcile."""
        if self.server.stopping:
            return
        log.error("the supervisor died: starting a new one; its containers are marked exited")
        try:
            self.supervisor.ensure_running()
            self.supervisor.subscribe(on_lost=self._supervisor_lost)
            for line in self.containers.reconcile():
                log.info("reconciled: %s", line)
        except Exception:  # noqa: BLE001 - the API goes on serving; container operations will fail clearly
            log.exception("failed to restart the supervisor")

    def _write_pidfile(self) -> None:
        pid = read_pidfile(self.pidfile)
        if pid is not None and pid != os.getpid():
            raise Conflict(f"pid file found, ensure minidockerd is not running or delete {self.pidfile}")
        os.makedirs(os.path.dirname(self.pidfile) or ".", exist_ok=True)
        from minidocker.atomic import write_bytes

        write_bytes(self.pidfile, f"{os.getpid()}\n".encode(), durable=False)

    def _remove_pidfile(self) -> None:
        if read_pidfile(self.pidfile) == os.getpid():
            os.unlink(self.pidfile)

    def serve(self) -> None:
        """Serve until SIGTERM/SIGINT (each ends it cleanly: socket and pidfile removed)."""
        def stop(signum, _frame):
            log.info("received %s, shutting down", signal.Signals(signum).name)
            self.server.shutdown()

        signal.signal(signal.SIGHUP, lambda _s, _f: self.reload())
        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a client gone mid-answer is an EPIPE, not a death
        log.info("API listen on %s", self.config.socket)
        for address, port in self.config.tcp_hosts:
            log.info("API listen on %s:%d (mutual TLS)", address, port)
        self.events.publish("daemon", "start", self.daemon_id(), {"name": os.uname().nodename})
        try:
            self.server.serve_forever()
        finally:
            self.containers._shutting_down = True
            self.server.shutdown()
            self._stop_idle_supervisor()
            self._remove_pidfile()
            log.info("daemon shut down")

    def _stop_idle_supervisor(self) -> None:
        """A supervisor with no container to watch ends with the daemon; one with containers stays
        (live restore)."""
        try:
            if not self.supervisor.request({"op": "list"}, timeout=5)["containers"]:
                self.supervisor.request({"op": "shutdown"}, timeout=5)
            else:
                log.info("containers keep running under the supervisor (live restore)")
        except Exception:  # noqa: BLE001
            pass

    def reload(self) -> None:
        """SIGHUP: read the config file again; apply what can change live (debug, log level, mirrors).

        A file that no longer parses is logged and ignored: the daemon keeps its config.
        """
        if self._reload is None:
            return
        try:
            new = self._reload()
        except Exception as err:  # noqa: BLE001 - a bad file must not stop a running daemon
            log.error("failed to reload the configuration: %s", err)
            return
        for attr in ("debug", "log_level", "registry_mirrors", "insecure_registries", "log_opts",
                     "log_driver", "default_network", "live_restore"):
            setattr(self.config, attr, getattr(new, attr))
        setup_logging(self.config.debug, self.config.log_level)
        log.info("configuration reloaded")
        self.events.publish("daemon", "reload", self.daemon_id(), {
            "name": os.uname().nodename, "debug": str(self.config.debug).lower(),
            "registry-mirrors": str(self.config.registry_mirrors),
            "live-restore": str(self.config.live_restore).lower()})

    def daemon_id(self) -> str:
        from minidocker.engine.system import daemon_id

        return daemon_id(self.roots)


def tls_context(config: DaemonConfig):
    """The server side of mutual TLS, as dockerd's ``--tlsverify``: our certificate, and clients must
    present one that ``--tlscacert`` signed (``CERT_REQUIRED``). TLS 1.2 at least.
    See: dockerd(8) "--tlsverify"; the Python ssl module's documentation."""
    import ssl

    from minidocker.errors import InvalidArgument

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tlscert, config.tlskey)
        context.load_verify_locations(cafile=config.tlscacert)
    except (ssl.SSLError, OSError) as err:
        raise InvalidArgument(f"failed to load the TLS certificates ({config.tlscert}, {config.tlskey}, "
                              f"{config.tlscacert}): {err}") from None
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _lock_root(path) -> int:
    """Hold an exclusive flock on ``path`` for the life of the process: one daemon per state root."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise Conflict(f"failed to start minidockerd: another minidockerd uses the state root {path.parent}",
                       hint="minidocker daemon status shows it; stop it with minidocker daemon stop"
                       ) from None
    return fd


def _route_modules():
    from minidocker.api import archive, build, containers, exec, images, networks, system, volumes

    return [system, containers, exec, images, networks, volumes, build, archive]
