"""The state registry: COW codes, abbreviations, names and system-membership spells.

``resolve_state`` turns what a user types into one state. It accepts, in this order:

1. a COW code (``2``, ``"710"``);
2. a COW abbreviation, case-insensitive (``USA``, ``CHN``, ``TAW``; note that COW's ``AUS``
   is Austria and ``AUL`` Australia);
3. a COW name or a historical name the COW list codes under another (``"Soviet Union"`` is
   365 Russia, ``"Prussia"`` 255 Germany, ``"West Germany"`` 260), ignoring case, dots and a
   leading "the";
4. any common form ``country_converter`` recognises (``"United States"``, ``"UK"``,
   ``"Czechia"``), mapped to COW through the ISO code of the COW names; where several COW
   states share that ISO code, the one that is a member most recently wins.

An unknown or ambiguous query raises ``StateNotFound`` listing the closest matches.
"""

from __future__ import annotations

import difflib
import importlib.resources
import logging
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import pandas as pd
from foedus.features.readers.system import spell_last_years
from foedus.features.years import check_year
from foedus.infra.errors import InvalidInput, StateNotFound

# Names the COW list does not use for a state it codes (historical names and common short forms).
ALIASES: dict[str, int] = {
    "soviet union": 365, "ussr": 365, "russian federation": 365, "russian empire": 365,
    "prussia": 255, "west germany": 260, "federal republic of germany": 260, "frg": 260,
    "east germany": 265, "gdr": 265, "ottoman empire": 640, "persia": 630, "siam": 800,
    "burma": 775, "zaire": 490, "ceylon": 780, "dahomey": 434, "upper volta": 439,
    "sardinia": 325, "piedmont": 325, "kingdom of sardinia": 325, "serbia": 345,
    "north vietnam": 816, "south vietnam": 817, "north yemen": 678, "south yemen": 680,
    "great britain": 200, "britain": 200, "england": 200, "holland": 210, "czechia": 316,
    "kampuchea": 811, "rhodesia": 552, "korea, south": 732, "korea, north": 731,
    "republic of korea": 732, "dprk": 731, "prc": 710, "roc": 713, "republic of china": 713,
}


# A query longer than this names no state (the longest COW name has 32 characters, the longest
# official name country_converter knows 52): country_converter's regexes take time quadratic in
# the text's length (10,000 characters: 14 s), so a longer query is refused before it gets there.
MAX_QUERY = 100


def _quoted(text: str, limit: int = 60) -> str:
    """``text`` in quotes for a one-line message: control characters and line breaks escaped
    (``Fr\\nance``), cut after ``limit`` characters of the escaped text."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text[:limit])
    cut = len(shown) > limit or len(text) > limit
    return "'" + shown[:limit] + ("..." if cut else "") + "'"


def _normalise(text: str) -> str:
    text = text.strip().lower().replace("&", " and ").replace(".", "")
    text = re.sub(r"\s+", " ", text)
    return re.sub(r"^the ", "", text)


@dataclass(frozen=True)
class State:
    """A COW state: code, abbreviation, name and its membership spells (start, end dates)."""

    ccode: int
    abb: str
    name: str
    spells: tuple[tuple[date, date], ...]

    def member_years(self) -> list[tuple[int, int]]:
        """Membership as (first year, last year) spells; an open spell runs to 2024."""
        lasts = spell_last_years([end for _, end in self.spells])
        return [(start.year, int(last)) for (start, _), last in zip(self.spells, lasts)]

    def is_member(self, year: int) -> bool:
        return any(first <= year <= last for first, last in self.member_years())

    def __str__(self) -> str:
        spells = ", ".join(f"{a}-{b}" for a, b in self.member_years())
        return f"{self.name} ({self.ccode}, {self.abb}; member {spells})"


class StateRegistry:
    """All COW states, built from the ``cw_system`` table (see ``features.readers.system``)."""

    def __init__(self, system: pd.DataFrame):
        self.states: dict[int, State] = {}
        for ccode, rows in system.sort_values(["ccode", "start"]).groupby("ccode", sort=True):
            first = rows.iloc[0]
            spells = tuple((s.date(), e.date()) for s, e in zip(rows["start"], rows["end"]))
            self.states[int(ccode)] = State(int(ccode), str(first["abb"]), str(first["name"]), spells)
        self._by_abb = {s.abb.upper(): s.ccode for s in self.states.values()}
        self._by_name = {_normalise(s.name): s.ccode for s in self.states.values()}
        self._by_name.update({name: code for name, code in ALIASES.items() if code in self.states})

    def names(self) -> dict[int, str]:
        """Every state's name by COW code."""
        return {code: state.name for code, state in self.states.items()}

    def __len__(self) -> int:
        return len(self.states)

    def __getitem__(self, ccode: int) -> State:
        return self.states[ccode]

    def resolve(self, query: str | int, year: int | None = None) -> State:
        """The one state ``query`` names; with ``year``, it must be a system member then."""
        state = self._lookup(query)
        if year is not None:
            year = check_year(year)
            if not state.is_member(year):
                raise InvalidInput(f"{state} was not a member of the state system in {year}")
        return state

    def _lookup(self, query: str | int) -> State:
        if isinstance(query, bool) or not isinstance(query, (int, str)):
            raise StateNotFound(f"cannot read {query!r} as a state: give a COW code, abbreviation or name")
        text = str(query).strip()
        if len(text) > MAX_QUERY:
            raise StateNotFound(f"no state matches {_quoted(text)}: {len(text):,} characters, "
                                f"longer than any state's name ({MAX_QUERY} at most)")
        if re.fullmatch(r"\d{1,3}", text):
            code = int(text)
            if code in self.states:
                return self.states[code]
            near = sorted(self.states, key=lambda c: abs(c - code))[:5]
            raise StateNotFound(
                f"no COW state has code {code}; nearest codes: "
                + ", ".join(f"{c} {self.states[c].name}" for c in near),
                [self.states[c].name for c in near],
            )
        if text.upper() in self._by_abb:
            return self.states[self._by_abb[text.upper()]]
        key = _normalise(text)
        if key in self._by_name:
            return self.states[self._by_name[key]]
        return self._via_country_converter(text)

    def _via_country_converter(self, text: str) -> State:
        iso = _to_iso3([text])[0]
        if isinstance(iso, list):
            names = [self._describe_iso(code) for code in iso]
            raise StateNotFound(f"{_quoted(text)} is ambiguous: it matches {', '.join(names)}; be more specific",
                                names)
        candidates = [code for code, code_iso in self._iso_of_states().items() if code_iso == iso] if iso else []
        if candidates:
            latest = max(candidates, key=lambda c: self.states[c].spells[-1][1])
            tied = [c for c in candidates if self.states[c].spells[-1][1] == self.states[latest].spells[-1][1]]
            if len(tied) == 1:
                return self.states[latest]
            names = [f"{self.states[c].name} ({c})" for c in tied]
            raise StateNotFound(f"{_quoted(text)} is ambiguous: it matches {', '.join(names)}; give the COW code",
                                names)
        close = self.closest(text)
        hint = f"; closest matches: {', '.join(close)}" if close else ""
        raise StateNotFound(f"no state matches {_quoted(text)}{hint}", close)

    def closest(self, text: str, n: int = 5) -> list[str]:
        choices = {**{k: v for k, v in self._by_name.items()}, **{a.lower(): c for a, c in self._by_abb.items()}}
        hits = difflib.get_close_matches(_normalise(text), list(choices), n=n * 2, cutoff=0.5)
        seen: list[str] = []
        for hit in hits:
            label = f"{self.states[choices[hit]].name} ({choices[hit]})"
            if label not in seen:
                seen.append(label)
        return seen[:n]

    def _describe_iso(self, iso: str) -> str:
        codes = [c for c, i in self._iso_of_states().items() if i == iso]
        return ", ".join(f"{self.states[c].name} ({c})" for c in codes) or iso

    def _iso_of_states(self) -> dict[int, str | None]:
        codes = list(self.states)
        isos = _to_iso3([self.states[c].name for c in codes])
        return {c: (i if isinstance(i, str) else None) for c, i in zip(codes, isos)}


@lru_cache(maxsize=1)
def _converter():
    import country_converter as coco

    logging.getLogger("country_converter").setLevel(logging.ERROR)
    # country_converter 1.3 reads its table with pandas' default NA strings, which turns
    # Namibia's ISO2 code "NA" into a missing value and breaks under pandas 3: read it ourselves.
    table = importlib.resources.files("country_converter") / "country_data.tsv"
    data = pd.read_csv(table, sep="\t", encoding="utf-8", dtype=str, keep_default_na=False, na_values=[""])
    return coco.CountryConverter(country_data=data)


@lru_cache(maxsize=4096)
def _iso3_one(text: str) -> str | tuple[str, ...] | None:
    out = _converter().convert(text, src="regex", to="ISO3", not_found=None)
    return tuple(out) if isinstance(out, list) else out


def _to_iso3(texts: list[str]) -> list[str | list[str] | None]:
    out = []
    for text in texts:
        iso = _iso3_one(text)
        out.append(list(iso) if isinstance(iso, tuple) else iso)
    return out


def load_registry(paths=None) -> StateRegistry:
    """The registry built from the verified ``cw_system`` source."""
    from foedus.features.readers import load_source

    return StateRegistry(load_source("cw_system", paths))


def resolve_state(query: str | int, year: int | None = None, *, registry: StateRegistry | None = None) -> State:
    """Resolve a COW code, COW abbreviation or country name to one ``State``.

    >>> resolve_state("Soviet Union").ccode
    365

    With ``year``, the state must be a member of the system that year. Raises
    ``StateNotFound`` (unknown or ambiguous, with the closest matches) or ``InvalidInput``.
    """
    return (registry or load_registry()).resolve(query, year)
