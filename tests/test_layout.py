"""The package's shape: imports flow down the layers, every module says what it is, and cites public sources."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "minidocker"

# Lower numbers are lower layers; a module may import its own layer and the ones below.
LAYERS = {
    "errors": 0, "atomic": 0, "paths": 0, "record": 0, "mountinfo": 0, "sizes": 0,
    "linux": 1,
    "rootfs": 2, "namespaces": 2, "cgroups": 2, "storage": 2, "network": 2, "security": 2, "forked": 2,
    "runtime": 3, "image": 3, "registry": 3, "build": 3,
    "engine": 4, "doctor": 4,
    "api": 5,
    "cli": 6, "__main__": 6, "coursemap": 6, "coursenet": 6,
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


# --- the one value-object base (minidocker/record.py) -----------------------------------------

def test_no_module_uses_dataclasses_or_namedtuple_for_records():
    """Records are minidocker.record.Record; frozen constants (StateRoots, Namespace, ExitStatus) are its Frozen."""
    offenders = [str(p) for p in _modules() if "dataclasses" in _imports(p)
                 or ("collections" in _imports(p) and "namedtuple(" in p.read_text())]
    assert offenders == [], f"use minidocker.record.Record or Frozen (see its docstring) in: {offenders}"


def test_frozen_is_a_tuple_read_by_name():
    from minidocker.record import Frozen

    class Point(Frozen):
        FIELDS = ("x", "y")
        DEFAULTS = {"y": 0}

    p = Point(1)
    assert p == (1, 0) and p.x == 1 and p.y == 0 and Point(x=1, y=2) == Point(1, 2)
    assert repr(Point(1, 2)) == "Point(x=1, y=2)" and hash(p) == hash((1, 0))
    with pytest.raises(AttributeError):
        p.x = 3
    with pytest.raises(TypeError, match="missing the field 'x'"):
        Point()
    with pytest.raises(TypeError, match="'z'"):
        Point(1, z=3)


def test_record_builds_init_json_and_equality_from_fields():
    from minidocker.record import Record

    class Layer(Record):
        FIELDS = ("digest", "diff_id", "size", "tags")
        DEFAULTS = {"size": 0, "tags": []}
        KEYS = {"diff_id": "diffID"}

    a, b = Layer("sha256:a", "sha256:b"), Layer(digest="sha256:a", diff_id="sha256:b")
    assert a == b and a.size == 0 and a.tags == [] and a.tags is not b.tags
    assert a.to_json() == {"digest": "sha256:a", "diffID": "sha256:b", "size": 0, "tags": []}
    assert Layer.from_json({**a.to_json(), "newer": 1}) == a
    assert repr(a) == "Layer(digest='sha256:a', diff_id='sha256:b', size=0, tags=[])"
    for bad in (lambda: Layer("x"), lambda: Layer("x", "y", nope=1), lambda: Layer("x", "y", 1, [], 2),
                lambda: Layer("x", "y", digest="z")):
        with pytest.raises(TypeError):
            bad()


def test_record_subclass_with_its_own_init_still_works():
    """Records written before the base built __init__ keep theirs; from_json calls it by keyword."""
    from minidocker.record import Record

    class Old(Record):
        FIELDS = ("id", "names")

        def __init__(self, id: str, names: list[str] | None = None) -> None:
            self.id = id
            self.names = names or []

    assert Old.from_json({"id": "x"}) == Old("x") and Old("x", ["a"]).to_json() == {"id": "x", "names": ["a"]}


@pytest.mark.parametrize("record", [
    "minidocker.engine.container:Container('0' * 64, 'calm_curie', 'busybox', ['sh'], 1.5, 'running', 42)",
    "minidocker.engine.networks:Network('1' * 64, 'net', '10.214.0.0/24', '10.214.0.1', 'md-x', 2.0)",
    "minidocker.image.store:LayerInfo('sha256:a', 'sha256:b', 10, 20, 'application/vnd.oci.image.layer.v1.tar')",
    "minidocker.network.ports:PortMapping('127.0.0.1', 8080, 80, 'udp')",
    "minidocker.cgroups.base:Resources(memory_limit=1 << 20, pids_limit=5)",
])
def test_persisted_records_round_trip_through_json(record: str):
    import importlib
    import json

    module, expression = record.split(":", 1)
    value = eval(expression, vars(importlib.import_module(module)))
    assert type(value).from_json(json.loads(json.dumps(value.to_json()))) == value


# --- the test suite's own rules ----------------------------------------------------------------

TESTS = PACKAGE.parent / "tests"


def test_tests_give_up_only_through_missing_feature():
    """Under CI a skip must be a failure (tests/conftest.py: missing_feature); direct skips bypass that."""
    allowed = {"conftest.py": 2}  # missing_feature and not_applicable themselves
    offenders = []
    for path in sorted(p for p in TESTS.glob("*.py") if p.name != "test_layout.py"):
        text = path.read_text()
        count = text.count("pytest.skip(") + text.count("importorskip(")
        if count > allowed.get(path.name, 0):
            offenders.append(f"{path.name}: {count}")
    assert offenders == [], (
        f"use conftest.missing_feature(reason, required=...) instead of pytest.skip: {offenders}")


def test_sizes_are_formatted_in_one_place_as_docker_does():
    """go-units: HumanSize (4 digits: pulls), HumanSizeWithPrecision 3 (images), BytesSize (stats)."""
    from minidocker.cgroups import format_size
    from minidocker.cli.format import human_size as table_size
    from minidocker.registry.progress import human_size as progress_size
    from minidocker.sizes import binary_size, human_size

    assert progress_size is human_size
    assert (human_size(527), human_size(12_345_678), table_size(12_345_678)) == ("527B", "12.35MB", "12.3MB")
    assert (binary_size(64 << 20), binary_size(1536 << 20), format_size(None)) == ("64MiB", "1.5GiB", "unlimited")
    offenders = [str(p) for p in _modules() if p.name != "sizes.py"
                 and any(f"def {name}(" in p.read_text() and f"return _human_size" not in p.read_text()
                         for name in ("human_size", "binary_size"))]
    assert offenders == [], f"format sizes with minidocker.sizes: {offenders}"


def test_the_lazy_typing_idiom_is_bare_and_explained_once():
    """``TYPE_CHECKING = False`` / ``if TYPE_CHECKING:`` (never typing's own); why is said once, in
    minidocker/__init__.py, not in a comment on every copy."""
    odd = [f"{p.relative_to(REPO)}:{n}: {line}" for p in _modules()
           for n, line in enumerate(p.read_text().splitlines(), 1)
           if line.startswith("TYPE_CHECKING =") and line != "TYPE_CHECKING = False"
           or line.lstrip().startswith("from typing import") and "TYPE_CHECKING" in line]
    assert odd == [], odd


def _line_length() -> int:
    """The one limit: ``[tool.ruff] line-length`` in pyproject.toml."""
    import tomllib

    with open(REPO / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["tool"]["ruff"]["line-length"]


def test_no_line_of_the_package_is_longer_than_pyproject_says():
    limit = _line_length()
    offenders = [f"{path.relative_to(REPO)}:{number}: {len(line)} columns"
                 for path in _modules()
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if len(line) > limit]
    assert not offenders, f"lines over {limit} columns (pyproject.toml's [tool.ruff] line-length):\n" + \
        "\n".join(offenders)


def test_the_default_path_is_written_once():
    offenders = [str(p) for p in _modules() if "/usr/local/sbin:/usr/local/bin:/usr/sbin" in p.read_text()]
    assert offenders == [str(PACKAGE / "runtime" / "spec.py")], offenders


@pytest.mark.parametrize("text, full, like, prefix", [
    ("sha256:" + "a" * 64, True, True, "a" * 64),
    ("a" * 64, False, True, "a" * 64),
    ("3f2a9c", False, False, "3f2a9c"),      # a valid repository name too: tried as a name first
    ("busybox", False, False, None),
    ("sha256:AB", False, True, None),
])
def test_one_function_tells_an_image_id_from_a_name(text, full, like, prefix):
    from minidocker.image.reference import id_prefix, is_full_id, looks_like_id

    assert (is_full_id(text), looks_like_id(text), id_prefix(text)) == (full, like, prefix)


# What `minidocker run` must never import: each costs ms of start-up (minidocker/__init__.py says why).
NEVER_ON_THE_RUN_PATH = ("typing", "dataclasses", "inspect", "argparse", "subprocess", "secrets")


@pytest.mark.root
@pytest.mark.parametrize("args", [["run", "--rm", "--network", "none", "busybox", "true"],
                                  ["run", "--rm", "--network", "none", "--memory", "64m", "--pids-limit", "50",
                                   "busybox", "true"]], ids=["run", "run+limits"])
def test_the_run_path_never_imports_the_slow_modules(state_root, args):
    """After a first run (which may build the default busybox image, with tarfile and subprocess)."""
    import os
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "minidocker", *args], check=True, capture_output=True,
                   env={**os.environ, "MINIDOCKER_ROOT": str(state_root)})  # the first use makes busybox
    code = ("import sys\nfrom minidocker.cli.main import main\ncode = main(%r)\n"
            "print(code, sorted(m for m in %r if m in sys.modules))" % (args, NEVER_ON_THE_RUN_PATH))
    out = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {str(PACKAGE.parent)!r})\n"
                          + code], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "MINIDOCKER_ROOT": str(state_root)})
    assert out.stdout.strip() == "0 []", out


# --- course code, and what the project cites ------------------------------------------------------

COURSE_ONLY = ("minidocker.coursemap", "minidocker.coursenet")   # notebooks, exercises and tests use them


def test_no_module_of_minidocker_imports_the_course_code():
    offenders = [f"{p.relative_to(REPO)} imports {i}" for p in _modules() for i in _imports(p)
                 if any(i == c or i.startswith(c + ".") for c in COURSE_ONLY)]
    assert offenders == [], offenders


# Files of the project's authors that are not in the repository, and tags that mean nothing to a
# reader: the project cites public sources (man page, kernel doc, spec, Docker docs) or states the fact.
# tests/test_notebooks.py checks the course (README, notebooks, docs, exercises, solutions) with it.
OUTSIDE_REFERENCES = re.compile(
    r"pitfalls\.md|platform[ -]notes|STYLE\.md|DEVELOPERS\.md|ARCHITECTURE\.md"
    r"|(?<!\.)\.\./shared|/work/shared"
    r"|containers-from-scratch #|Gocker|bocker #|the issue'?s? ", re.IGNORECASE)


def _project_files() -> list[Path]:
    found = [REPO / "Makefile", REPO / "pyproject.toml", REPO / "requirements.txt"]
    for folder, suffixes in (("minidocker", (".py", ".md", ".c", ".json")), ("bench", (".py", ".md")),
                             ("tests", (".py", ".md", ".go")), (".ci", ("", ".sh", ".py"))):
        found += [p for p in (REPO / folder).rglob("*") if p.is_file() and p.suffix in suffixes
                  and "__pycache__" not in p.parts]
    return sorted(p for p in found if p.exists() and p != Path(__file__).resolve())


def test_the_package_bench_and_tests_cite_no_internal_document():
    found = [f"{path.relative_to(REPO)}: {m.group(0)!r} in ...{text[max(0, m.start() - 40):m.end() + 20]!r}"
             for path in _project_files() for text in [path.read_text(errors="replace")]
             for m in OUTSIDE_REFERENCES.finditer(text)]
    assert found == [], "cite the public source (man page, kernel doc, spec, Docker docs) or the fact:\n" + \
        "\n".join(found)
