"""Forecasts for the present (years past the alliance data): a present-day model trained for
2026 on the real data, scoring and ranking with the data vintage stated, the refusal of a
model of the wrong staleness, and analysts' treaty supplements."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from tests.pipelines.cli_helpers import ROOT, assert_user_error, tracking_store
from tests.pipelines.cli_helpers import foedus_here as foedus

SPEC = "atop:any:1"
TARGET = 2026
FAST = {"n_rounds": 60}
RUSSIA, NORTH_KOREA, TAIWAN, USA = 365, 731, 713, 2


@pytest.fixture(scope="module")
def present(paths, tmp_path_factory):
    """The 2026 table of atop:any:1 and its registered present-day model, in a store of this module's own."""
    from foedus.features.build import build
    from foedus.features.labels import as_label_spec
    from foedus.models.backtest import run_backtest
    from foedus.models.experiment import log_backtest, train_final
    from foedus.models.folds import Fold, label_delay

    folder = tmp_path_factory.mktemp("present-store")
    with tracking_store(folder):
        spec = as_label_spec(SPEC)
        built = build(spec, for_year=TARGET, paths=paths)
        provenance = json.loads(built.path.with_suffix(".json").read_text())
        result = run_backtest(built.table, "lightgbm", (Fold(2010, 2018),), label_delay(spec, provenance),
                              params=FAST, label_spec=SPEC)
        log_backtest(result, built.table, spec, provenance=provenance, root=folder, log_models=False)
        run_id, promotion = train_final(built.table, spec, "lightgbm", provenance=provenance, root=folder,
                                        params=FAST)
        yield {"table": built.table, "provenance": provenance, "result": result, "promotion": promotion,
               "run_id": run_id}


@pytest.fixture(scope="module")
def context_2026(present, paths):
    from foedus.scoring import year_context

    return year_context(SPEC, TARGET, paths=paths)


def test_the_present_day_backtest_trains_only_on_onsets_known_at_the_vintage(present):
    # ATOP ends in 2018, 7 years stale for 2026: the 2010-2018 block trains on years up to 2002
    assert present["provenance"]["vintage"]["target"] == TARGET
    fold = present["result"].folds[0]
    assert fold.train_years[1] == 2010 - 1 - 7
    assert present["promotion"].name == f"foedus-onset-atop_any_h1-for{TARGET}"


def test_a_pair_of_2026_is_scored_with_the_vintage_stated(present, paths, context_2026):
    from foedus.scoring import score

    result = score("India", "Australia", TARGET, paths=paths, context=context_2026)
    table = present["table"]
    assert result.at_risk_dyads == int(table.query(f"year == {TARGET}")["at_risk"].sum())
    assert result.record_year == 2018  # at risk as ATOP knew it
    assert result.model["for_year"] == TARGET and result.model["registered"].endswith(f"-for{TARGET}")
    vintage = {row["source"]: row for row in result.vintage["sources"]}
    assert vintage["atop_alliance"]["last_year"] == 2018 and vintage["atop_alliance"]["staleness"] == 7
    assert vintage["cw_democracy"]["staleness"] == 0 and vintage["gml_mid_ddydisps"]["staleness"] == 15
    assert result.vintage["carried_forward"] and "carried forward" in result.vintage["system_note"]
    # India and Australia: an ATOP pact without a defense clause since 2005, recorded in 2018
    assert result.already_allied and "any" in result.allied_under and result.probability is None
    assert result.out_of_time is None and result.in_sample is False
    # a pair at risk: a probability, a percentile and the pushes behind it
    open_pair = score("USA", "Taiwan", TARGET, paths=paths, context=context_2026)
    assert open_pair.probability is not None and 0 < open_pair.percentile <= 100 and open_pair.factors
    assert isinstance(open_pair.missing_features, list)


def test_rank_of_2026_lists_at_risk_pairs_and_says_which_vintage(present, paths, context_2026):
    from foedus.scoring import rank

    top = rank(TARGET, SPEC, top=10, paths=paths, context=context_2026)
    assert len(top) == 10 and top["year"].eq(TARGET).all()
    assert top["probability"].is_monotonic_decreasing
    assert top.attrs["data"]["vintage"]["target"] == TARGET and top.attrs["data"]["record_year"] == 2018
    at_risk = present["table"].query(f"year == {TARGET} and at_risk == True")
    keys = set(zip(at_risk["ccode1"], at_risk["ccode2"]))
    assert all((a, b) in keys for a, b in zip(top["ccode1"], top["ccode2"]))


def test_the_cli_ranks_and_scores_2026_offline_with_the_vintage(present):
    env = {"MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"]}
    ranked = foedus("rank", "--year", str(TARGET), "--top", "5", env_extra=env)
    assert ranked.returncode == 0, ranked.stderr
    assert f"data vintage for {TARGET}" in ranked.stdout and "atop_alliance to 2018 (+7)" in ranked.stdout
    assert "carried forward" in ranked.stdout
    scored = foedus("score", "USA", "Taiwan", "--year", str(TARGET), "--json", env_extra=env)
    payload = json.loads(scored.stdout)
    assert payload["vintage"]["target"] == TARGET and payload["record_year"] == 2018
    readme = (ROOT / "README.md").read_text()
    for key in payload:
        assert f"`{key}`" in readme, f"the README does not document the JSON key {key}"


def test_a_model_of_the_wrong_staleness_is_refused(present, context_2026):
    from dataclasses import replace

    from foedus.infra.errors import InvalidInput
    from foedus.models.scoring import check_vintage

    model = context_2026.model
    vintage = present["provenance"]["vintage"]
    check_vintage(model, vintage, TARGET, SPEC)  # the right one passes
    with pytest.raises(InvalidInput, match=f"present-day model for {TARGET}"):
        check_vintage(model, None, 2019, SPEC)  # a present-day model on the ordinary table
    with pytest.raises(InvalidInput, match="trained with every source fresh"):
        check_vintage(replace(model, vintage=None), vintage, TARGET, SPEC)
    other = {**vintage, "target": 2025, "sources": [{**r, "staleness": max(r["staleness"] - 1, 0)}
                                                    for r in vintage["sources"]]}
    with pytest.raises(InvalidInput, match="another staleness"):
        check_vintage(replace(model, vintage=other), vintage, TARGET, SPEC)


@pytest.mark.parametrize("args, fragments", [
    (["score", "USA", "Taiwan", "--year", "2025"], ["no present-day model", "--for-year 2025"]),
    (["score", "USA", "Taiwan", "--year", "2031"], ["2031", "outside"]),
    (["train", "--for-year", "2018"], ["--for-year 2018", "present-day models serve 2019"]),
    (["backtest", "--for-year", "2031", "--models", "base-rate"], ["--for-year 2031"]),
    (["score", "USA", "Taiwan", "--year", str(TARGET), "--model-uri", "models:/foedus-onset-atop_any_h1-for2026/1",
      "-l", "atop:defense:1"], ["forecasts atop:any:1"]),
])
def test_bad_present_day_input_gets_one_line_and_exit_2(present, args, fragments):
    assert_user_error(foedus(*args, env_extra={"MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"]}),
                      *fragments)


# --- treaties supplied by the analyst ---------------------------------------------------------

def write(path: Path, *rows: str) -> Path:
    path.write_text("state_a,state_b,year,obligation,source\n" + "".join(r + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def recorded(paths):
    from foedus.features.alliances import ALLIANCE_SOURCES, alliance_state
    from foedus.features.readers import load_source

    return alliance_state(load_source("atop_alliance", paths), ALLIANCE_SOURCES["atop"])


def read(path, recorded, registry):
    from foedus.features.alliances import ALLIANCE_SOURCES
    from foedus.features.supplements import read_supplements

    return read_supplements(path, ALLIANCE_SOURCES["atop"], registry, recorded, 2018)


def test_the_documented_example_file_is_valid(recorded, registry):
    example = read(ROOT / "docs" / "supplements-example.csv", recorded, registry)
    assert len(example.treaties) == 3 and example.treaties["obligation"].eq("defense").all()
    assert (RUSSIA, NORTH_KOREA, 2024) in set(zip(*(example.treaties[c] for c in ("ccode1", "ccode2", "year"))))


@pytest.mark.parametrize("row, fragments", [
    ("Atlantis,Japan,2022,defense,x", ["line 2", "Atlantis"]),
    ("India,Japan,2017,defense,x", ["line 2", "2017", "2018"]),
    ("India,Japan,2099,defense,x", ["line 2", "2099"]),
    ("India,Japan,2022,friendship,x", ["line 2", "friendship", "defense"]),
    ("India,Japan,2022,defense,", ["line 2", "source column is empty"]),
    ("USA,UKG,2020,defense,NATO", ["line 2", "already records", "2018"]),
    ("India,India,2022,defense,x", ["line 2", "twice"]),
])
def test_a_bad_supplement_row_is_refused_with_its_line(tmp_path, recorded, registry, row, fragments):
    from foedus.infra.errors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        read(write(tmp_path / "bad.csv", row), recorded, registry)
    for fragment in fragments:
        assert fragment in str(caught.value), str(caught.value)


def test_a_supplement_file_without_the_columns_or_listing_a_treaty_twice_is_refused(tmp_path, recorded, registry):
    from foedus.infra.errors import InvalidInput

    (tmp_path / "cols.csv").write_text("a,b\nIndia,Japan\n")
    with pytest.raises(InvalidInput, match="lacks the column"):
        read(tmp_path / "cols.csv", recorded, registry)
    twice = write(tmp_path / "twice.csv", "India,Japan,2022,defense,x", "JPN,IND,2023,defense,y")
    with pytest.raises(InvalidInput, match="line 3.*listed twice"):
        read(twice, recorded, registry)
    (tmp_path / "latin1.csv").write_bytes("state_a,state_b,year,obligation,source\nIndia,Japan,2022,defense,Bogot\xe1\n"
                                          .encode("latin-1"))
    with pytest.raises(InvalidInput, match="not UTF-8"):
        read(tmp_path / "latin1.csv", recorded, registry)


def test_supplements_change_at_risk_status_only_after_the_source_ends(present, tmp_path, recorded, registry):
    from foedus.features.labels import as_label_spec
    from foedus.models.pairs import apply_supplements

    spec = as_label_spec(SPEC)
    # a made-up treaty of 2024 between two states at risk in the 2026 table
    table = present["table"]
    rows_2026 = table[table["year"] == TARGET]
    pair = rows_2026[rows_2026["at_risk"].fillna(False).astype(bool) & (rows_2026["ccode1"] == USA)
                     & (rows_2026["ccode2"] == TAIWAN)]
    assert len(pair) == 1
    supplements = read(write(tmp_path / "made-up.csv", "USA,Taiwan,2024,defense,made up for a test"), recorded,
                       registry)
    for year in (2019, 2024):  # the treaty's own year and earlier: nothing changes
        rows = table[table["year"] == year]
        changed, used = apply_supplements(rows, supplements, spec, year)
        assert changed["at_risk"].equals(rows["at_risk"]) and used.empty
    changed, used = apply_supplements(rows_2026, supplements, spec, TARGET)
    assert not bool(changed.loc[pair.index[0], "at_risk"]) and len(used) == 1
    assert (changed["at_risk"] != rows_2026["at_risk"]).sum() == 1
    # an offense-only treaty does not close a defense onset, it does close "any"
    offense = read(write(tmp_path / "offense.csv", "USA,Taiwan,2024,offense,made up"), recorded, registry)
    assert apply_supplements(rows_2026, offense, as_label_spec("atop:defense:1"), TARGET)[1].empty
    assert len(apply_supplements(rows_2026, offense, spec, TARGET)[1]) == 1


def test_the_output_says_which_supplements_made_a_pair_allied(present, paths, tmp_path):
    from foedus.scoring import rank, score, year_context

    path = write(tmp_path / "made-up.csv", "USA,Taiwan,2024,defense,made up for a test",
                 "Japan,Brazil,2025,consultation,made up too")
    context = year_context(SPEC, TARGET, paths=paths, supplements=path)
    result = score("USA", "Taiwan", TARGET, paths=paths, context=context)
    assert result.already_allied and result.probability is None
    assert result.supplements == [{"state_a": "United States of America", "state_b": "Taiwan", "year": 2024,
                                   "obligation": "defense", "source": "made up for a test", "file": str(path)}]
    assert any("supplement file" in n for n in result.notes)
    ranked = rank(TARGET, SPEC, top=5, paths=paths, context=context)
    used = ranked.attrs["data"]["supplements"]
    assert used["treaties"] == 2 and {u["state_b"] for u in used["used"]} >= {"Taiwan"}
    env = {"MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"]}
    printed = foedus("rank", "--year", str(TARGET), "--top", "3", "--supplement", str(path), env_extra=env)
    assert printed.returncode == 0 and f"supplements {path}: 2 treaties" in printed.stdout
    bad = write(tmp_path / "bad.csv", "USA,Taiwan,2015,defense,x")
    assert_user_error(foedus("rank", "--year", str(TARGET), "--supplement", str(bad), env_extra=env),
                      "bad.csv, line 2", "2015")


def test_the_training_table_never_reads_supplements(present):
    # the 2026 table's labels are ATOP's alone: no onset or at-risk change after 2018 comes from a file
    table = present["table"]
    labelled = table[table["onset"].notna()]
    assert labelled["year"].max() == 2018
    assert pd.isna(table.loc[table["year"] == TARGET, "onset"]).all()


def test_skill_by_staleness_is_tabled_logged_and_plotted(present, tmp_path):
    env = {"MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"]}
    ran = foedus("staleness", "--model", "base-rate", "--years", "2025-2026", "--folds", "2005-2018", "--json",
                 env_extra=env)
    assert ran.returncode == 0, ran.stderr
    rows = json.loads(ran.stdout)[SPEC]
    assert [r["target"] for r in rows] == ["fresh", "2025", "2026"]
    assert [r["label_staleness"] for r in rows] == [0, 6, 7]  # ATOP ends in 2018
    assert all(0 < r["continuing_dyad_average_precision"] < 1 and r["onsets"] > 0 for r in rows)
    assert rows[2]["max_staleness"] == 15 and "gml_mid_ddydisps+15" in rows[2]["profile"]
    # the table is logged: --latest reads it back, and the plot is written
    plot = tmp_path / "skill.png"
    again = foedus("staleness", "--model", "base-rate", "--latest", "--plot", str(plot), "--json", env_extra=env)
    assert again.returncode == 0, again.stderr
    assert [r["continuing_dyad_average_precision"] for r in json.loads(again.stdout)[SPEC]] == pytest.approx(
        [r["continuing_dyad_average_precision"] for r in rows])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    missing = foedus("staleness", "--model", "logit-threat", "--latest", env_extra=env)
    assert_user_error(missing, "no skill-by-staleness run of logit-threat")
