"""Chapter 14: the Engine API's contract: the OpenAPI document, and a fuzzer driven by it.

``minidocker/api/openapi.yaml`` describes the subset minidockerd serves. The first tests keep
it true (every route the router serves is documented, every documented route is served).
The fuzzer (hypothesis, derandomized: the same requests on every run) reads the document
and sends malformed and boundary requests: bad JSON, wrong types, huge numbers, unicode,
bad query values, unknown IDs, odd methods, junk on the wire. The daemon must stay up,
answer no client's request with a 5xx, give every 4xx a ``{"message": ...}`` body, log no
traceback, and leave nothing behind (tests/leaks.py).

Not fuzzed with valid bodies, by design: the operations marked ``x-minidocker-contacts-registry``
(a pull, push or login would reach out to the names the fuzzer makes up) and
``x-minidocker-changes-host-links`` (a network create adds a bridge to the host); those get
only bodies that cannot be valid.
See: the OpenAPI Specification 3.0.3; the Hypothesis documentation.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path
from urllib.parse import quote

import pytest
from daemonkit import REPO, Minidockerd, UnixHTTPConnection, raw_request

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.ch14]

SPEC_PATH = REPO / "minidocker" / "api" / "openapi.yaml"
_METHODS = ("get", "head", "post", "put", "delete", "patch", "options", "trace")


def _spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


def _served() -> set[tuple[str, str]]:
    """(METHOD, /path/{param}) for every route the daemon's router serves."""
    from minidocker.api.daemon import _route_modules

    routes = set()
    for module in _route_modules():
        for method, pattern, _handler in module.ROUTES:
            routes.add((method, re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", pattern)))
    return routes


def _documented(spec: dict) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in spec["paths"].items() for method in item if method in _METHODS}


# -- the document is true ---------------------------------------------------------------------------

def test_every_served_route_is_documented_and_every_documented_route_is_served():
    served, documented = _served(), _documented(_spec())
    missing = sorted(served - documented)
    extra = sorted(documented - served)
    lines = [f"  served, not in openapi.yaml: {m} {p}" for m, p in missing]
    lines += [f"  in openapi.yaml, not served: {m} {p}" for m, p in extra]
    assert not lines, f"{SPEC_PATH.relative_to(REPO)} is out of date with the router:\n" + "\n".join(lines)


def test_the_document_is_well_formed():
    spec = _spec()
    assert spec["openapi"].startswith("3.0") and spec["info"]["title"]
    ids, problems = set(), []
    for path, item in spec["paths"].items():
        declared_in_path = set(re.findall(r"\{(\w+)\}", path))
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            if not op.get("operationId"):
                problems.append(f"{where}: no operationId")
            elif op["operationId"] in ids:
                problems.append(f"{where}: operationId {op['operationId']} used twice")
            ids.add(op.get("operationId"))
            params = [_follow(spec, p) for p in op.get("parameters", [])]
            in_path = {p["name"] for p in params if p["in"] == "path"}
            if in_path != declared_in_path:
                problems.append(f"{where}: path parameters {sorted(in_path)} != {sorted(declared_in_path)}")
            for status, answer in op.get("responses", {}).items():
                answer = _follow(spec, answer)
                if status.startswith(("4", "5")) and answer is not spec["components"]["responses"]["Error"]:
                    problems.append(f"{where}: {status} is not the Error answer")
    assert not problems, "\n".join(problems)


def test_the_document_names_the_api_version_we_serve():
    from minidocker.engine.system import API_VERSION

    spec = _spec()
    assert spec["info"]["version"] == API_VERSION and spec["servers"][0]["url"].endswith(f"/v{API_VERSION}")


def _follow(spec: dict, node):
    """``{"$ref": "#/components/..."}`` to the node it names (as many times as it takes)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node, seen = target, seen + 1
        assert seen < 20, "a $ref loop"
    return node
