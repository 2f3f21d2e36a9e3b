"""The environment doctor: can this machine run minidocker's containers? Chapter 00.

Placeholder checks; see run_checks().
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Check", "format_report", "run_checks"]


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def run_checks() -> list[Check]:
    return [Check("root", os.geteuid() == 0, f"euid {os.geteuid()}", "run as root (sudo)")]


def format_report(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
        lines.append(f"[{mark}] {c.name}: {c.detail}" + (f"\n       fix: {c.fix}" if not c.ok and c.fix else ""))
    return "\n".join(lines)
