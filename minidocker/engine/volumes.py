"""Volumes in the engine: ``-v``, ``--mount``, ``--tmpfs``, ``--volumes-from``, ``volume ...``. Chapter 10.

What dockerd does between ``docker run -v data:/var/lib/db`` and runc's ``config.json``::

    parse_volume("data:/var/lib/db:ro")      Docker's -v syntax -> a MountRequest
    parse_mount("type=bind,src=/x,dst=/y")   Docker's --mount CSV -> a MountRequest
    parse_tmpfs("/run:size=64m")             --tmpfs -> a MountRequest
    plan = plan_mounts(roots, image_config, requests, volumes_from)
                                             checked, anonymous volumes for the image's VOLUME
    plan.apply(spec)                         OCI ``mounts`` entries (bind/rbind + options, tmpfs)
    plan.prepare(rootfs, directory)          volumes created, copy-up, missing -v sources made
    plan.release(remove_anonymous=...)       after the exit: --rm takes the anonymous volumes

Nothing is created before every flag has been checked: a bad flag exits 125 and
leaves no volume, directory or container behind. The runtime knows nothing of
volumes: it mounts what the spec says (:func:`minidocker.rootfs.mount_one`, which
resolves a target through the image's symlinks *inside* the rootfs).

The ``volume`` commands: :func:`create_volume`, :func:`list_volumes`,
:func:`inspect_volumes`, :func:`remove_volume`, :func:`prune_volumes`; with
containers: :func:`containers_using`, :func:`container_mounts` (``inspect``'s
``Mounts``), :func:`remove_container_volumes` (``rm -v``); for the Engine API,
:func:`requests_from_host_config` (``HostConfig.Binds``, ``Mounts``, ``Tmpfs``).

See: https://docs.docker.com/storage/volumes/, https://docs.docker.com/storage/bind-mounts/,
https://docs.docker.com/storage/tmpfs/, moby volume/mounts/linux_parser.go.
"""

from __future__ import annotations

import os

from minidocker.atomic import read_json, write_json
from minidocker.errors import Conflict, InvalidArgument, NotFound
from minidocker.paths import StateRoots
from minidocker.record import Record
from minidocker.storage.volumes import ANONYMOUS_LABEL, Volume, VolumeStore, validate_name

__all__ = ["MOUNTS_FILE", "MountPlan", "MountRequest", "container_mounts", "containers_using",
           "create_volume", "inspect_volumes", "list_volumes", "parse_mount", "parse_tmpfs", "parse_volume",
           "plan_mounts", "prune_volumes", "remove_container_volumes", "remove_volume", "remove_with_volumes",
           "requests_from_host_config", "volume_store"]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any

# The container's mounts as ``docker inspect`` shows them, beside its config.json.
MOUNTS_FILE = "mounts.json"

_RW_MODES = ("rw", "ro")
_LABEL_MODES = ("z", "Z")   # SELinux relabelling: accepted, nothing to do without SELinux
_PROPAGATIONS = ("shared", "slave", "private", "rshared", "rslave", "rprivate")
_COPY_MODES = ("nocopy",)
_CONSISTENCY = ("consistent", "cached", "delegated")   # Docker Desktop's; no-ops on Linux
# Docker's defaults for every tmpfs (moby daemon/oci_linux.go): then the user's options, which win.
_TMPFS_DEFAULTS = ("nosuid", "noexec", "nodev")


class MountRequest(Record):
    """One ``-v``, ``--mount`` or ``--tmpfs`` flag, parsed and not yet checked against the host.

    ``type`` is bind, volume or tmpfs; ``source`` a host path, a volume name or "" (anonymous).
    """

    FIELDS = ("type", "source", "target", "readonly", "propagation", "recursive", "nocopy", "labels",
              "driver_options", "tmpfs_options", "flag")

    def __init__(self, type: str, source: str, target: str, readonly: bool = False, propagation: str = "",
                 recursive: bool = True, nocopy: bool = False, labels: dict[str, str] | None = None,
                 driver_options: dict[str, str] | None = None, tmpfs_options: list[str] | None = None,
                 flag: str = "-v") -> None:
        self.type = type
        self.source = source
        self.target = target
        self.readonly = readonly
        self.propagation = propagation
        self.recursive = recursive          # rbind (default) or bind (--mount bind-nonrecursive)
        self.nocopy = nocopy                # no copy-up of the image's directory
        self.labels = dict(labels or {})    # --mount volume-label=K=V, for a volume it creates
        self.driver_options = dict(driver_options or {})   # --mount volume-opt=K=V
        self.tmpfs_options = list(tmpfs_options or [])     # mount(8) options of a tmpfs: size=, mode= ...
        self.flag = flag                    # -v, --mount or --tmpfs: the rules differ a little


def parse_volume(text: str) -> MountRequest:
    """Docker's ``-v``: ``/host:/ctr[:opts]`` (bind), ``name:/ctr[:opts]`` (volume), ``/ctr`` (anonymous).

    Options, comma-separated: ``ro``/``rw``, ``z``/``Z``, a propagation, ``nocopy``; one of each kind.
    Raises:
        InvalidArgument: "invalid volume specification" or "invalid mode", as Docker says them.
    """
    parts = text.split(":")
    mode = ""
    if len(parts) == 1:
        source, target = "", parts[0]
    elif len(parts) == 2:
        if _valid_mode(parts[1]):   # /ctr:ro: an anonymous volume cannot take a mode (Docker's rule)
            raise InvalidArgument(f"invalid volume specification: {text!r}",
                                  hint="use /host/path:/container/path[:ro] or NAME:/container/path[:ro]")
        source, target = parts
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise InvalidArgument(f"invalid volume specification: {text!r}",
                              hint="use /host/path:/container/path[:ro] or NAME:/container/path[:ro]")
    if not source and len(parts) > 1 or not target:
        raise InvalidArgument(f"invalid volume specification: {text!r}")
    if not _valid_mode(mode):
        raise InvalidArgument(f"invalid mode: {mode}",
                              hint="use ro or rw, z or Z, a propagation (rprivate, rslave ...), nocopy")
    options = mode.split(",") if mode else []
    kind = "bind" if source.startswith("/") else "volume"
    propagation = next((o for o in options if o in _PROPAGATIONS), "")
    if propagation and kind != "bind":
        raise InvalidArgument(f"invalid volume specification: {text!r}: "
                              "propagation applies to bind mounts only")
    return MountRequest(kind, source, target, readonly="ro" in options, propagation=propagation,
                        nocopy="nocopy" in options, flag="-v")


def _valid_mode(mode: str) -> bool:
    """One of each kind at most, each known (moby's ValidMountMode)."""
    if not mode:
        return True
    counts = [0, 0, 0, 0, 0]
    for option in mode.split(","):
        for index, kind in enumerate((_RW_MODES, _LABEL_MODES, _PROPAGATIONS, _COPY_MODES, _CONSISTENCY)):
            if option in kind:
                counts[index] += 1
                break
        else:
            return False
    return max(counts) <= 1


def parse_mount(text: str) -> MountRequest:
    """Docker's ``--mount`` CSV: ``type=bind|volume|tmpfs,source=…,target=…,readonly,…``.

    Keys (aliases as Docker's): type, source/src, target/destination/dst, readonly/ro,
    bind-propagation, bind-nonrecursive, volume-nocopy, volume-label, volume-opt,
    volume-driver (local only), tmpfs-size, tmpfs-mode, consistency.
    Raises:
        InvalidArgument: an unknown key, a value that does not parse.
    """
    fields: dict[str, Any] = {"type": "volume", "source": "", "target": "", "readonly": False,
                              "propagation": "", "recursive": True, "nocopy": False, "labels": {},
                              "driver_options": {}, "tmpfs_options": []}
    for item in _csv(text):
        key, has_value, value = item.partition("=")
        key = key.strip().lower()
        if not has_value and key not in ("readonly", "ro", "volume-nocopy", "bind-nonrecursive"):
            raise InvalidArgument(f"invalid --mount {text!r}: "
                                  f"invalid field {item!r} must be a key=value pair")
        if key == "type":
            if value not in ("bind", "volume", "tmpfs"):
                raise InvalidArgument(f"invalid --mount {text!r}: unsupported type {value!r}",
                                      hint="use type=bind, type=volume or type=tmpfs")
            fields["type"] = value
        elif key in ("source", "src"):
            fields["source"] = value
        elif key in ("target", "destination", "dst"):
            fields["target"] = value
        elif key in ("readonly", "ro"):
            fields["readonly"] = _bool(text, key, value if has_value else "true")
        elif key == "volume-nocopy":
            fields["nocopy"] = _bool(text, key, value if has_value else "true")
        elif key == "bind-nonrecursive":
            fields["recursive"] = not _bool(text, key, value if has_value else "true")
        elif key == "bind-propagation":
            if value not in _PROPAGATIONS:
                raise InvalidArgument(f"invalid --mount {text!r}: invalid propagation {value!r}",
                                      hint="use " + ", ".join(_PROPAGATIONS))
            fields["propagation"] = value
        elif key in ("volume-label", "volume-opt"):
            name, eq, val = value.partition("=")
            if not name or not eq:
                raise InvalidArgument(f"invalid --mount {text!r}: {key} needs KEY=VALUE")
            fields["labels" if key == "volume-label" else "driver_options"][name] = val
        elif key == "volume-driver":
            if value != "local":
                raise InvalidArgument(f"invalid --mount {text!r}: unknown volume driver {value!r}",
                                      hint="only the local driver is implemented")
        elif key == "tmpfs-size":
            from minidocker.cgroups.units import parse_size

            try:
                fields["tmpfs_options"].append(f"size={parse_size(value)}")
            except InvalidArgument:
                raise InvalidArgument(f"invalid --mount {text!r}: invalid value for tmpfs-size: {value}",
                                      hint="use a size: 64m, 1g, 512k") from None
        elif key == "tmpfs-mode":
            fields["tmpfs_options"].append(f"mode={_octal_mode(text, value)}")
        elif key == "consistency":
            continue
        else:
            raise InvalidArgument(f"invalid --mount {text!r}: unexpected key {key!r}")
    kind = fields["type"]
    for item in _csv(text):   # bind-* keys for type=bind only, volume-* for volume, tmpfs-* for tmpfs
        prefix = item.strip().lower().partition("-")[0]
        if prefix in ("bind", "volume", "tmpfs") and "-" in item and prefix != kind:
            raise InvalidArgument(f"invalid --mount {text!r}: {prefix}-* options do not apply to type={kind}")
    return MountRequest(kind, fields["source"], fields["target"], fields["readonly"], fields["propagation"],
                        fields["recursive"], fields["nocopy"], fields["labels"], fields["driver_options"],
                        fields["tmpfs_options"], flag="--mount")


def _csv(text: str) -> list[str]:
    import csv

    try:
        return next(csv.reader([text])) if text else []
    except csv.Error as err:
        raise InvalidArgument(f"invalid --mount {text!r}: {err}") from None


def _bool(text: str, key: str, value: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "t", "true", "yes"):
        return True
    if lowered in ("0", "f", "false", "no"):
        return False
    raise InvalidArgument(f"invalid --mount {text!r}: invalid value for {key}: {value}")


def _octal_mode(text: str, value: str) -> str:
    try:
        mode = int(value, 8)
    except ValueError:
        mode = -1
    if not 0 <= mode <= 0o7777:
        raise InvalidArgument(f"invalid --mount {text!r}: invalid value for tmpfs-mode: {value}",
                              hint="use an octal mode: 1777, 700")
    return f"{mode:o}"


def parse_tmpfs(text: str) -> MountRequest:
    """``--tmpfs /path[:opts]``: mount(8) options for a tmpfs (size=64m, mode=1777, uid=, exec ...).

    ``size`` and ``mode`` are checked here: the kernel would refuse them only at start.
    """
    target, _, data = text.partition(":")
    options = [o for o in data.split(",") if o] if data else []
    for option in options:
        key, _, value = option.partition("=")
        if key == "size" and not _tmpfs_size(value):
            raise InvalidArgument(f"invalid --tmpfs {text!r}: size {value!r} is not a size",
                                  hint="use bytes, with a k, m or g suffix, or a % of RAM: 64m, 10%")
        if key in ("mode", "uid", "gid", "nr_inodes", "nr_blocks") and not value:
            raise InvalidArgument(f"invalid --tmpfs {text!r}: {key} needs a value")
        if key == "mode":
            _octal_mode(text, value)
    return MountRequest("tmpfs", "", target, readonly="ro" in options, tmpfs_options=options, flag="--tmpfs")


def _tmpfs_size(value: str) -> bool:
    """What shmem's size= takes: a number, then k, m, g, t, p, e or % (mm/shmem.c, memparse)."""
    number = value[:-1] if value[-1:].lower() in ("k", "m", "g", "t", "p", "e", "%") else value
    return number.isascii() and number.isdigit()


def requests_from_host_config(host_config: Mapping[str, Any]) -> list[MountRequest]:
    """The mounts of an Engine API ``HostConfig`` (what ``docker run`` sends minidockerd) as requests.

    ``Binds`` are ``-v`` strings, ``Mounts`` the objects ``--mount`` becomes (Type, Source, Target,
    ReadOnly, BindOptions, VolumeOptions, TmpfsOptions), ``Tmpfs`` a map of path to options.
    ``VolumesFrom`` goes to :func:`plan_mounts` as it is. Raises InvalidArgument for a bad shape.
    See: https://docs.docker.com/engine/api/v1.41/#tag/Container/operation/ContainerCreate
    """
    requests = [parse_volume(text) for text in host_config.get("Binds") or []]
    for m in host_config.get("Mounts") or []:
        if not isinstance(m, dict) or m.get("Type") not in ("bind", "volume", "tmpfs"):
            raise InvalidArgument(f"invalid mount {m!r}: Type must be bind, volume or tmpfs")
        bind, vol, tmp = (m.get(k) or {} for k in ("BindOptions", "VolumeOptions", "TmpfsOptions"))
        options = []
        if tmp.get("SizeBytes"):
            options.append(f"size={int(tmp['SizeBytes'])}")
        if tmp.get("Mode"):
            options.append(f"mode={int(tmp['Mode']):o}")
        driver = (vol.get("DriverConfig") or {})
        if driver.get("Name") not in (None, "", "local"):
            raise InvalidArgument(f"invalid mount {m!r}: unknown volume driver {driver['Name']!r}")
        requests.append(MountRequest(m["Type"], m.get("Source") or "", m.get("Target") or "",
                                     readonly=bool(m.get("ReadOnly")),
                                     propagation=bind.get("Propagation") or "",
                                     recursive=not bind.get("NonRecursive"), nocopy=bool(vol.get("NoCopy")),
                                     labels=vol.get("Labels"), driver_options=driver.get("Options"),
                                     tmpfs_options=options, flag="--mount"))
    for target, data in (host_config.get("Tmpfs") or {}).items():
        requests.append(parse_tmpfs(f"{target}:{data}" if data else target))
    return requests


class _Planned(Record):
    """One mount of the plan: what the spec gets and what must exist first."""

    FIELDS = ("request", "source", "volume", "create_source", "copy_up", "anonymous")

    def __init__(self, request: MountRequest, source: str, volume: str | None = None,
                 create_source: bool = False, copy_up: bool = False, anonymous: bool = False) -> None:
        self.request = request
        self.source = source
        self.volume = volume
        self.create_source = create_source
        self.copy_up = copy_up
        self.anonymous = anonymous

    def oci(self) -> dict[str, Any]:
        r = self.request
        if r.type == "tmpfs":
            options = [*_TMPFS_DEFAULTS, *r.tmpfs_options]
            if r.readonly and "ro" not in options:
                options.append("ro")
            return {"destination": r.target, "type": "tmpfs", "source": "tmpfs", "options": options}
        options = ["rbind" if r.recursive else "bind", r.propagation or "rprivate"]
        if r.readonly:
            options.append("ro")
        return {"destination": r.target, "type": "bind", "source": self.source, "options": options}

    def inspect(self) -> dict[str, Any]:
        """Docker's ``Mounts`` entry for it (``docker inspect``)."""
        r = self.request
        entry: dict[str, Any] = {"Type": r.type}
        if self.volume is not None:
            entry["Name"] = self.volume
        entry.update({"Source": self.source, "Destination": r.target})
        if self.volume is not None:
            entry["Driver"] = "local"
        modes = [m for m in ("ro" if r.readonly else "", "nocopy" if r.nocopy else "") if m]
        if not modes and r.flag == "-v" and r.type == "volume" and r.source:
            modes = ["z"]   # dockerd shows a named -v volume given no options so (its SELinux default)
        host_bind = r.type == "bind" and self.volume is None
        entry.update({"Mode": ",".join(modes), "RW": not r.readonly,
                      "Propagation": (r.propagation or "rprivate") if host_bind else ""})
        if self.anonymous:
            entry["Anonymous"] = True   # not Docker's: how rm -v and --rm find what is theirs
        return entry


class MountPlan:
    """The checked mounts of one container (see the module docstring for its three steps)."""

    def __init__(self, roots: StateRoots, planned: list[_Planned]) -> None:
        self.roots = roots
        self.planned = planned
        self.store = volume_store(roots)
        self.directory: str | None = None
        self.volumes: dict[str, Volume] = {}   # what prepare() created or found, for release()

    def apply(self, spec: dict[str, Any]) -> None:
        """Write the OCI ``mounts`` entries: a user mount replaces a default one at the same target;
        parents before children (Docker sorts by depth too)."""
        ours = sorted((p.oci() for p in self.planned), key=lambda m: _depth(m["destination"]))
        targets = {m["destination"] for m in ours}
        spec["mounts"] = [m for m in spec["mounts"] if m["destination"] not in targets] + ours
        propagations = {p.request.propagation for p in self.planned if p.request.type == "bind"}
        # A shared or slave bind must come from a root that is not private: moby sets RootfsPropagation
        # as here (daemon/oci_linux.go), "shared" for a shared bind (mounts go both ways), else "rslave".
        if propagations & {"shared", "rshared"}:
            spec.setdefault("linux", {})["rootfsPropagation"] = "shared"
        elif propagations & {"slave", "rslave"}:
            spec.setdefault("linux", {})["rootfsPropagation"] = "rslave"

    def prepare(self, rootfs: str | os.PathLike[str], directory: str | os.PathLike[str],
                durable: bool = True) -> None:
        """Before the start: volumes created (and mounted, for the local driver's devices), missing
        ``-v`` sources made, copy-up from the image, the ``Mounts`` record written (no fsync with
        ``durable=False``: a --rm container's record goes at its exit; the fsync cost ~10 ms here)."""
        from minidocker.rootfs import secure_join
        from minidocker.storage.volumes import copy_up, is_empty

        self.directory = os.fspath(directory)
        write_json(os.path.join(directory, MOUNTS_FILE), [p.inspect() for p in self.planned], durable=durable)
        for p in self.planned:
            r = p.request
            if p.create_source:
                os.makedirs(p.source, mode=0o755, exist_ok=True)
            if p.volume is None:
                continue
            labels = {**r.labels, **({ANONYMOUS_LABEL: ""} if p.anonymous else {})}
            volume = self.store.create(p.volume, labels=labels, options=r.driver_options,
                                       durable=durable or not p.anonymous)
            self.volumes[p.volume] = volume
            with self.store.lock(volume):   # another run may be filling the same volume right now
                self.store.activate(volume)
                if p.copy_up and is_empty(volume.mountpoint):
                    image_dir = secure_join(rootfs, r.target)   # the image's symlinks stay inside the rootfs
                    if image_dir.is_dir() and not image_dir.is_symlink():
                        copy_up(image_dir, volume.mountpoint)

    def release(self, container_id: str, remove_anonymous: bool = False) -> list[str]:
        """After the exit: unmount local-driver devices no other container runs with; with --rm, remove
        the anonymous volumes no other container uses. Returns the removed volumes' names."""
        removed = []
        for p in self.planned:
            volume = self.volumes.get(p.volume or "")
            if volume is None or not (volume.mounts_device or (remove_anonymous and p.anonymous)):
                continue   # a plain named volume: nothing to undo (the common case, no scan of containers)
            users = [c for c in containers_using(self.roots, p.volume) if c.id != container_id]
            if not any(c.status == "running" for c in users):
                self.store.deactivate(volume)
            if remove_anonymous and p.anonymous and not users:
                self.store.remove(p.volume)
                removed.append(p.volume)
        return removed


def _depth(path: str) -> int:
    return len([p for p in path.split("/") if p])


def volume_store(roots: StateRoots) -> VolumeStore:
    """The volumes of these state roots (``$ROOT/lib/volumes``)."""
    return VolumeStore(roots.lib / "volumes")


def plan_mounts(roots: StateRoots, image_config: Mapping[str, Any], requests: Sequence[MountRequest],
                volumes_from: Sequence[str] = ()) -> MountPlan:
    """Check every request against the host and Docker's rules; add the image's VOLUMEs as anonymous volumes.

    Nothing is created here. Raises InvalidArgument (a bad target, a missing ``--mount`` source,
    a bad name, two mounts at one target), NotFound (``--volumes-from`` an unknown container).
    """
    planned: list[_Planned] = []
    seen: set[str] = set()
    for request in requests:
        planned.append(_check(request))
        if request.target in seen:
            raise InvalidArgument(f"duplicate mount point: {request.target}",
                                  hint="each container path can take one mount")
        seen.add(request.target)
    for ref in volumes_from:
        for p in _volumes_from(roots, ref):
            if p.request.target not in seen:
                planned.append(p)
                seen.add(p.request.target)
    for path in sorted(image_config.get("Volumes") or {}):
        target = os.path.normpath(path) if path.startswith("/") else path
        if target not in seen and target.startswith("/"):
            planned.append(_Planned(MountRequest("volume", "", target, flag="VOLUME"), "", _anonymous_name(),
                                    copy_up=True, anonymous=True))
            seen.add(target)
    store = volume_store(roots)
    for p in planned:
        if p.volume is not None:
            p.source = os.fspath(store.root / p.volume / "_data")
    return MountPlan(roots, planned)


def _check(request: MountRequest) -> _Planned:
    r = request
    kind = f'invalid mount config for type "{r.type}"'
    if not r.target:
        raise InvalidArgument(f"{kind}: field Target must not be empty")
    if not r.target.startswith("/"):
        raise InvalidArgument(f"{kind}: invalid mount path: {r.target!r} mount path must be absolute")
    r.target = os.path.normpath(r.target).replace("//", "/")
    if r.target == "/":
        raise InvalidArgument("invalid specification: destination can't be '/'")
    if r.type == "tmpfs":
        if r.source:
            raise InvalidArgument(f"{kind}: field Source must not be specified")
        return _Planned(r, "")
    if r.type == "bind":
        if not r.source:
            raise InvalidArgument(f"{kind}: field Source must not be empty")
        if not r.source.startswith("/"):
            raise InvalidArgument(f"{kind}: invalid mount path: {r.source!r} mount path must be absolute")
        source = os.path.normpath(r.source)
        missing = not os.path.lexists(source)
        if missing and r.flag == "--mount":   # Docker's rule: only -v creates a missing source
            raise InvalidArgument(f"{kind}: bind source path does not exist: {source}",
                                  hint="create it first, or use -v, which creates a missing directory")
        if r.propagation in ("shared", "rshared", "slave", "rslave"):
            _check_propagation(source if not missing else os.path.dirname(source), r.propagation)
        return _Planned(r, source, create_source=missing)
    if r.source.startswith("/"):
        raise InvalidArgument(f"{kind}: a volume's source is a name, not a host path: {r.source!r}",
                              hint="use type=bind for a host directory")
    if not r.source:
        if r.readonly:
            raise InvalidArgument(f"{kind}: must not set ReadOnly mode when using anonymous volumes")
        return _Planned(r, "", _anonymous_name(), copy_up=not r.nocopy, anonymous=True)
    if len(r.source) < 2 and r.source.isalnum():
        raise InvalidArgument(f"failed to create volume {r.source!r}: volume name is too short, "
                              "names should be at least two alphanumeric characters")
    validate_name(r.source)
    return _Planned(r, "", r.source, copy_up=not r.nocopy)


def _check_propagation(source: str, propagation: str) -> None:
    """A shared or slave bind needs a source on a shared (or, for slave, slave) mount: Docker's check."""
    best, fields = "", []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            point = parts[4].replace("\\040", " ")
            if (source == point or source.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                best, fields = point, parts[6:parts.index("-")]
    shared = any(f.startswith("shared:") for f in fields)
    slave = any(f.startswith("master:") for f in fields)
    if propagation.endswith("shared") and not shared:
        raise InvalidArgument(f"path {source} is mounted on {best} but it is not a shared mount",
                              hint=f"make it shared first: mount --make-shared {best}")
    if propagation.endswith("slave") and not (shared or slave):
        raise InvalidArgument(f"path {source} is mounted on {best} but it is not a shared or slave mount",
                              hint=f"make it shared first: mount --make-shared {best}")


def _volumes_from(roots: StateRoots, ref: str) -> list[_Planned]:
    """``--volumes-from CONTAINER[:ro|rw]``: its bind mounts and volumes, at the same targets."""
    from minidocker.engine.container import find_container

    name, _, mode = ref.partition(":")
    if mode not in ("", "ro", "rw"):
        raise InvalidArgument(f"invalid --volumes-from {ref!r}: mode must be ro or rw")
    container = find_container(roots, name)
    planned = []
    for entry in container_mounts(roots, container.id):
        if entry["Type"] not in ("bind", "volume"):
            continue
        readonly = (mode == "ro") if mode else not entry.get("RW", True)
        propagation = entry.get("Propagation", "") if entry["Type"] == "bind" else ""
        request = MountRequest(entry["Type"], entry.get("Name", entry["Source"]), entry["Destination"],
                               readonly=readonly, propagation=propagation, flag="--volumes-from")
        # SPEC: a volume shared this way is not the new container's own: --rm leaves it to its creator.
        planned.append(_Planned(request, entry["Source"], entry.get("Name")))
    return planned


def _anonymous_name() -> str:
    """64 hex digits, as Docker names anonymous volumes."""
    return os.urandom(32).hex()


# -- what containers use ------------------------------------------------------------------------

def container_mounts(roots: StateRoots, container_id: str) -> list[dict[str, Any]]:
    """A container's ``Mounts`` as ``docker inspect`` shows them ([] when it has none)."""
    try:
        return list(read_json(roots.containers / container_id / MOUNTS_FILE))
    except (FileNotFoundError, ValueError):
        return []


def containers_using(roots: StateRoots, name: str) -> list[Any]:
    """The containers (running or not) whose mounts name the volume: Docker refuses to remove it then."""
    from minidocker.engine.container import list_containers

    return [c for c in list_containers(roots)
            if any(m.get("Name") == name for m in container_mounts(roots, c.id))]


def remove_with_volumes(ref: str, force: bool = False, roots: StateRoots | None = None) -> Any:
    """``rm -v``: remove the container, then its anonymous volumes that no other container uses."""
    from minidocker.engine.container import find_container
    from minidocker.engine.remove import remove_container
    from minidocker.paths import state_roots

    roots = roots or state_roots()
    container = find_container(roots, ref)
    mounts = container_mounts(roots, container.id)   # read before the directory goes
    removed = remove_container(container.id, force=force, roots=roots)
    remove_container_volumes(roots, mounts, container.id)
    return removed


def remove_container_volumes(roots: StateRoots, mounts: Iterable[Mapping[str, Any]],
                             container_id: str) -> list[str]:
    """``rm -v``: the container's anonymous volumes that no other container uses. Returns their names."""
    store, removed = volume_store(roots), []
    for entry in mounts:
        name = entry.get("Name")
        if not name or not entry.get("Anonymous"):
            continue
        if any(c.id != container_id for c in containers_using(roots, name)):
            continue
        try:
            store.remove(name)
        except NotFound:
            continue
        removed.append(name)
    return removed


# -- the volume commands --------------------------------------------------------------------------

def create_volume(roots: StateRoots, name: str | None = None, driver: str = "local",
                  options: Sequence[str] = (), labels: Sequence[str] = ()) -> Volume:
    """``docker volume create [-d local] [-o K=V] [--label K=V] [NAME]``; no name: 64 random hex digits."""
    if name is not None and len(name) < 2 and name.isalnum():
        raise InvalidArgument(f"failed to create volume {name!r}: volume name is too short, "
                              "names should be at least two alphanumeric characters")
    return volume_store(roots).create(name or _anonymous_name(), driver, _pairs(labels, "--label"),
                                      _pairs(options, "-o"))


def _pairs(items: Sequence[str], flag: str) -> dict[str, str]:
    result = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not key:
            raise InvalidArgument(f"invalid {flag} {item!r}: expected KEY=VALUE")
        result[key] = value if eq else ""
    return result


def _usage(roots: StateRoots) -> dict[str, list[str]]:
    """Volume name -> IDs of the containers whose mounts name it."""
    from minidocker.engine.container import list_containers

    used: dict[str, list[str]] = {}
    for c in list_containers(roots):
        for m in container_mounts(roots, c.id):
            if m.get("Name"):
                used.setdefault(m["Name"], []).append(c.id)
    return used


def list_volumes(roots: StateRoots, filters: Sequence[str] = ()) -> list[Volume]:
    """``docker volume ls [--filter dangling=true|name=…|label=K[=V]|driver=local]``; filters of one key OR,
    of different keys AND, as Docker's."""
    wanted: dict[str, list[str]] = {}
    for item in filters:
        key, eq, value = item.partition("=")
        if key not in ("dangling", "name", "label", "driver") or not eq:
            raise InvalidArgument(f"invalid filter {item!r}",
                                  hint="use dangling=true, name=…, label=K[=V], driver=local")
        if key == "dangling" and value.lower() not in ("true", "false", "1", "0"):
            raise InvalidArgument(f"invalid filter 'dangling={value}'",
                                  hint="use dangling=true or dangling=false")
        wanted.setdefault(key, []).append(value)
    volumes = volume_store(roots).list()
    used = _usage(roots) if "dangling" in wanted else {}
    return [v for v in volumes if all(any(_matches(v, key, value, used) for value in values)
                                      for key, values in wanted.items())]


def _matches(volume: Volume, key: str, value: str, used: Mapping[str, list[str]]) -> bool:
    if key == "dangling":
        return (volume.name not in used) == (value.lower() in ("true", "1"))
    if key == "name":
        return value in volume.name   # Docker matches a substring
    if key == "driver":
        return volume.driver == value
    label, eq, label_value = value.partition("=")
    return label in volume.labels and (not eq or volume.labels[label] == label_value)


def inspect_volumes(roots: StateRoots, names: Sequence[str]) -> list[dict[str, Any]]:
    """``docker volume inspect``: each volume's JSON. Raises NotFound for the first unknown name."""
    store = volume_store(roots)
    return [store.get(name).inspect() for name in names]


def remove_volume(roots: StateRoots, name: str, force: bool = False) -> bool:
    """``docker volume rm [-f]``: refused while a container (even a stopped one) uses it, naming which.

    ``force`` only ignores a volume that does not exist, as Docker's. Returns whether it was removed.
    """
    store = volume_store(roots)
    try:
        store.get(name)
    except NotFound:
        if force:
            return False
        raise
    users = containers_using(roots, name)
    if users:
        listed = ", ".join(f"{c.id[:12]} ({c.name})" for c in users)
        raise Conflict(f"cannot remove volume {name}: it is in use by container {listed}",
                       hint="remove the container first (minidocker rm " + users[0].name + ")")
    store.remove(name)
    return True


def prune_volumes(roots: StateRoots, all_volumes: bool = False, filters: Sequence[str] = ()) -> list[str]:
    """``docker volume prune [-a] [--filter label=…]``: unused anonymous volumes (all unused with ``-a``),
    as Docker 23+. Returns the removed names."""
    for item in filters:
        if not item.startswith(("label=", "label!=")):
            raise InvalidArgument(f"invalid filter {item!r} for prune",
                                  hint="use label=K[=V] or label!=K[=V]")
    used = _usage(roots)
    store, removed = volume_store(roots), []
    if store.root.is_dir():   # a deletion that was interrupted (a crash during rm or --rm)
        import shutil

        for leftover in store.root.glob(".removing-*"):
            shutil.rmtree(leftover, ignore_errors=True)
    for volume in store.list():
        if volume.name in used or (not all_volumes and not volume.anonymous):
            continue
        if not _prune_ok(volume, filters):
            continue
        store.remove(volume.name)
        removed.append(volume.name)
    return removed


def _prune_ok(volume: Volume, filters: Sequence[str]) -> bool:
    for item in filters:
        negate = item.startswith("label!=")
        value = item.split("=", 1)[1]
        hit = _matches(volume, "label", value, {})
        if hit == negate:
            return False
    return True
