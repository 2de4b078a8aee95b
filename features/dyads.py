"""What a feature family works on: the dyad-years to describe and the source tables.

``Dyads`` wraps the universe (ccode1 < ccode2, year) as numpy arrays and offers the few
vectorised look-ups every family needs, always lagged: a value "for year t" is read from
the source at year t - ``lag`` (1 by default), so no feature of year t sees year t.

``Sources`` holds the typed source tables and the years each covers. A family reads only
the sources it declares (it gets a view, ``Sources.only``, and any other read raises), so a
build can run on sources cut at a vintage year.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar

import numpy as np
import pandas as pd
from foedus.features.universe import dyad_year_key

T = TypeVar("T")


class UndeclaredSource(LookupError):
    """A family read a source it does not declare: a bug in the family, not in the data."""


class _Declared(Mapping):
    """``mapping`` as seen by ``reader``: any key outside ``declared`` raises ``UndeclaredSource``.

    Not a KeyError, so that even ``key in view`` raises: testing for an undeclared source is
    reading it.
    """

    def __init__(self, mapping: Mapping, declared: Iterable[str], reader: str):
        self._mapping, self._declared, self._reader = mapping, tuple(declared), reader

    def __getitem__(self, key):
        if key not in self._declared:
            raise UndeclaredSource(f"{self._reader} read source '{key}' it does not declare")
        return self._mapping[key]

    def __iter__(self) -> Iterator:
        return (key for key in self._declared if key in self._mapping)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Memo:
    """Values made once and then shared, also between threads (one lock per value)."""

    def __init__(self):
        self._values: dict = {}
        self._locks: dict = {}
        self._guard = threading.Lock()

    def get(self, key, make: Callable[[], T]) -> T:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # a second caller waits for the first one's value instead of making it again
            if key not in self._values:
                self._values[key] = make()
            return self._values[key]

    def forget(self, source: str) -> None:
        """Drop what was derived from ``source`` (keys start with the source's key)."""
        with self._guard:
            for key in [key for key in self._values if key[0] == source]:
                del self._values[key]


@dataclass
class Sources:
    """Source tables by key, with the (first, last) year each covers. The tables are never
    changed once loaded: what is derived from them is made once and shared (``derived``)."""

    tables: Mapping[str, pd.DataFrame]
    coverage: Mapping[str, tuple[int, int]]
    memo: _Memo = field(default_factory=_Memo, repr=False, compare=False)  # shared by the views of ``only``

    def __getitem__(self, key: str) -> pd.DataFrame:
        if key not in self.tables:
            raise KeyError(f"source '{key}' was not loaded for this build")
        return self.tables[key]

    def covers(self, key: str, years: np.ndarray) -> np.ndarray:
        """Boolean array: does source ``key`` cover each of ``years``?"""
        first, last = self.coverage[key]
        return (years >= first) & (years <= last)

    def only(self, keys: Iterable[str], reader: str) -> Sources:
        """A view of the sources ``keys`` alone, for ``reader`` (e.g. "family threat"): reading
        any other source raises ``UndeclaredSource`` naming the reader and the source."""
        keys = tuple(keys)
        return Sources(_Declared(self.tables, keys, reader), _Declared(self.coverage, keys, reader), self.memo)

    def derived(self, key: str, what: tuple, make: Callable[[], T]) -> T:
        """``make()``: a table derived from source ``key`` alone, ``what`` saying which (e.g. its
        foe matrices over a code list and years). Made once for these sources and shared by
        every family that asks for the same, so two families never build it twice."""
        self[key]  # only a reader that declares ``key`` may use what is derived from it
        return self.memo.get((key, *what), make)


@dataclass
class Dyads:
    """The undirected dyad-years to describe, sorted by year."""

    ccode1: np.ndarray
    ccode2: np.ndarray
    year: np.ndarray
    codes: np.ndarray = field(init=False)  # every COW code that appears, sorted

    def __post_init__(self):
        self.ccode1 = np.asarray(self.ccode1, dtype=np.int64)
        self.ccode2 = np.asarray(self.ccode2, dtype=np.int64)
        self.year = np.asarray(self.year, dtype=np.int64)
        if len(self.year) > 1 and (np.diff(self.year) < 0).any():
            raise ValueError("dyad-years must be sorted by year")
        if (self.ccode1 >= self.ccode2).any():
            raise ValueError("dyads must be undirected with ccode1 < ccode2")
        self.codes = np.union1d(self.ccode1, self.ccode2)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> Dyads:
        return cls(frame["ccode1"].to_numpy(), frame["ccode2"].to_numpy(), frame["year"].to_numpy())

    def __len__(self) -> int:
        return len(self.year)

    def years(self) -> Iterator[tuple[int, slice]]:
        """(year, slice of rows) for each year present; rows of one year are contiguous."""
        yield from self._year_rows

    @cached_property
    def _year_rows(self) -> list[tuple[int, slice]]:
        # sorted by year: a new year starts where the year changes (found once, every family loops over it)
        starts = np.flatnonzero(np.diff(self.year)) + 1
        bounds = [0, *starts.tolist(), len(self.year)] if len(self.year) else []
        return [(int(self.year[a]), slice(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]

    # --- look-ups -------------------------------------------------------------------------

    def state_values(self, table: pd.DataFrame, column: str, lag: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """``column`` of a state-year table (ccode, year) for each side, at year t - lag.

        Returns float arrays (side 1, side 2); NaN where the table has no row.
        """
        keys = table["ccode"].to_numpy(np.int64) * 10000 + table["year"].to_numpy(np.int64)
        index = pd.Index(keys)
        if not index.is_unique:
            raise ValueError(f"state-year table has duplicate (ccode, year) rows for {column}")
        # a trailing NaN lets position -1 (no row) read as missing
        values = np.append(table[column].to_numpy(dtype=float, na_value=np.nan), np.nan)
        out = []
        for codes in (self.ccode1, self.ccode2):
            out.append(values[index.get_indexer(codes * 10000 + self.year - lag)])
        return out[0], out[1]

    def dyad_rows(self, table: pd.DataFrame, lag: int = 1) -> np.ndarray:
        """The row (position) of each pair in a dyad-year table (ccode1, ccode2, year; either
        order) at t - lag, its first if it has several; -1 where it has none."""
        c1, c2 = table["ccode1"].to_numpy(), table["ccode2"].to_numpy()
        keys = dyad_year_key(np.minimum(c1, c2), np.maximum(c1, c2), table["year"].to_numpy())
        if len(keys) == 0:
            return np.full(len(self), -1)
        # a stable sort keeps a pair-year's rows in table order: the leftmost match is its first row
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        wanted = dyad_year_key(self.ccode1, self.ccode2, self.year - lag)
        pos = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
        return np.where(keys[pos] == wanted, order[pos], -1)

    def dyad_values(self, table: pd.DataFrame, column: str, lag: int = 1) -> np.ndarray:
        """``column`` of a dyad-year table (ccode1, ccode2, year; either order) at t - lag.

        Rows are matched whichever code is first; NaN where the table has no row.
        """
        rows = self.dyad_rows(table, lag)
        # a trailing NaN lets row -1 (none) read as missing
        return np.append(table[column].to_numpy(dtype=float, na_value=np.nan), np.nan)[rows]


class Columns(dict):
    """A family's output columns, each cast to the table's float32 as it is set: the values the
    build stores, while the float64 arrays they were computed in are freed one by one."""

    def __init__(self):  # starts empty: columns are set one by one, and cast as they are
        super().__init__()

    def __setitem__(self, name: str, values) -> None:
        super().__setitem__(name, np.asarray(values, dtype=np.float32))


def stronger_weaker(a: np.ndarray, b: np.ndarray, by_a: np.ndarray, by_b: np.ndarray):
    """Order a pair's values by another quantity: (value of the one with larger ``by``, other).

    Missing stays missing: where either ``by`` is missing, which state is stronger is unknown,
    so both results are missing (never the one known value twice). Where ``by`` ties, (max,
    min) of the values, missing if either is: the result never depends on which state has the
    lower code.
    """
    with np.errstate(invalid="ignore"):
        a_first, b_first = by_a > by_b, by_b > by_a
        unknown = np.isnan(by_a) | np.isnan(by_b)
        tied = ~(a_first | b_first | unknown)
        first = np.where(b_first, b, a)
        second = np.where(b_first, a, b)
        first = np.where(tied, np.maximum(a, b), first)
        second = np.where(tied, np.minimum(a, b), second)
        return np.where(unknown, np.nan, first), np.where(unknown, np.nan, second)


def min_max(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise (min, max), NaN if either side is NaN."""
    with np.errstate(invalid="ignore"):
        return np.minimum(a, b), np.maximum(a, b)
