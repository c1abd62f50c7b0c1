"""Running an example notebook for a test: a fresh python3 kernel, fresh outputs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import nbclient
import nbformat


def run_notebook(notebook: Path, workdir: Path) -> dict[str, Any]:
    """Execute a copy of ``notebook`` in ``workdir``; its code cells by id.

    Raises ``CellExecutionError`` on any error in a cell not tagged ``raises-exception``.
    """
    path = workdir / notebook.name
    shutil.copy(notebook, path)
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []  # whatever was saved, these outputs are this run's
    client = nbclient.NotebookClient(nb, timeout=60, kernel_name="python3",
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute()
    return {cell.id: cell for cell in nb.cells if cell.cell_type == "code"}
