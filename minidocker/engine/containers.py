"""minidockerd's containers: the Engine API's container operations, on the supervisor. Chapter 13.

::

    service = ContainerService(roots, config, events)   # one per daemon; reconciles at start
    c = service.create(body, name)        POST /containers/create   record + snapshot, status created
    service.start(ref)                    POST /containers/{id}/start    mount, supervisor create + start
    service.stop(ref, timeout)            StopSignal (or SIGTERM), grace period, SIGKILL
    service.kill(ref, signal)             POST /containers/{id}/kill
    service.wait(ref, condition)          not-running | next-exit | removed -> exit code
    service.remove(ref, force)            DELETE /containers/{id}
    service.list(all) / service.get(ref)  records, refreshed
    service.attach(ref, sock, ...)        hand the client's socket to the supervisor
    service.pause(ref) / unpause(ref)     the cgroup freezer, through the supervisor (State.Paused)
    service.rename(ref, name)             claim the new name (claim_name), then drop the old one
    service.top(ref, ps_args)             the host's ps(1), rows of the container's cgroup
    service.exec_create/_start/_resize    docker exec (-t: a pty from the container's devpts)
    service.prune(chosen)                 remove what does not run

Networks and volumes are chapter 09's and 10's engine functions, as in direct mode's run:
``create`` checks ``-p``/``--network`` (plan_network) and ``-v``/``--mount``/``--tmpfs``/
``--volumes-from`` (plan_mounts) before anything exists, creates the volumes and copies the
image's content up into them; each ``start`` has the supervisor put the container on its
bridge network (see "networks and mounts" below for who does what, and why).

Names are claimed with the engine's atomic ``claim_name`` (as direct mode does), so a
name cannot be taken twice, by two requests or by the daemon and a direct ``run``. A
lookup by full ID or by name reads one record (its directory, its claim); only ID
prefixes scan them all. Records are read through the service's RecordCache
(engine/container.py), which parses a record again only when its file changed.
Paused is not a status of its own, as in Docker: a running container with ``paused``
set (State.Status "paused", State.Running true).
The states are Docker's: created -> running -> exited (-> removed); what happens on an
exit (record, unmount, ``die`` event, waiters, ``--rm``) is :meth:`_exited`, called from
the supervisor's event and from :meth:`reconcile` for exits the daemon did not see
(it was down: ``kill -9``, live restore). An exit the restart policy restarts goes to
"restarting" in the same step (under ``self.lock``), and a manual stop, kill or ``rm -f``
finds either "running" (then that exit is not restarted) or "restarting" (then the pending
start is cancelled): never a restart after a stop, until the daemon restarts.
See: docker-container-run(1), the Engine API reference "Container".
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time

from minidocker.engine.container import (Container, RecordCache, claim_name, claim_random_name,
                                         find_container, list_containers, random_name, release_name)
from minidocker.errors import (Conflict, ContainerError, ImageNotFound, InvalidArgument, InvalidState,
                               MinidockerError, NotFound)
from minidocker.paths import StateRoots

__all__ = ["ContainerService", "NotModifiedError", "network_aliases", "parse_signal"]

_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
EXIT_FILE = "exit.json"
ENDPOINTS_FILE = "endpoints.json"   # the bridge endpoints of a running container, for inspect


class NotModifiedError(Exception):
    """The operation had nothing to do (start of a running container): the API answers 304."""


def parse_signal(value: str | int | None, default: int = signal.SIGKILL) -> int:
    """``KILL``, ``SIGKILL``, ``9`` -> 9; anything else is InvalidArgument("Invalid signal: X")."""
    if value in (None, ""):
        return int(default)
    text = str(value).strip()
    if text.isdigit():
        number = int(text)
        if 0 < number < signal.NSIG:
            return number
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        try:
            return int(signal.Signals[name])
        except KeyError:
            pass
    raise InvalidArgument(f"Invalid signal: {value}")


def restart_policy(host: dict) -> tuple[str, int]:
    """HostConfig.RestartPolicy as (name, maximum retries): no, always, unless-stopped, on-failure[:N]."""
    policy = _typed(host, "RestartPolicy", dict, {}) or {}
    name = _typed(policy, "Name", str, "") or "no"
    retries = _typed(policy, "MaximumRetryCount", int, 0) or 0
    if name not in ("no", "always", "unless-stopped", "on-failure"):
        raise InvalidArgument(f"invalid restart policy '{name}'")
    if retries and name != "on-failure":
        raise InvalidArgument(f"maximum retry count cannot be used with restart policy '{name}'")
    if retries < 0:
        raise InvalidArgument("maximum retry count cannot be negative")
    return name, retries


def restart_delay(restarts: int, ran_for: float) -> float | None:
    """Docker's back-off: 100 ms, doubling with each quick restart, back to 100 ms after 10 s up."""
    if ran_for >= 10:
        return 0.1
    return min(0.1 * (2 ** restarts), 60.0)


def _typed(body: dict, key: str, kind, default=None):
    """``body[key]`` if it has JSON type ``kind`` (null is the default); else InvalidArgument naming it."""
    value = body.get(key, default)
    if value is None:
        return default
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
        names = {str: "string", bool: "boolean", int: "number", float: "number", list: "array",
                 dict: "object"}
        raise InvalidArgument(f"invalid {key}: expected {' or '.join(names[k] for k in kinds)}, "
                              f"got {type(value).__name__} {value!r}"[:300])
    return value


def _strings(body: dict, key: str) -> list[str] | None:
    """A Go ``StrSlice``: a JSON string or an array of strings (or null)."""
    value = _typed(body, key, (list, str))
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"invalid {key}: expected an array of strings")
    return value


def _endpoint_config(body: dict, network: str) -> dict:
    """NetworkingConfig.EndpointsConfig's entry for ``network``: under its name, or under ``default``,
    the docker CLI's key for the default network. One entry at most, as dockerd's create checks."""
    networking = _typed(body, "NetworkingConfig", dict, {}) or {}
    endpoints = _typed(networking, "EndpointsConfig", dict, {}) or {}
    if len(endpoints) > 1:
        raise InvalidArgument(f"Container cannot be connected to network endpoints: {', '.join(endpoints)}")
    endpoint = endpoints.get(network) or endpoints.get("default") or {}
    if not isinstance(endpoint, dict):
        raise InvalidArgument(f"invalid EndpointsConfig for {network}: expected an object")
    return endpoint


def _requested_ip(body: dict, network: str) -> str | None:
    """NetworkingConfig.EndpointsConfig[network].IPAMConfig.IPv4Address (``docker run --ip``), or None."""
    ipam_config = _typed(_endpoint_config(body, network), "IPAMConfig", dict, {}) or {}
    return _typed(ipam_config, "IPv4Address", str, "") or None


def network_aliases(body: dict, network: str) -> list[str]:
    """NetworkingConfig.EndpointsConfig[network].Aliases (``docker run --network-alias``), as given."""
    from minidocker.network.names import check_aliases

    return check_aliases(_strings(_endpoint_config(body, network), "Aliases") or [])


def _mac_address(body: dict) -> str | None:
    """Config.MacAddress (``docker run --mac-address``), checked; None: the one of its address."""
    from minidocker.network.ipam import parse_mac

    text = _typed(body, "MacAddress", str, "") or ""
    # SPEC: dockerd 20.10 takes a bad one at create and fails at start; here create refuses it (400)
    return parse_mac(text) if text else None


def _publish_specs(host: dict) -> list[str]:
    """HostConfig.PortBindings ({"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}) as ``-p`` values."""
    bindings = _typed(host, "PortBindings", dict, {}) or {}
    specs = []
    for key, entries in bindings.items():
        port, _, proto = str(key).partition("/")
        if entries is not None and not isinstance(entries, list):
            raise InvalidArgument(f"invalid PortBindings for {key}: expected an array")
        for entry in entries or [{}]:
            if not isinstance(entry, dict):
                raise InvalidArgument(f"invalid PortBindings for {key}: expected objects")
            ip = entry.get("HostIp") or ""
            ip = "" if ip in ("0.0.0.0", "::") else ip
            specs.append(f"{ip}:{entry.get('HostPort') or ''}:{port}/{proto or 'tcp'}")
    return specs


class ExecInstance:
    """An exec of a container: created, then started once (``docker exec``); its exit code when done."""

    def __init__(self, id: str, container_id: str, cmd: list[str], env: list[str], workdir: str, user,
                 stdin: bool) -> None:
        self.id, self.container_id, self.cmd, self.env, self.workdir, self.user = (
            id, container_id, cmd, env, workdir, user)
        self.stdin = stdin
        self.tty = False
        self.started = self.running = False
        self.exit_code: int | None = None
        self.pid: int | None = None


class ContainerService:
    """The daemon's container operations. Thread-safe: HTTP handler threads call it concurrently."""

    def __init__(self, roots: StateRoots, config, events, supervisor=None) -> None:
        self.roots, self.config, self.events = roots, config, events
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)   # notified at every exit and removal
        self.exits: dict[str, int] = {}                 # exits seen, per container (for next-exit)
        self.removed: set[str] = set()
        self.pending_attach: dict[str, list] = {}       # attach before start (docker run): held here
        self.supervisor = supervisor
        self._last_exit: dict[str, int] = {}
        self.execs: dict[str, ExecInstance] = {}
        self._restarts: dict[str, threading.Event] = {}  # pending restarts by policy: set = cancelled
        self.records = RecordCache(roots)               # every read of a record goes through it

    # -- create ---------------------------------------------------------------------------------

    def create(self, body: dict, name: str | None = None) -> Container:
        """A container in status ``created``: its record, config and filesystem, no process."""
        from minidocker.engine.images import local_image
        from minidocker.image import ImageStore
        from minidocker.image.reference import parse_reference

        if not isinstance(body, dict):
            raise InvalidArgument("invalid container config: expected a JSON object")
        image_name = _typed(body, "Image", str)
        if not image_name:
            raise InvalidArgument("config cannot be empty in order to create a container")
        host = _typed(body, "HostConfig", dict, {}) or {}
        if name is not None and name != "" and not _NAME.match(name):
            raise InvalidArgument(f"Invalid container name ({name}), "
                                  "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        name = (name or "").lstrip("/") or None
        container_warnings: list[str] = []
        options = self._run_options(body, host, image_name, container_warnings)
        policy = restart_policy(host)
        if policy[0] != "no" and options.remove:
            raise InvalidArgument("Conflicting options: --restart and --rm")
        log_type, log_opts = self._log_config(host)
        store = ImageStore(self.roots.images)
        try:
            image = local_image(store, image_name)
        except (ImageNotFound, InvalidArgument):
            try:
                ref = parse_reference(image_name)
                shown = f"{ref.familiar_name}:{ref.tag or 'latest'}"
            except Exception:  # noqa: BLE001 - the name as typed, then
                shown = image_name
            raise ImageNotFound(f"No such image: {shown}") from None
        network_plan = self._network_plan(options, body, host)       # bad -p, unknown network: nothing made
        mount_plan = self._mount_plan(body, host, image.config)      # bad -v/--mount: nothing made
        container = Container.new(name or random_name(), image.reference, [], image_id=image.id)
        from minidocker.engine.run import build_spec, write_config
        from minidocker.storage import Snapshot

        directory = container.directory(self.roots)
        spec = build_spec(image, options, str(directory / "rootfs"), container.id, network_plan, directory,
                          self.roots, mount_plan)
        container.command = spec["process"]["args"]
        container.config = {**body, "Image": image_name, "Hostname": spec.get("hostname", container.id[:12])}
        for key in ("ExposedPorts", "Volumes"):   # the image's and the request's, as in dockerd's Config
            merged = {**(image.config.get(key) or {}), **(body.get(key) or {})}
            if merged:
                container.config[key] = merged
        container.host_config = {**host, "LogConfig": {"Type": log_type, "Config": log_opts}}
        container.supervised = True
        with self.lock:   # the claim reads and updates the names of the records (_record_named)
            container.name = self._claim(name, container.id)
        # The rest runs without self.lock: filling a new volume from the image (copy-up) can take
        # seconds, and every start, stop and exit waits for that lock. Nobody can reach this container
        # meanwhile: its name is claimed, and until its record is saved (last) lookups and listings
        # skip its directory, as they skip one of direct mode's being created
        # (test_a_create_that_fills_a_volume_holds_up_no_other_request).
        try:
            snapshot = Snapshot.create(image.layers, directory)
            write_config(directory, spec)
            self._prepare_mounts(network_plan, mount_plan, snapshot, spec, container)
            container.save(self.roots, durable=not options.remove)  # as direct mode: --rm records need none
        except BaseException:
            import shutil

            shutil.rmtree(directory, ignore_errors=True)
            release_name(self.roots.containers, container.name, container.id)
            raise
        container.warnings = container_warnings  # not persisted: create's answer only
        self._event(container, "create")
        return container

    def _claim(self, name: str | None, cid: str, context: str = "") -> str:
        """Take ``name`` for ``cid`` with the engine's atomic claim (engine/container.py: claim_name),
        as direct mode does; None: a free random name. A taken name is Docker's 409."""
        if name is None:
            return claim_random_name(self.roots, cid, record_named=self._record_named)
        try:
            claim_name(self.roots, name, cid, record_named=self._record_named)
        except Conflict:
            from minidocker.engine.container import _claim_holder

            holder = (_claim_holder(self.roots, self.roots.containers / ".names" / name)
                      or self._record_named(name) or "")
            raise Conflict(f'{context}Conflict. The container name "/{name}" is already in use by container '
                           f'"{holder}". You have to remove (or rename) that container to be able '
                           "to reuse that name.") from None
        return name

    def _record_named(self, name: str) -> str | None:
        """The ID of the record called ``name``, for claim_name's records without a claim file.

        Reading every record at each claim made each create O(containers) (39 % of a create at
        50 containers): the records cache parses only those that changed. Called under
        claim_name's lock and self.lock.
        """
        return self.records.named(name)

    def _run_options(self, body: dict, host: dict, image_name: str, warnings: list[str]):
        from minidocker.engine.resources import ResourceFlags
        from minidocker.engine.run import RunOptions

        entrypoint = _strings(body, "Entrypoint")
        cmd = _strings(body, "Cmd") or []
        env = _strings(body, "Env") or []
        if entrypoint is not None:
            first = entrypoint[0] if entrypoint else ""
            cmd = [*entrypoint[1:], *cmd]
        else:
            first = None
        network = self._network_mode(host)
        memory = _typed(host, "Memory", int, 0)
        swap = _typed(host, "MemorySwap", int, 0)
        nano = _typed(host, "NanoCpus", int, 0)
        pids = _typed(host, "PidsLimit", int, 0)
        resources = ResourceFlags(
            memory=str(memory) if memory else None, memory_swap=str(swap) if swap else None,
            cpus=nano / 1e9 if nano else None, cpu_shares=_typed(host, "CpuShares", int, 0) or None,
            cpu_period=_typed(host, "CpuPeriod", int, 0) or None,
            cpu_quota=_typed(host, "CpuQuota", int, 0) or None,
            pids_limit=pids if pids else None)
        _typed(host, "Binds", list), _typed(host, "Mounts", list), _typed(host, "Tmpfs", dict)
        _typed(host, "VolumesFrom", list), _typed(host, "PortBindings", dict), _typed(body, "Volumes", dict)
        return RunOptions(
            image=image_name, command=cmd, hostname=_typed(body, "Hostname", str) or None, env=env,
            workdir=_typed(body, "WorkingDir", str) or None, user=_typed(body, "User", str) or None,
            entrypoint=first, interactive=bool(_typed(body, "OpenStdin", bool, False)),
            tty=bool(_typed(body, "Tty", bool, False)), init=bool(_typed(host, "Init", bool, False)),
            remove=bool(_typed(host, "AutoRemove", bool, False)),
            read_only=bool(_typed(host, "ReadonlyRootfs", bool, False)), network=network, resources=resources)

    def _log_config(self, host: dict) -> tuple[str, dict]:
        from minidocker.engine.logfile import parse_log_opts

        log_config = _typed(host, "LogConfig", dict, {}) or {}
        log_type = _typed(log_config, "Type", str, "") or self.config.log_driver
        opts = _typed(log_config, "Config", dict, {}) or (
            dict(self.config.log_opts) if not log_config.get("Type") else {})
        if log_type not in ("json-file", "none"):
            raise InvalidArgument(f'logger: no log driver named \'{log_type}\' is registered',
                                  hint="minidockerd has json-file and none")
        if log_type == "json-file":
            parse_log_opts(opts)
        elif opts:
            raise InvalidArgument("the none log driver takes no options")
        return log_type, opts

    # -- networks and mounts (chapters 09 and 10, through the daemon) ---------------------------
    #
    # The same engine functions as direct mode's run: plan_network/plan_mounts check every flag
    # before anything exists; build_spec binds the name files and the mounts. What happens where:
    # volumes are created and filled (copy-up) here at create, as dockerd does; a bridge endpoint
    # is made at each start by the supervisor (engine/supervisor.py: address, veth into the new
    # namespace, DNAT), because entering a namespace and forking are not for this threaded daemon;
    # at the exit the supervisor detaches it, and this daemon again (idempotent) for exits it
    # only learns of later (reconcile, rm -f of an orphan).

    def _network_mode(self, host: dict) -> str:
        """HostConfig.NetworkMode: ``default`` is the daemon's default network (bridge), as dockerd's."""
        network = _typed(host, "NetworkMode", str, "default")
        if network in ("default", ""):
            # dockerd --bridge=none: no default network. The test suite sets it outside its network sandboxes.
            if os.environ.get("MINIDOCKER_BRIDGE") == "none":
                return "none"
            return getattr(self.config, "default_network", None) or "bridge"
        return network

    def _network_plan(self, options, body: dict, host: dict):
        """The network plan (engine/networks.py), or None for ``none``; bad ports or an unknown
        network raise."""
        publish = _publish_specs(host)
        _typed(host, "PublishAllPorts", bool, False)
        _typed(body, "ExposedPorts", dict, {})
        network_aliases(body, options.network)   # its type, and one endpoint at most
        _mac_address(body)
        if options.network == "none" and not publish:
            return None
        from minidocker.engine.networks import check_network_exists, plan_endpoint, plan_network

        plan = plan_network(options.network, publish, [])   # -P's ports are added at start (the image's)
        # a MAC with host or container: refused here, as dockerd's create; aliases are checked at start
        plan_endpoint(plan, (), _mac_address(body))
        try:
            check_network_exists(self.roots, plan)
        except NotFound as err:
            plan.network = self._network_by_id(plan.network or "", str(err).splitlines()[0])
        plan.ip = _requested_ip(body, plan.network or "")
        if plan.ip:
            from minidocker.engine.networks import DEFAULT_NETWORK, NetworkStore
            from minidocker.network import ipam

            if plan.mode != "bridge" or plan.network == DEFAULT_NETWORK:
                raise InvalidArgument("user specified IP address is supported on user defined networks only")
            network = NetworkStore(self.roots).get(plan.network or "")
            ipam.claim(ipam.parse_subnet(network.subnet), plan.ip, [], network.gateway)   # in its subnet
        return plan

    def _network_by_id(self, ref: str, message: str) -> str:
        """The name of the network whose ID (or unique ID prefix) is ``ref``, as dockerd takes them; else
        InvalidArgument(message): 400, not 404, which the docker CLI reads from create as "pull the image"."""
        from minidocker.engine.networks import NetworkStore

        try:
            return NetworkStore(self.roots).get(ref).name
        except NotFound:
            raise InvalidArgument(message, hint="create it with 'docker network create NAME'") from None

    def _network_request(self, container: Container, image) -> dict | None:
        """What the supervisor needs to put a container on its bridge network at this start
        (None: no bridge)."""
        host, config = container.host_config or {}, container.config or {}
        mode = self._network_mode(host)
        if mode in ("none", "host") or mode.startswith("container:"):
            return None
        exposed = []
        if host.get("PublishAllPorts"):
            exposed = sorted({*(image.config.get("ExposedPorts") or {}), *(config.get("ExposedPorts") or {})})
        return {"lib": str(self.roots.lib), "run": str(self.roots.run), "network": mode,
                "publish": _publish_specs(host), "exposed": exposed,
                "name": container.name, "hostname": config.get("Hostname") or container.id[:12],
                "ip": _requested_ip(config, mode), "mac": _mac_address(config),
                "aliases": network_aliases(config, mode)}

    def _check_aliases(self, container: Container) -> None:
        """dockerd's start refuses aliases off user-defined networks (nothing resolves them there)."""
        mode = self._network_mode(container.host_config or {})
        if (mode in ("bridge", "none", "host") or mode.startswith("container:")) and \
                network_aliases(container.config or {}, mode):
            raise InvalidArgument("network-scoped alias is supported only for containers "
                                  "in user defined networks")

    def _mount_plan(self, body: dict, host: dict, image_config: dict):
        """The mounts plan (engine/volumes.py) of Binds, Mounts, Tmpfs, VolumesFrom and the VOLUMEs,
        or None."""
        volumes = {**(image_config.get("Volumes") or {}), **(_typed(body, "Volumes", dict, {}) or {})}
        volumes_from = _typed(host, "VolumesFrom", list, []) or []
        if not (host.get("Binds") or host.get("Mounts") or host.get("Tmpfs") or volumes_from or volumes):
            return None
        from minidocker.engine import volumes as v

        if not all(isinstance(x, str) for x in [*(host.get("Binds") or []), *volumes_from]):
            raise InvalidArgument("invalid Binds or VolumesFrom: expected an array of strings")
        try:
            requests = v.requests_from_host_config(host)
        except InvalidArgument as err:
            if "invalid volume specification" in str(err) or not host.get("Binds"):
                raise
            raise InvalidArgument(f"invalid volume specification: {err}") from None
        try:
            return v.plan_mounts(self.roots, {"Volumes": volumes}, requests, volumes_from)
        except NotFound as err:
            # --volumes-from an unknown container: dockerd's words; 400 (not the 404 the docker CLI
            # reads as "pull the image")
            ref = str(err).splitlines()[0].rpartition(": ")[2]
            raise InvalidArgument(f"No such container: {ref}") from None

    def _prepare_mounts(self, network_plan, mount_plan, snapshot, spec: dict, container: Container) -> None:
        """At create: host networking's name files; volumes created and filled from the image (copy-up)."""
        if network_plan is not None and network_plan.mode == "host":
            from minidocker.engine.run import _prepare_network

            _prepare_network(network_plan, spec["hostname"], container, self.roots)
        if mount_plan is None:
            return
        snapshot.mount()
        try:
            mount_plan.prepare(snapshot.rootfs, container.directory(self.roots))
        except BaseException:
            mount_plan.release(container.id, remove_anonymous=True)
            raise
        finally:
            snapshot.unmount()
        self._volume_devices(container.id, activate=False)   # mounted again at each start

    def _volume_devices(self, cid: str, activate: bool) -> None:
        """Mount (at start) or unmount (at exit, unless another running container uses it) the local
        driver's device volumes (``-o type=tmpfs``, ``device=``) of a container. Plain volumes: nothing."""
        from minidocker.engine import volumes as v

        names = [m["Name"] for m in v.container_mounts(self.roots, cid) if m.get("Name")]
        if not names:
            return
        store = v.volume_store(self.roots)
        for name in names:
            try:
                volume = store.get(name)
            except NotFound:
                continue
            if not volume.mounts_device:
                continue
            if activate:
                with store.lock(volume):
                    store.activate(volume)
            elif not any(c.id != cid and c.status == "running" for c in v.containers_using(self.roots, name)):
                store.deactivate(volume)

    def _save_endpoint(self, container: Container, endpoint: dict | None) -> None:
        from minidocker.atomic import write_json

        path = container.directory(self.roots) / ENDPOINTS_FILE
        if endpoint is None:
            path.unlink(missing_ok=True)
        else:
            write_json(path, {endpoint["network"]: endpoint}, durable=False)

    def network_records(self) -> list:
        """Every network's record, read once for a listing (pass them to :meth:`endpoints`)."""
        from minidocker.engine.networks import NetworkStore

        return NetworkStore(self.roots).list()

    def endpoints(self, container: Container, networks: list | None = None) -> dict:
        """The container's live endpoints by network name ({} unless it runs on a bridge): the network
        store's (``docker network connect`` adds some), with the MAC addresses the supervisor read."""
        from minidocker.atomic import read_json

        if container.status != "running":
            return {}
        try:
            saved = dict(read_json(container.directory(self.roots) / ENDPOINTS_FILE))
        except (FileNotFoundError, ValueError):
            return {}
        from minidocker.engine.networks import container_endpoints

        live = container_endpoints(self.roots, container.id, networks)
        return {name: {**ep, "mac": (saved.get(name) or {}).get("mac", ep.get("mac", ""))}
                for name, ep in live.items()}

    def network_names(self, container: Container) -> list[str]:
        """The networks inspect lists for it: its mode (``bridge`` for default), as dockerd does."""
        mode = self._network_mode(container.host_config or {})
        return [] if mode.startswith("container:") else [mode]   # joined another's: none of its own

    def _network_event(self, cid: str, endpoint: dict | None, action: str) -> None:
        """dockerd's ``network connect``/``disconnect`` events of a container's start and exit."""
        if endpoint and self.events is not None:
            self.events.publish("network", action, endpoint.get("network_id", ""),
                                {"container": cid, "name": endpoint.get("network", ""), "type": "bridge"})

    def _forget_network(self, cid: str) -> None:
        """Detach a container that had a bridge endpoint (idempotent). In this thread: netlink on the
        host's namespace and nft by posix_spawn (no fork, no setns), waiting for the rules to go."""
        path = self.roots.containers / cid / ENDPOINTS_FILE
        if not path.exists():
            return
        from minidocker.atomic import read_json
        from minidocker.engine.networks import detach

        try:
            for endpoint in read_json(path).values():
                self._network_event(cid, endpoint, "disconnect")
        except (OSError, ValueError, AttributeError):
            pass

        try:
            detach(self.roots, cid, delete_veth=True)
        except Exception:  # noqa: BLE001 - the next change of the store reclaims it (its owner is dead)
            pass
        path.unlink(missing_ok=True)

    # -- lookups --------------------------------------------------------------------------------

    def get(self, ref: str) -> Container:
        found = self._direct(ref) if ref else None
        if found is not None:
            return found
        try:
            return find_container(self.roots, ref, self.records)
        except NotFound:
            raise NotFound(f"No such container: {ref}") from None

    def _direct(self, ref: str) -> Container | None:
        """A full ID (its directory) or a name (its claim file): one record read, not all of them.

        Clients name a container by its full ID after create (docker run, docker-py), and each
        request looks it up: reading every record made each request O(containers).
        A short prefix, or a name written before claims existed, goes through find_container.
        """
        from minidocker.engine.container import BrokenRecord

        if len(ref) == 64:
            try:
                return self.records.load(ref)
            except (FileNotFoundError, NotFound, BrokenRecord, OSError):
                pass
        name = ref.lstrip("/")
        try:
            with open(self.roots.containers / ".names" / name, encoding="utf-8") as f:
                holder = json.loads(f.read()).split()[0]
            container = self.records.load(holder)
        except (OSError, ValueError, IndexError, AttributeError, NotFound, BrokenRecord):
            return None
        return container if container.name == name else None

    def list(self, all: bool = False) -> list[Container]:
        """The running containers (``all``: every one), newest first, as ``docker ps`` shows them."""
        found = [c for c in self.records.list() if all or c.status == "running"]
        return sorted(found, key=lambda c: c.created, reverse=True)

    def log_path(self, container: Container) -> str | None:
        host = container.host_config or {}
        if (host.get("LogConfig") or {}).get("Type", "json-file") == "none":
            return None
        return str(container.directory(self.roots) / f"{container.id}-json.log")

    # -- start ----------------------------------------------------------------------------------

    def start(self, ref: str, by_policy: bool = False) -> Container:
        """Mount, create the process in the supervisor, hand it the waiting attachers, start it.

        ``by_policy``: a restart by the restart policy (its count goes on; a manual start resets it).
        """
        from minidocker.engine.images import local_image
        from minidocker.engine.logfile import parse_log_opts
        from minidocker.image import ImageStore
        from minidocker.storage import Snapshot

        with self.lock:
            container = self.get(ref)
            if container.paused and container.status == "running":
                raise Conflict("cannot start a paused container, try unpause instead")
            if container.status == "running" or (container.status == "restarting" and not by_policy):
                raise NotModifiedError()   # dockerd: a restarting container counts as running
            if container.status == "removing":
                raise InvalidState(f"cannot start container {container.id[:12]}: it is being removed")
            self._check_aliases(container)
            if not by_policy:
                container.restart_count, container.manually_stopped = None, None
            directory = container.directory(self.roots)
            image = ImageStore(self.roots.images).load_image(container.image_id) if container.image_id else \
                local_image(ImageStore(self.roots.images), container.image)
            snapshot = Snapshot(directory, image.layers)
            if not os.path.ismount(snapshot.rootfs):
                snapshot.mount()
            unwired = None   # the status to keep if the ports cannot be published: no process ran
            try:
                spec_cwd = (container.config or {}).get("WorkingDir") or ""
                if spec_cwd:
                    from minidocker.rootfs import secure_join

                    os.makedirs(secure_join(snapshot.rootfs, spec_cwd), exist_ok=True)
                log_opts = ((container.host_config or {}).get("LogConfig") or {}).get("Config") or {}
                max_size, max_files = parse_log_opts(log_opts)
                exit_file = directory / EXIT_FILE
                try:
                    exit_file.unlink()
                except FileNotFoundError:
                    pass
                config = container.config or {}
                network = self._network_request(container, image)
                self._volume_devices(container.id, activate=True)
                # Create and start in one request, one round trip to the supervisor: the attachers waiting
                # for this start (docker run attaches first) go with it, registered before the process runs,
                # so its first output reaches them. An exit it reports at once waits for self.lock.
                waiting = self.pending_attach.pop(container.id, [])
                try:
                    reply = self.supervisor.request({
                        "op": "create", "id": container.id, "config": str(directory / "config.json"),
                        "stdin": bool(config.get("OpenStdin")), "log": self.log_path(container),
                        "max_size": max_size, "max_files": max_files, "exit_file": str(exit_file),
                        "network": network, "start": True,
                        "attach": [{"stdin": stdin, "stdout": stdout, "stderr": stderr, "early": early.hex()}
                                   for _, stdin, stdout, stderr, early in waiting]},
                        fds=tuple(sock.fileno() for sock, *_ in waiting))
                except Conflict as err:
                    if network is None or "publish port" not in str(err):
                        raise
                    # dockerd's words (its CLI users know them), with ours after; and as dockerd, the
                    # container stays as it was ("created", or "exited"), with the error and exit code 128
                    unwired = container.status if container.status in ("created", "exited") else None
                    raise MinidockerError(f"driver failed programming external connectivity on endpoint "
                                          f"{container.name} ({container.id[:12]}): {err}") from None
                finally:
                    for sock, *_ in waiting:
                        sock.close()  # the supervisor has its own copies; the streams end when it closes them
                self._save_endpoint(container, reply.get("endpoint"))
                self._network_event(container.id, reply.get("endpoint"), "connect")
            except BaseException as err:
                snapshot.unmount()
                self._volume_devices(container.id, activate=False)
                # A container that failed to start has exited, or keeps its status (unwired); either way
                # waiters answer and --rm removes it
                code = err.exit_code if isinstance(err, ContainerError) else 128
                outcome = {"exit_code": code, "error": str(err)}
                if unwired:
                    outcome["status"] = unwired
                threading.Thread(target=self._exited, args=(container.id, outcome), daemon=True).start()
                raise
            if reply.get("start_error"):  # its exit (the supervisor reported it) is recorded once we let go
                raise ContainerError(reply["start_error"], exit_code=int(reply.get("exit_code") or 125))
            container.status, container.pid = "running", reply["pid"]
            container.exit_code, container.error, container.oom_killed = None, None, None
            container.started_at, container.finished_at = time.time_ns(), None
            # No fsync: "running" and its PID mean nothing after a power cut (the processes are gone), and a
            # restarted daemon rebuilds them from the supervisor's list (reconcile). 1-8 ms on this disk.
            container.save(self.roots, durable=False)
        self._event(container, "start")
        return container

    # -- attach ---------------------------------------------------------------------------------

    def attach(self, ref: str, sock, stdin: bool, stdout: bool, stderr: bool, early: bytes = b"",
               greeting: bytes = b"") -> None:
        """Give the client's socket to the supervisor now, or at start for a created container.

        ``early``: stdin bytes the client sent before the socket changed hands. ``greeting``:
        the HTTP answer (101), sent only once the attach is registered: ``docker run`` sends
        ``start`` when it has it, and output from the first instant must reach it.
        """
        with self.lock:
            container = self.get(ref)
            if container.status == "running":
                sock.sendall(greeting)
                self._hand_over(container, sock, stdin, stdout, stderr, early)
            elif container.status == "created":
                self.pending_attach.setdefault(container.id, []).append((sock, stdin, stdout, stderr, early))
                sock.sendall(greeting)
            else:
                sock.sendall(greeting)
                sock.close()  # an exited container: the stream ends at once, as dockerd's does

    def _hand_over(self, container: Container, sock, stdin: bool, stdout: bool, stderr: bool,
                   early: bytes = b"") -> None:
        try:
            self.supervisor.request({"op": "attach", "id": container.id, "stdin": stdin, "stdout": stdout,
                                     "stderr": stderr, "early": early.hex()}, fds=(sock.fileno(),))
        finally:
            sock.close()  # the supervisor has its own copy; the stream ends when it closes that

    def resize(self, ref: str, height: int, width: int) -> None:
        container = self.get(ref)
        if container.status != "running":
            raise Conflict(f"Container {container.id} is not running")
        self.supervisor.request({"op": "resize", "id": container.id, "h": height, "w": width})

    # -- signals --------------------------------------------------------------------------------

    def kill(self, ref: str, sig: int = signal.SIGKILL) -> Container:
        with self.lock:
            container = self.get(ref)
            if container.status == "restarting":  # as dockerd's ExitOnNext: the pending restart is off
                self._cancel_restart(container)   # no signal, no kill event: nothing runs (daemon/kill.go)
                return container
            if container.status != "running":
                raise Conflict(f"Cannot kill container: {ref}: Container {container.id} is not running")
            self._mark_stopped(container)
        self.supervisor.request({"op": "kill", "id": container.id, "signal": int(sig)})
        # As dockerd (daemon/kill.go): a paused container is thawed for SIGKILL, for its StopSignal,
        # and for any signal when it has no StopSignal of its own (the signal then "exits on next").
        stop_signal = (container.config or {}).get("StopSignal")
        if not stop_signal or sig in (signal.SIGKILL, parse_signal(stop_signal, signal.SIGTERM)):
            self._thaw_to_deliver(container)
        self._event(container, "kill", {"signal": str(int(sig))})
        return container

    def _mark_stopped(self, container: Container) -> None:
        """docker stop/kill/rm -f: the restart policy leaves it stopped (Docker's HasBeenManuallyStopped).

        Called under self.lock with a record read under it: the exit (:meth:`_exited`) reads
        this flag under the same lock, so an exit either sees it or came first (and then the
        record says "restarting", which the callers check before they get here).
        """
        container.manually_stopped = True
        container.save(self.roots)

    def _cancel_restart(self, container: Container) -> None:
        """A stop of a container waiting for its policy's next start: that start is off, it stays exited.

        As dockerd's ExitOnNext (the restart manager's Cancel): until the daemon restarts
        (restart_at_boot). Under self.lock, with the record read under it.
        """
        cancel = self._restarts.pop(container.id, None)
        if cancel is not None:
            cancel.set()
        container.manually_stopped, container.status = True, "exited"
        container.save(self.roots)

    def stop(self, ref: str, timeout: float | None = None) -> Container:
        """The image's StopSignal or SIGTERM, ``timeout`` seconds (the container's StopTimeout,
        else 10), SIGKILL."""
        with self.lock:  # the status, the flag and the exit count at one instant: see _exited
            container = self.get(ref)
            if container.status == "restarting":
                self._cancel_restart(container)
                self._event(container, "stop")
                return container
            if container.status != "running":
                raise NotModifiedError()
            seen = self.exits.get(container.id, 0)
            self._mark_stopped(container)
        config = container.config or {}
        if timeout is None:
            timeout = config.get("StopTimeout") if isinstance(config.get("StopTimeout"), int) else 10
        sig = parse_signal(config.get("StopSignal"), signal.SIGTERM)
        try:
            self.supervisor.request({"op": "kill", "id": container.id, "signal": sig})
        except NotFound:
            pass
        self._thaw_to_deliver(container)
        if timeout < 0 or not self._wait_exit(container.id, seen, timeout):
            try:
                self.supervisor.request({"op": "kill", "id": container.id, "signal": int(signal.SIGKILL)})
            except NotFound:
                pass
            self._wait_exit(container.id, seen, 30)
        self._event(container, "stop")
        return self.get(container.id)

    def _wait_exit(self, cid: str, seen: int, timeout: float | None) -> bool:
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        with self.changed:
            while self.exits.get(cid, 0) <= seen:
                if cid in self.removed:
                    return True
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self.changed.wait(left if left is not None else 1.0)
        return True

    def exit_count(self, cid: str) -> int:
        """How many exits of ``cid`` this daemon has seen: ``wait(seen=...)`` waits for a later one.

        Without the lock (a start holds it while the supervisor creates the process, ~10 ms, and the
        wait's head must not wait for that): one dict read, and a count can only grow."""
        return self.exits.get(cid, 0)

    def wait(self, ref: str, condition: str = "not-running", container: Container | None = None,
             cancelled=None, seen: int | None = None) -> int | None:
        """Block until ``condition``; the exit code. ``container``: looked up already (the API's 404 first).

        ``cancelled()``, asked about once a second: True ends the wait with None (the client
        left: ``docker run -d`` drops its wait, which would otherwise hold a thread per container).
        ``seen``: :meth:`exit_count` when the wait began (by default, now); next-exit waits for a later exit.
        """
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition: {condition!r}")
        container = container or self.get(ref)
        cid = container.id
        with self.changed:
            seen = self.exits.get(cid, 0) if seen is None else seen
            if condition == "not-running" and self.get(cid).status != "running":
                return self.get(cid).exit_code or 0
            while True:
                if condition == "removed" and cid in self.removed:
                    break
                if condition != "removed" and self.exits.get(cid, 0) > seen:
                    break
                if condition == "removed" and not self._exists(cid):
                    break
                self.changed.wait(1.0)
                if cancelled is not None and cancelled():  # a select(2) with no timeout: never blocks
                    return None
        return self._last_exit.get(cid, 0)

    def exists(self, cid: str) -> bool:
        return self._exists(cid)

    def _exists(self, cid: str) -> bool:
        return (self.roots.containers / cid).is_dir()

    # -- exits ----------------------------------------------------------------------------------

    def on_supervisor_event(self, event: dict) -> None:
        if event.get("event") == "exit":
            self._exited(event["id"], event)
        elif event.get("event") == "exec-exit" and event.get("id") in self.execs:
            ex = self.execs[event["id"]]
            ex.running, ex.exit_code = False, int(event.get("exit_code") or 0)
            if self.exists(ex.container_id):
                self._event(self.get(ex.container_id), "exec_die",
                            {"execID": ex.id, "exitCode": str(ex.exit_code)})

    # -- exec -----------------------------------------------------------------------------------

    def exec_create(self, ref: str, body: dict) -> ExecInstance:
        """An exec instance (not started): ``docker exec``'s first request. 409 unless the container runs."""
        if not isinstance(body, dict):
            raise InvalidArgument("invalid exec config: expected a JSON object")
        container = self.get(ref)
        if container.status != "running":
            raise Conflict(f"Container {container.id} is not running")
        if container.paused:
            raise Conflict(f"Container {container.id} is paused, unpause the container before exec")
        cmd = _strings(body, "Cmd")
        if not cmd:
            raise InvalidArgument("No exec command specified")
        user_text = _typed(body, "User", str, "") or ""
        user = None
        if user_text:  # a name or uid[:gid], looked up in the container's own /etc/passwd, as runc exec does
            from minidocker.image.runconfig import resolve_user

            found = resolve_user(user_text, [container.directory(self.roots) / "rootfs"])
            user = {"uid": found.uid, "gid": found.gid}
            if getattr(found, "additional_gids", None):
                user["additionalGids"] = found.additional_gids
        ex = ExecInstance(os.urandom(32).hex(), container.id, cmd, _strings(body, "Env") or [],
                          _typed(body, "WorkingDir", str, "") or "", user,
                          bool(_typed(body, "AttachStdin", bool, False)))
        ex.tty = bool(_typed(body, "Tty", bool, False))
        self.execs[ex.id] = ex
        self._event(container, f"exec_create: {' '.join(cmd)}", {"execID": ex.id})
        return ex

    def exec_get(self, eid: str) -> ExecInstance:
        ex = self.execs.get(eid)
        if ex is None:
            raise NotFound(f"No such exec instance: {eid}")
        if ex.running:
            try:
                status = self.supervisor.request({"op": "exec_status", "id": ex.id})
            except NotFound:
                return ex
            if not status.get("running"):
                ex.running, ex.exit_code = False, int(status.get("exit_code") or 0)
        return ex

    def exec_start(self, eid: str, sock=None, early: bytes = b"", greeting: bytes = b"") -> ExecInstance:
        """Run it: attached to ``sock`` (the hijacked client) or detached."""
        from minidocker.atomic import read_json

        ex = self.exec_get(eid)
        if ex.started:
            raise Conflict(f"exec {eid} has already started")
        container = self.get(ex.container_id)
        if container.status != "running":
            raise Conflict(f"Container {container.id} is not running")
        spec = read_json(container.directory(self.roots) / "config.json")
        env = dict(item.split("=", 1) for item in spec["process"].get("env", []) if "=" in item)
        env.update(item.split("=", 1) for item in ex.env if "=" in item)
        request = {"op": "exec", "id": ex.id, "container": container.id, "cmd": ex.cmd, "env": env,
                   "cwd": ex.workdir or spec["process"].get("cwd", "/"), "user": ex.user,
                   "stdin": ex.stdin and sock is not None, "tty": ex.tty}
        ex.started, ex.running = True, True
        try:
            if sock is not None:
                sock.sendall(greeting)
                reply = self.supervisor.request(request, fds=(sock.fileno(),))
            else:
                reply = self.supervisor.request(request)
        except BaseException:
            ex.running, ex.exit_code = False, 126
            raise
        finally:
            if sock is not None:
                sock.close()
        with self.changed:
            ex.pid = reply.get("pid")
            self.changed.notify_all()  # an exec resize waits for it (exec -t resizes right after the 101)
        if early and ex.stdin:
            pass  # bytes before the hand-over: exec clients send stdin after the 101 (SPEC: dropped here)
        self._event(container, f"exec_start: {' '.join(ex.cmd)}", {"execID": ex.id})
        return ex

    def _exited(self, cid: str, result: dict) -> None:
        """Record an exit, unmount, tell waiters; then remove an AutoRemove container."""
        from minidocker.storage import Snapshot

        with self.changed:
            try:
                container = Container.load(self.roots, cid)
            except (FileNotFoundError, ValueError):
                return
            # "status": a start that failed before any process ran keeps the container's status (dockerd's)
            container.status, container.pid, container.paused = result.get("status") or "exited", None, None
            container.exit_code = int(result.get("exit_code") or 0)
            container.oom_killed = bool(result.get("oom_killed")) or None
            if not result.get("status"):
                container.finished_at = int(result.get("finished_at") or time.time_ns())
            if result.get("error"):
                container.error = result["error"]
            auto_remove = bool((container.host_config or {}).get("AutoRemove"))
            # The policy decides here, under the lock stop and kill take: a manual stop either came
            # first (manually_stopped is in this record) or comes after and finds "restarting"
            # (then it cancels). Deciding after the lock let a stop fall between the two and the
            # restart go on (test_restart_policies_on_failure_always_and_a_manual_stop).
            restart = not result.get("status") and self._should_restart(container)
            delay = self._mark_restarting(container) if restart else None
            container.save(self.roots, durable=not auto_remove)  # an --rm record is removed right after
            Snapshot(container.directory(self.roots), []).unmount()
            self._forget_network(cid)
            self._volume_devices(cid, activate=False)
            self.exits[cid] = self.exits.get(cid, 0) + 1
            self._last_exit[cid] = container.exit_code
            for sock, *_ in self.pending_attach.pop(cid, []):
                sock.close()
            self.changed.notify_all()
        self._event(container, "die", {"exitCode": str(container.exit_code)})
        if delay is not None:
            self._schedule_restart(cid, delay)
        elif auto_remove:
            try:   # --rm takes its anonymous volumes, as Docker
                self.remove(cid, force=True, volumes=True, exit_reported=True)
            except NotFound:
                pass
        # Last, off the path of the waiters (docker run --rm waits for the removal): the supervisor drops
        # its entry if it is still the exited one (a start meanwhile has made a new one, which stays).
        try:
            self.supervisor.request({"op": "forget", "id": cid})
        except Exception:  # noqa: BLE001 - it may be gone (a restart): nothing to forget
            pass

    def _should_restart(self, container: Container) -> bool:
        try:
            name, retries = restart_policy(container.host_config or {})
        except InvalidArgument:
            return False
        if name == "no" or container.manually_stopped or self._shutting_down:
            return False
        if name == "on-failure":
            return container.exit_code != 0 and (not retries or (container.restart_count or 0) < retries)
        return True  # always, unless-stopped

    _shutting_down = False

    def _mark_restarting(self, container: Container) -> float:
        """Status "restarting", one more restart counted (back to one after 10 s up); the delay before it."""
        ran_for = ((container.finished_at or 0) - (container.started_at or 0)) / 1e9
        delay = restart_delay(container.restart_count or 0, ran_for)
        if ran_for >= 10:
            container.restart_count = 0
        container.status = "restarting"
        container.restart_count = (container.restart_count or 0) + 1
        return delay

    def _schedule_restart(self, cid: str, delay: float) -> None:
        """Start it again after ``delay`` unless a stop, kill or rm cancels it first (_cancel_restart)."""
        cancel = threading.Event()
        with self.lock:
            previous = self._restarts.get(cid)
            if previous is not None:
                previous.set()
            self._restarts[cid] = cancel

        def again() -> None:
            if cancel.wait(delay):
                return
            try:
                with self.lock:  # the check and the start at one instant: a stop waits for both
                    if self._restarts.get(cid) is not cancel or cancel.is_set():
                        return
                    del self._restarts[cid]
                    current = self.get(cid)
                    if current.status == "restarting" and not current.manually_stopped:
                        self.start(cid, by_policy=True)
            except Exception:  # noqa: BLE001 - removed meanwhile, or the start failed (counted as an exit)
                pass

        threading.Thread(target=again, name="restart", daemon=True).start()

    def restart_at_boot(self) -> list[str]:
        """At daemon start: containers whose policy is always (or unless-stopped, not stopped by
        hand) run again."""
        started = []
        for container in list_containers(self.roots):
            if container.status not in ("exited", "restarting") or not container.supervised:
                continue
            name, _ = restart_policy(container.host_config or {})
            if name == "always" or (name == "unless-stopped" and not container.manually_stopped) or (
                    container.status == "restarting" and not container.manually_stopped):
                try:
                    self.start(container.id, by_policy=True)
                    started.append(container.id[:12])
                except Exception:  # noqa: BLE001
                    pass
        return started

    def reconcile(self) -> list[str]:
        """At daemon start: fold in exits that happened while no daemon listened; what was done.

        A container whose record says running: still in the supervisor's list -> left alone
        (live restore); gone but with an ``exit.json`` -> that status; gone without one (the
        supervisor itself died) -> its processes are killed and it is marked exited (137).
        """
        done = []
        try:
            alive = self.supervisor.request({"op": "list"})["containers"]
        except Exception:  # noqa: BLE001
            alive = {}
        for container in list_containers(self.roots):
            if container.status != "running" or not container.supervised:
                continue
            if container.id in alive:
                done.append(f"kept {container.id[:12]} (running)")
                continue
            exit_file = container.directory(self.roots) / EXIT_FILE
            try:
                from minidocker.atomic import read_json

                result = read_json(exit_file)
            except (FileNotFoundError, ValueError):
                result = {"exit_code": 137, "error": "the supervisor of this container died"}
                self._kill_orphan(container)
            self._exited(container.id, result)
            done.append(f"exited {container.id[:12]} ({result.get('exit_code')})")
        return done

    def _kill_orphan(self, container: Container) -> None:
        """Kill what is left of a container whose supervisor died: its cgroup has every process."""
        from minidocker.atomic import read_json
        from minidocker.cgroups import open_cgroup

        try:
            path = read_json(container.directory(self.roots) / "config.json")["linux"]["cgroupsPath"]
            open_cgroup(path).destroy()
        except (FileNotFoundError, KeyError, ValueError, OSError):
            pass
        try:  # the runtime's state of it (its supervisor would have deleted it)
            from minidocker.runtime import delete
            from minidocker.runtime.state import default_root

            delete(default_root(), container.id, force=True)
        except Exception:  # noqa: BLE001 - none, or already gone
            pass

    # -- remove ---------------------------------------------------------------------------------

    def remove(self, ref: str, force: bool = False, volumes: bool = False,
               exit_reported: bool = False) -> Container:
        """DELETE /containers/{id}; ``volumes`` (rm -v, --rm): its anonymous volumes no other
        container uses.

        ``exit_reported``: the supervisor has just reported its exit (--rm), so it has deleted the
        cgroup and the runtime's state: no orphan to look for (a config read and ten cgroup checks);
        and ``_exited`` has unmounted its root filesystem.
        """
        with self.lock:
            container = self.get(ref)
            if container.status in ("running", "restarting"):
                if not force and container.paused:
                    raise Conflict(f"You cannot remove a paused container {container.id}. "
                                   "Unpause and then stop the container before attempting removal "
                                   "or force remove")
                if not force:
                    raise Conflict(f"You cannot remove a {container.status} container {container.id}. "
                                   "Stop the container before attempting removal or force remove")
            if container.status == "restarting":
                self._cancel_restart(container)
            elif container.status == "running":
                seen = self.exits.get(container.id, 0)
                self._mark_stopped(container)   # as dockerd's Kill: its exit is not restarted by its policy
        if container.status == "running":
            try:
                self.supervisor.request({"op": "kill", "id": container.id, "signal": int(signal.SIGKILL)})
            except NotFound:
                pass
            self._thaw_to_deliver(container)
            self._wait_exit(container.id, seen, 30)
        with self.changed:
            directory = container.directory(self.roots)
            if not directory.exists():
                if container.id in self.removed:
                    return container  # its --rm removed it while it was being killed: done all the same
                raise NotFound(f"No such container: {ref}")
            if not exit_reported:   # else _exited has just unmounted it
                from minidocker.storage import Snapshot

                Snapshot(directory, []).unmount()
                self._kill_orphan(container)
            self._forget_network(container.id)
            mounts = self._container_mounts(container.id) if volumes else []
            hidden = directory.with_name(".removing-" + directory.name)
            os.rename(directory, hidden)
            release_name(self.roots.containers, container.name, container.id)
            self.removed.add(container.id)
            self.changed.notify_all()
        import shutil

        if mounts:
            from minidocker.engine.volumes import remove_container_volumes

            remove_container_volumes(self.roots, mounts, container.id)
        threading.Thread(target=shutil.rmtree, args=(hidden,), kwargs={"ignore_errors": True},
                         daemon=True).start()
        self._event(container, "destroy")
        return container

    def _container_mounts(self, cid: str) -> list[dict]:
        from minidocker.engine.volumes import container_mounts

        return container_mounts(self.roots, cid)

    def mounts(self, container: Container) -> list[dict]:
        """inspect's ``Mounts``: Docker's entries (without our Anonymous marker)."""
        return [{k: v for k, v in m.items() if k != "Anonymous"}
                for m in self._container_mounts(container.id)]

    def prune(self, chosen=None) -> list[Container]:
        """Remove every container that does not run (and that ``chosen(container)`` accepts, if given)."""
        gone = []
        for container in self.list(all=True):
            if container.status != "running" and (chosen is None or chosen(container)):
                try:
                    gone.append(self.remove(container.id))
                except (NotFound, Conflict):
                    pass
        return gone

    def _event(self, container: Container, action: str, extra: dict | None = None) -> None:
        if self.events is not None:
            config = container.config or {}   # dockerd's attributes: the labels, the image as typed
            self.events.publish("container", action, container.id,
                                {**(config.get("Labels") or {}),
                                 "image": config.get("Image") or container.image,
                                 "name": container.name, **(extra or {})})

    # -- pause, rename, top, exec resize (docker pause/unpause, rename, top, exec -t) ------------------

    def pause(self, ref: str) -> Container:
        """Freeze every process of a running container (the cgroup freezer). Like ``docker pause``."""
        with self.lock:
            container = self._running_for(ref)
            if container.paused:
                raise Conflict(f"Container {container.id} is already paused")
            self.supervisor.request({"op": "pause", "id": container.id})
            container.paused = True
            container.save(self.roots, durable=False)
        self._event(container, "pause")
        return container

    def unpause(self, ref: str) -> Container:
        """Thaw a paused container. Like ``docker unpause``."""
        with self.lock:
            container = self.get(ref)
            if not container.paused or container.status != "running":
                # dockerd 20.10 answers this with a 500 (a plain error in daemon/unpause.go); it is the
                # client's mistake, so a 4xx here: the Engine API's contract (api/openapi.yaml)
                raise Conflict(f"Container {container.id} is not paused")
            self.supervisor.request({"op": "resume", "id": container.id})
            container.paused = None
            container.save(self.roots, durable=False)
        self._event(container, "unpause")
        return container

    def _running_for(self, ref: str) -> Container:
        container = self.get(ref)
        if container.status == "restarting":
            raise Conflict(f"Container {container.id} is restarting, wait until the container is running")
        if container.status != "running":
            raise Conflict(f"Container {container.id} is not running")
        return container

    def _thaw_to_deliver(self, seen: Container) -> None:
        """A signal that ends a paused container reaches it only once it is thawed (dockerd does the same).

        ``seen``: the record as the caller read it before signalling; only a paused one is looked at again.
        """
        if not seen.paused:
            return
        cid = seen.id
        with self.lock:
            try:
                container = self.get(cid)
            except NotFound:
                return
            if not container.paused:
                return
            try:
                self.supervisor.request({"op": "resume", "id": cid})
            except Exception:  # noqa: BLE001 - it may have exited meanwhile: nothing left to thaw
                pass
            if self._exists(cid):
                container.paused = None
                container.save(self.roots, durable=False)

    def rename(self, ref: str, new_name: str) -> Container:
        """Give a container another name, atomically: the new name is claimed before the old one goes.

        Like ``docker rename``; a taken name is Docker's 409, the same name or an invalid one a 400.
        """
        if not ref or not new_name:
            raise InvalidArgument("Neither old nor new names may be empty")
        name = new_name.lstrip("/")
        with self.lock:
            container = self.get(ref)
            old = container.name
            if old == name:
                raise InvalidArgument("Renaming a container with the same name as its current name")
            if not _NAME.match(new_name):
                raise InvalidArgument(f"Error when allocating new name: Invalid container name (/{name}), "
                                      "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
            self._claim(name, container.id, context="Error when allocating new name: ")
            container.name = name
            try:
                container.save(self.roots)
            except BaseException:
                release_name(self.roots.containers, name, container.id)
                raise
            release_name(self.roots.containers, old, container.id)
        self._event(container, "rename", {"oldName": f"/{old}"})
        return container

    def top(self, ref: str, ps_args: str | None = None) -> dict:
        """``docker top``: the host's ``ps`` (``ps_args``, default ``-ef``), the container's rows.

        As dockerd does: ``ps ARGS -q PIDS`` (PIDS from the container's cgroup), or, for
        options that refuse ``-q``, ``ps ARGS`` filtered by PID; the PID column is found by
        its title. See: ps(1), the Engine API reference "ContainerTop".
        """
        import subprocess

        from minidocker.engine.stats import container_cgroup

        # Bad ps_args are the client's mistake: a 400 here, where dockerd 20.10 answers 500.
        ps_args = ps_args or "-ef"
        for key, value in re.findall(r"\s+([^\s]*)=\s*(PID[^\s]*)", ps_args):
            if key != "pid":  # renaming the PID column would hide it from the parser
                raise InvalidArgument(f'specifying "{key}={value}" is not allowed')
        container = self._running_for(ref)
        pids = container_cgroup(container, self.roots).procs()
        args = ps_args.split(" ")
        result = None
        if pids:  # subprocess forks with posix_spawn/vfork-exec: no Python runs in the child
            result = subprocess.run(["ps", *args, "-q" + ",".join(map(str, pids))], capture_output=True)
        if result is None or result.returncode != 0:  # some options (f) refuse -q: filter ourselves
            result = subprocess.run(["ps", *args], capture_output=True)
            if result.returncode != 0:
                line = result.stderr.decode(errors="replace").split("\n", 1)[0]
                raise InvalidArgument(f"ps: {line or f'exit status {result.returncode}'}")
        return parse_ps(result.stdout.decode(errors="replace"), set(pids))

    def exec_resize(self, eid: str, height: int, width: int) -> None:
        """The exec's pty gets the client's size; waits (10 s, as dockerd) for the exec to have started."""
        deadline = time.monotonic() + 10
        with self.changed:
            ex = self.exec_get(eid)
            while ex.pid is None and ex.exit_code is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise InvalidState("timeout waiting for exec session ready")
                self.changed.wait(left)
        if ex.tty and ex.running:
            try:
                self.supervisor.request({"op": "exec_resize", "id": ex.id, "h": height, "w": width})
            except NotFound:
                pass  # it has ended meanwhile


def parse_ps(output: str, pids: set[int]) -> dict:
    """``ps`` output as dockerd's ContainerTopOKBody: Titles, and the rows whose PID is in ``pids``.

    A row with more fields than titles keeps the rest in its last column (the command
    line); a thread row (``-`` in the PID column, ``ps -eLf``'s m option) follows its process.
    """
    lines = output.split("\n")
    titles = lines[0].split()
    if "PID" not in titles:
        raise InvalidArgument("Couldn't find PID field in ps output")
    at = titles.index("PID")
    processes: list[list[str]] = []
    previous_in = False
    for line in lines[1:]:
        fields = line.split()
        if not fields:
            continue
        if fields[at] == "-":
            if previous_in:
                processes.append(_ps_row(fields, len(titles)))
            continue
        try:
            pid = int(fields[at])
        except ValueError:
            raise InvalidArgument(f"Unexpected pid '{fields[at]}'") from None
        previous_in = pid in pids
        if previous_in:
            processes.append(_ps_row(fields, len(titles)))
    return {"Titles": titles, "Processes": processes}


def _ps_row(fields: list[str], width: int) -> list[str]:
    return [*fields[:width - 1], " ".join(fields[width - 1:])]
