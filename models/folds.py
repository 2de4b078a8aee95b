"""Rolling-origin, strictly out-of-time folds.

Each fold tests on a block of years and trains only on labelled at-risk dyad-years whose
whole onset window ends before the block: with horizon h, a training row of year t sees
alliances up to t+h-1, so it must satisfy t + h - 1 < first test year. Tuning (LightGBM's
tree size, rounds and level, ``foedus.models.tuning``) happens inside the training years.

The default blocks follow the eras of the alliance system: the interwar years, the early
Cold War and decolonisation, detente, the post-Cold War enlargements, the 21st century.

A present-day model (``foedus.features.staleness``) forecasts with a label source d years
stale: when it forecasts year t, onsets are known only up to t-1-d. Its backtest trains on
what it would have known, rows with t + h - 1 + d < first test year: ``label_delay`` (h + d)
takes the horizon's place in ``split``, in the folds and in the tuning inside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from foedus.features.labels import labelled
from foedus.features.staleness import staleness_of
from foedus.infra.errors import InvalidInput


@dataclass(frozen=True)
class Fold:
    first: int  # first test year
    last: int  # last test year

    @property
    def name(self) -> str:
        return f"{self.first}-{self.last}"


DEFAULT_FOLDS = (Fold(1919, 1938), Fold(1946, 1969), Fold(1970, 1989), Fold(1990, 2004), Fold(2005, 2018))
# the backtests of present-day models: the post-Cold War blocks, what a forecast of today is like
PRESENT_FOLDS = DEFAULT_FOLDS[-2:]


def label_delay(spec, provenance: dict | None = None) -> int:
    """Years from a training row to the last year whose onsets its window needs, as the
    forecaster knows them: the horizon, plus the label source's staleness for a present-day
    model's table (its ``provenance["vintage"]``)."""
    vintage = (provenance or {}).get("vintage")
    if vintage is None:
        return spec.horizon
    return spec.horizon + staleness_of(vintage)[spec.alliance_source.source_key]


def parse_folds(text: str) -> tuple[Fold, ...]:
    """``"1919-1938,1946-1969"`` -> folds; blocks must be ordered and not overlap."""
    folds = []
    for part in text.split(","):
        try:
            first, last = (int(x) for x in part.strip().split("-"))
        except ValueError as exc:
            raise InvalidInput(f"fold '{part}' is not FIRST-LAST, e.g. 1946-1969") from exc
        folds.append(Fold(first, last))
    for a, b in zip(folds, folds[1:]):
        if b.first <= a.last:
            raise InvalidInput(f"folds {a.name} and {b.name} overlap or are out of order")
    if any(f.first > f.last for f in folds):
        raise InvalidInput("a fold's first year is after its last year")
    return tuple(folds)


def split(table: pd.DataFrame, fold: Fold, horizon: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (train, test) over ``table`` for one fold."""
    rows = labelled(table)
    years = table["year"].to_numpy()
    train = rows & (years + horizon - 1 < fold.first)
    test = rows & (years >= fold.first) & (years <= fold.last)
    return train, test
