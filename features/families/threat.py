"""Shared threats (GML and COW MIDs, Thompson-Dreyer and TSS rivalries, territorial threat).

Balance-of-threat theory (Walt 1987) expects states to ally against a common threat: two
states that face the same foes or the same strategic rivals should be likelier partners,
and two states that threaten each other less likely.

Definitions (every window ends at t-1 and is cut at the data's first year, 1816):

- Foes in a window: on opposite sides (sidea1 != sidea2) of a MID dyad-year of the window,
  onset or ongoing year alike. Common foes are third states (never i or j) that were foes of
  both; the two foe relations may come from different disputes. With W the window's 0/1
  foe matrix, common foes of i and j = (W @ W)[i, j].
- Rivals in t-1: any rivalry spell of the pair covers t-1 (spells inclusive, merged per
  pair). A common rival must be a COW system member in t-1 (``cw_system``): this drops the
  rivalry data's few codes that are not COW states (324, Venice) and rivalries the data date
  from before COW lists the state (e.g. Burma 1816-1826). Membership in t-1, unlike "the
  code is somewhere on the list", is the same whether the sources are cut at t-1 or not.
  The pair's own rivalry flags read the rivalry data as published. Common-rival counts are
  missing for 1816 (no COW list in 1815).
- A state's own threat environment counts third states only (its foes other than the
  partner), so it does not repeat the threat between the two.
- ``shared_threat``: 1 if a common foe in 10 years (GML) or a common rival (TD or TSS) is
  known; 0 only if all three are known and zero; otherwise missing. So 1817-2011 are 0/1,
  2012-2021 (only TSS known) are 1 or missing, later years missing.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from foedus.features.adjacency import (
    SystemMembers,
    YearMatrices,
    code_list,
    dispute_foes,
    foe_matrices,
    matrix_codes,
    memberships,
    positions,
    rivalries,
    state_year_values,
)
from foedus.features.catalogue import Family
from foedus.features.dyads import Dyads, Sources, min_max
from foedus.features.readers import COWMID, GML, NMC, READERS, SYSTEM, TD, TERR, TSS

log = logging.getLogger(__name__)

FAMILY = Family(
    "threat",
    (GML, COWMID, TD, TSS, TERR, NMC, SYSTEM),
    "Shared threats. Foes are states on opposite sides of a militarized dispute (GML MIDs to "
    "2010, COW MIDs to 2014, onset or ongoing years) in a window ending at t-1; common foes and "
    "rivals are third states, never the pair itself; a common rival must be a COW system member "
    "in t-1. A state's own foes exclude its partner. `shared_threat` is 1 if any common foe "
    "(10 years, GML) or common rival (TD or TSS) is known, 0 only if all three are known and "
    "zero, else missing: 1817-2011 are 0/1, 2012-2021 (only TSS known) are 1 or missing.",
)

COUNT, CINC = "count of states", "share of system capabilities"
FAMILY.feature("common_foes_5y", COUNT, "third states that were MID foes of both in t-5..t-1 (GML)", (GML,),
               label="common foes, last 5 years (MIDs)")
FAMILY.feature("common_foes_10y", COUNT, "third states that were MID foes of both in t-10..t-1 (GML)", (GML,),
               label="common foes, last 10 years (MIDs)")
FAMILY.feature("common_foe_cinc_10y", CINC,
               "summed CINC in t-1 of the common foes of t-10..t-1 (GML; a foe without NMC row adds 0)",
               (GML, NMC), label="capabilities of the common foes (CINC)")
FAMILY.feature("common_foes_10y_cowmid", COUNT,
               "third states that were MID foes of both in t-10..t-1, from COW MIDs (to 2014) instead of GML",
               (COWMID,), label="common foes, last 10 years (COW MIDs)")
FAMILY.feature("common_rivals_td", COUNT,
               "third states (COW members in t-1) that were strategic rivals of both in t-1 (Thompson-Dreyer)",
               (TD, SYSTEM), label="common strategic rivals (Thompson-Dreyer)")
FAMILY.feature("common_rivals_tss", COUNT,
               "third states (COW members in t-1) that were rivals of both in t-1 (Thompson-Sakuwa-Suzuki)",
               (TSS, SYSTEM), label="common rivals (Thompson-Sakuwa-Suzuki)")
FAMILY.feature("foes_10y_min", COUNT, "MID foes in t-10..t-1 other than the partner: the fewer (GML)", (GML,),
               label="own foes of the less embattled state (10 years)")
FAMILY.feature("foes_10y_max", COUNT, "MID foes in t-10..t-1 other than the partner: the more (GML)", (GML,),
               label="own foes of the more embattled state (10 years)")
FAMILY.feature("foe_cinc_10y_min", CINC,
               "summed CINC in t-1 of a state's foes of t-10..t-1 other than the partner: the smaller (GML)",
               (GML, NMC), label="capabilities of the less threatened state's foes (CINC)")
FAMILY.feature("foe_cinc_10y_max", CINC,
               "summed CINC in t-1 of a state's foes of t-10..t-1 other than the partner: the larger (GML)",
               (GML, NMC), label="capabilities of the more threatened state's foes (CINC)")
FAMILY.feature("terrthreat_min", "latent score", "latent territorial threat (lterrthreat) in t-1: the lower", (TERR,),
               label="territorial threat to the less threatened state")
FAMILY.feature("terrthreat_max", "latent score", "latent territorial threat (lterrthreat) in t-1: the higher", (TERR,),
               label="territorial threat to the more threatened state")
FAMILY.feature("joint_foes_10y", COUNT,
               "joint threat: distinct third states that were MID foes of either in t-10..t-1 (GML)", (GML,),
               label="foes of either state (10 years)")
FAMILY.feature("joint_foe_cinc_10y", CINC,
               "joint threat: summed CINC in t-1 of the distinct third states that were foes of either (GML)",
               (GML, NMC), label="capabilities of the foes of either state (CINC)")
FAMILY.feature("disputes_10y", "count of disputes",
               "distinct MIDs (dispnum) with the two on opposite sides in t-10..t-1 (GML)", (GML,),
               label="disputes between the two (10 years)")
FAMILY.feature("years_since_dispute", "years",
               "t-1 minus the last year the two were on opposite sides of a MID (0 = in t-1); "
               "missing for a pair with none since 1816 (ever_disputed = 0 says so) (GML)",
               (GML,), label="years since the two last clashed (MID)")
FAMILY.feature("ever_disputed", "0/1", "the two were on opposite sides of a MID in some year 1816..t-1 (GML)", (GML,),
               label="ever in a dispute with each other")
FAMILY.feature("rivals_td", "0/1", "the two were strategic rivals of each other in t-1 (Thompson-Dreyer)", (TD,),
               label="rivals of each other (Thompson-Dreyer)")
FAMILY.feature("rivals_tss", "0/1", "the two were rivals of each other in t-1 (Thompson-Sakuwa-Suzuki)", (TSS,),
               label="rivals of each other (Thompson-Sakuwa-Suzuki)")
FAMILY.feature("shared_threat", "0/1",
               "1 if a common foe (10y, GML) or common rival (TD or TSS) is known; 0 only if all three "
               "are known and zero; else missing (2012-2021: 1 or missing)",
               (GML, TD, TSS, SYSTEM), label="shared threat (common foe or rival)")

WINDOW, SHORT_WINDOW = 10, 5


def build_codes(dyads: Dyads, sources: Sources) -> np.ndarray:
    """Rows and columns of the matrices: the dyads' codes, COW members' and every code of the sources."""
    return matrix_codes(dyads.codes, sources, (GML, COWMID, TD, TSS))


def rivals(dyads: Dyads, sources: Sources, key: str, codes: np.ndarray) -> YearMatrices:
    spells = sources[key]
    on_list = set(sources[SYSTEM]["ccode"].tolist())
    strangers = ~(spells["ccode1"].isin(on_list) & spells["ccode2"].isin(on_list))
    if strangers.any():
        names = sorted({int(c) for c in spells.loc[strangers, ["ccode1", "ccode2"]].to_numpy().ravel()} - on_list)
        log.info("%s: %d rivalry spells name codes not on the COW list %s; they never count as a "
                 "common rival", key, int(strangers.sum()), names)
    return rivalries(sources, key, codes, dyads.year)


def disputes_in_window(mids: pd.DataFrame, width: int) -> pd.DataFrame:
    """Per undirected pair and year s: distinct disputes with the two on opposite sides in
    s-width+1..s. A dispute spanning several years of the window counts once."""
    opposed = mids[mids["sidea1"].to_numpy() != mids["sidea2"].to_numpy()]
    c1, c2 = opposed["ccode1"].to_numpy(np.int64), opposed["ccode2"].to_numpy(np.int64)
    base = pd.DataFrame({"ccode1": np.minimum(c1, c2), "ccode2": np.maximum(c1, c2),
                         "dispnum": opposed["dispnum"].to_numpy(np.int64),
                         "year": opposed["year"].to_numpy(np.int64)}).drop_duplicates()
    # a dispute active in year y lies in the windows ending at y..y+width-1
    spread = base.loc[base.index.repeat(width)].assign(
        year=lambda d: d["year"] + np.tile(np.arange(width), len(base)))
    spread = spread.drop_duplicates(["ccode1", "ccode2", "dispnum", "year"])
    return spread.groupby(["ccode1", "ccode2", "year"]).size().rename("disputes").reset_index()


def common_foes_of(sources: Sources, a: int, b: int, year: int, width: int = WINDOW, key: str = GML) -> list[int]:
    """The third states that were MID foes of both ``a`` and ``b`` in year-width..year-1."""
    first, last = sources.coverage[key]
    if not first <= year - 1 <= last:
        raise ValueError(f"{key} does not cover {year - 1}")
    mids = sources[key]
    codes = code_list([a, b], mids["ccode1"], mids["ccode2"])
    w = foe_matrices(mids, codes, first, year - 1).window(year - 1, width)
    i, j = positions(codes, [a, b])
    return codes[(w[i] > 0) & (w[j] > 0)].tolist()


@FAMILY.compute
def threat(dyads: Dyads, sources: Sources) -> pd.DataFrame:
    out = {name: np.full(len(dyads), np.nan, dtype=np.float32) for name in FAMILY.columns}  # the table's type
    codes = build_codes(dyads, sources)
    p1, p2 = positions(codes, dyads.ccode1), positions(codes, dyads.ccode2)
    gml, cowmid = dispute_foes(sources, GML, codes, dyads.year), dispute_foes(sources, COWMID, codes, dyads.year)
    rival = {key: rivals(dyads, sources, key, codes) for key in (TD, TSS)}
    members_in = memberships(sources, codes)
    nmc_first, nmc_last = sources.coverage[NMC]
    cinc = state_year_values(sources[NMC], "cinc", codes, nmc_first, nmc_last)

    for t, rows in dyads.years():
        s = t - 1
        a, b = p1[rows], p2[rows]
        if gml.covers(s):
            w10, w5 = gml.window(s, WINDOW), gml.window(s, SHORT_WINDOW)
            common = w10 @ w10
            between = w10[a, b]  # the partner is not a third state
            foes = w10.sum(axis=1)
            own_a, own_b = foes[a] - between, foes[b] - between
            out["common_foes_5y"][rows] = (w5 @ w5)[a, b]
            out["common_foes_10y"][rows] = common[a, b]
            out["foes_10y_min"][rows], out["foes_10y_max"][rows] = min_max(own_a, own_b)
            out["joint_foes_10y"][rows] = own_a + own_b - common[a, b]
            last = gml.last_year(s)[a, b].astype(float)
            out["ever_disputed"][rows] = last >= 0
            # Never disputed is missing, not "years since 1815": counting from the data's start
            # would make the feature a clock, which trees extrapolate past the training years.
            out["years_since_dispute"][rows] = np.where(last >= 0, s - last, np.nan)
            if nmc_first <= s <= nmc_last:
                power = np.nan_to_num(cinc[s - nmc_first])  # a foe without an NMC row adds 0
                common_power = (w10 * power) @ w10
                foe_power = w10 @ power
                power_a, power_b = foe_power[a] - between * power[b], foe_power[b] - between * power[a]
                out["common_foe_cinc_10y"][rows] = common_power[a, b]
                out["foe_cinc_10y_min"][rows], out["foe_cinc_10y_max"][rows] = min_max(power_a, power_b)
                out["joint_foe_cinc_10y"][rows] = power_a + power_b - common_power[a, b]
        if cowmid.covers(s):
            w = cowmid.window(s, WINDOW)
            out["common_foes_10y_cowmid"][rows] = (w @ w)[a, b]
        members = members_in.at(s)
        for key, name in ((TD, "td"), (TSS, "tss")):
            if rival[key].covers(s):
                r = rival[key].at(s)
                out[f"rivals_{name}"][rows] = r[a, b]
                if members is not None:
                    out[f"common_rivals_{name}"][rows] = ((r * members) @ r)[a, b]

    covered = sources.covers(GML, dyads.year - 1)
    window_counts = disputes_in_window(sources[GML], WINDOW)
    counts = dyads.dyad_values(window_counts, "disputes") if len(window_counts) else np.zeros(len(dyads))
    out["disputes_10y"] = np.where(covered, np.nan_to_num(counts), np.nan)
    terr1, terr2 = dyads.state_values(sources[TERR], "lterrthreat")
    out["terrthreat_min"], out["terrthreat_max"] = min_max(terr1, terr2)
    out["shared_threat"] = shared_threat(out["common_foes_10y"], out["common_rivals_td"], out["common_rivals_tss"])
    return pd.DataFrame(out, copy=False)


def shared_threat(*components: np.ndarray) -> np.ndarray:
    """1 if any known component is positive; 0 if all are known and zero; else NaN."""
    stacked = np.column_stack(components)
    positive = (np.nan_to_num(stacked) > 0).any(axis=1)
    known = ~np.isnan(stacked).any(axis=1)
    return np.where(positive, 1.0, np.where(known, 0.0, np.nan))


def common_foe_years(sources: Sources, a: int, b: int, year: int, width: int = WINDOW,
                     key: str = GML) -> pd.DataFrame:
    """The common foes behind ``common_foes_10y`` of (``a``, ``b``) in ``year``, with when each
    clashed with them: one row per third state (``ccode``), ``years_a`` and ``years_b`` (the
    years in year-width..year-1 it was on the other side of a MID from ``a``, from ``b``).
    Empty when there is none; ``ValueError`` when ``key`` does not cover year-1."""
    first, last = sources.coverage[key]
    if not first <= year - 1 <= last:
        raise ValueError(f"{key} does not cover {year - 1}")
    mids = sources[key]
    in_window = (mids["year"] >= year - width) & (mids["year"] <= year - 1)
    opposed = mids.loc[in_window & (mids["sidea1"] != mids["sidea2"]), ["ccode1", "ccode2", "year"]]
    both_ways = pd.concat([opposed, opposed.rename(columns={"ccode1": "ccode2", "ccode2": "ccode1"})])

    def foes(side: int, partner: int) -> pd.Series:
        rows = both_ways[(both_ways["ccode1"] == side) & (both_ways["ccode2"] != partner)]
        return rows.groupby("ccode2")["year"].agg(lambda y: sorted(set(int(v) for v in y)))

    foes_a, foes_b = foes(a, b), foes(b, a)
    common = foes_a.index.intersection(foes_b.index).sort_values()
    return pd.DataFrame({"ccode": common.astype(int), "years_a": foes_a.reindex(common).to_list(),
                         "years_b": foes_b.reindex(common).to_list()})


def common_rivals_of(sources: Sources, a: int, b: int, year: int, key: str) -> list[int]:
    """The common rivals behind ``common_rivals_td`` / ``_tss`` of (``a``, ``b``) in ``year``:
    third states that were rivals of both in year-1 (``key``: TD or TSS) and COW members then."""
    first, last = sources.coverage[key]
    if not first <= year - 1 <= last:
        raise ValueError(f"{key} does not cover {year - 1}")
    start, end = READERS[key].years
    spells = sources[key]
    live = spells[(spells[start] <= year - 1) & (spells[end] >= year - 1)]

    def rivals(side: int) -> set[int]:
        return set(live.loc[live["ccode1"] == side, "ccode2"]) | set(live.loc[live["ccode2"] == side, "ccode1"])

    common = np.array(sorted(rivals(a) & rivals(b) - {a, b}), dtype=np.int64)
    if not common.size:
        return []
    members = SystemMembers(sources[SYSTEM], common, sources.coverage[SYSTEM][1]).at(year - 1)
    return [] if members is None else common[members].tolist()
