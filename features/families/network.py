"""Alliance network and history (the label source, ATOP 5.1 or COW v4.1, in t-1).

Alliances cluster: states ally with their allies' allies (Cranmer, Desmarais & Menninga
2012), pairs with similar alliance portfolios share interests (Signorino & Ritter 1999), old
partners re-ally, and a state is unlikely to ally with a partner of its enemy. Every
feature reads the alliance source at t-1 or earlier, never year t (allied in t is what the
labels forecast). Allied means at least one obligation ('any', ``alliances.alliance_state``).

Definitions:

- ``alliance_s_score``: Signorino and Ritter's S on binary alliance ties, unweighted, over
  the COW system members of t-1 (``cw_system``), each state tied to itself:
  S = 1 - 2 H / N, where H is the number of members whose tie to i and to j differs and N
  the number of members. 1 = identical portfolios, -1 = opposite. Missing where either state
  is not a member in t-1 (a new state has no portfolio yet) and for 1816 (no COW list in 1815).
- ``years_since_allied``: t-1 minus the last year the two were allied (0 = allied in t-1);
  missing if never allied since the source begins (``ever_allied`` = 0 then).
- ``allied_to_partners_*``: third states allied to one of the two and a rival (TD, TSS in
  t-1) or MID foe (GML, t-10..t-1) of the other, each counted once.
- ``new_alliance_rate``, the alliance climate (year-wide): of the pairs of COW members in t-1
  not allied in t-2, the share allied in t-1. Alliances come in bursts (1945, decolonisation,
  the 1990s enlargements) that no pair feature foresees; last year's rate is the best known
  sign of this year's. Missing where t-2 is outside the source or t-1 has no member list.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from foedus.features.adjacency import (
    YearMatrices,
    dispute_foes,
    matrix_codes,
    memberships,
    positions,
    rivalries,
    years_to_build,
)
from foedus.features.alliances import ALLIANCE_SOURCES, AllianceSource, alliance_state
from foedus.features.catalogue import Family
from foedus.features.dyads import Dyads, Sources, min_max
from foedus.features.readers import GML, SYSTEM, TD, TSS

FOE_WINDOW = 10


def make_family(alliance: str = "atop") -> Family:
    """The network family read off ``alliance`` (atop or cow); same columns for both."""
    source = ALLIANCE_SOURCES[alliance]
    key = source.source_key
    family = Family(
        "network",
        (key, GML, TD, TSS, SYSTEM),
        f"Alliance network and history from the label source ({key}) in t-1, 'any' obligation. "
        "The S score is Signorino-Ritter's on binary ties over COW members in t-1, each state "
        "tied to itself. Years since allied is missing for pairs never allied (see ever_allied).",
    )
    own = (key,)
    family.feature("allies_min", "count of states", "states allied to it in t-1: the state with fewer", own,
                   label="allies of the less-allied state")
    family.feature("allies_max", "count of states", "states allied to it in t-1: the state with more", own,
                   label="allies of the better-allied state")
    family.feature("shared_allies", "count of states", "third states allied to both in t-1", own,
                   label="allies in common")
    family.feature("alliance_s_score", "similarity -1..1",
                   "Signorino-Ritter S of the two alliance portfolios in t-1 (binary, COW members, self-tie)",
                   (key, SYSTEM), label="similarity of alliance portfolios (S score)")
    family.feature("ever_allied", "0/1", "the two were allied in some year from the source's start to t-1", own,
                   label="allied before")
    family.feature("years_since_allied", "years",
                   "t-1 minus the last year the two were allied (0 = allied in t-1); missing if never", own,
                   label="years since last allied")
    family.feature("allied_to_partners_rival_td", "count of states",
                   "third states allied to one and a strategic rival of the other in t-1 (Thompson-Dreyer)", (key, TD),
                   label="allies of one that are rivals of the other (Thompson-Dreyer)")
    family.feature("allied_to_partners_rival_tss", "count of states",
                   "third states allied to one and a rival of the other in t-1 (Thompson-Sakuwa-Suzuki)", (key, TSS),
                   label="allies of one that are rivals of the other (Thompson-Sakuwa-Suzuki)")
    family.feature("allied_to_partners_foe", "count of states",
                   "third states allied to one in t-1 and a MID foe of the other in t-10..t-1 (GML)", (key, GML),
                   label="allies of one that are foes of the other (MIDs)")
    family.feature("new_alliance_rate", "share 0..1",
                   "of the pairs of COW members in t-1 not allied in t-2, the share allied in t-1 (the same for "
                   "every pair of a year)", (key, SYSTEM), level="year",
                   label="new alliances in the system last year (alliance climate)")
    family.compute(lambda dyads, sources: network(dyads, sources, source, family.columns))
    return family


def partners_opponents(allies: np.ndarray, opponents: np.ndarray) -> np.ndarray:
    """Distinct third states k allied to one of a pair and opposed to the other.

    (A @ O)[i, j] counts k allied to i and opposed to j, its transpose the reverse; a k that
    is both ally and opponent of both would count twice, so it is taken off once.
    """
    one_way = allies @ opponents
    both = allies * opponents
    return one_way + one_way.T - both @ both


def s_score(allies: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Signorino-Ritter S for every pair: binary ties over ``members``, each state tied to itself."""
    ties = allies + np.eye(len(allies), dtype=allies.dtype)
    counted = ties * members  # only members' columns enter the portfolio
    agree = counted @ ties  # members tied to both
    degree = counted.sum(axis=1)
    differ = degree[:, None] + degree[None, :] - 2 * agree
    return 1 - 2 * differ / members.sum()


def new_alliance_rate(before: np.ndarray, after: np.ndarray, members: np.ndarray) -> float:
    """Of the member pairs not allied in ``before``, the share allied in ``after`` (0/1 matrices)."""
    pairs = np.triu(np.outer(members, members), k=1).astype(bool)
    open_pairs = pairs & (before == 0)
    return float((after[open_pairs] > 0).sum() / open_pairs.sum()) if open_pairs.any() else float("nan")


def network(dyads: Dyads, sources: Sources, source: AllianceSource, columns: list[str]) -> pd.DataFrame:
    key = source.source_key
    out = {name: np.full(len(dyads), np.nan, dtype=np.float32) for name in columns}  # the table's type: half the memory
    allied = alliance_state(sources[key], source)
    codes = matrix_codes(dyads.codes, sources, (GML, TD, TSS), allied["ccode1"], allied["ccode2"])
    p1, p2 = positions(codes, dyads.ccode1), positions(codes, dyads.ccode2)
    alliances = YearMatrices.from_pairs(allied["ccode1"], allied["ccode2"], allied["year"], codes,
                                        *years_to_build(sources.coverage[key], dyads.year, history=True))
    foes = dispute_foes(sources, GML, codes, dyads.year)
    rivals = {k: rivalries(sources, k, codes, dyads.year) for k in (TD, TSS)}
    members_in = memberships(sources, codes)

    for t, rows in dyads.years():
        s = t - 1
        if not alliances.covers(s):
            continue
        a, b = p1[rows], p2[rows]
        allies = alliances.at(s)
        degree = allies.sum(axis=1)
        out["allies_min"][rows], out["allies_max"][rows] = min_max(degree[a], degree[b])
        out["shared_allies"][rows] = (allies @ allies)[a, b]
        last = alliances.last_year(s)[a, b].astype(float)
        out["ever_allied"][rows] = last >= 0
        out["years_since_allied"][rows] = np.where(last >= 0, s - last, np.nan)
        members = members_in.at(s)
        if members is not None:
            both_members = members[a] & members[b]
            out["alliance_s_score"][rows] = np.where(both_members, s_score(allies, members)[a, b], np.nan)
            if alliances.covers(s - 1):
                out["new_alliance_rate"][rows] = new_alliance_rate(alliances.at(s - 1), allies, members)
        for k, name in ((TD, "rival_td"), (TSS, "rival_tss")):
            if rivals[k].covers(s):
                out[f"allied_to_partners_{name}"][rows] = partners_opponents(allies, rivals[k].at(s))[a, b]
        if foes.covers(s):
            out["allied_to_partners_foe"][rows] = partners_opponents(allies, foes.window(s, FOE_WINDOW))[a, b]
    return pd.DataFrame(out, copy=False)


FAMILY = make_family("atop")
