"""The ``filters`` query parameter: ``{"name":{"web":true}}`` (or the old ``{"name":["web"]}``).

Both shapes become ``{"name": ["web"]}``. Not JSON, or values that are neither, is a 400.
See: the Engine API reference, ``GET /containers/json`` "filters".
"""

from __future__ import annotations

import json

from minidocker.errors import InvalidArgument

__all__ = ["parse_filters"]


def parse_filters(text: str | None, allowed: tuple[str, ...] | None = None) -> dict[str, list[str]]:
    if not text:
        return {}
    try:
        document = json.loads(text)
    except ValueError as err:
        raise InvalidArgument(f"invalid filters: {err}") from None
    if not isinstance(document, dict):
        raise InvalidArgument("invalid filters: expected a JSON object")
    filters: dict[str, list[str]] = {}
    for key, value in document.items():
        if isinstance(value, dict):
            filters[key] = [k for k, on in value.items() if on]
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            filters[key] = list(value)
        else:
            raise InvalidArgument(f"invalid filter '{key}': expected an object or a list of strings")
        if allowed is not None and key not in allowed:
            raise InvalidArgument(f"invalid filter '{key}'")
    return filters
