"""The grid in a real browser: JupyterLab, Debian's Chromium and chromium-driver, Selenium.

A notebook makes a grid over 1,000 rows, 10 to a page; the test runs its cell in JupyterLab
and checks, from what the browser shows: the first page appears, clicking a header re-sorts
from the warehouse, the next page arrives, a filter narrows the rows. With
``QUERYREF_SCREENSHOTS=dir`` the page is saved there as ``grid.png`` (the docs' picture).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"
sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
from explore_screenshots import CHROMIUM, DRIVER, start_lab  # noqa: E402
from explore_screenshots import browser as chromium  # noqa: E402

CELL = """\
import queryref as qr
from queryref.explore import Grid
con = qr.connect()
q = con.sql("SELECT range AS id, 1000 - range AS back, 'row ' || range AS label, "
            "range % 7 AS g FROM range(1000)")
Grid(q, page_size=10)
"""


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("jupyterlab")
    root = tmp_path_factory.mktemp("lab")
    notebook = {"cells": [{"cell_type": "code", "execution_count": None, "id": "grid",
                           "metadata": {}, "outputs": [], "source": CELL}],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                            "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    (root / "grid.ipynb").write_text(json.dumps(notebook))
    proc, url = start_lab(root, "grid.ipynb")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    pytest.importorskip("selenium.webdriver")
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        _missing("Chromium and chromium-driver are not installed (apt-get install chromium "
                 "chromium-driver)")
    driver = chromium(1400)
    try:
        yield driver
    finally:
        driver.quit()


def _column(driver: object, index: int) -> list[str]:
    """The text of column ``index`` on the page shown (read in one go: the grid redraws)."""
    script = ("return [...document.querySelectorAll('.qr-grid tbody tr')]"
              ".map(r => r.children[arguments[0]].textContent)")
    return list(driver.execute_script(script, index))  # type: ignore[attr-defined]


@pytest.mark.slow
def test_grid_pages_sorts_and_filters_in_a_real_browser(lab: str, browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    from selenium.common.exceptions import StaleElementReferenceException

    wait = WebDriverWait(driver, 90, ignored_exceptions=(StaleElementReferenceException,))
    driver.get(lab)  # type: ignore[attr-defined]
    editor = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".jp-Cell .cm-content")))
    # the kernel must be ready before the cell runs
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Notebook-ExecutionIndicator")
               or True)
    time.sleep(2)
    editor.click()
    editor.send_keys(Keys.SHIFT, Keys.ENTER)

    def first_page(d: object) -> bool:
        return _column(d, 0)[:3] == ["0", "1", "2"]

    wait.until(first_page)
    assert _column(driver, 0) == [str(i) for i in range(10)]
    info = driver.find_element(By.CSS_SELECTOR, ".qr-grid .qr-info").text  # type: ignore
    assert info == "rows 1-10 of 1,000"

    # clicking "back" sorts by it, ascending, in the warehouse: back = 1 is id 999
    driver.find_element(By.CSS_SELECTOR, '.qr-grid th[data-column="back"]').click()  # type: ignore
    wait.until(lambda d: _column(d, 1)[:1] == ["1"])
    assert _column(driver, 0)[:3] == ["999", "998", "997"]
    # again: descending
    driver.find_element(By.CSS_SELECTOR, '.qr-grid th[data-column="back"]').click()  # type: ignore
    wait.until(lambda d: _column(d, 1)[:1] == ["1000"])

    # the next page arrives (still sorted by back, descending)
    driver.find_element(By.CSS_SELECTOR, ".qr-grid .qr-next").click()  # type: ignore
    wait.until(lambda d: _column(d, 1)[:1] == ["990"])
    assert driver.find_element(By.CSS_SELECTOR, ".qr-grid .qr-info").text == \
        "rows 11-20 of 1,000"  # type: ignore[attr-defined]

    # a filter by a column's value: g = 3 leaves 143 rows
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.CSS_SELECTOR, ".qr-grid .qr-filter-column")  # type: ignore
           ).select_by_value("g")
    box = driver.find_element(By.CSS_SELECTOR, ".qr-grid .qr-filter-value")  # type: ignore
    box.clear()
    box.send_keys("3")
    driver.find_element(By.CSS_SELECTOR, ".qr-grid .qr-filter-apply").click()  # type: ignore
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, ".qr-grid .qr-info").text
               == "rows 1-10 of 143")
    assert set(_column(driver, 3)) == {"3"}

    shots = os.environ.get("QUERYREF_SCREENSHOTS")
    if shots:
        driver.find_element(By.CSS_SELECTOR, ".qr-grid").screenshot(  # type: ignore
            str(Path(shots) / "grid.png"))
