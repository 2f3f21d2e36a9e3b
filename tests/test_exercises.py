"""The exercises grade what they claim: the reference passes, the stubs fail every task, nothing leaks.

For each chapter with an ``exercises/chNN`` folder, the graded tests run in a
subprocess, as ``make grade`` runs them:

- with ``--solutions`` every graded test passes (none skipped), over at least 3 tasks;
- against the stubs every test of every task fails, with the NotImplementedError of
  that very task (read from the junit xml, where exercises/conftest.py writes each
  test's task as a property);
- stubs and solutions offer the same names, signatures and docstrings;
- no exercise imports ``solutions``; only ``exercises/checkpoint.py`` loads it, on opt-in.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHAPTERS = sorted(p.name[2:] for p in (REPO / "exercises").glob("ch[0-9][0-9]") if (p / "tasks.py").exists())
# The runtime of your own, one stage per chapter (exercises/mydocker): graded like a chapter.
THREADS = [p.name for p in (REPO / "exercises").glob("mydocker") if (p / "tasks.py").exists()]
STUB_TASK = re.compile(r'raise NotImplementedError\("task (\d+)\.(\d+):')

pytestmark = [pytest.mark.exercise]


def _chapters() -> list:
    return ([pytest.param(c, marks=getattr(pytest.mark, f"ch{c}"), id=f"ch{c}") for c in CHAPTERS]
            + [pytest.param(t, id=t) for t in THREADS])


def _folder(chapter: str) -> str:
    """exercises/ch01 for "01", exercises/mydocker for "mydocker"."""
    return f"ch{chapter}" if chapter.isdigit() else chapter


@dataclass
class Case:
    name: str
    task: str | None
    outcome: str  # passed, failed, error, skipped
    text: str


@dataclass
class Grading:
    command: list[str]
    code: int
    output: str
    cases: list[Case]

    def by_task(self) -> dict[str, list[Case]]:
        tasks: dict[str, list[Case]] = {}
        for case in self.cases:
            tasks.setdefault(case.task or "<none>", []).append(case)
        return tasks

    def __str__(self) -> str:
        return f"$ {' '.join(self.command)}\nexit code {self.code}\n{self.output[-4000:]}"


def grade(chapter: str, tmp: Path, *extra: str) -> Grading:
    """Run the graded tests of one chapter in a subprocess, as ``make grade`` does, and read the junit xml."""
    junit = tmp / "junit.xml"
    command = [sys.executable, "-m", "pytest", f"exercises/{_folder(chapter)}", "-p", "no:cacheprovider", "-q",
               f"--junitxml={junit}", "-o", "junit_family=xunit1", f"--basetemp={tmp / 'basetemp'}", *extra]
    env = {k: v for k, v in os.environ.items() if k != "MINIDOCKER_CHECKPOINT"}
    proc = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120, env=env, check=False)
    cases = []
    if junit.exists():
        for testcase in ET.parse(junit).getroot().iter("testcase"):
            task = next((p.get("value") for p in testcase.iter("property") if p.get("name") == "task"), None)
            outcome, text = "passed", ""
            for kind in ("failure", "error", "skipped"):
                element = testcase.find(kind)
                if element is not None:
                    outcome = "failed" if kind == "failure" else kind
                    text = f"{element.get('message', '')}\n{element.text or ''}"
                    break
            cases.append(Case(testcase.get("name", "?"), task, outcome, text))
    return Grading(command, proc.returncode, proc.stdout + proc.stderr, cases)


@pytest.fixture(scope="module")
def gradings(tmp_path_factory: pytest.TempPathFactory):
    """Each (chapter, mode) graded once per module."""
    done: dict[tuple[str, str], Grading] = {}

    def get(chapter: str, mode: str) -> Grading:
        if (chapter, mode) not in done:
            extra = ["--solutions"] if mode == "solutions" else []
            done[chapter, mode] = grade(chapter, tmp_path_factory.mktemp(f"grade-ch{chapter}-{mode}"), *extra)
        return done[chapter, mode]

    return get


def stub_tasks(chapter: str) -> set[str]:
    """The tasks the stubs declare: '1_2' for raise NotImplementedError("task 1.2: ...")."""
    text = (REPO / "exercises" / _folder(chapter) / "tasks.py").read_text()
    return {f"{a}_{b}" for a, b in STUB_TASK.findall(text)}


@pytest.mark.parametrize("chapter", _chapters())
def test_reference_solutions_pass_every_graded_test(gradings, chapter):
    result = gradings(chapter, "solutions")
    assert result.code == 0 and result.cases, f"grading the reference of chapter {chapter} failed:\n{result}"
    not_passed = [f"{c.name} ({c.outcome})" for c in result.cases if c.outcome != "passed"]
    assert not not_passed, f"chapter {chapter}: expected every graded test to pass, found {not_passed}\n{result}"
    tasks = result.by_task()
    assert "<none>" not in tasks, f"chapter {chapter}: tests without a task marker: {tasks.get('<none>')}"
    assert len(tasks) >= 3, f"chapter {chapter}: expected at least 3 graded tasks, found {sorted(tasks)}"
    assert set(tasks) == stub_tasks(chapter), (
        f"chapter {chapter}: the tests grade tasks {sorted(tasks)}, the stubs declare {sorted(stub_tasks(chapter))}")


@pytest.mark.parametrize("chapter", _chapters())
def test_stubs_fail_every_task_with_its_not_implemented_error(gradings, chapter):
    result = gradings(chapter, "stubs")
    assert result.cases, f"grading the stubs of chapter {chapter} ran nothing:\n{result}"
    assert result.code == 1, f"chapter {chapter}: expected pytest to report failed tests (exit 1):\n{result}"
    problems = []
    for task, cases in sorted(result.by_task().items()):
        wanted = f"task {task.replace('_', '.')}:"
        for case in cases:
            if case.outcome != "failed":
                problems.append(f"task {task}: {case.name}: expected a failure, found {case.outcome}")
            elif "NotImplementedError" not in case.text or wanted not in case.text:
                problems.append(f"task {task}: {case.name}: expected NotImplementedError('{wanted} ...'), "
                                f"found {case.text.strip()[:300]!r}")
    assert not problems, f"chapter {chapter}:\n" + "\n".join(problems)
    assert set(result.by_task()) == stub_tasks(chapter)


def test_grading_one_task_runs_only_that_task(tmp_path):
    chapter = CHAPTERS[0]
    task = min(stub_tasks(chapter))
    result = grade(chapter, tmp_path, "--solutions", "-m", f"task{task}")
    assert result.code == 0, str(result)
    found = {c.task for c in result.cases}
    assert found == {task}, f"-m task{task}: expected only task {task} to run, found {sorted(found)}\n{result}"


@pytest.mark.parametrize("chapter", _chapters())
def test_stubs_and_solutions_share_names_signatures_and_docstrings(chapter):
    stub = importlib.import_module(f"exercises.{_folder(chapter)}.tasks")
    ref = importlib.import_module(f"solutions.{_folder(chapter)}.tasks")
    assert sorted(stub.__all__) == sorted(ref.__all__), f"ch{chapter}: __all__ differs"
    for name in ref.__all__:
        a, b = getattr(stub, name), getattr(ref, name)
        where = f"ch{chapter}.{name}"
        if inspect.isfunction(b):
            assert str(inspect.signature(a)) == str(inspect.signature(b)), f"{where}: signatures differ"
            assert inspect.getdoc(a) == inspect.getdoc(b), f"{where}: docstrings differ"
            assert "See" in (inspect.getdoc(a) or ""), f"{where}: the docstring should end with 'See: ...'"
        elif is_dataclass(b):
            assert [(f.name, f.type) for f in fields(a)] == [(f.name, f.type) for f in fields(b)], where
        else:
            assert a == b, f"{where}: the stub's value differs from the reference's"


def test_no_exercise_imports_the_solutions():
    offenders = []
    for path in (REPO / "exercises").rglob("*.py"):
        if path.name == "checkpoint.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            offenders += [f"{path.relative_to(REPO)}: import {n}" for n in names if n.split(".")[0] == "solutions"]
    assert not offenders, "solutions must be loaded only through exercises/checkpoint.py:\n" + "\n".join(offenders)


def test_checkpoint_loads_yours_unless_you_opt_in(monkeypatch, tmp_path):
    from exercises import checkpoint

    monkeypatch.delenv(checkpoint.ENV_VAR, raising=False)
    monkeypatch.setattr(checkpoint, "CHECKPOINT_FILE", tmp_path / ".checkpoint")
    assert checkpoint.previous("ch01").__name__ == "exercises.ch01.tasks"

    monkeypatch.setenv(checkpoint.ENV_VAR, "ch01")
    assert checkpoint.previous("ch01").__name__ == "solutions.ch01.tasks"
    assert checkpoint.previous("ch02").__name__ == "exercises.ch02.tasks", "ch01 opts in to ch01 only"

    monkeypatch.setenv(checkpoint.ENV_VAR, "all")
    assert checkpoint.previous("ch02").__name__ == "solutions.ch02.tasks"

    monkeypatch.delenv(checkpoint.ENV_VAR)
    (tmp_path / ".checkpoint").write_text("ch02\n")
    assert checkpoint.previous("ch02").__name__ == "solutions.ch02.tasks"
    assert checkpoint.previous("ch03").__name__ == "exercises.ch03.tasks"
    assert "ch02" in checkpoint.describe()

    monkeypatch.setenv(checkpoint.ENV_VAR, "chapter two")
    with pytest.raises(ValueError, match="invalid checkpoint"):
        checkpoint.previous("ch01")


def test_previous_stage_of_your_runtime_is_yours_unless_you_opt_in(monkeypatch, tmp_path):
    from exercises import checkpoint

    monkeypatch.delenv(checkpoint.ENV_VAR, raising=False)
    monkeypatch.setattr(checkpoint, "CHECKPOINT_FILE", tmp_path / ".checkpoint")
    assert checkpoint.previous_stage("ch03").__name__ == "exercises.mydocker.tasks"
    monkeypatch.setenv(checkpoint.ENV_VAR, "ch03")
    assert checkpoint.previous_stage("ch03").__name__ == "solutions.mydocker.tasks"
    assert checkpoint.previous_stage("ch04").__name__ == "exercises.mydocker.tasks", "ch03 opts in to stage 03 only"
