"""Scoring candidate dyads (`foedus score`, `rank`, `threats`) on the real data, with a real
champion: a small LightGBM trained and registered in a temporary tracking store (the ``store``
fixture, tests/pipelines/conftest.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.pipelines.cli_helpers import ROOT, assert_user_error
from tests.pipelines.cli_helpers import foedus_here as foedus

SPEC = "atop:any:1"
UK, USSR, USA, ISRAEL, INDIA, AUSTRALIA = 200, 365, 2, 666, 750, 900


def test_a_pair_gets_its_probability_percentile_and_reasons(store, paths, context_2019):
    from foedus.scoring import score

    result = score("India", "ISR", 2019, paths=paths, context=context_2019)
    assert (result.state_a["ccode"], result.state_b["ccode"]) == (INDIA, ISRAEL)
    forecast = context_2019.forecasts
    row = forecast[(forecast["ccode1"] == ISRAEL) & (forecast["ccode2"] == INDIA)].iloc[0]
    assert result.probability == pytest.approx(row["probability"]) and 0 < result.percentile <= 100
    assert result.at_risk_dyads == len(forecast) == int(store["table"].query("year == 2019")["at_risk"].sum())
    assert result.factors and all(f["contribution"] != 0 for f in result.factors)
    ups = [f["contribution"] for f in result.factors if f["contribution"] > 0]
    assert ups == sorted(ups, reverse=True)
    # t-1 = 2018: MIDs (GML) and Thompson-Dreyer end in 2010; TSS runs to 2020
    assert "gml_mid_ddydisps" in result.missing_sources and "cow_nmc" not in result.missing_sources
    assert result.shared_threat["common_foes"] is None and result.shared_threat["common_rivals"] is not None
    assert result.in_sample is False  # the final model's labels end in 2018


def test_the_json_keys_are_the_documented_ones(store, paths, context_2019):
    from foedus.scoring import score

    payload = json.loads(json.dumps(score("IND", "ISR", 2019, paths=paths, context=context_2019).to_dict()))
    for key in ("state_a", "state_b", "year", "label", "probability", "percentile", "already_allied",
                "shared_threat", "factors", "missing_sources", "model", "data"):
        assert key in payload, key
    assert set(payload["state_a"]) == {"ccode", "name"}
    assert {"common_foes", "common_rivals"} <= set(payload["shared_threat"])
    assert {"feature", "label", "value", "contribution"} <= set(payload["factors"][0])
    assert {"name", "version", "run_id"} <= set(payload["model"]) and payload["data"]["digest"]
    readme = (ROOT / "README.md").read_text()
    for key in payload:
        assert f"`{key}`" in readme, f"the README does not document the JSON key {key}"


def test_contributions_reproduce_the_log_odds(store, context_2019):
    from foedus.models.scoring import at_risk_rows

    rows = at_risk_rows(context_2019.rows)
    sample = rows.sample(25, random_state=3)
    shap = context_2019.model.estimator.contributions(sample, reference=rows)
    p = context_2019.forecasts.loc[sample.index, "probability"].to_numpy()
    assert np.allclose(shap.sum(axis=1).to_numpy(), np.log(p / (1 - p)), atol=1e-9)


def test_an_allied_pair_says_so_and_names_what_is_still_open(store, paths, context_2019):
    from foedus.scoring import score

    result = score("USA", "UKG", 2019, paths=paths, context=context_2019)  # NATO
    table = store["table"]
    row = table[(table["ccode1"] == USA) & (table["ccode2"] == UK) & (table["year"] == 2019)].iloc[0]
    assert result.already_allied is True and bool(row["at_risk"]) is False
    assert result.probability is None and "defense" in result.allied_under
    assert "atop:defense:1" not in result.at_risk_under
    # India and Australia: an ATOP pact without a defense clause since 2005
    partners = score("India", "Australia", 2019, paths=paths, context=context_2019)
    assert partners.already_allied and "defense" not in partners.allied_under
    assert "atop:defense:1" in partners.at_risk_under


def test_the_common_foes_of_britain_and_the_soviet_union_in_1939(store, paths):
    from foedus.scoring import score

    result = score("United Kingdom", "Soviet Union", 1939, paths=paths)
    foes = [f["name"] for f in result.shared_threat["common_foes"]]
    assert foes == ["Germany", "Italy", "Japan"]
    assert result.shared_threat["status"] == 1 and result.in_sample is True


def test_rank_is_consistent_with_score_and_filters(store, paths, context_2019):
    from foedus.scoring import rank, score

    top = rank(2019, SPEC, top=10, paths=paths, context=context_2019)
    assert len(top) == 10 and top["probability"].is_monotonic_decreasing
    assert top["percentile"].iloc[0] == 100 and top["percentile"].between(0, 100).all()
    first = score(int(top["ccode1"].iloc[0]), int(top["ccode2"].iloc[0]), 2019, paths=paths, context=context_2019)
    assert first.probability == pytest.approx(top["probability"].iloc[0]) and first.percentile == 100
    assert (top["reason"] != "").all()
    china = rank(2019, SPEC, top=5, with_state="China", paths=paths, context=context_2019)
    assert ((china["ccode1"] == 710) | (china["ccode2"] == 710)).all()
    europe = rank(2019, SPEC, top=5, region="europe", paths=paths, context=context_2019)
    assert europe[["ccode1", "ccode2"]].stack().between(200, 399).all()


def test_threats_lists_shared_threat_pairs_not_allied_with_what_held_them_back(store, paths):
    from foedus.scoring import threats

    held = threats(2000, SPEC, top=8, paths=paths)
    assert len(held) == 8 and (held["common_foes"].fillna(0) + held["common_rivals"] > 0).all()
    table = store["table"].set_index(["ccode1", "ccode2", "year"])
    keys = list(zip(held["ccode1"], held["ccode2"], held["year"]))
    assert (table.loc[keys, "shared_threat"] == 1).all() and table.loc[keys, "at_risk"].all()
    assert held["held_back_by"].str.len().gt(0).all()


def test_batch_scoring_equals_one_by_one_and_keeps_bad_rows(store, paths, context_2019):
    from foedus.scoring import score, score_batch

    pairs = pd.DataFrame({"state_a": ["India", "USA", "Atlantis", "France", "Czechoslovakia"],
                          "state_b": ["Israel", "UKG", "Japan", "France", "Japan"],
                          "year": ["2019", "2019", "2019", "2019", "2019"]})
    scored = score_batch(pairs, SPEC, paths=paths)
    alone = score("India", "Israel", 2019, paths=paths, context=context_2019)
    assert scored.loc[0, "probability"] == pytest.approx(alone.probability)
    assert scored.loc[0, "percentile"] == pytest.approx(alone.percentile)
    assert scored.loc[1, "already_allied"] is True and scored.loc[1, "probability"] is None
    assert "Atlantis" in scored.loc[2, "error"] and "twice" in scored.loc[3, "error"]
    assert "not a member" in scored.loc[4, "error"] and scored["error"].iloc[:2].isna().all()


def test_the_cli_scores_a_pair_as_json_and_as_a_panel(store):
    result = foedus("score", "India", "Israel", "--year", "2019", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["state_b"]["name"] == "Israel" and 0 < payload["probability"] < 1
    shown = foedus("score", "India", "Israel", "--year", "2019")
    assert shown.returncode == 0 and "percentile" in shown.stdout and "India" in shown.stdout


def test_batch_cli_writes_every_row_and_says_which_failed(store, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("state_a,state_b,year\nIndia,Israel,2019\nAtlantis,Japan,2019\n")
    scored = tmp_path / "scored.csv"
    result = foedus("score", "--input", str(pairs), "--output", str(scored))
    assert result.returncode == 2 and "1 row(s) could not be scored" in result.stderr
    frame = pd.read_csv(scored)
    assert len(frame) == 2 and frame["probability"].notna().tolist() == [True, False]


@pytest.mark.parametrize("args, fragments", [
    (["score", "Atlantis", "Japan", "--year", "2019"], ["Atlantis"]),
    (["score", "France", "FRN", "--year", "2019"], ["twice"]),
    (["score", "Czechoslovakia", "Japan", "--year", "2019"], ["not a member", "2019"]),
    (["score", "India", "Australia", "--year", "2023"], ["no present-day model", "--for-year 2023"]),
    (["score", "India", "Australia", "-l", "atop:defense:1"], ["no registered champion", "foedus train"]),
    (["rank", "--region", "Narnia"], ["Narnia", "europe"]),
])
def test_bad_input_gets_one_line_and_exit_2(store, args, fragments):
    assert_user_error(foedus(*args), *fragments)


def test_batch_file_without_the_columns(store, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("a,b\nIndia,Australia\n")
    result = foedus("score", "--input", str(pairs), "--output", str(tmp_path / "out.csv"))
    assert_user_error(result, "state_a")
    assert not (tmp_path / "out.csv").exists()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_champion_is_served_by_mlflow_and_answers_pairs_by_name(store, paths, context_2019):
    import signal
    import time
    import urllib.request

    from foedus.scoring import score

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/foedus-onset-atop_any_h1@champion",
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        # MLflow starts uvicorn by name: the environment's bin folder must be on PATH
        env={**{k: v for k, v in os.environ.items() if k != "FOEDUS_DEBUG"},
             "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, "the model server did not come up"
                time.sleep(1)
        body = {"dataframe_split": {"columns": ["state_a", "state_b", "year"],
                                    "data": [["India", "Israel", 2019], ["USA", "UKG", 2019]]}}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(request, timeout=120).read())["predictions"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    expected = score("India", "Israel", 2019, paths=paths, context=context_2019)
    assert answer[0]["probability"] == pytest.approx(expected.probability, rel=1e-9)
    assert answer[0]["percentile"] == pytest.approx(expected.percentile)
    missing = answer[1]["probability"]
    assert answer[1]["already_allied"] is True and (missing is None or np.isnan(missing))


def test_a_model_trained_on_another_feature_set_is_refused(store, context_2019):
    from dataclasses import replace

    from foedus.infra.errors import FoedusError
    from foedus.models.scoring import check_build

    assert context_2019.model.columns, "the logged model records the build's feature columns"
    older = replace(context_2019.model, columns=[c for c in context_2019.model.columns if c != "shared_igos"])
    with pytest.raises(FoedusError, match="shared_igos.*foedus train -l atop:any:1"):
        check_build(older, context_2019.rows, SPEC)


def test_rank_and_threats_say_which_model_and_data(store):
    result = foedus("rank", "--year", "2019", "--top", "3", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert len(payload["pairs"]) == 3 and payload["model"]["run_id"] and payload["data"]["digest"]
    shown = foedus("threats", "--year", "2005", "--top", "3")
    assert shown.returncode == 0, shown.stderr
    assert "model: lightgbm" in shown.stdout and "at-risk dyads that year" in shown.stdout
