"""The runnable examples and the demo run end to end (small data, so CI stays quick)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, timeout: int = 120) -> str:
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_quickstart_runs():
    out = run("examples/quickstart.py")
    assert "Parquet" in out


@pytest.mark.slow
def test_demo_runs_on_a_small_tpch(tmp_path):
    out = run("-m", "queryref.demo", "--data", str(tmp_path / "tpch"), "--scale", "0.05",
              "--max-bytes", "2MB", "--workdir", str(tmp_path), timeout=300)
    assert "ResultTooLarge" in out  # the guarded SELECT * is refused
    assert "count_order" in out  # the pushed-down aggregate answered
    assert "rows written" in out  # the big result streamed to Parquet
