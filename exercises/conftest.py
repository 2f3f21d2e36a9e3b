"""Grading machinery for every chapter's exercises.

- ``tasks``: the fixture every graded test uses. It is the module under test:
  ``exercises/chNN/tasks.py`` (your stubs) by default, ``solutions/chNN/tasks.py``
  with ``--solutions``. The chapter comes from the test file's package.
- Task markers ``task1_2`` ... (chapter 0-14, task 1-12) are registered here, so
  ``-m task1_2`` works under ``--strict-markers``. Every graded test must carry exactly
  one; its task is also written to the junit xml as the property "task".
- ``root``: tests marked so are skipped with a reason when not run as root.
- The leak detector of tests/leaks.py runs after each test (autouse), as in the main
  suite: a test that leaves a mount or a process behind fails by name.

Run: ``make grade CH=01 [TASK=1_2]``, or
``.venv/bin/python -m pytest exercises/ch01 [-m task1_2] [--solutions]``.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from leaks import find_leaks, take_snapshot

from exercises import checkpoint

CHAPTERS = range(15)
TASKS_PER_CHAPTER = range(1, 13)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("minidocker exercises")
    group.addoption(
        "--solutions",
        action="store_true",
        default=False,
        help="grade the reference solutions (solutions/chNN/tasks.py) instead of your exercises/chNN/tasks.py",
    )


def pytest_configure(config: pytest.Config) -> None:
    for chapter in CHAPTERS:
        for task in TASKS_PER_CHAPTER:
            config.addinivalue_line("markers", f"task{chapter}_{task}: graded task {chapter}.{task}")
    for chapter in CHAPTERS:
        config.addinivalue_line("markers", f"ch{chapter:02d}: chapter {chapter:02d}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    graded = "solutions/ (reference, --solutions)" if config.getoption("--solutions") else "exercises/ (your code)"
    return [f"grading: {graded}", checkpoint.describe()]


def task_of(item: pytest.Item) -> str | None:
    """'1_2' for a test marked ``task1_2``; None without a task marker."""
    names = [m.name for m in item.iter_markers() if m.name.startswith("task")]
    return names[0][len("task"):] if len(names) == 1 else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked = []
    for item in items:
        if not str(item.path).startswith(str(REPO / "exercises")):
            continue
        task = task_of(item)
        if task is None:
            unmarked.append(item.nodeid)
        else:
            item.user_properties.append(("task", task))
    if unmarked:
        raise pytest.UsageError("graded tests need exactly one task marker (@pytest.mark.task1_2):\n  "
                                + "\n  ".join(unmarked))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") is not None and os.geteuid() != 0:
        pytest.skip("needs root: namespaces and mounts need privileges (run `sudo make grade CH=..`)")


@pytest.fixture
def tasks(request: pytest.FixtureRequest) -> ModuleType:
    """The tasks module under test: yours, or the reference with --solutions."""
    package = "solutions" if request.config.getoption("--solutions") else "exercises"
    chapter = request.module.__name__.split(".")[-2]  # exercises.ch01.test_ch01 -> ch01
    return importlib.import_module(f"{package}.{chapter}.tasks")


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Fail the test if it left a mount (under pytest's temporary directory) or a process behind."""
    root = tmp_path_factory.getbasetemp()
    before = take_snapshot()
    yield
    leaks = find_leaks(before, root, "local")
    if leaks:
        pytest.fail(f"{request.node.nodeid} left these behind:\n  " + "\n  ".join(leaks), pytrace=False)
