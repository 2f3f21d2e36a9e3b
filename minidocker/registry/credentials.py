"""Registry credentials in Docker's ``config.json`` format. Chapter 07.

::

    ~/.minidocker/config.json       (MINIDOCKER_CONFIG=DIR moves it, as DOCKER_CONFIG does for docker)
    {"auths": {"127.0.0.1:5000": {"auth": "<base64 of user:password>"},
               "https://index.docker.io/v1/": {"auth": "..."}}}

Docker Hub's key is the legacy ``https://index.docker.io/v1/``, every other registry is
keyed by ``host[:port]``. The file is mode 0600 and written atomically; passwords are
never printed. When our file has no entry, ``~/.docker/config.json`` is read too (its
``auths``; credential helpers are not supported).
See: https://docs.docker.com/reference/cli/docker/login/
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from minidocker.atomic import write_bytes

__all__ = ["check_login", "config_path", "erase_credentials", "load_credentials", "login", "server_key",
           "store_credentials"]

DOCKER_HUB_KEY = "https://index.docker.io/v1/"


def config_path(env: dict[str, str] | None = None) -> Path:
    """``$MINIDOCKER_CONFIG/config.json``, else ``~/.minidocker/config.json``."""
    env = os.environ if env is None else env
    directory = env.get("MINIDOCKER_CONFIG")
    if not directory:
        directory = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".minidocker")
    return Path(directory) / "config.json"


def server_key(domain: str) -> str:
    """The ``auths`` key of a registry: Docker Hub's legacy URL, else ``host[:port]``."""
    if domain in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        return DOCKER_HUB_KEY
    return domain.removeprefix("https://").removeprefix("http://").rstrip("/")


def _read(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read() or b"{}")
    except FileNotFoundError:
        return {}
    except ValueError as err:
        from minidocker.errors import InvalidArgument

        raise InvalidArgument(f"failed to read credentials {path}: {err}") from None
    return data if isinstance(data, dict) else {}


def _decode(entry: dict) -> tuple[str, str] | None:
    auth = entry.get("auth")
    if auth:
        user, sep, password = base64.b64decode(auth).decode().partition(":")
        return (user, password) if sep else None
    if entry.get("username"):
        return entry["username"], entry.get("password", "")
    return None


def load_credentials(domain: str, env: dict[str, str] | None = None) -> tuple[str, str] | None:
    """(username, password) stored for a registry, or None."""
    env = os.environ if env is None else env
    key = server_key(domain)
    docker_dir = env.get("DOCKER_CONFIG")
    if not docker_dir:
        docker_dir = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".docker")
    for path in (config_path(env), Path(docker_dir) / "config.json"):
        auths = _read(path).get("auths") or {}
        for name in (key, f"https://{key}", f"http://{key}"):
            if name in auths:
                found = _decode(auths[name])
                if found:
                    return found
    return None


def store_credentials(domain: str, username: str, password: str, env: dict[str, str] | None = None) -> Path:
    """Save credentials for a registry (mode 0600); returns the file written."""
    path = config_path(env)
    data = _read(path)
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    data.setdefault("auths", {})[server_key(domain)] = {"auth": auth}
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_bytes(path, (json.dumps(data, indent="\t") + "\n").encode(), mode=0o600)
    return path


def erase_credentials(domain: str, env: dict[str, str] | None = None) -> bool:
    """Forget a registry's credentials; False if there were none."""
    path = config_path(env)
    data = _read(path)
    if data.get("auths", {}).pop(server_key(domain), None) is None:
        return False
    write_bytes(path, (json.dumps(data, indent="\t") + "\n").encode(), mode=0o600)
    return True


def login(domain: str, username: str, password: str, insecure_registries: tuple[str, ...] = (),
          env: dict[str, str] | None = None) -> Path:
    """Check credentials against the registry (``GET /v2/``, answering its challenge), then store them.

    Like ``docker login``. Raises Unauthorized when the registry refuses them.
    """
    check_login(domain, username, password, insecure_registries)
    return store_credentials(domain, username, password, env)


def check_login(domain: str, username: str, password: str, insecure_registries: tuple[str, ...] = ()) -> None:
    """Does the registry accept these credentials? Unauthorized if not. (The daemon's ``/auth``.)"""
    from minidocker.registry.client import RegistryClient, Unauthorized

    client = RegistryClient(domain, credentials=(username, password), insecure_registries=insecure_registries)
    try:
        response = client.request("GET", "/v2/", expect=(200, 401), what=f"login to {domain}")
        if response.status == 401:
            raise Unauthorized(f"unauthorized: {domain} refused the username or password")
    finally:
        client.close()
