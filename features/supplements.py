"""Treaties signed after the label source ends, recorded by the analyst.

A CSV with the header ``state_a,state_b,year,obligation,source`` (example:
``docs/supplements-example.csv``): the two states (COW code, abbreviation or name), the year
the treaty was signed, its obligation type under the label source (ATOP: defense, offense,
neutrality, nonaggression, consultation; COW: defense, neutrality, nonaggression, entente) and
where it is documented. Each row is checked: both states resolve, the year is after the
label source's last year and not in the future, the type is one the source knows, and the
pair is not already recorded by the source as allied under that type in its last year.

Supplements only say which pairs are already allied (so not at risk) when forecasting later
years: a treaty of year s makes the pair allied from s on, so it is not at risk in s+1 and
after. They are never labels: training tables never read them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
from foedus.features.alliances import AllianceSource
from foedus.features.analyst_csv import read_header, read_rows
from foedus.features.years import LAST_YEAR
from foedus.infra.errors import FoedusError, InvalidInput

COLUMNS = ("state_a", "state_b", "year", "obligation", "source")
WHAT = "supplement file"
# Far more than the treaties signed since any label source ends; a larger file is not one.
MAX_TREATIES = 10_000


@dataclass(frozen=True)
class Supplements:
    """The validated treaties of one file: ccode1 < ccode2, year, obligation, source, names."""

    path: Path
    treaties: pd.DataFrame

    def allied_before(self, year: int, obligation: str) -> pd.DataFrame:
        """The treaties that make a pair allied under ``obligation`` before ``year`` (signed in
        ``year - 1`` or earlier; any treaty counts for ``any``)."""
        rows = self.treaties[self.treaties["year"] < year]
        if obligation != "any":
            rows = rows[rows["obligation"] == obligation]
        return rows

    def describe(self, rows: pd.DataFrame | None = None) -> list[dict]:
        rows = self.treaties if rows is None else rows
        return [{"state_a": r.name_a, "state_b": r.name_b, "year": int(r.year), "obligation": r.obligation,
                 "source": r.source, "file": str(self.path)} for r in rows.itertuples()]


def _read_csv(path: Path) -> pd.DataFrame:
    """The file's rows as stripped text, indexed by their line in the file (blank lines left out);
    other columns than ``COLUMNS`` are ignored."""
    names = read_header(path, WHAT, COLUMNS, skip_blank_lines=False)
    frame = read_rows(path, names, WHAT, nrows=MAX_TREATIES + 1, skip_blank_lines=False)
    if len(frame) > MAX_TREATIES:
        raise InvalidInput(f"{WHAT} {path} has more than {MAX_TREATIES:,} rows: it records the treaties signed "
                           "since the alliance data end, a few dozen; is it the right file?")
    frame = frame[list(COLUMNS)].apply(lambda column: column.str.strip())
    frame.index = frame.index + 2  # line 1 is the header
    return frame[(frame != "").any(axis=1)]


def read_supplements(path: Path | str, source: AllianceSource, registry, recorded: pd.DataFrame,
                     label_last: int) -> Supplements:
    """Read and validate an analyst's treaties for the label ``source`` whose record ends in
    ``label_last``; ``recorded`` is its ``alliance_state`` (undirected, one column per type).
    Any bad row raises ``InvalidInput`` naming the file, the line and what to do."""
    path = Path(path)
    frame = _read_csv(path)
    this_year = date.today().year
    last_known = recorded[recorded["year"] == label_last].set_index(["ccode1", "ccode2"])
    rows, seen = [], set()
    for i, row in zip(frame.index, frame.itertuples(index=False)):
        where = f"{path}, line {i}"
        if not (row.year.isascii() and row.year.isdigit()):
            raise InvalidInput(f"{where}: year {row.year!r} is not a whole year")
        year = int(row.year)
        if not label_last < year <= this_year:
            raise InvalidInput(f"{where}: year {year} is not after {source.source_key}'s last year ({label_last}) "
                               f"and up to {this_year}: supplements record treaties the source does not cover")
        obligation = row.obligation.lower()
        if obligation not in source.obligations:
            raise InvalidInput(f"{where}: obligation {row.obligation!r} is not one of {source.name}'s: "
                               f"{', '.join(source.obligations)}")
        if not row.source:
            raise InvalidInput(f"{where}: the source column is empty: say where the treaty is documented")
        try:
            states = [registry.resolve(q, min(year, LAST_YEAR)) for q in (row.state_a, row.state_b)]
        except FoedusError as exc:
            raise InvalidInput(f"{where}: {exc}") from exc
        low, high = sorted(s.ccode for s in states)
        if low == high:
            raise InvalidInput(f"{where}: {states[0].name} twice: a treaty needs two different states")
        if (low, high) in last_known.index and bool(last_known.loc[(low, high), obligation]):
            raise InvalidInput(f"{where}: {source.source_key} already records {states[0].name} and "
                               f"{states[1].name} as allied ({obligation}) in {label_last}: not a new treaty")
        if (low, high, obligation) in seen:
            raise InvalidInput(f"{where}: {states[0].name} - {states[1].name} ({obligation}) is listed twice")
        seen.add((low, high, obligation))
        names = {s.ccode: s.name for s in states}
        rows.append({"ccode1": low, "ccode2": high, "year": year, "obligation": obligation, "source": row.source,
                     "name_a": names[low], "name_b": names[high]})
    columns = ["ccode1", "ccode2", "year", "obligation", "source", "name_a", "name_b"]
    return Supplements(path, pd.DataFrame(rows, columns=columns))
