"""The MLflow UI in a real browser: a store made by a small real backtest, `mlflow server` on a
free loopback port, Debian's Chromium driven headless by Playwright (never a downloaded
browser). The experiment page and the compare page must show the runs, their model names and
their headline AP. Screenshots go to test-artifacts/browser/ (FOEDUS_TEST_ARTIFACTS)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

import pytest
from foedus.features.labels import LabelSpec
from foedus.models.backtest import run_backtest
from foedus.models.experiment import log_backtest
from foedus.models.folds import Fold
from foedus.models.run_view import PRIMARY
from foedus.ui import start_server, stop_server, ui_links

from tests.pipelines.cli_helpers import ROOT, tracking_store
from tests.pipelines.process_helpers import cmdline, group

SPEC = LabelSpec()
FOLDS = (Fold(1966, 1970), Fold(1971, 1975))
MODELS = ("lightgbm", "logit-literature", "base-rate")
RENDER_TIMEOUT_MS = 120_000  # the UI answers some 20 s after the server starts (ML-NOTES)


# the MLflow Assistant panel opens itself on a first visit and covers a third of the page
QUIET_ASSISTANT = ("localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
                   "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');")


def compare_metrics(text: str, n_runs: int) -> dict[str, list[str]]:
    """The compare page's metrics table from its rendered text: the metric names, then each
    metric's value in every run's column."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    start = lines.index("Metrics", lines.index("Run details")) + 2  # past "Show diff only"
    names = []
    while not lines[start + len(names)].replace(".", "", 1).replace("-", "", 1).isdigit():
        names.append(lines[start + len(names)])
    values = lines[start + len(names):start + len(names) * (n_runs + 1)]
    return {name: values[i * n_runs:(i + 1) * n_runs] for i, name in enumerate(names)}


def chromium() -> str:
    found = os.environ.get("FOEDUS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-headless-shell")
    if not found:
        pytest.fail("Debian's chromium is not installed: `apt-get install chromium` (.ci/run does), "
                    "or set FOEDUS_CHROMIUM to a Chromium binary")
    return found


@pytest.fixture(scope="module")
def store(tmp_path_factory, small_table, paths):
    folder = tmp_path_factory.mktemp("ui-store")
    with tracking_store(folder):
        runs = {}
        for model in MODELS:
            result = run_backtest(small_table, model, FOLDS, SPEC.horizon, label_spec=str(SPEC),
                                  params={"n_rounds": 60} if model == "lightgbm" else None)
            runs[model] = log_backtest(result, small_table, SPEC, provenance={"sources": {}, "code": {}},
                                       root=folder, invocation="browser-test", log_models=model == "lightgbm")
        yield folder, runs


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = Path(os.environ.get("FOEDUS_TEST_ARTIFACTS") or ROOT / "test-artifacts") / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_experiment_and_compare_pages_show_the_runs_their_models_and_headline_ap(store, paths, shots):
    from mlflow.tracking import MlflowClient
    from playwright.sync_api import sync_playwright

    folder, runs = store
    executable = chromium()
    with tracking_store(folder):
        ap = {model: MlflowClient().get_run(run_id).data.metrics[PRIMARY] for model, run_id in runs.items()}
        process, base = start_server(paths)
        try:
            links = ui_links(base, paths)
            assert sorted(links.compared_runs) == sorted(runs.values())
            # without MLflow's GenAI job runner (its huey consumers, one process each)
            assert not [pid for pid, _ in group(process.pid) if "huey" in cmdline(pid)]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=executable,
                                                     args=["--no-sandbox", "--disable-gpu"])
                try:
                    page = browser.new_page(viewport={"width": 1600, "height": 900})
                    page.add_init_script(QUIET_ASSISTANT)
                    page.goto(links.experiments[f"foedus-onset-{SPEC.name}"])
                    # rendered text, not network idle: a telemetry request stays pending
                    page.get_by_text(f"{MODELS[0]} backtest").first.wait_for(timeout=RENDER_TIMEOUT_MS)
                    page.get_by_text(PRIMARY).first.wait_for(timeout=RENDER_TIMEOUT_MS)
                    page.screenshot(path=shots / "experiment.png")
                    text = page.inner_text("body")
                    (shots / "experiment.txt").write_text(text)
                    assert "Training runs" in text  # the experiment kind: training runs, not GenAI traces
                    for model in MODELS:
                        assert f"{model} backtest" in text
                        assert repr(ap[model]) in text, f"the headline AP of {model} is not on the experiment page"

                    page.goto(links.compare)
                    page.get_by_text(f"Comparing {len(MODELS)} Runs").first.wait_for(timeout=RENDER_TIMEOUT_MS)
                    page.get_by_text(PRIMARY).first.wait_for(timeout=RENDER_TIMEOUT_MS)
                    page.screenshot(path=shots / "compare.png", full_page=True)
                    text = page.inner_text("body")
                    (shots / "compare.txt").write_text(text)
                    shown = compare_metrics(text, len(MODELS))
                    for model in MODELS:
                        assert f"{model} backtest" in text
                        # the compare page rounds to three decimals; one column per run, in the URL's order
                        column = links.compared_runs.index(runs[model])
                        assert float(shown[PRIMARY][column]) == pytest.approx(ap[model], abs=5e-4 + 1e-12)
                finally:
                    browser.close()
        finally:
            stop_server(process)
    assert process.poll() is not None, "the server it started is stopped"
    with pytest.raises(ProcessLookupError):
        os.killpg(process.pid, 0)  # and every worker of its process group


def test_foedus_ui_prints_the_links_and_ctrl_c_stops_the_server(store, paths):
    import signal
    import subprocess
    import sys
    import urllib.request

    from foedus.ui import free_port

    folder, runs = store
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{folder / 'mlflow.db'}"}
    # Ctrl-C as a terminal gives it, even where this suite runs with SIGINT ignored (a background job
    # of a non-interactive shell), which its children would inherit
    process = subprocess.Popen([sys.executable, "-m", "foedus", "ui", "--port", str(port)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    server = None
    try:
        lines = [process.stdout.readline() for _ in range(3)]
        assert lines[0].startswith(f"MLflow UI on http://127.0.0.1:{port}"), lines
        server = int(re.search(r"\(process (\d+)\)", lines[0]).group(1))
        assert f"foedus-onset-{SPEC.name}: http://127.0.0.1:{port}/#/experiments/" in lines[1]
        assert "compare the latest backtest's 3 models" in lines[2]
        assert all(run_id in lines[2] for run_id in runs.values())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            assert answer.status == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            if server is not None:  # nor leave its server behind
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server, signal.SIGKILL)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)


def test_foedus_ui_on_a_tracking_server_prints_that_server_s_links_and_starts_nothing(store, paths):
    """With MLFLOW_TRACKING_URI naming a server (a team's), that server is the UI: foedus ui prints
    its links and exits, where it used to start a second server over the first one's URI."""
    from foedus.ui import start_server, stop_server

    from tests.pipelines.cli_helpers import foedus

    folder, runs = store
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder / 'mlflow.db'}"
    try:
        process, base = start_server(paths)
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI")
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    try:
        result = foedus("ui", env_extra={"MLFLOW_TRACKING_URI": base})
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == f"MLflow UI of the tracking server {base} (MLFLOW_TRACKING_URI)", lines
        assert f"foedus-onset-{SPEC.name}: {base}/#/experiments/" in result.stdout
        assert all(run_id in result.stdout for run_id in runs.values())
    finally:
        stop_server(process)


def test_foedus_ui_refuses_a_port_out_of_range():
    from tests.pipelines.cli_helpers import assert_user_error, foedus

    assert_user_error(foedus("ui", "--port", "70000"), "--port 70000")
