"""`foedus report`: a real (small) backtest of LightGBM and of the base rate, logged to a store of
this module's own, rendered as one self-contained HTML page with its figures, and logged back
to the run."""

from __future__ import annotations

import dataclasses
import html
import re

import mlflow
import pandas as pd
import pytest
from foedus.features.labels import LabelSpec
from foedus.features.years import NEXT_YEAR
from foedus.infra.errors import FoedusError
from mlflow.tracking import MlflowClient

from tests.pipelines.cli_helpers import assert_user_error, tracking_store
from tests.pipelines.cli_helpers import foedus_here as foedus

SPEC = LabelSpec()
FAST = {"n_rounds": 60}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EMBEDDED = "data:image/png;base64,"
# what a LightGBM backtest logs as plots; the base rate has no gain importance and no SHAP values
LIGHTGBM_FIGURES = {"pr_curves", "calibration", "onset_rate_by_era", "feature_importance", "shap_summary"}
BASE_RATE_FIGURES = {"pr_curves", "calibration", "onset_rate_by_era"}


@pytest.fixture(scope="module")
def store(small_table, registry, tmp_path_factory):
    """A LightGBM backtest, then a base-rate one (newer), logged in a store of this module's own."""
    from foedus.models.backtest import run_backtest
    from foedus.models.experiment import log_backtest
    from foedus.models.folds import Fold

    folder = tmp_path_factory.mktemp("report-store")
    names = {code: state.name for code, state in registry.states.items()}
    runs = {}
    with tracking_store(folder) as uri:
        for model, params in (("lightgbm", FAST), ("base-rate", None)):
            result = run_backtest(small_table, model, (Fold(1966, 1970), Fold(1971, 1975)), SPEC.horizon,
                                  params=params, names=names, label_spec=str(SPEC))
            result.run_id = log_backtest(result, small_table, SPEC, provenance={"sources": {"x": "y"}, "code": {}},
                                         root=folder, log_models=False)
            runs[model] = result
        yield {"uri": uri, "root": folder, "runs": runs}


@pytest.fixture(scope="module")
def lightgbm_report(store, paths, tmp_path_factory):
    """The default report (no run given), into a project root of its own: reports/<run id>/."""
    from foedus.report import report

    root = tmp_path_factory.mktemp("project")
    result = report(paths=dataclasses.replace(paths, root=root))
    return {"result": result, "root": root, "html": result.html.read_text(encoding="utf-8")}


def test_the_default_run_is_the_newest_lightgbm_backtest_written_under_reports(store, lightgbm_report):
    result = lightgbm_report["result"]
    # the base rate was logged later: the default is still the lightgbm backtest
    assert result.run_id == store["runs"]["lightgbm"].run_id
    assert result.html == lightgbm_report["root"] / "reports" / result.run_id / "report.html"


def test_the_page_is_self_contained_and_embeds_every_figure(lightgbm_report):
    page, result = lightgbm_report["html"], lightgbm_report["result"]
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "nothing is fetched from the network"
    assert "<script" not in page and "<link" not in page
    assert {p.stem for p in result.pngs} == LIGHTGBM_FIGURES
    assert page.count(EMBEDDED) == len(LIGHTGBM_FIGURES)
    for png in result.pngs:
        assert png.parent == result.html.parent
        data = png.read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, png
        # the page embeds exactly the bytes written beside it
        import base64

        assert EMBEDDED + base64.b64encode(data).decode() in page


def test_the_header_gives_the_run_and_the_headline_ap_as_shown_elsewhere(store, lightgbm_report):
    from foedus.models.run_view import PRIMARY

    page, run = lightgbm_report["html"], store["runs"]["lightgbm"]
    assert f"foedus backtest: lightgbm, {SPEC}" in page
    assert run.run_id in page
    primary = run.slices["continuing_dyad"]["average_precision"]
    # the primary metric, to four decimals as `foedus backtest` and the run's note print it
    assert re.search(rf"<td[^>]*>{PRIMARY}</td>\s*<td[^>]*>{primary:.4f}</td>", page)
    assert f"{run.pooled['roc_auc']:.3f}" in page
    assert "strictly out of" in page and "continuing dyads" in page


def test_the_comparison_lists_the_latest_backtest_of_each_model(store, lightgbm_report):
    page = lightgbm_report["html"]
    start = page.index("Model comparison</h2>")
    comparison = page[start:page.index("<h2", start)]
    assert "lightgbm (this report)" in comparison and "base-rate" in comparison
    for result in store["runs"].values():
        assert result.run_id in comparison
    # the lightgbm backtest ranks above the base rate by continuing-dyad AP, as the table is sorted
    assert comparison.index("lightgbm (this report)") < comparison.index("base-rate")
    assert "Only atop:any:1 has backtests in this store" in comparison


def test_the_fold_table_and_the_threat_tables_hold_the_backtest_numbers(store, lightgbm_report):
    page, run = lightgbm_report["html"], store["runs"]["lightgbm"]
    for fold in run.folds:
        assert re.search(rf"<td[^>]*>{fold.fold.name}</td>", page)
        assert f"{fold.metrics['average_precision']:.4f}" in page
    reasons = run.reasons
    assert "What held shared-threat pairs back" in page
    assert html.escape(reasons["reason"].iloc[0]) in page
    least = run.threat_without_alliance.sort_values("probability", kind="stable").iloc[0]
    listing = page[page.index("least likely pairs"):]
    listing = listing[:listing.index("<h2")]
    # one row per pair, the least likely first
    assert listing.count(html.escape(f"{least['name1']} - {least['name2']}")) == 1
    assert html.escape(least["reason_1"]) in listing
    assert "Alliance formation among the test blocks" in page


def test_absent_sections_say_why_and_what_to_run(lightgbm_report):
    page = lightgbm_report["html"]
    assert f"No skill-by-staleness run of lightgbm for {SPEC}" in page
    assert "<code>foedus staleness -l atop:any:1 --model lightgbm</code>" in page
    year = NEXT_YEAR - 1
    assert f"no present-day model for {year} is registered (foedus-onset-atop_any_h1-for{year})" in page
    assert f"<code>foedus train -l atop:any:1 --for-year {year}</code>" in page


def test_the_report_is_logged_to_its_run(lightgbm_report):
    result = lightgbm_report["result"]
    assert result.logged
    logged = {a.path for a in MlflowClient().list_artifacts(result.run_id, "report")}
    assert logged == {"report/report.html", *(f"report/{p.name}" for p in result.pngs)}
    copy = mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="report/report.html")
    assert open(copy, encoding="utf-8").read() == lightgbm_report["html"]


def test_a_model_without_importance_or_shap_says_so_and_is_not_logged_without_log_to_run(store, paths, tmp_path):
    from foedus.report import report

    run_id = store["runs"]["base-rate"].run_id
    result = report(run_id, tmp_path / "out", paths=paths, log_to_run=False)
    page = result.html.read_text(encoding="utf-8")
    assert result.run_id == run_id and not result.logged
    assert {p.stem for p in result.pngs} == BASE_RATE_FIGURES and page.count(EMBEDDED) == len(BASE_RATE_FIGURES)
    assert "No feature importance: base-rate has no gain importance" in page
    assert "No SHAP summary: base-rate gives no SHAP contributions" in page
    assert "No reasons: base-rate gives no SHAP contributions" in page
    assert "base-rate (this report)" in page
    assert MlflowClient().list_artifacts(run_id, "report") == []


def test_an_unknown_run_or_a_fold_run_is_one_clear_error(store, paths, tmp_path):
    from foedus.report import report

    with pytest.raises(FoedusError, match="no run 0123456789abcdef in the tracking store .*`foedus compare`"):
        report("0123456789abcdef", tmp_path, paths=paths)
    client = MlflowClient()
    parent = client.get_run(store["runs"]["lightgbm"].run_id)
    fold = client.search_runs([parent.info.experiment_id],
                              f"tags.mlflow.parentRunId = '{parent.info.run_id}'")[0]
    with pytest.raises(FoedusError, match="is a backtest-fold run, not a backtest"):
        report(fold.info.run_id, tmp_path, paths=paths)
    assert not (tmp_path / "report.html").exists()


def test_an_empty_store_says_to_run_a_backtest_first(paths, tmp_path):
    from foedus.report import report

    with tracking_store(tmp_path / "empty"):
        with pytest.raises(FoedusError, match="no finished backtest .* run `foedus run` or `foedus backtest` first"):
            report(paths=paths, output=tmp_path / "out")


def test_this_years_pairs_show_names_probability_and_reason(store, paths, tmp_path, monkeypatch):
    import foedus.report
    import foedus.report_sections
    import foedus.scoring

    year = NEXT_YEAR - 1
    ranked = pd.DataFrame({"ccode1": [2], "name1": ["United States of America"], "ccode2": [713],
                           "name2": ["Taiwan"], "year": [year], "probability": [0.01234], "percentile": [99.97],
                           "reason": ["common rivals (Thompson-Dreyer) 1 (+0.52)"]})
    ranked.attrs.update(model={"name": "lightgbm", "registered": f"foedus-onset-atop_any_h1-for{year}",
                               "version": "3", "run_id": "abc"}, at_risk_dyads=18_000,
                        data={"digest": "d1", "record_year": 2017, "vintage": None})
    asked = []
    monkeypatch.setattr(foedus.report_sections, "_has_registered", lambda client, name: name.endswith(f"-for{year}"))
    monkeypatch.setattr(foedus.scoring, "rank", lambda y, spec, top, paths: asked.append((y, str(spec), top))
                        or ranked)
    result = foedus.report.report(store["runs"]["lightgbm"].run_id, tmp_path, paths=paths, log_to_run=False)
    page = result.html.read_text(encoding="utf-8")
    assert asked == [(year, str(SPEC), 10)]
    section = page[page.index(f"Likeliest new alliances of {year}</h2>"):]
    assert "United States of America - Taiwan" in section and "0.0123" in section and "99.97" in section
    assert "common rivals (Thompson-Dreyer) 1 (+0.52)" in section
    assert "18,000 at-risk dyads" in section


def test_the_cli_writes_the_report_and_an_unknown_run_is_one_line(store, tmp_path):
    env = {"MLFLOW_TRACKING_URI": store["uri"]}
    result = foedus("report", "--run", "no-such-run", "--output", str(tmp_path), env_extra=env)
    assert_user_error(result, "no run no-such-run in the tracking store", "foedus compare")
    assert not (tmp_path / "report.html").exists()
    run_id = store["runs"]["base-rate"].run_id
    done = foedus("report", "--run", run_id, "--output", str(tmp_path), "--no-log", env_extra=env)
    assert done.returncode == 0, done.stderr
    assert f"wrote the report of run {run_id} to {tmp_path / 'report.html'}" in " ".join(done.stdout.split())
    assert (tmp_path / "report.html").is_file()


def test_the_renderer_escapes_text_and_formats_numbers():
    from foedus.models.report import Paragraph, Section, Table, render_html

    frame = pd.DataFrame({"pair": ["Antigua & Barbuda - <Cuba>"], "year": [1981], "dyad-years": [38216],
                          "probability": [0.000043], "AP": [0.06130270]})
    page = render_html("t", [Section("s", [Paragraph("a < b: run `foedus run`"), Table(frame)])])
    assert "Antigua &amp; Barbuda - &lt;Cuba&gt;" in page and "<p>a &lt; b: run <code>foedus run</code></p>" in page
    assert '<td class="short">1981</td>' in page  # a year, not 1,981, and never wrapped
    assert ">38,216</td>" in page and ">4.30e-05</td>" in page and ">0.0613</td>" in page
