"""Network endpoints: what ``docker network create|ls|inspect|rm|connect|disconnect|prune`` send.

::

    GET    /networks                    NetworkList        filters: name, id, driver, type (custom|builtin)
    GET    /networks/{id}               NetworkInspect     by name, ID or ID prefix
    POST   /networks/create             NetworkCreate      {"Name", "Driver": "bridge",
                                                            "IPAM": {"Config": [{"Subnet"}]}}
                                                           -> 201 {"Id", "Warning"}
    DELETE /networks/{id}               NetworkDelete      204; 403 for a predefined one; 409 with endpoints
    POST   /networks/{id}/connect       NetworkConnect     {"Container", "EndpointConfig": {"Aliases"}}:
                                                            one more veth
    POST   /networks/{id}/disconnect    NetworkDisconnect  {"Container", "Force"}
    POST   /networks/prune              NetworkPrune       -> {"NetworksDeleted"}

The networks are chapter 09's (engine/networks.py): bridges, IPAM, NAT and names, the
same store ``minidocker network`` uses. Connecting enters the container's network
namespace from the handler's thread only (setns(2) on ``/proc/thread-self``), which a
threaded daemon may do; nothing here forks.
See: the Docker Engine API reference, "Network".
"""

from __future__ import annotations

from minidocker.api.errors import Forbidden
from minidocker.api.filters import parse_filters
from minidocker.api.server import Reply, Request
from minidocker.errors import Conflict, InvalidArgument

__all__ = ["ROUTES", "network_connect", "network_create", "network_delete", "network_disconnect",
           "network_inspect", "network_list", "network_prune"]

_BUILTIN = ("bridge", "host", "none")


def network_list(request: Request) -> Reply:
    from minidocker.engine.networks import network_resources

    filters = parse_filters(request.arg("filters"), ("name", "id", "driver", "type", "label", "scope"))
    found = network_resources(request.daemon.roots)
    for key, values in filters.items():
        found = [n for n in found if any(_matches(n, key, v) for v in values)]
    return Reply.json(found)


def _matches(network: dict, key: str, value: str) -> bool:
    if key == "name":
        return value in network["Name"]   # dockerd matches a substring
    if key == "id":
        return network["Id"].startswith(value)
    if key == "driver":
        return network["Driver"] == value
    if key == "type":
        return (network["Name"] in _BUILTIN) == (value == "builtin")
    if key == "scope":
        return value == "local"
    return False   # label: our networks have none


def network_inspect(request: Request) -> Reply:
    from minidocker.engine.networks import network_resource

    return Reply.json(network_resource(request.daemon.roots, _ref(request)))


def network_create(request: Request) -> Reply:
    from minidocker.engine.networks import create_network

    body = request.json()
    if not isinstance(body, dict) or not isinstance(body.get("Name"), str) or not body["Name"]:
        raise InvalidArgument("network name is required")
    driver = body.get("Driver") or "bridge"
    if driver != "bridge":
        raise InvalidArgument(f"plugin \"{driver}\" not found", hint="only the bridge driver is implemented")
    for key in ("Internal", "EnableIPv6", "Attachable", "Ingress", "ConfigOnly"):
        if body.get(key):
            raise InvalidArgument(f"{key} networks are not supported by minidocker")
    if body.get("Labels"):
        raise InvalidArgument("network labels are not supported by minidocker")
    configs = ((body.get("IPAM") or {}).get("Config") or []) if isinstance(body.get("IPAM"), dict) else []
    if len(configs) > 1:
        raise InvalidArgument("a network has one subnet in minidocker")
    subnet = configs[0].get("Subnet") if configs and isinstance(configs[0], dict) else None
    network = create_network(request.daemon.roots, body["Name"], subnet)
    request.daemon.events.publish("network", "create", network.id, {"name": network.name, "type": "bridge"})
    return Reply.json({"Id": network.id, "Warning": ""}, 201)


def network_delete(request: Request) -> Reply:
    from minidocker.engine.networks import network_resource, remove_network

    found = network_resource(request.daemon.roots, _ref(request))
    if found["Name"] in _BUILTIN:
        raise Forbidden(f"{found['Name']} is a pre-defined network and cannot be removed")
    network = remove_network(request.daemon.roots, found["Id"])
    request.daemon.events.publish("network", "destroy", network.id, {"name": network.name, "type": "bridge"})
    return Reply.empty(204)


def network_connect(request: Request) -> Reply:
    from minidocker.engine.networks import connect

    body = request.json()
    container = _container_of(body)
    endpoint = connect(request.daemon.roots, _ref(request), container, _aliases_of(body))
    request.daemon.events.publish("network", "connect", endpoint["network_id"],
                                  {"container": container, "name": endpoint["network"], "type": "bridge"})
    return Reply(200)


def network_disconnect(request: Request) -> Reply:
    from minidocker.engine.networks import disconnect

    container = _container_of(request.json())
    disconnect(request.daemon.roots, _ref(request), container)
    request.daemon.events.publish("network", "disconnect", _ref(request), {"container": container})
    return Reply(200)


def network_prune(request: Request) -> Reply:
    from minidocker.engine.networks import prune_networks

    pruned = prune_networks(request.daemon.roots, keep_default=True)
    removed = [line.removeprefix("deleted network ") for line in pruned]
    return Reply.json({"NetworksDeleted": removed or None})


def _ref(request: Request) -> str:
    return request.params["id"]


def _container_of(body: object) -> str:
    if not isinstance(body, dict) or not isinstance(body.get("Container"), str) or not body["Container"]:
        raise InvalidArgument("a container is required: {\"Container\": NAME_OR_ID}")
    if body.get("EndpointConfig"):
        config = body["EndpointConfig"]
        if not isinstance(config, dict) or any(config.get(k) for k in ("IPAMConfig", "Links")):
            raise Conflict("endpoint settings (IP address, links) are not supported by minidocker")
    return body["Container"]


def _aliases_of(body: dict) -> list[str]:
    """EndpointConfig.Aliases (``docker network connect --alias A``): more names its peers resolve."""
    aliases = (body.get("EndpointConfig") or {}).get("Aliases") or []
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise InvalidArgument("invalid EndpointConfig.Aliases: expected an array of strings")
    return aliases


ROUTES = [
    ("GET", "/networks", network_list),
    ("POST", "/networks/create", network_create),
    ("POST", "/networks/prune", network_prune),
    ("GET", "/networks/{id}", network_inspect),
    ("DELETE", "/networks/{id}", network_delete),
    ("POST", "/networks/{id}/connect", network_connect),
    ("POST", "/networks/{id}/disconnect", network_disconnect),
]
