"""Every course notebook runs top to bottom without errors, and is committed executed and complete.

Each ``notebooks/NN-*.ipynb`` gives three tests, marked ``notebook`` and with its
chapter (``ch00`` for ``00-welcome.ipynb``):

- it executes in a fresh ``python3`` kernel (this venv's interpreter), cwd ``notebooks/``,
  with no error output and nothing on stderr (a cell tagged ``allow-stderr`` may write there);
- the committed file was executed in order, top to bottom, and every code cell has
  outputs or is tagged ``silent``;
- it has the parts every chapter has (STYLE.md §18): a title and the headings "Goal",
  "Time budget", "What you will see" and "Summary".

The kernel inherits this session's ``MINIDOCKER_ROOT``, so containers a notebook runs live
in the test state root, and the leak detector checks what the notebook left behind.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from conftest import missing_feature

try:
    import nbclient
    import nbformat
except ImportError as err:  # requirements.txt has them: `make venv`
    missing_feature(f"notebooks need {err.name}: pip install -r requirements.txt")

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]-*.ipynb"))
CELL_TIMEOUT_S = 300  # generous: a slow CI machine, a first busybox image build
NOTEBOOK_BUDGET_S = 120  # each should take well under a minute; this catches a runaway
REQUIRED_HEADINGS = ("Goal", "Time budget", "What you will see", "Summary")


def _params() -> list:
    params = []
    for path in NOTEBOOKS:
        chapter = getattr(pytest.mark, f"ch{path.name[:2]}")  # unregistered -> --strict-markers error
        params.append(pytest.param(path, marks=[pytest.mark.notebook, chapter], id=path.stem))
    return params


def _code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def _problems_in_outputs(nb) -> list[str]:
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"cell {i}: {out.ename}: {out.evalue}\n--- source ---\n{cell.source}")
            elif out.output_type == "stream" and out.name == "stderr" and "allow-stderr" not in _tags(cell):
                problems.append(f"cell {i} wrote to stderr:\n{out.text}\n--- source ---\n{cell.source}")
    return problems


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no NN-*.ipynb in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", _params())
def test_notebook_executes_without_errors(path: Path, state_root: Path):
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=CELL_TIMEOUT_S, kernel_name="python3", allow_errors=True,
        resources={"metadata": {"path": str(NOTEBOOK_DIR)}},
    )
    start = time.monotonic()
    client.execute()  # starts a kernel, runs every cell, shuts the kernel down
    took = time.monotonic() - start
    problems = _problems_in_outputs(nb)
    assert not problems, f"{path.name}:\n\n" + "\n\n".join(problems)
    assert took < NOTEBOOK_BUDGET_S, f"{path.name} took {took:.1f} s (budget {NOTEBOOK_BUDGET_S} s)"


@pytest.mark.parametrize("path", _params())
def test_committed_notebook_was_executed_in_order(path: Path):
    nb = nbformat.read(path, as_version=4)
    cells = _code_cells(nb)
    counts = [c.execution_count for c in cells]
    assert None not in counts, f"{path.name}: cells never executed: " + ", ".join(
        repr(c.source[:40]) for c in cells if c.execution_count is None)
    assert counts == list(range(1, len(cells) + 1)), (
        f"{path.name}: execution counts {counts}: re-run the whole notebook in a fresh kernel "
        "(make notebooks)")
    empty = [c.source[:60] for c in cells if not c.get("outputs") and "silent" not in _tags(c)]
    assert not empty, f"{path.name}: cells without output (tag them 'silent' if meant): {empty}"
    problems = _problems_in_outputs(nb)
    assert not problems, f"{path.name} was committed with errors:\n" + "\n\n".join(problems)


@pytest.mark.parametrize("path", _params())
def test_notebook_has_the_required_parts(path: Path):
    nb = nbformat.read(path, as_version=4)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    first = nb.cells[0]
    assert first.cell_type == "markdown" and re.match(r"# \S", first.source), (
        f"{path.name}: the first cell must be a markdown title ('# ...'), found {first.source[:60]!r}")
    headings = re.findall(r"^#{1,6}\s+(.+)$", markdown, re.M)
    for part in REQUIRED_HEADINGS:
        assert any(h.strip().lower().startswith(part.lower()) or re.match(rf"[\d.]+\s+{part}", h, re.I)
                   for h in headings), f"{path.name}: no heading '{part}' (found: {headings})"
