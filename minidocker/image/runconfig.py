"""An image's config applied to a runtime spec, combined with ``run``'s flags. Chapter 06.

What dockerd does between ``docker run`` and runc's ``config.json``::

    merge_config(image config, run flags)    daemon/commit.go merge(): flags win, the image fills gaps
    container_env(...)                       PATH, HOSTNAME, TERM first; -e then image Env; HOME
    resolve_user(...)                        USER / -u against the image's /etc/passwd and /etc/group
    apply_image_config(spec, image, args)    all of it written into the OCI spec

The rules, as Docker applies them:

* ``--entrypoint X`` replaces the image's Entrypoint **and drops its Cmd**; ``--entrypoint ""``
  clears both. Otherwise a command after the image replaces Cmd only.
* ``-e`` replaces the image variable of the same name; the image's others stay.
* ``-u name`` / ``-u uid[:gid]``: a name is looked up in the image's /etc/passwd; a uid
  not found there runs with gid 0; HOME comes from /etc/passwd (``/`` if absent).
* ``-w`` replaces WorkingDir (default ``/``); Volumes, ExposedPorts and Labels are kept
  from the image and added to by flags.
See: https://github.com/moby/moby/blob/master/daemon/commit.go (merge), runc's libcontainer/user.
"""

from __future__ import annotations

import os
import stat

from minidocker.errors import InvalidArgument
from minidocker.record import Record
from minidocker.runtime.spec import DEFAULT_PATH  # the one copy (runc's spec has the same)

__all__ = ["DEFAULT_PATH", "RunArgs", "User", "apply_image_config", "container_env",
           "merge_config", "merge_env", "read_image_file", "resolve_user"]


TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path
    from typing import Any


class RunArgs(Record):
    """The ``run`` flags that meet the image config."""

    FIELDS = ("command", "entrypoint", "env", "workdir", "user", "tty", "volumes", "labels", "expose")
    DEFAULTS = {"command": [], "entrypoint": None, "env": [], "workdir": None, "user": None, "tty": False,
                "volumes": [], "labels": {}, "expose": []}

    def __post_init__(self) -> None:
        self.command = self.command or []
        self.env = self.env or []
        self.volumes = self.volumes or []
        self.labels = self.labels or {}
        self.expose = self.expose or []


class User(Record):
    """Who the process runs as: uid, gid, supplementary gids, home directory."""

    FIELDS = ("uid", "gid", "additional_gids", "home")


def merge_env(user_env: Sequence[str], image_env: Sequence[str]) -> list[str]:
    """The container's Env: ``-e`` values first, then each image variable ``-e`` did not set."""
    keys = {item.partition("=")[0] for item in user_env}
    return [*user_env, *(item for item in image_env if item.partition("=")[0] not in keys)]


def _replace_or_append(base: Sequence[str], overrides: Sequence[str]) -> list[str]:
    result = list(base)
    index = {item.partition("=")[0]: i for i, item in enumerate(result)}
    for item in overrides:
        key = item.partition("=")[0]
        if key in index:
            result[index[key]] = item
        else:
            index[key] = len(result)
            result.append(item)
    return result


def container_env(config_env: Sequence[str], hostname: str | None, tty: bool, home: str) -> list[str]:
    """The process environment: PATH, HOSTNAME, TERM (with -t), then the container's Env, then HOME."""
    defaults = ([DEFAULT_PATH] + ([f"HOSTNAME={hostname}"] if hostname else [])
                + (["TERM=xterm"] if tty else []))
    env = _replace_or_append(defaults, config_env)
    if not any(item.startswith("HOME=") for item in env):
        env.append(f"HOME={home}")
    return env


def merge_config(image_config: Mapping[str, Any], run: RunArgs) -> dict[str, Any]:
    """The container config: run's flags, the image's values where a flag is not given."""
    if run.entrypoint is not None:
        entrypoint: list[str] = [run.entrypoint] if run.entrypoint else []
        cmd = list(run.command)
    else:
        entrypoint = list(image_config.get("Entrypoint") or [])
        cmd = list(run.command) or list(image_config.get("Cmd") or [])
    volumes = dict(image_config.get("Volumes") or {})
    volumes.update({v: {} for v in run.volumes})
    ports = dict(image_config.get("ExposedPorts") or {})
    ports.update({p if "/" in p else f"{p}/tcp": {} for p in run.expose})
    labels = dict(image_config.get("Labels") or {})
    labels.update(run.labels)
    return {
        "User": run.user if run.user is not None else image_config.get("User") or "",
        "Env": merge_env(run.env, image_config.get("Env") or []),
        "Entrypoint": entrypoint,
        "Cmd": cmd,
        "WorkingDir": run.workdir or image_config.get("WorkingDir") or "/",
        "Volumes": volumes,
        "ExposedPorts": ports,
        "Labels": labels,
        "StopSignal": image_config.get("StopSignal") or "",
    }


def read_image_file(layers: Sequence[Path], path: str) -> bytes | None:
    """A file's content as the merged image shows it: top layer first, whiteouts respected."""
    parts = [p for p in path.split("/") if p]
    for layer in layers:
        current = layer
        hidden = False
        for i, part in enumerate(parts):
            current = current / part
            try:
                st = os.lstat(current)
            except (FileNotFoundError, NotADirectoryError):
                break
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                return None                       # a whiteout: deleted above the layers below
            if i == len(parts) - 1:
                if stat.S_ISREG(st.st_mode):
                    return current.read_bytes()
                return None
            if not stat.S_ISDIR(st.st_mode):
                break
            try:
                if os.getxattr(current, "trusted.overlay.opaque") == b"y":
                    hidden = True                 # lower layers' contents of this directory are hidden
            except OSError:
                pass
        if hidden:
            return None
    return None


def _entries(data: bytes | None) -> list[list[str]]:
    if not data:
        return []
    return [line.split(":") for line in data.decode(errors="replace").splitlines()
            if line and not line.startswith("#")]


def resolve_user(user: str, layers: Sequence[Path]) -> User:
    """``USER``/``-u`` as runc resolves it against the image's /etc/passwd and /etc/group.

    Raises:
        InvalidArgument: a name that is not in the image's files, or a negative id.
    """
    user_part, _, group_part = (user or "0").partition(":")
    passwd = _entries(read_image_file(layers, "etc/passwd"))
    entry = next((e for e in passwd if len(e) >= 7 and (e[0] == user_part or e[2] == user_part)), None)
    if entry is None and not user_part.isdigit():
        raise InvalidArgument(f"invalid user {user!r}: unable to find user {user_part}: "
                              "no matching entries in passwd file",
                              hint="use a name from the image's /etc/passwd, or a numeric UID[:GID]")
    uid = int(entry[2]) if entry else int(user_part)
    gid = int(entry[3]) if entry else 0
    home = entry[5] if entry else "/"
    groups = _entries(read_image_file(layers, "etc/group"))
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            match = next((g for g in groups if len(g) >= 3 and g[0] == group_part), None)
            if match is None:
                raise InvalidArgument(f"invalid user {user!r}: unable to find group {group_part}: "
                                      "no matching entries in group file")
            gid = int(match[2])
    name = entry[0] if entry else None
    extra = sorted({int(g[2]) for g in groups if len(g) >= 4 and name and name in g[3].split(",")
                    and int(g[2]) != gid}) if not group_part else []
    return User(uid, gid, extra, home)


def apply_image_config(spec: dict[str, Any], image_config: Mapping[str, Any], layers: Sequence[Path],
                       run: RunArgs, hostname: str | None = None) -> dict[str, Any]:
    """Fill the process of an OCI ``spec`` from the image config and the run flags.

    Sets ``process.args``, ``env``, ``cwd``, ``user``, ``terminal``; image Volumes become
    tmpfs mounts (chapter 10 makes them real volumes); ExposedPorts, StopSignal and
    Labels become annotations, as umoci writes them.

    Raises:
        InvalidArgument: no command at all, or a user the image does not know.
    """
    merged = merge_config(image_config, run)
    args = merged["Entrypoint"] + merged["Cmd"]
    if not args:
        raise InvalidArgument("no command specified",
                              hint="give one after the image name: minidocker run IMAGE COMMAND")
    user = resolve_user(merged["User"], layers)
    process = spec.setdefault("process", {})
    process["args"] = args
    process["env"] = container_env(merged["Env"], hostname, run.tty, user.home)
    process["cwd"] = merged["WorkingDir"]
    process["terminal"] = run.tty
    process["user"] = {"uid": user.uid, "gid": user.gid}
    if user.additional_gids:
        process["user"]["additionalGids"] = user.additional_gids
    mounts = spec.setdefault("mounts", [])
    for destination in sorted(merged["Volumes"]):
        mounts.append({"destination": destination, "type": "tmpfs", "source": "tmpfs",
                       "options": ["rw", "nosuid", "nodev", "noexec", "relatime"]})
    annotations = spec.setdefault("annotations", {})
    if merged["ExposedPorts"]:
        annotations["org.opencontainers.image.exposedPorts"] = ",".join(sorted(merged["ExposedPorts"]))
    if merged["StopSignal"]:
        annotations["org.opencontainers.image.stopSignal"] = merged["StopSignal"]
    annotations.update(merged["Labels"])
    if not annotations:
        del spec["annotations"]
    return spec
