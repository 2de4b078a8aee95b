"""Regenerate the README's screenshots of the MLflow UI and the report from the project's store
(after `make run`): `.venv/bin/python docs/screenshots.py [--out docs/img]`.

Starts the UI as `foedus ui` does, drives Debian's Chromium headless with Playwright (as the
browser test does) and writes mlflow_experiment.png, mlflow_compare.png and report.png.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from foedus.report import report
from foedus.ui import start_server, stop_server, ui_links
from playwright.sync_api import sync_playwright

QUIET_ASSISTANT = ("localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
                   "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');")
WAIT_MS = 120_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "img")
    parser.add_argument("--experiment", default="foedus-onset-atop_any_h1")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    written = report(log_to_run=False)
    process, base = start_server()
    try:
        links = ui_links(base)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                                 args=["--no-sandbox", "--disable-gpu"])
            try:
                page = browser.new_page(viewport={"width": 1500, "height": 820})
                page.add_init_script(QUIET_ASSISTANT)
                page.goto(links.experiments[args.experiment])
                page.get_by_text("lightgbm backtest").first.wait_for(timeout=WAIT_MS)
                page.get_by_text("continuing_dyads_average_precision").first.wait_for(timeout=WAIT_MS)
                page.wait_for_timeout(1500)
                page.screenshot(path=args.out / "mlflow_experiment.png")
                page.goto(links.compare)
                page.get_by_text("Comparing").first.wait_for(timeout=WAIT_MS)
                page.get_by_text("Run details").first.wait_for(timeout=WAIT_MS)
                page.wait_for_timeout(3000)  # the parallel-coordinates plot draws after the text
                page.screenshot(path=args.out / "mlflow_compare.png")
                page.set_viewport_size({"width": 1300, "height": 1500})
                page.goto(written.html.as_uri())
                page.wait_for_timeout(1000)
                page.screenshot(path=args.out / "report.png")
            finally:
                browser.close()
    finally:
        stop_server(process)
    print(f"wrote {', '.join(p.name for p in sorted(args.out.glob('*.png')))} to {args.out}")


if __name__ == "__main__":
    main()
