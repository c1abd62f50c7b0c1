"""The docs' pictures of a profile and a chart as JupyterLab shows them, from a real browser.

Writes a notebook over TPC-H ``lineitem`` (``--data``, read in place by embedded DuckDB) whose
cells run ``%qref_profile`` and ``q.plot.hist(...)``, starts JupyterLab on it, runs the cells
in Chromium (Debian's ``chromium`` and ``chromium-driver``, driven by Selenium, as
``tests/explore/test_grid_browser.py`` does), waits for the outputs (the profile's table, the
chart drawn by JupyterLab's own Vega-Lite renderer: no network is needed) and saves each cell,
its code and its output, as a PNG:

    python benchmarks/explore_screenshots.py --data data/tpch-sf1 --out docs/img
    # -> docs/img/explore-profile.png, docs/img/explore-chart.png
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

SETUP = """\
%load_ext queryref
import queryref as qr

con = qr.connect()
con.execute("SET enable_progress_bar = false")  # (DuckDB's own widget: a bar in the picture)
lineitem = con.read_parquet({path!r})  # 6,001,215 rows, read in place
%qref_connect con"""

ITEMS = """\
%%qref items --preview 3
SELECT l_quantity, l_extendedprice, l_discount, l_shipdate, l_returnflag, l_shipmode
FROM lineitem"""

PROFILE = "%qref_profile items"

CHART = """\
chart = items.plot.hist("l_extendedprice", bins=40)
print(f"{chart.usermeta['queryref']['rows']} rows crossed")
chart"""

#: (cell id, source, the picture of it, what shows the output is complete)
CELLS = [("setup", SETUP, None, None),
         ("items", ITEMS, None, "table"),
         ("profile", PROFILE, "explore-profile.png", "table"),
         ("chart", CHART, "explore-chart.png", ".jp-RenderedVegaLite svg, "
                                               ".jp-RenderedVegaLite canvas")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_notebook(root: Path, lineitem: Path) -> None:
    cells: list[dict[str, Any]] = [
        {"cell_type": "code", "execution_count": None, "id": cid, "metadata": {}, "outputs": [],
         "source": source.format(path=str(lineitem)) if cid == "setup" else source}
        for cid, source, _, _ in CELLS]
    notebook = {"cells": cells,
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                            "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    (root / "explore.ipynb").write_text(json.dumps(notebook))
    # no news or update prompts over the pictures
    settings = root / ".settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))


def start_lab(root: Path, notebook: str = "explore.ipynb"
              ) -> tuple[subprocess.Popen[bytes], str]:
    """JupyterLab on a free port over ``root`` (its settings kept there), and the URL that
    opens ``notebook``; SystemExit when it does not answer in 60 s. Also used by
    ``tests/explore/test_grid_browser.py``."""
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / ".config"),
           "JUPYTER_RUNTIME_DIR": str(root / ".runtime")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         f"--LabApp.user_settings_dir={root / '.settings'}", "--ServerApp.open_browser=False",
         "--LabApp.news_url=", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}/lab/tree/{notebook}?token={token}&reset"
        except OSError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("JupyterLab did not start in 60 s")


def browser(width: int) -> Any:
    """Headless Chromium (Debian's, with its driver) driven by Selenium."""
    from selenium import webdriver

    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        raise SystemExit("Chromium and chromium-driver are not installed "
                         "(apt-get install chromium chromium-driver)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                f"--window-size={width},1400", "--disable-gpu", "--hide-scrollbars"):
        opts.add_argument(arg)
    return webdriver.Chrome(options=opts, service=webdriver.ChromeService(DRIVER))


def shoot(url: str, out: Path, width: int, timeout: float) -> list[Path]:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser(width)
    saved = []
    try:
        wait = WebDriverWait(driver, timeout,
                             ignored_exceptions=(StaleElementReferenceException,))
        driver.get(url)
        first = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR,
                                                       ".jp-Cell .cm-content")))
        wait.until(lambda d: "Idle" in d.find_element(By.ID, "jp-main-statusbar").text)
        first.click()
        cells = driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")
        for (cid, _, picture, done), cell in zip(CELLS, cells, strict=True):
            cell.find_element(By.CSS_SELECTOR, ".cm-content").click()  # edit mode, this cell
            driver.switch_to.active_element.send_keys(Keys.SHIFT, Keys.ENTER)
            prompt = cell.find_element(By.CSS_SELECTOR, ".jp-InputPrompt")

            def ran(_: Any, prompt: Any = prompt) -> bool:
                return prompt.text.strip() not in ("[ ]:", "[*]:", "", "[ ]")

            def shown(_: Any, cell: Any = cell, done: str | None = done) -> bool:
                return bool(cell.find_elements(By.CSS_SELECTOR, done))

            wait.until(ran)
            errors = cell.find_elements(By.CSS_SELECTOR, "[data-mime-type="
                                        "'application/vnd.jupyter.stderr']")
            if errors:
                raise SystemExit(f"cell {cid} failed:\n{errors[0].text}")
            if done:
                wait.until(shown)
            if picture:
                time.sleep(1.0)  # the chart's and the table's layout settle
                driver.execute_script("arguments[0].scrollIntoView(true)", cell)
                path = out / picture
                cell.screenshot(str(path))
                saved.append(path)
    finally:
        driver.quit()
    return saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/tpch-sf1"),
                        help="TPC-H Parquet directory holding lineitem.parquet")
    parser.add_argument("--out", type=Path, default=Path("docs/img"),
                        help="where the PNGs go (default docs/img)")
    parser.add_argument("--width", type=int, default=1400, help="browser width in pixels")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds to wait for each cell's output (default 180)")
    args = parser.parse_args()
    lineitem = (args.data / "lineitem.parquet").resolve()
    if not lineitem.is_file():
        raise SystemExit(f"no {lineitem}: run `make data` first")
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="qr-shots-") as tmp:
        root = Path(tmp)
        write_notebook(root, lineitem)
        proc, url = start_lab(root)
        try:
            saved = shoot(url, args.out.resolve(), args.width, args.timeout)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    for path in saved:
        print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
