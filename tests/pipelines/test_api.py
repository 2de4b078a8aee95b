"""The notebook API: top-level names, lazily imported."""

import subprocess
import sys

import foedus


def test_top_level_api_resolves_and_builds(paths):
    assert foedus.resolve_state("UK").ccode == 200
    result = foedus.build("atop:any:1", 1990, 1995, paths=paths)
    assert result.path.name == "dyad_years_atop_any_h1_1990-1995.parquet" and result.path.is_file()
    assert result.table["year"].between(1990, 1995).all()
    assert result.counts.loc["1990-2024", "dyad_years"] == len(result.table)
    assert {"labelled_universe", "backtest", "cite", "RunResult"} <= set(dir(foedus))


def test_importing_features_does_not_load_the_cli_or_jobs():
    code = "import sys, foedus.features.labels; print('foedus.cli' in sys.modules, 'foedus.jobs' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
