"""Properties of the onset labels on random alliance histories, against a plain oracle.

The rules (features/labels.py), for a pair and year t under a spec (source, obligation, h)
and a staleness s:

- allied in y: some directed row of the pair in y, in either direction, has a flag of the
  obligation (for "any", any flag); the source knows y when it covers it;
- at_risk: not allied in t-1-s; missing if the source does not cover t-1-s;
- onset: missing unless the source covers t..t+h-1 (and, when s > 0, t-1); else false if
  the pair is not allied in t..t+h-1 (or, when s > 0, is allied in t-1); else at_risk
  (at risk, allied in the window: an onset; risk unknown: unknown).

The oracle below applies them one pair-year at a time, with sets and loops; the vectorised
code must agree on every row, and give the same labels whichever state a source row names
first and whatever the order of the universe.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from foedus.features.alliances import ALLIANCE_SOURCES, alliance_state
from foedus.features.labels import LabelSpec, label_dyad_years
from hypothesis import given, note, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True)
FEWER = settings(SETTINGS, max_examples=60)  # two labellings an example

CODES = (2, 200, 220, 255, 365)  # five states: ten pairs, enough for pairs with and without histories
PAIRS = [(a, b) for i, a in enumerate(CODES) for b in CODES[i + 1:]]


@st.composite
def histories(draw):
    """(directed rows, coverage, universe, spec, stale): a random alliance source and the
    dyad-years to label, some of them before or after the source's coverage."""
    source = draw(st.sampled_from(sorted(ALLIANCE_SOURCES)))
    flags = list(ALLIANCE_SOURCES[source].flags.values())
    first = draw(st.integers(1900, 1905), label="first year covered")
    last = draw(st.integers(first, first + 10), label="last year covered")
    # spells of directed rows: (ccode1, ccode2) in either order, a start, a length, the flags
    # (all zero is a row with no obligation, which ATOP has)
    spell = st.tuples(st.sampled_from(PAIRS), st.booleans(), st.integers(first, last), st.integers(0, 6),
                      st.lists(st.booleans(), min_size=len(flags), max_size=len(flags)))
    rows: dict[tuple[int, int, int], np.ndarray] = {}
    for (a, b), reverse, start, length, on in draw(st.lists(spell, max_size=8), label="spells"):
        if reverse:
            a, b = b, a
        for year in range(start, min(start + length, last) + 1):
            # one row per directed pair-year, as in the sources: overlapping spells add their flags
            rows[(a, b, year)] = rows.get((a, b, year), np.zeros(len(flags), dtype=bool)) | on
    directed = pd.DataFrame([(*key, *on.astype(np.int8)) for key, on in rows.items()],
                            columns=["ccode1", "ccode2", "year", *flags])
    directed = directed.astype({"ccode1": "int32", "ccode2": "int32", "year": "int32"})
    # the pairs' system years: any subset of a span reaching past the coverage on both sides
    # (one bit a year)
    span = range(first - 3, last + 4)
    masks = draw(st.lists(st.integers(0, 2 ** len(span) - 1), min_size=len(PAIRS), max_size=len(PAIRS)),
                 label="system years")
    universe = pd.DataFrame(
        [(a, b, year) for (a, b), mask in zip(PAIRS, masks) for i, year in enumerate(span) if mask >> i & 1],
        columns=["ccode1", "ccode2", "year"],
    ).astype("int32")
    obligation = draw(st.sampled_from(ALLIANCE_SOURCES[source].obligations))
    spec = LabelSpec(source, obligation, draw(st.integers(1, 4), label="horizon"))
    stale = draw(st.integers(0, 3) | st.just(0), label="stale")
    return directed, (first, last), universe, spec, stale


def oracle(directed, coverage, universe, spec, stale):
    """at_risk and onset of each universe row (None for missing), by the rules above."""
    first, last = coverage
    flags = ALLIANCE_SOURCES[spec.source].flags
    wanted = list(flags.values()) if spec.obligation == "any" else [flags[spec.obligation]]
    allied = {(min(r["ccode1"], r["ccode2"]), max(r["ccode1"], r["ccode2"]), r["year"])
              for r in directed.to_dict("records") if any(r[flag] == 1 for flag in wanted)}

    def known(year):
        return first <= year <= last

    at_risk, onset = [], []
    for a, b, t in universe[["ccode1", "ccode2", "year"]].itertuples(index=False):
        risk = (a, b, t - 1 - stale) not in allied if known(t - 1 - stale) else None
        window = range(t, t + spec.horizon)
        if not all(known(y) for y in window) or (stale and not known(t - 1)):
            began = None
        elif not any((a, b, y) in allied for y in window) or (stale and (a, b, t - 1) in allied):
            began = False
        else:
            began = risk
        at_risk.append(risk)
        onset.append(began)
    return at_risk, onset


def as_list(column: pd.Series) -> list:
    return [None if pd.isna(v) else bool(v) for v in column]


def labels(directed, coverage, universe, spec, stale):
    return label_dyad_years(universe, alliance_state(directed, spec.alliance_source), coverage, spec, stale)


def describe(directed, coverage, spec, stale) -> str:
    return f"spec {spec}, stale {stale}, coverage {coverage}, directed rows {directed.values.tolist()}"


@SETTINGS
@given(histories())
def test_labels_follow_the_rules_on_random_histories(history):
    directed, coverage, universe, spec, stale = history
    note(describe(directed, coverage, spec, stale))
    out = labels(directed, coverage, universe, spec, stale)
    assert str(out["at_risk"].dtype) == "boolean" and str(out["onset"].dtype) == "boolean"
    assert out[["ccode1", "ccode2", "year"]].equals(universe)
    expected = zip(*oracle(directed, coverage, universe, spec, stale))
    got = zip(as_list(out["at_risk"]), as_list(out["onset"]))
    for (a, b, t), row, right in zip(universe.itertuples(index=False), got, expected):
        assert row == right, f"{a}-{b} {t}: (at_risk, onset) {row}, expected {right}"


@FEWER
@given(histories(), st.randoms(use_true_random=False))
def test_labels_do_not_depend_on_which_state_a_row_names_first_nor_on_the_row_order(history, random):
    directed, coverage, universe, spec, stale = history
    note(describe(directed, coverage, spec, stale))
    out = labels(directed, coverage, universe, spec, stale)
    # each directed row read the other way round (its flags kept): the pair's alliance is the same
    flipped = directed.copy()
    turn = np.array([random.random() < 0.5 for _ in range(len(directed))], dtype=bool)
    flipped.loc[turn, ["ccode1", "ccode2"]] = directed.loc[turn, ["ccode2", "ccode1"]].to_numpy()
    # rows of both directions of one pair-year that now say the same pair: the flags of both
    flipped = flipped.groupby(["ccode1", "ccode2", "year"], as_index=False).max()
    shuffled_universe = universe.sample(frac=1, random_state=random.randrange(2**32))
    again = labels(flipped, coverage, shuffled_universe, spec, stale).sort_index()
    for column in ("at_risk", "onset"):
        assert as_list(again[column]) == as_list(out[column]), column


@FEWER
@given(histories())
def test_a_longer_horizon_keeps_every_onset_and_the_at_risk_set(history):
    directed, coverage, universe, spec, stale = history
    longer = LabelSpec(spec.source, spec.obligation, spec.horizon + 1)
    allied = alliance_state(directed, spec.alliance_source)
    short, long = (label_dyad_years(universe, allied, coverage, s, stale) for s in (spec, longer))
    assert as_list(short["at_risk"]) == as_list(long["at_risk"])
    for (a, b, t), before, after in zip(universe.itertuples(index=False), as_list(short["onset"]),
                                        as_list(long["onset"])):
        if after is not None:  # the longer window is known: so is the shorter one
            assert before is not None, f"{a}-{b} {t}"
            assert not before or after, f"{a}-{b} {t}: an onset within {spec.horizon} years but not within more"
