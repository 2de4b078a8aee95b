"""Alliance state per undirected dyad-year, from ATOP 5.1 or COW v4.1.

How the field codes it (peacesciencer does the same):

- The source rows are directed and ATOP's obligation flags are directional (row (a, b) says
  what a owes b), so an undirected pair is allied under a type in a year when the flag is 1
  in either direction.
- "any" means at least one obligation flag is 1, not merely that a row exists: ATOP has
  directed rows with all flags 0 (a shared treaty with no obligation between those two).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from foedus.features.readers.alliances import ATOP_FLAGS, COW_FLAGS
from foedus.features.universe import undirected


@dataclass(frozen=True)
class AllianceSource:
    name: str  # "atop" or "cow"
    source_key: str  # raw source in the manifest
    flags: dict[str, str]  # obligation type -> flag column

    @property
    def obligations(self) -> tuple[str, ...]:
        return ("any", *self.flags)


ALLIANCE_SOURCES: dict[str, AllianceSource] = {
    "atop": AllianceSource(
        "atop",
        "atop_alliance",
        dict(zip(["defense", "offense", "neutrality", "nonaggression", "consultation"], ATOP_FLAGS)),
    ),
    "cow": AllianceSource(
        "cow",
        "cow_alliance",
        dict(zip(["defense", "neutrality", "nonaggression", "entente"], COW_FLAGS)),
    ),
}


def alliance_state(directed: pd.DataFrame, source: AllianceSource) -> pd.DataFrame:
    """Undirected dyad-years with at least one obligation, with one bool column per type.

    Returns ccode1 < ccode2, year, and columns ``any`` and each obligation type of the source
    (``defense``, ...). Pairs with a row but no obligation in either direction are dropped.
    """
    flags = list(source.flags.values())
    both = undirected(directed[["ccode1", "ccode2", "year", *flags]])
    state = both.groupby(["ccode1", "ccode2", "year"], sort=True)[flags].max() == 1
    state = state.rename(columns={col: typ for typ, col in source.flags.items()})
    state.insert(0, "any", state.any(axis=1))
    return state[state["any"]].reset_index()


def coverage(directed: pd.DataFrame) -> tuple[int, int]:
    """First and last year the alliance source codes (years outside it are unknown, not 0)."""
    return int(directed["year"].min()), int(directed["year"].max())
