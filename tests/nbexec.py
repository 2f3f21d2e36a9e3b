"""Execute one notebook as tests/test_notebooks.py does, and report: for a machine without pytest's fixtures.

    python tests/nbexec.py notebooks/04-cgroups.ipynb

Prints every stream output (cell by cell, so that a caller can check what the notebook saw),
then ``NBEXEC-PROBLEMS N`` and, for each problem (an error, or stderr from a cell not tagged
``allow-stderr``), the cell and what it wrote. Exit status 0 when there is none. The executed
notebook is not written back: the qemu guest of tests/test_notebooks.py sees the repository
read-only.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbclient
import nbclient.exceptions
import nbformat

CELL_TIMEOUT_S = 600  # a qemu guest under TCG runs about ten times slower than the host


def problems_in_outputs(nb) -> list[str]:
    """Errors, and stderr of a cell that is not tagged ``allow-stderr``, as readable reports."""
    problems = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        for out in cell.get("outputs", []):
            if out.output_type == "error":
                problems.append(f"cell {i}: {out.ename}: {out.evalue}\n--- source ---\n{cell.source}")
            elif out.output_type == "stream" and out.name == "stderr" and "allow-stderr" not in tags:
                problems.append(f"cell {i} wrote to stderr:\n{out.text}\n--- source ---\n{cell.source}")
    return problems


def execute(path: Path, timeout: int = CELL_TIMEOUT_S):
    """Run every cell of ``path`` in a fresh python3 kernel, cwd its directory; the executed notebook."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:  # what is printed must come from this run, not from the committed outputs
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": str(path.parent)}})
    try:
        client.execute()
    except nbclient.exceptions.DeadKernelError as err:  # report the cells that did run, and where it died
        nb.cells.append(nbformat.v4.new_code_cell("# the kernel died here"))
        nb.cells[-1].outputs = [nbformat.v4.new_output("error", ename="DeadKernelError", evalue=str(err),
                                                       traceback=[])]
    return nb


def main(argv: list[str]) -> int:
    path = Path(argv[1]).resolve()
    start = time.monotonic()
    nb = execute(path)
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if out.output_type == "stream" and out.name == "stdout":
                print(f"NBEXEC-CELL {i}\n{out.text.rstrip()}")
    problems = problems_in_outputs(nb)
    print(f"NBEXEC-PROBLEMS {len(problems)} ({time.monotonic() - start:.0f} s)")
    print("\n\n".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
