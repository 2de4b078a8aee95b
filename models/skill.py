"""Skill by staleness: how much a forecast for a year past the data's end can know.

One row per staleness profile, all backtested on the same post-Cold War blocks
(``folds.PRESENT_FOLDS``): ``fresh`` (every source read at t-1, the ordinary model) and the
profile of each target year from the first past the label data to next year (each source as
stale as it is when forecasting that year, trained only on the onsets known then; see
``foedus.features.staleness``). The figures are those of continuing dyads (pairs that were a
system dyad in t-1), the project's headline slice.
"""

from __future__ import annotations

import json

import pandas as pd
from foedus.features.staleness import staleness_of

COLUMNS = ("target", "label_staleness", "median_staleness", "max_staleness", "stale_sources",
           "continuing_dyad_average_precision", "median_onset_percentile", "brier", "onset_rate",
           "onsets", "dyad_years", "average_precision", "profile", "run_id")


def skill_row(result, vintage: dict | None, label_source: str) -> dict:
    """The table row of one profile's ``BacktestResult``; ``vintage`` its build's (None: fresh)."""
    continuing = result.slices["continuing_dyad"]
    stale = staleness_of(vintage)
    sources = [d for key, d in stale.items() if "." not in key]
    return {
        "target": "fresh" if vintage is None else str(vintage["target"]),
        "label_staleness": stale.get(label_source, 0),
        "median_staleness": float(pd.Series(sources).median()) if sources else 0.0,
        "max_staleness": max(sources, default=0),
        "stale_sources": sum(d > 0 for d in sources),
        "continuing_dyad_average_precision": continuing["average_precision"],
        "median_onset_percentile": continuing["median_onset_percentile"],
        "brier": continuing["brier"],
        "onset_rate": continuing["onsets"] / continuing["n"],
        "onsets": int(continuing["onsets"]),
        "dyad_years": int(continuing["n"]),
        "average_precision": result.pooled["average_precision"],
        "profile": "fresh" if vintage is None else vintage["profile"],
        "run_id": result.run_id,
    }


def skill_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(COLUMNS))


def brier_skill(table: pd.DataFrame) -> pd.Series:
    """1 - Brier / the Brier of always forecasting the slice's own onset rate: the share of the
    base rate's error the model removes (0: no better than the rate; the rate differs between
    profiles, as the at-risk set does, so raw Brier scores do not compare)."""
    rate = table["onset_rate"]
    return 1 - table["brier"] / (rate * (1 - rate))


def markdown(table: pd.DataFrame, spec) -> str:
    """The table as the README shows it."""
    lines = [f"| {spec} target | label source stale | sources stale | median / max staleness | "
             "continuing-dyad AP | median onset percentile | Brier | Brier skill | onset rate |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row, skill in zip(table.itertuples(), brier_skill(table)):
        lines.append(f"| {row.target} | {row.label_staleness} | {row.stale_sources} | "
                     f"{row.median_staleness:g} / {row.max_staleness} | {row.continuing_dyad_average_precision:.4f} | "
                     f"{row.median_onset_percentile:.1f} | {row.brier:.5f} | {skill:+.3f} | {row.onset_rate:.4f} |")
    return "\n".join(lines)


def to_json(table: pd.DataFrame) -> str:
    return json.dumps(table.to_dict("records"), indent=2, default=str)
