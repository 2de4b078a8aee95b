"""Alliance-onset labels for the dyad-year universe.

A ``LabelSpec`` (source, obligation type, horizon h) defines, for each dyad-year t:

- ``at_risk`` (the record convention): the label source does not record the pair as allied
  under that type in calendar year t-1, whether or not both states were system members in
  t-1. A pair entering or returning to the system (Poland 1945, the Baltic states 1991) is
  at risk unless the source records its alliance in t-1: an alliance recorded before the
  pair's first system year continues, it does not begin. Counting it as an onset would score
  the model on treaties the source already holds (UK-Poland, allied in ATOP through 1939-45,
  would "begin" an alliance in 1945); 415 such onsets inflated the old convention's scores.
  A pair the source records as allied in 1815 is not at risk in 1816.
- ``onset``: at risk, and allied under that type in some year of t..t+h-1.

Unknown is not zero: ``onset`` is missing when the window t..t+h-1 runs past the source's
coverage (ATOP 2018, COW 2012), and ``at_risk`` is missing when t-1 is outside it (COW's
labels for 1816, every label after the source's last year). Both columns are pandas nullable
booleans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from foedus.features.alliances import ALLIANCE_SOURCES, AllianceSource
from foedus.features.universe import dyad_year_key
from foedus.features.years import count_by_era
from foedus.infra.errors import InvalidInput

MAX_HORIZON = 20


@dataclass(frozen=True)
class LabelSpec:
    """Which alliances count as an onset: ``source`` (atop|cow), ``obligation``, ``horizon``."""

    source: str = "atop"
    obligation: str = "any"
    horizon: int = 1

    def __post_init__(self):
        if self.source not in ALLIANCE_SOURCES:
            raise InvalidInput(
                f"unknown label source '{self.source}': choose one of {', '.join(ALLIANCE_SOURCES)}"
            )
        allowed = ALLIANCE_SOURCES[self.source].obligations
        if self.obligation not in allowed:
            raise InvalidInput(
                f"unknown obligation type '{self.obligation}' for {self.source}: choose one of {', '.join(allowed)}"
            )
        if isinstance(self.horizon, bool) or not isinstance(self.horizon, int) or not 1 <= self.horizon <= MAX_HORIZON:
            raise InvalidInput(f"horizon {self.horizon!r} must be a whole number of years in 1-{MAX_HORIZON}")

    @classmethod
    def parse(cls, text: str) -> LabelSpec:
        """Read ``source:obligation:horizon`` (e.g. ``atop:defense:5``; later parts optional)."""
        parts = [p.strip().lower() for p in str(text).split(":")]
        if not 1 <= len(parts) <= 3 or not all(parts):
            raise InvalidInput(f"label spec '{text}' is not source[:obligation[:horizon]], e.g. atop:any:1")
        horizon = 1
        if len(parts) == 3:
            if not re.fullmatch(r"\d+", parts[2]):
                raise InvalidInput(f"label spec '{text}': horizon '{parts[2]}' is not a whole number of years")
            horizon = int(parts[2])
        return cls(parts[0], parts[1] if len(parts) > 1 else "any", horizon)

    @property
    def alliance_source(self) -> AllianceSource:
        return ALLIANCE_SOURCES[self.source]

    @property
    def name(self) -> str:
        return f"{self.source}_{self.obligation}_h{self.horizon}"

    def __str__(self) -> str:
        return f"{self.source}:{self.obligation}:{self.horizon}"


# The label spec of every command and function that is given none: ATOP, any obligation, h = 1.
DEFAULT_LABEL_SPEC = str(LabelSpec())


def as_label_spec(spec: LabelSpec | str) -> LabelSpec:
    """``spec`` itself, or parsed from text such as ``atop:defense:5``."""
    return spec if isinstance(spec, LabelSpec) else LabelSpec.parse(spec)


def _member(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """``np.isin(values, keys)`` by hashing the keys: np.isin sorts both, ten times slower here."""
    return pd.Index(values).isin(keys)


def label_dyad_years(
    universe: pd.DataFrame,
    allied: pd.DataFrame,
    source_years: tuple[int, int],
    spec: LabelSpec,
    stale: int = 0,
) -> pd.DataFrame:
    """Add ``at_risk`` and ``onset`` to ``universe`` (ccode1 < ccode2, year).

    ``allied`` is ``alliances.alliance_state(...)`` of the spec's source; ``source_years`` its
    coverage. Only the source's record decides ``at_risk``: system membership in t-1 does not.

    ``stale`` (a present-day model's, ``foedus.features.staleness``): the at-risk set is the
    one the source knew at t-1-stale (not allied then), as it is when forecasting past the
    source's end; ``onset`` is still the usual onset in t (allied in the window, not in t-1),
    so a pair that allied between t-stale and t-1 stays at risk and has no onset.
    """
    first, last = source_years
    c1, c2 = universe["ccode1"].to_numpy(), universe["ccode2"].to_numpy()
    year = universe["year"].to_numpy().astype(np.int64)
    typed = allied[allied[spec.obligation]]
    allied_keys = dyad_year_key(typed["ccode1"], typed["ccode2"], typed["year"])

    known_at = year - 1 - stale
    was_allied = _member(dyad_year_key(c1, c2, known_at), allied_keys)
    prev_known = (known_at >= first) & (known_at <= last)
    at_risk = pd.array(~was_allied, dtype="boolean")
    at_risk[~prev_known] = pd.NA

    allied_in_window = np.zeros(len(universe), dtype=bool)
    for k in range(spec.horizon):  # h is a few years: a loop over offsets, not over rows
        allied_in_window |= _member(dyad_year_key(c1, c2, year + k), allied_keys)
    window_known = (year >= first) & (year + spec.horizon - 1 <= last)
    if stale:  # the usual onset: a pair allied in t-1 (not yet known at t-1-stale) has none
        allied_in_window &= ~_member(dyad_year_key(c1, c2, year - 1), allied_keys)
        window_known &= year - 1 >= first
    onset = at_risk & pd.array(allied_in_window, dtype="boolean")
    onset[~window_known] = pd.NA
    return universe.assign(at_risk=at_risk, onset=onset)


def labelled(table: pd.DataFrame) -> np.ndarray:
    """The at-risk dyad-years whose onset is known: the rows rates are over and models learn from."""
    return (table["at_risk"].fillna(False) & table["onset"].notna()).to_numpy(dtype=bool)


def counts_by_era(labelled_table: pd.DataFrame) -> pd.DataFrame:
    """Dyad-years, at-risk dyad-years, onsets, missing onsets and onset rate per era and overall."""
    onset = labelled_table["onset"]
    counts = count_by_era(labelled_table["year"].to_numpy(), {
        "dyad_years": np.ones(len(labelled_table), dtype=bool),
        "at_risk": labelled_table["at_risk"].fillna(False).to_numpy(dtype=bool),
        "onsets": onset.fillna(False).to_numpy(dtype=bool),
        "onset_unknown": onset.isna().to_numpy(),
        "known": labelled(labelled_table),
    })
    # The rate is over at-risk dyad-years whose onset is known.
    counts["onset_rate"] = counts["onsets"] / counts.pop("known").replace(0, np.nan)
    return counts
