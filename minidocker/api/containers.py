"""Container endpoints (filled in with the runtime's detached containers). Handlers named after operation ids."""

from __future__ import annotations

__all__ = ["ROUTES"]

ROUTES: list = []
