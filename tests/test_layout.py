"""The package's shape: imports flow down the layers (STYLE.md §1), every module says what it is."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "minidocker"

# Lower numbers are lower layers; a module may import its own layer and the ones below.
LAYERS = {
    "errors": 0, "atomic": 0, "paths": 0, "record": 0,
    "linux": 1,
    "rootfs": 2, "namespaces": 2, "cgroups": 2, "storage": 2, "network": 2, "security": 2, "forked": 2,
    "runtime": 3, "image": 3, "registry": 3, "build": 3,
    "engine": 4, "doctor": 4,
    "api": 5,
    "cli": 6, "__main__": 6, "coursemap": 6,
}


def _layer_of(module: str) -> tuple[str, int] | None:
    parts = module.split(".")
    if parts[0] != "minidocker" or len(parts) < 2 or parts[1] == "__init__":
        return None
    return parts[1], LAYERS.get(parts[1], -1)


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_imports_flow_down_the_layers(path: Path):
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    own = _layer_of(".".join(relative.parts))
    if own is None:
        return  # minidocker/__init__.py
    name, level = own
    assert level >= 0, f"{path}: top-level module {name!r} has no layer in tests/test_layout.py's LAYERS"
    for imported in _imports(path):
        target = _layer_of(imported)
        if target is None:
            continue
        assert target[1] <= level, (
            f"{path} ({name}, layer {level}) imports {imported} ({target[0]}, layer {target[1]}): "
            "imports must flow down: cli -> api -> engine -> runtime -> mechanisms -> linux"
        )


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_every_module_has_a_docstring(path: Path):
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{path} needs a docstring saying what it is"


def test_only_linux_calls_libc():
    offenders = [str(p) for p in _modules()
                 if "linux" not in p.relative_to(PACKAGE).parts and "ctypes" in p.read_text()
                 and any(i == "ctypes" or i.startswith("ctypes.") for i in _imports(p))]
    assert offenders == [], f"only minidocker/linux/ may import ctypes: {offenders}"
