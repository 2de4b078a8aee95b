"""The CLI as a user meets it: --help everywhere, the main job, and every bad-input case.

Each bad input must give one line on stderr saying what and where, exit code 2, no
traceback, and no partial output file.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.pipelines.cli_helpers import ROOT, assert_user_error
from tests.pipelines.cli_helpers import foedus as foedus_process
from tests.pipelines.cli_helpers import foedus_here as foedus


@pytest.fixture
def project(tmp_path, paths):
    """A data folder of its own with verified raw files (copied from the session's)."""
    data = tmp_path / "data"
    shutil.copytree(paths.raw, data / "raw")
    return {"FOEDUS_HOME": str(ROOT), "FOEDUS_DATA_DIR": str(data), "FOEDUS_MIRROR": str(tmp_path / "no-mirror")}


@pytest.mark.parametrize(
    "command",
    [[], ["data"], ["data", "fetch"], ["data", "status"], ["states"], ["states", "resolve"], ["build"], ["run"],
     ["features"], ["features", "list"], ["describe"], ["backtest"], ["train"], ["compare"], ["cite"],
     ["score"], ["rank"], ["threats"], ["ui"], ["report"]],
)
def test_every_command_has_help(command):
    from foedus.cli import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_the_installed_entry_point_answers():
    result = foedus_process("--help")
    assert result.returncode == 0 and "backtest" in result.stdout and "cite" in result.stdout


def test_backtest_help_lists_every_model_of_the_catalogue():
    from foedus.cli import app
    from foedus.models.catalogue import MODELS
    from typer.testing import CliRunner

    output = " ".join(CliRunner().invoke(app, ["backtest", "--help"], terminal_width=400).output.split())
    for model in MODELS.values():
        assert model.name in output


def test_build_writes_the_labelled_table_with_its_provenance(project):
    result = foedus("build", "--labels-only", "--label-spec", "atop:defense:1", env_extra=project)
    assert result.returncode == 0, result.stderr
    assert "1990-2024" in result.stdout and "2,677" in result.stdout
    out = Path(project["FOEDUS_DATA_DIR"]) / "processed" / "labels_atop_defense_h1.parquet"
    table = pq.read_table(out)
    assert table.num_rows == 1_107_465
    assert table.column_names == ["ccode1", "ccode2", "year", "at_risk", "onset"]
    assert b"atop:defense:1" in table.schema.metadata[b"foedus"]


def test_status_reports_each_source(project):
    result = foedus("data", "status", env_extra=project)
    assert result.returncode == 0, result.stderr
    assert "cow_ddy" in result.stdout and "1816-2024" in result.stdout and "ATOP 5.1" in result.stdout


def test_missing_raw_file_says_which_and_how_to_fetch(project):
    Path(project["FOEDUS_DATA_DIR"], "raw", "peacesciencer", "cow_ddy.rda").unlink()
    result = foedus("build", "--labels-only", env_extra=project)
    assert_user_error(result, "cow_ddy.rda is missing", "foedus data fetch")
    assert not Path(project["FOEDUS_DATA_DIR"], "processed").exists()
    status = foedus("data", "status", env_extra=project)
    assert status.returncode == 2 and "missing" in status.stdout


def test_checksum_mismatch_is_refused(project):
    raw = Path(project["FOEDUS_DATA_DIR"], "raw", "peacesciencer", "atop_alliance.rda")
    raw.write_bytes(raw.read_bytes() + b"tampered")
    result = foedus("build", "--labels-only", env_extra=project)
    assert_user_error(result, "atop_alliance.rda fails its checksum", "foedus data fetch")
    assert not Path(project["FOEDUS_DATA_DIR"], "processed").exists()


def test_fetch_from_a_corrupted_folder_is_refused(tmp_path, project, mirror):
    bad = tmp_path / "bad"
    shutil.copytree(mirror, bad)
    (bad / "isard" / "cw_system.rda").write_bytes(b"not the real file")
    shutil.rmtree(Path(project["FOEDUS_DATA_DIR"], "raw"))
    result = foedus("data", "fetch", "--from", str(bad), env_extra=project)
    assert_user_error(result, "checksum mismatch for isard/cw_system.rda")
    assert not Path(project["FOEDUS_DATA_DIR"], "raw", "isard", "cw_system.rda").exists()


def test_fetch_from_a_folder_that_does_not_exist(project, tmp_path):
    assert_user_error(foedus("data", "fetch", "--from", str(tmp_path / "nowhere"), env_extra=project), "no such folder")


def test_unreadable_raw_file_is_refused(tmp_path, project):
    # A project whose manifest pins a damaged cow_ddy: it passes its checksum but cannot be read.
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    manifest = (ROOT / "data" / "sources.toml").read_text()
    damaged = Path(project["FOEDUS_DATA_DIR"], "raw", "peacesciencer", "cow_ddy.rda")
    damaged.write_bytes(b"\x1f\x8b garbage")
    real = (ROOT / "data" / "sources.toml").read_text().split("[sources.cow_ddy]")[1].split("sha256 = ")[1][1:65]
    pinned = manifest.replace(real, hashlib.sha256(damaged.read_bytes()).hexdigest())
    (home / "data" / "sources.toml").write_text(pinned)
    result = foedus("build", "--labels-only", env_extra={**project, "FOEDUS_HOME": str(home)})
    assert_user_error(result, "cannot read raw file", "cow_ddy.rda", "foedus data fetch")
    assert not Path(project["FOEDUS_DATA_DIR"], "processed").exists()


def test_unknown_state(project):
    assert_user_error(foedus("states", "resolve", "Frnace", env_extra=project), "no state matches 'Frnace'",
                      "France (220)")


def test_state_resolves(project):
    result = foedus("states", "resolve", "Soviet Union", env_extra=project)
    assert result.returncode == 0 and "Russia (365, RUS" in result.stdout


@pytest.mark.parametrize("args", [["--first", "1700"], ["--last", "2031"], ["--first", "1990", "--last", "1950"]])
def test_years_outside_the_range(project, args):
    result = foedus("build", "--labels-only", *args, env_extra=project)
    assert_user_error(result, "year")
    assert not Path(project["FOEDUS_DATA_DIR"], "processed").exists()


def test_unknown_model_and_bad_folds(project):
    assert_user_error(foedus("backtest", "--models", "xgboost", env_extra=project), "unknown model xgboost")
    assert_user_error(foedus("backtest", "--folds", "1990-1980", env_extra=project), "first year is after")


@pytest.mark.parametrize("command", [["backtest", "--models", "base-rate"], ["train", "--model", "base-rate"],
                                     ["compare"]])
def test_an_unreachable_tracking_server_fails_at_once_before_any_build_or_training(project, command):
    from foedus.ui import free_port

    uri = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    result = foedus(*command, env_extra={**project, "MLFLOW_TRACKING_URI": uri})
    assert_user_error(result, f"the MLflow tracking server {uri} (MLFLOW_TRACKING_URI) does not answer",
                      "unset MLFLOW_TRACKING_URI")
    assert not Path(project["FOEDUS_DATA_DIR"], "processed").exists(), "nothing was built"


def test_train_before_any_backtest_says_what_to_run(project, tmp_path):
    env = {**project, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'empty.db'}"}
    assert_user_error(foedus("train", "--model", "base-rate", env_extra=env), "run `foedus backtest")
    assert not Path(project["FOEDUS_DATA_DIR"], "processed").exists(), "said before any build"


def test_state_year_outside_the_range(project):
    assert_user_error(foedus("states", "resolve", "France", "--year", "1700", env_extra=project),
                      "1700 is outside 1816-2024")


@pytest.mark.parametrize("spec, fragment", [("atop:foo", "unknown obligation type 'foo'"),
                                            ("ucdp", "unknown label source")])
def test_unknown_label_spec(project, spec, fragment):
    result = foedus("build", "--labels-only", "--label-spec", spec, env_extra=project)
    assert_user_error(result, fragment)
    assert not Path(project["FOEDUS_DATA_DIR"], "processed").exists()


def test_main_job_runs_end_to_end_from_the_mirror(tmp_path, mirror):
    # the full job backtests five models on five folds per label (minutes); here two fast models, one fold.
    # Reports in a short folder: the summary table wraps a long path inside its cell
    reports = Path(tempfile.mkdtemp(prefix="foedus-reports-"))
    env = {"FOEDUS_HOME": str(ROOT), "FOEDUS_DATA_DIR": str(tmp_path / "data"), "FOEDUS_MIRROR": str(mirror),
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
           "FOEDUS_REPORTS_DIR": str(reports)}
    result = foedus_process("run", "--models", "base-rate,logit-threat", "--folds", "1990-1994", "--final-model",
                    "logit-threat", env_extra=env)
    assert result.returncode == 0, result.stderr
    assert "raw data verified" in result.stdout and "5,320" in result.stdout
    from foedus.features.years import NEXT_YEAR

    year = NEXT_YEAR - 1
    # both labels by default, each with its champion
    for spec in ("atop_any_h1", "atop_defense_h1"):
        assert f"foedus-onset-{spec} v1" in result.stdout and (tmp_path / "data" / "processed" /
                                                                f"dyad_years_{spec}.parquet").is_file()
    assert result.stdout.count("is the first champion") == 3  # any, defense, and this year's present-day model
    assert f"present-day logit-threat for {year}" in result.stdout
    assert f"foedus-onset-atop_any_h1-for{year} v1" in result.stdout
    # this year's ten likeliest new alliances, then what was written where
    assert f"Likeliest new alliances, atop:any:1, {year}" in result.stdout and "\n│ 10 │" in result.stdout
    assert "Main job done in" in result.stdout and "foedus ui" in result.stdout
    # progress: a step per backtest in the order they finish, the present-day model's too (2 x 2 + 1)
    assert "[1/" in result.stdout and "backtests: model 5 of 5 to finish" in result.stdout
    written = list(reports.glob("*/report.html"))
    assert len(written) == 1 and str(written[0]) in result.stdout.replace("\n", "")
    shutil.rmtree(reports)
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()


def test_features_list_prints_and_writes_the_catalogue(project, tmp_path):
    result = foedus("features", "list", env_extra=project)
    assert result.returncode == 0, result.stderr
    assert "cinc_stronger" in result.stdout and "cow_nmc (to 2022)" in result.stdout
    target = tmp_path / "docs" / "features.md"
    result = foedus("features", "list", "--markdown", str(target), env_extra=project)
    assert result.returncode == 0, result.stderr
    text = target.read_text()
    assert text.startswith("# Feature catalogue") and "| `log_cinc_ratio` |" in text


def cited_keys(bib: str) -> set[str]:
    return set(re.findall(r"^@\w+\{([^,\s]+),$", bib, flags=re.M))


def test_cite_has_help():
    result = foedus("cite", "--help")
    assert result.returncode == 0 and "Usage" in result.stdout and "--format" in result.stdout


def test_cite_gives_the_references_of_exactly_the_sources_a_build_uses(project):
    from foedus.features.citations import citations_for
    from foedus.infra.config import Paths
    from foedus.jobs import build

    paths = Paths(root=ROOT, data=Path(project["FOEDUS_DATA_DIR"]), mirror=Path(project["FOEDUS_MIRROR"]))
    sidecar = json.loads(build("atop:any:1", 1946, 1947, paths=paths).path.with_suffix(".json").read_text())
    result = foedus("cite", "-l", "atop:any:1", env_extra=project)  # no full build yet: computed from the spec
    assert result.returncode == 0, result.stderr
    cited = cited_keys(result.stdout)
    assert cited == {ref.key for ref in citations_for(sidecar["sources"], paths)}
    assert {"leedsetal2002atop", "gibleretal2016amid", "miller2022peacesciencer"} <= cited
    assert "bensonclinton2016avfma" not in cited and "gibler2009ima" not in cited  # no feature reads them

    # a build's sidecar is what counts: an older build that read no IGO data cites no IGO article
    del sidecar["sources"]["cow_igo_ndy"]
    (paths.processed / "dyad_years_atop_any_h1.json").write_text(json.dumps(sidecar))
    result = foedus("cite", "-l", "atop:any:1", env_extra=project)
    assert "sidecar" in result.stderr and cited_keys(result.stdout) == cited - {"pevehouseetal2020tow",
                                                                               "wallacesinger1970igo"}


def test_cite_all_and_cow_labels(project):
    everything = cited_keys(foedus("cite", "--all", env_extra=project).stdout)
    assert "bensonclinton2016avfma" in everything and len(everything) == 29
    cow = cited_keys(foedus("cite", "-l", "cow:any:1", env_extra=project).stdout)
    assert "gibler2009ima" in cow and "leedsetal2002atop" not in cow


def test_cite_writes_text_to_a_file(project, tmp_path):
    target = tmp_path / "refs" / "references.txt"
    result = foedus("cite", "--format", "text", "--output", str(target), env_extra=project)
    assert result.returncode == 0, result.stderr
    lines = target.read_text(encoding="utf-8").splitlines()
    assert any(line.startswith("Leeds, B. A., Ritter, J. M., Mitchell, S. M., & Long, A. G. (2002).") for line in lines)
    assert f"to {target}" in result.stdout and not list(target.parent.glob(".*.part"))


@pytest.mark.parametrize("args, fragment", [(["-l", "atop:foo"], "unknown obligation type 'foo'"),
                                            (["--format", "ris"], "unknown citation format 'ris'")])
def test_cite_bad_input(project, tmp_path, args, fragment):
    target = tmp_path / "refs.bib"
    assert_user_error(foedus("cite", *args, "--output", str(target), env_extra=project), fragment)
    assert not target.exists()
