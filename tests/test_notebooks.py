"""Every course notebook runs top to bottom without errors, and is committed executed and complete.

Each ``notebooks/NN-*.ipynb`` gives three tests, marked ``notebook`` and with its
chapter (``ch00`` for ``00-welcome.ipynb``):

- it executes in a fresh ``python3`` kernel (this venv's interpreter), cwd ``notebooks/``,
  with no error output and nothing on stderr (a cell tagged ``allow-stderr`` may write there);
- the committed file was executed in order, top to bottom, and every code cell has
  outputs or is tagged ``silent``;
- it has the parts every chapter has: a title and the headings "Goal", "Time budget",
  "What you will see" and "Summary", and it opens with the map of Docker (``draw_map("NN")``).

And for the course as a whole:

- the notebooks that touch cgroups also run in the pure cgroup v2 qemu guest of chapter 04
  (tests/vm.py), the repository read-only, with nothing on stderr;
- the course is self-contained: no notebook, README, doc or exercise cites a file that is not in the
  repository, and every relative link resolves.

The kernel inherits this session's ``MINIDOCKER_ROOT``, so containers a notebook runs live
in the test state root, and the leak detector checks what the notebook left behind.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from pathlib import Path

import pytest

from conftest import missing_feature

try:
    import nbclient
    import nbformat
except ImportError as err:  # requirements.txt has them: `make venv`
    missing_feature(f"notebooks need {err.name}: pip install -r requirements.txt")

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
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


@pytest.mark.parametrize("path", _params())
def test_notebook_opens_with_the_map_of_docker(path: Path):
    nb = nbformat.read(path, as_version=4)
    first_code = _code_cells(nb)[0]
    assert f'draw_map("{path.name[:2]}")' in first_code.source, (
        f"{path.name}: the first code cell should draw the map, from minidocker.coursemap import draw_map; "
        f'draw_map("{path.name[:2]}"); found {first_code.source[:80]!r}')
    assert any(o.get("data", {}).get("image/png") for o in first_code.get("outputs", [])), (
        f"{path.name}: the map cell has no committed figure")


# Files of the project's authors that are not in the repository, and tags that mean nothing to a
# learner: the course must cite public sources instead (the one pattern; test_layout checks the package,
# bench/ and tests/ with it).
from test_layout import OUTSIDE_REFERENCES  # noqa: E402


def _course_texts() -> list[Path]:
    paths = [REPO / "README.md", *NOTEBOOK_DIR.glob("*.ipynb"), *NOTEBOOK_DIR.glob("*.md")]
    for folder in ("docs", "exercises", "solutions"):
        paths += [p for p in (REPO / folder).rglob("*") if p.suffix in (".md", ".py", ".ipynb", ".html")
                  and "__pycache__" not in p.parts and "_site" not in p.parts]
    return sorted(paths)


def _text_of(path: Path) -> str:
    if path.suffix == ".ipynb":  # sources and outputs
        nb = nbformat.read(path, as_version=4)
        return "\n".join([c.source for c in nb.cells] + [o.get("text", "") for c in nb.cells
                                                         for o in c.get("outputs", [])])
    return path.read_text()


def test_the_course_cites_no_file_outside_the_repository():
    found = [f"{path.relative_to(REPO)}: {m.group(0)!r} in ...{text[max(0, m.start() - 40):m.end() + 20]!r}"
             for path in _course_texts() for text in [_text_of(path)]
             for m in OUTSIDE_REFERENCES.finditer(text)]
    assert found == [], "cite the public source (man page, kernel doc, spec) instead:\n" + "\n".join(found)


def test_every_relative_link_of_the_course_resolves():
    broken = []
    for path in _course_texts():
        if path.suffix not in (".md", ".ipynb"):
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", _text_of(path)):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            if not (path.parent / target.split("#")[0]).exists():
                broken.append(f"{path.relative_to(REPO)} -> {target}")
    assert broken == [], "links to files that do not exist:\n" + "\n".join(broken)


# The notebooks whose experiments depend on the cgroup layout: run on the host above, and here in the
# pure cgroup v2 qemu guest of chapter 04 (tests/vm.py: the host's / read-only over 9p, a tmpfs on /run).
CGROUP_NOTEBOOKS = ("04-cgroups.ipynb",)


@pytest.mark.vm
@pytest.mark.slow
@pytest.mark.root
@pytest.mark.notebook
@pytest.mark.ch04
@pytest.mark.parametrize("name", CGROUP_NOTEBOOKS)
def test_notebook_runs_on_pure_cgroup_v2_in_a_qemu_guest(name: str, tmp_path: Path):
    from vm import Guest, GuestUnavailable

    try:
        guest = Guest.prepare()
    except GuestUnavailable as err:
        missing_feature(f"the cgroup v2 guest: {err}")
    cache = Path.home() / ".cache" / "matplotlib"   # the font cache, so that matplotlib does not warn
    script = tmp_path / "guest.sh"
    script.write_text(
        "ip link set lo up\n"                        # the kernel's ZeroMQ sockets are on 127.0.0.1
        "mkdir -p /run/mpl /run/jupyter /run/ipython /run/state\n"
        f"cp {shlex.quote(str(cache))}/fontlist-*.json /run/mpl/ 2>/dev/null\n"
        f"cd {shlex.quote(str(REPO))} && MPLCONFIGDIR=/run/mpl JUPYTER_RUNTIME_DIR=/run/jupyter "
        "JUPYTER_DATA_DIR=/run/jupyter IPYTHONDIR=/run/ipython "
        "MINIDOCKER_ROOT=/run/state MINIDOCKER_BRIDGE=none "
        f"PYTHONPATH={shlex.quote(str(REPO))} exec {shlex.quote(sys.executable)} tests/nbexec.py "
        f"notebooks/{name}\n")
    result = guest.run(script, timeout=900, memory_mb=1536)
    report = f"guest output ({result.seconds:.0f} s):\n{result.output or result.console}"
    assert result.exit_code == 0 and "NBEXEC-PROBLEMS 0" in result.output, report
    assert "mode: unified" in result.output and "CgroupV2(" in result.output, report
