"""The feature catalogue: every feature declared once, next to the code that computes it.

A family module creates a ``Family`` (its name and the sources it reads), declares each
column it produces with ``family.feature(name, unit, meaning, label=...)``, and registers its
compute function with ``@family.compute``. The build checks that a family returns exactly
the columns it declared; ``foedus features list`` prints this catalogue, and explanations and
plots name a feature by its declared ``label`` and leave year-wide features (``level="year"``)
out of a pair's reasons. Adding a feature is one declaration in its family's module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from foedus.features.dyads import Dyads, Sources

LAG = 1  # every feature of year t reads sources at years <= t - 1
# A pair-level feature can differ between the pairs of one year; a year-wide one (system
# size, era, coverage flags) takes one value for every pair of a year, so it can never say
# why one pair allied and another did not.
LEVELS = ("pair", "year")


@dataclass(frozen=True)
class Feature:
    name: str
    family: str
    sources: tuple[str, ...]
    unit: str
    meaning: str
    lag: int = LAG
    label: str = ""  # a few words a political scientist reads at once: "regime difference (extended UDS)"
    level: str = "pair"  # "pair" or "year" (see LEVELS)


@dataclass
class Family:
    """A feature family: one module, one compute function, several declared columns."""

    name: str
    sources: tuple[str, ...]
    doc: str
    features: list[Feature] = field(default_factory=list)
    fn: Callable[[Dyads, Sources], pd.DataFrame] | None = None

    def feature(self, name: str, unit: str, meaning: str, sources: tuple[str, ...] | None = None, lag: int = LAG,
                *, label: str, level: str = "pair") -> None:
        """Declare the column ``name``: its unit, one-line meaning, sources (default: the
        family's), lag, short ``label`` for explanations and plots, and ``level``."""
        if any(f.name == name for f in self.features):
            raise ValueError(f"feature {name} declared twice in family {self.name}")
        if level not in LEVELS or not label:
            raise ValueError(f"feature {name}: level must be one of {LEVELS} and the label must not be empty")
        sources = tuple(self.sources if sources is None else sources)
        self.features.append(Feature(name, self.name, sources, unit, meaning, lag, label, level))

    def compute(self, fn: Callable[[Dyads, Sources], pd.DataFrame]):
        self.fn = fn
        return fn

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.features]

    def __call__(self, dyads: Dyads, sources: Sources) -> pd.DataFrame:
        if self.fn is None:
            raise RuntimeError(f"family {self.name} has no compute function")
        # Missing values propagate as NaN by design: no warning for NaN arithmetic or log(0).
        with np.errstate(invalid="ignore", divide="ignore"):
            out = self.fn(dyads, sources.only(self.sources, f"family {self.name}"))
        if list(out.columns) != self.columns:
            missing = set(self.columns) - set(out.columns)
            extra = set(out.columns) - set(self.columns)
            raise RuntimeError(f"family {self.name} returned undeclared {sorted(extra)} / lacks {sorted(missing)}")
        if len(out) != len(dyads):
            raise RuntimeError(f"family {self.name} returned {len(out)} rows for {len(dyads)} dyad-years")
        return out.reset_index(drop=True)


def catalogue_frame(families: list[Family], coverage: dict[str, tuple[int, int]] | None = None,
                    citations: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """One row per feature: name, family, sources (with their last covered year), lag, unit, meaning,
    label and level; with ``citations`` (source -> its short references,
    ``citations.source_citations()``) a ``cite`` column."""
    rows = []
    for family in families:
        for f in family.features:
            srcs = ", ".join(
                f"{s} (to {coverage[s][1]})" if coverage and s in coverage else s for s in f.sources
            )
            rows.append({"name": f.name, "family": f.family, "sources": srcs, "lag": f.lag,
                         "unit": f.unit, "meaning": f.meaning, "label": f.label, "level": f.level})
            if citations is not None:
                rows[-1]["cite"] = "; ".join(dict.fromkeys(c for s in f.sources for c in citations.get(s, ())))
    return pd.DataFrame(rows)


def catalogue_markdown(families: list[Family], coverage: dict[str, tuple[int, int]] | None = None,
                       citations: dict[str, list[str]] | None = None) -> str:
    frame = catalogue_frame(families, coverage, citations)
    cite = citations is not None
    lines = [
        "# Feature catalogue",
        "",
        "Generated by `foedus features list --markdown`; do not edit by hand. Every feature of",
        "year t uses only source data for years up to t-1 (lag 1). A source that does not cover",
        "t-1 gives a missing value, never 0; the `covered_<source>` columns say which.",
        "",
    ]
    for family in families:
        lines += [f"## {family.name}", "", family.doc, "",
                  "| feature | label | level | sources | lag | unit | meaning |" + (" cite |" if cite else ""),
                  "|---|---|---|---|---|---|---|" + ("---|" if cite else "")]
        for row in frame[frame["family"] == family.name].itertuples():
            lines.append(f"| `{row.name}` | {row.label} | {row.level} | {row.sources} | {row.lag} | {row.unit} "
                         f"| {row.meaning} |" + (f" {row.cite} |" if cite else ""))
        lines.append("")
    return "\n".join(lines)
