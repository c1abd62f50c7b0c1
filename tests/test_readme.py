"""The README's Python blocks run as written, in order, in one namespace (as a reader would paste
them): ```python blocks only; ``>>>`` blocks are doctests whose printed output must match.
Blocks for a shell or a notebook (```bash, ```sql, ```ipython) are not Python and do not run."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def python_blocks() -> list[str]:
    return BLOCK.findall(README.read_text())


def test_readme_has_python_blocks():
    assert len(python_blocks()) >= 3


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the blocks write files (orders.parquet) where they run
    namespace: dict[str, object] = {"__name__": "__readme__"}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for i, code in enumerate(python_blocks(), 1):
        if code.lstrip().startswith(">>>"):
            test = doctest.DocTestParser().get_doctest(code, namespace, f"README block {i}",
                                                      str(README), 0)
            result = runner.run(test, clear_globs=False)
            assert result.failed == 0, f"README block {i} printed something else (see above)"
        else:
            try:
                exec(compile(code, f"README block {i}", "exec"), namespace)
            except Exception as err:  # pragma: no cover - the failure message is the point
                pytest.fail(f"README block {i} raised {type(err).__name__}: {err}\n{code}")
    assert (tmp_path / "orders.parquet").exists()
