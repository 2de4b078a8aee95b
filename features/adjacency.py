"""Per-year adjacency matrices: who was whose foe, rival or ally in each year.

Features of a pair that involve third states are entries of matrix products. With W the 0/1
matrix of foe relations in a window (symmetric, zero diagonal), the number of third states
that were foes of both i and j is (W @ W)[i, j]; the diagonal is zero, so i and j themselves
never count. A family builds one dense n x n matrix per year over a fixed list of COW codes
(n is about 220), takes windows of years from cumulative sums, multiplies whole matrices
once per year and reads entry (i, j) for the dyads of that year.

The code list must not depend on which years the universe holds (a one-year build must give
the same values as a full one): use ``matrix_codes``, the dyads' codes, every COW member's
and every code of the sources, not the dyads' codes alone.

The threat and network families read the same foe, rivalry and membership matrices:
``dispute_foes``, ``rivalries`` and ``memberships`` make them once per build (``Sources.derived``)
and hand both families the same object when their code lists agree, as they do on the real
data (every alliance and COW MID code is a COW member's, or in GML or the rivalry data).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd
from foedus.features.dyads import Sources
from foedus.features.readers import READERS, SYSTEM
from foedus.features.readers.system import spell_last_years
from foedus.features.years import LAST_YEAR


def years_to_build(coverage: tuple[int, int], described: np.ndarray, history: bool) -> tuple[int, int]:
    """Years of a source to put in matrices for features of the ``described`` years t.

    Through the last t-1 described (never past the source); from the source's first year if
    the features look back (windows cut at the data's start, "ever", "years since"), else
    from the first t-1 described. No year t is ever in the matrices, so no feature can read it.
    """
    first, last = coverage
    lo = first if history else max(first, int(np.min(described)) - 1)
    return lo, min(last, int(np.max(described)) - 1)


def code_list(*code_arrays) -> np.ndarray:
    """The sorted union of COW codes: the rows and columns of every matrix of a build."""
    arrays = [np.asarray(a, dtype=np.int64).ravel() for a in code_arrays]
    return np.unique(np.concatenate(arrays)) if arrays else np.array([], dtype=np.int64)


def matrix_codes(dyad_codes: np.ndarray, sources: Sources, keys: tuple[str, ...], *more) -> np.ndarray:
    """A family's code list: the dyads' codes, every COW member's (``cw_system``), every code of
    the dyadic sources ``keys`` and of the ``more`` code arrays. With all members in it, the list
    of a one-year build is that of a full build, and families agree on it (and share matrices)
    unless their own sources name a code no other does."""
    pairs = [sources[key][column] for key in keys for column in ("ccode1", "ccode2")]
    return code_list(dyad_codes, sources[SYSTEM]["ccode"], *pairs, *more)


def positions(codes: np.ndarray, values) -> np.ndarray:
    """Row of each COW code in ``values`` within ``codes`` (every value must be listed)."""
    values = np.asarray(values, dtype=np.int64)
    pos = np.searchsorted(codes, values)
    if len(values) and ((pos >= len(codes)).any() or (codes[np.minimum(pos, len(codes) - 1)] != values).any()):
        raise ValueError("a COW code is missing from the code list of the matrices")
    return pos


class YearMatrices:
    """One symmetric 0/1 n x n matrix per year ``first..last`` over ``codes``.

    Entry (i, k) of year s is 1 when the pair is related that year (foes, rivals, allies).
    Years outside ``first..last`` are not covered: ask ``covers`` before reading them.
    """

    def __init__(self, codes: np.ndarray, first: int, last: int, stack: np.ndarray):
        self.codes, self.first, self.last = np.asarray(codes, dtype=np.int64), int(first), int(last)
        self.stack = stack  # (years, n, n) uint8
        if stack.shape != (max(self.last - self.first + 1, 0), len(self.codes), len(self.codes)):
            raise ValueError(f"stack of shape {stack.shape} does not match {first}-{last} over {len(codes)} codes")

    @classmethod
    def from_pairs(cls, ccode1, ccode2, year, codes: np.ndarray, first: int, last: int) -> YearMatrices:
        """1 in year s for every pair with a row in year s, in either order; rows outside
        ``first..last`` are ignored. Self-pairs never count (the diagonal stays 0)."""
        c1, c2, y = (np.asarray(a, dtype=np.int64) for a in (ccode1, ccode2, year))
        keep = (y >= first) & (y <= last) & (c1 != c2)
        p1, p2, k = positions(codes, c1[keep]), positions(codes, c2[keep]), y[keep] - first
        stack = np.zeros((max(last - first + 1, 0), len(codes), len(codes)), dtype=np.uint8)
        stack[k, p1, p2] = 1
        stack[k, p2, p1] = 1
        return cls(codes, first, last, stack)

    def covers(self, year: int) -> bool:
        return self.first <= year <= self.last

    def _check(self, year: int) -> int:
        if not self.covers(year):
            raise KeyError(f"year {year} is outside the matrices' years {self.first}-{self.last}")
        return year - self.first

    def at(self, year: int) -> np.ndarray:
        """The 0/1 matrix of ``year`` (float32, ready for matrix products)."""
        return self.stack[self._check(year)].astype(np.float32)

    @cached_property
    def _cumulative(self) -> np.ndarray:
        # cum[k] counts the years first..first+k-1 in which a pair is related
        cum = np.zeros((self.stack.shape[0] + 1, *self.stack.shape[1:]), dtype=np.int16)
        np.cumsum(self.stack, axis=0, dtype=np.int16, out=cum[1:])
        return cum

    def window(self, year: int, width: int) -> np.ndarray:
        """0/1: related in any year of ``year-width+1..year``; the window is cut at ``first``."""
        hi = self._check(year) + 1
        lo = max(hi - width, 0)
        return (self._cumulative[hi] - self._cumulative[lo] > 0).astype(np.float32)

    @cached_property
    def _last_related(self) -> np.ndarray:
        years = np.arange(self.first, self.last + 1, dtype=np.int16)[:, None, None]
        return np.maximum.accumulate(np.where(self.stack > 0, years, np.int16(-1)), axis=0)

    def last_year(self, year: int) -> np.ndarray:
        """The last year <= ``year`` in which each pair was related, -1 if never since ``first``."""
        return self._last_related[self._check(year)]


def foe_matrices(mids: pd.DataFrame, codes: np.ndarray, first: int, last: int) -> YearMatrices:
    """Foes in year s: the pair is on opposite sides of a MID that year (onset or ongoing).

    ``mids`` is a dispute-dyad-year table (GML or COW ``*_mid_ddydisps``); rows that pair
    two states on the same side (sidea1 == sidea2) are dropped, as they are allies in the
    dispute, not foes.
    """
    opposed = mids[mids["sidea1"].to_numpy() != mids["sidea2"].to_numpy()]
    return YearMatrices.from_pairs(opposed["ccode1"], opposed["ccode2"], opposed["year"], codes, first, last)


def rival_matrices(spells: pd.DataFrame, start: str, end: str, codes: np.ndarray, first: int, last: int
                   ) -> YearMatrices:
    """Rivals in year s: any of the pair's rivalry spells covers s (both ends inclusive)."""
    years = spell_years(spells["ccode1"], spells["ccode2"], spells[start], spells[end], first, last)
    return YearMatrices.from_pairs(years["ccode1"], years["ccode2"], years["year"], codes, first, last)


def spell_years(ccode1, ccode2, start, end, first: int, last: int) -> pd.DataFrame:
    """Pair-years (ccode1, ccode2, year) of spells, inclusive of both ends, within first..last.

    A pair with several spells gets each year once whichever spells cover it (spells merged).
    """
    c1, c2 = np.asarray(ccode1, dtype=np.int64), np.asarray(ccode2, dtype=np.int64)
    lo = np.maximum(np.asarray(start, dtype=np.int64), first)
    hi = np.minimum(np.asarray(end, dtype=np.int64), last)
    n = np.clip(hi - lo + 1, 0, None)
    offsets = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    years = np.repeat(lo, n) + offsets
    out = pd.DataFrame({"ccode1": np.repeat(c1, n), "ccode2": np.repeat(c2, n), "year": years})
    a, b = np.minimum(out["ccode1"], out["ccode2"]), np.maximum(out["ccode1"], out["ccode2"])
    return out.assign(ccode1=a, ccode2=b).drop_duplicates(ignore_index=True)


def state_year_values(table: pd.DataFrame, column: str, codes: np.ndarray, first: int, last: int) -> np.ndarray:
    """``column`` of a state-year table as a (years first..last, n codes) array; NaN where absent.

    Codes of the table that are not in ``codes`` are ignored.
    """
    out = np.full((max(last - first + 1, 0), len(codes)), np.nan)
    c, y = table["ccode"].to_numpy(np.int64), table["year"].to_numpy(np.int64)
    pos = np.minimum(np.searchsorted(codes, c), len(codes) - 1)
    keep = (codes[pos] == c) & (y >= first) & (y <= last)
    out[y[keep] - first, pos[keep]] = table[column].to_numpy(dtype=float, na_value=np.nan)[keep]
    return out


class SystemMembers:
    """Which of ``codes`` were COW system members at some time in each year (``cw_system`` spells).

    A spell ending on the list's last day (2016-12-31) is still running.
    """

    def __init__(self, system: pd.DataFrame, codes: np.ndarray, open_last: int = LAST_YEAR):
        self.first = int(system["start"].dt.year.min()) if len(system) else None
        if self.first is None:
            return
        start = system["start"].dt.year.to_numpy(np.int64)
        last = spell_last_years(system["end"], open_last).astype(np.int64)
        ccode = system["ccode"].to_numpy(np.int64)
        pos = np.minimum(np.searchsorted(codes, ccode), len(codes) - 1)
        listed = codes[pos] == ccode  # codes of the table that are not in ``codes`` are ignored
        years = np.arange(self.first, max(int(last.max()), self.first) + 1)
        alive = (start[:, None] <= years) & (last[:, None] >= years)  # spell x year
        member = np.zeros((len(codes), len(years)), dtype=bool)
        np.logical_or.at(member, pos[listed], alive[listed])  # a state with several spells
        self.by_year = member.T

    def at(self, year: int) -> np.ndarray | None:
        """Members in ``year``; None before the COW list begins (1816): unknown, not empty."""
        if self.first is None or year < self.first:
            return None
        if year - self.first >= len(self.by_year):
            return np.zeros(self.by_year.shape[1], dtype=bool)
        return self.by_year[year - self.first]


# --- matrices shared by the families of a build -------------------------------------------

def dispute_foes(sources: Sources, key: str, codes: np.ndarray, described: np.ndarray) -> YearMatrices:
    """``foe_matrices`` of the MID source ``key`` for features of the ``described`` years, from
    the source's first year on (windows, "ever", "years since"); made once per build."""
    first, last = years_to_build(sources.coverage[key], described, history=True)
    return sources.derived(key, ("foes", codes.tobytes(), first, last),
                           lambda: foe_matrices(sources[key], codes, first, last))


def rivalries(sources: Sources, key: str, codes: np.ndarray, described: np.ndarray) -> YearMatrices:
    """``rival_matrices`` of the rivalry source ``key`` for features of the ``described`` years
    (t-1 only); made once per build."""
    first, last = years_to_build(sources.coverage[key], described, history=False)
    start, end = READERS[key].years  # the spell's columns, as the source's reader declares them
    return sources.derived(key, ("rivals", codes.tobytes(), first, last),
                           lambda: rival_matrices(sources[key], start, end, codes, first, last))


def memberships(sources: Sources, codes: np.ndarray) -> SystemMembers:
    """``SystemMembers`` of ``codes`` from ``cw_system``; made once per build."""
    last = sources.coverage[SYSTEM][1]
    return sources.derived(SYSTEM, ("members", codes.tobytes()), lambda: SystemMembers(sources[SYSTEM], codes, last))
