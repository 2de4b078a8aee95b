"""Reader registry and the Parquet cache shared by every source reader.

A reader turns one raw file into a tidy, typed pandas table: integer COW codes and years
(``int32``, or nullable ``Int32`` where the source has gaps), 0/1 flags as ``int8``, dates as
``datetime64``, the source's sentinel values (-9, -8, ...) as missing. It never computes features.
``load_source(key)`` verifies the raw file against the manifest and caches the table under
``data/interim/`` keyed by the raw file's SHA-256 (and ``READER_VERSION``), so a changed
source is re-read. The cache's own SHA-256 is in its name
(``<key>.<raw sha256[:16]>.v<READER_VERSION>.<cache sha256[:16]>.parquet``) and is checked
before each use: a damaged cache is deleted and the raw file read again.
"""

from __future__ import annotations

import bz2
import gzip
import io
import logging
import lzma
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd
import pyreadr
from foedus.features.manifest import Source, load_manifest
from foedus.features.years import LAST_YEAR
from foedus.infra.atomic import checksummed_ok, remove_unfinished, sha256_of, write_checksummed
from foedus.infra.config import Paths
from foedus.infra.errors import DataError
from foedus.infra.faults import kill_point

log = logging.getLogger(__name__)

# Bump when any reader's output changes: every cached table is then re-read.
READER_VERSION = 1


@dataclass(frozen=True)
class Reader:
    key: str
    read: Callable[[Path], pd.DataFrame]
    years: tuple[str, ...]  # columns whose range is the years the source covers
    # A spell ending on this date is still running (a list's last day, not an end): the source
    # then covers years up to the universe's last year.
    open_end: date | None = None

    @property
    def doc(self) -> str:
        return (self.read.__doc__ or "").strip()

    @property
    def summary(self) -> str:
        return self.doc.splitlines()[0] if self.doc else ""


# Filled as the reader modules are imported: importing this module imports its package first,
# whose ``__init__`` imports every one of them, so the registry is full before anyone reads it.
READERS: dict[str, Reader] = {}


def reader(key: str, *, years: Iterable[str] = ("year",), open_end: date | None = None):
    """Register ``fn(raw_path) -> DataFrame`` as the reader of source ``key``."""

    def register(fn: Callable[[Path], pd.DataFrame]) -> Callable[[Path], pd.DataFrame]:
        if key in READERS:
            raise RuntimeError(f"two readers for source {key}")
        READERS[key] = Reader(key, fn, tuple(years), open_end)
        return fn

    return register


# --- typing helpers used by the readers -------------------------------------------------

# R saves .rda files gzip-, bzip2- or xz-compressed; the magic bytes say which.
_DECOMPRESSORS = {b"\x1f\x8b": gzip.decompress, b"BZh": bz2.decompress, b"\xfd7zXZ\x00": lzma.decompress}


def read_rda(path: Path) -> pd.DataFrame:
    """The single data frame stored in an ``.rda`` file."""
    # Decompressing is most of the work. Python's decompressors release the GIL (librdata's,
    # inside pyreadr, hold it), so sources read on several threads decompress side by side;
    # pyreadr then parses the same bytes from a temporary uncompressed file.
    packed = Path(path).read_bytes()
    decompress = next((fn for magic, fn in _DECOMPRESSORS.items() if packed.startswith(magic)), None)
    if decompress is None:
        objects = pyreadr.read_r(str(path))
    else:
        with tempfile.TemporaryDirectory(prefix="foedus-rda-") as folder:
            plain = Path(folder) / Path(path).name
            plain.write_bytes(decompress(packed))
            objects = pyreadr.read_r(str(plain))
    if len(objects) != 1:
        raise ValueError(f"expected one R object, found {len(objects)}: {list(objects)}")
    return next(iter(objects.values()))


def as_int(series: pd.Series) -> pd.Series:
    """Whole numbers as ``int32``; nullable ``Int32`` if any value is missing."""
    if series.isna().any():
        return series.astype("Int32")
    if not (series == series.round()).all():
        raise ValueError(f"column {series.name} holds non-integer values")
    return series.astype("int32")


def as_flag(series: pd.Series) -> pd.Series:
    """0/1 indicators as ``int8``; nullable ``Int8`` if any value is missing."""
    bad = series.dropna()[~series.dropna().isin([0, 1])]
    if len(bad):
        raise ValueError(f"column {series.name} holds values other than 0/1: {sorted(bad.unique())[:5]}")
    return series.astype("Int8" if series.isna().any() else "int8")


def typed(
    df: pd.DataFrame,
    *,
    ints: Iterable[str] = (),
    flags: Iterable[str] = (),
    dates: Iterable[str] = (),
    strings: Iterable[str] = (),
    missing_codes: dict[str, Iterable[float]] | None = None,
) -> pd.DataFrame:
    """Apply the house types; ``missing_codes`` maps columns to sentinel values meaning NA."""
    df = df.copy()
    for col, codes in (missing_codes or {}).items():
        df[col] = df[col].where(~df[col].isin(list(codes)))
    for col in ints:
        df[col] = as_int(df[col])
    for col in flags:
        df[col] = as_flag(df[col])
    for col in dates:
        df[col] = pd.to_datetime(df[col])
    for col in strings:
        df[col] = df[col].astype("string")
    return df


def year_span(df: pd.DataFrame, columns: Iterable[str]) -> tuple[int, int] | None:
    """(first, last) year covered by ``columns`` (year numbers or dates), or None."""
    lows, highs = [], []
    for col in columns:
        values = df[col].dropna()
        if values.empty:
            continue
        if pd.api.types.is_datetime64_any_dtype(values):
            values = values.dt.year
        lows.append(int(values.min()))
        highs.append(int(values.max()))
    return (min(lows), max(highs)) if lows else None


# --- loading with verification and cache ------------------------------------------------

_memo: dict[Path, pd.DataFrame] = {}
_loading: dict[Path, threading.Lock] = {}
_memo_lock = threading.Lock()


def _manifest(paths: Paths) -> dict[str, Source]:
    return load_manifest(paths.manifest)


def raw_path(key: str, paths: Paths | None = None) -> Path:
    paths = paths or Paths.discover()
    return paths.raw / _source(key, paths).path


def _source(key: str, paths: Paths) -> Source:
    sources = _manifest(paths)
    if key not in sources:
        raise DataError(f"unknown source '{key}': known sources are {', '.join(sorted(sources))}")
    return sources[key]


def load_source(key: str, paths: Paths | None = None) -> pd.DataFrame:
    """The typed table of source ``key`` (see ``READERS[key].doc`` for its columns).

    Raises ``DataError`` if the raw file is missing, fails its checksum or cannot be read.
    """
    paths = paths or Paths.discover()
    source = _source(key, paths)
    if key not in READERS:
        raise DataError(f"no reader is registered for source '{key}'")
    raw = paths.raw / source.path
    if not raw.is_file():
        raise DataError(f"raw file {raw} is missing: run `foedus data fetch` to fetch and verify it")
    digest = sha256_of(raw)
    if digest != source.sha256:
        raise DataError(
            f"raw file {raw} fails its checksum (expected {source.sha256[:12]}..., got {digest[:12]}...): "
            "run `foedus data fetch` to replace it"
        )
    stem = f"{key}.{digest[:16]}.v{READER_VERSION}"
    memo = paths.interim / stem
    with _memo_lock:
        lock = _loading.setdefault(memo, threading.Lock())
    with lock:  # threads asking for the same source at once read it once
        if memo in _memo:
            return _memo[memo]
        table = _read_cache(paths.interim, stem)
        if table is None:
            try:
                table = READERS[key].read(raw)
            except Exception as exc:  # any parse failure of a raw file is the user's to fix
                raise DataError(
                    f"cannot read raw file {raw} ({type(exc).__name__}: {exc}): the file is damaged; "
                    "delete it and run `foedus data fetch`"
                ) from exc
            remove_unfinished(paths.interim, f"{key}.")

            def write(tmp: Path) -> None:
                table.to_parquet(tmp, index=False)
                kill_point("interim.cache_written")

            cache = write_checksummed(paths.interim, stem, ".parquet", write)
            for stale in paths.interim.glob(f"{key}.*.parquet"):  # earlier raw files' or readers' tables
                if stale != cache:
                    stale.unlink(missing_ok=True)
        _memo[memo] = table
    return table


def _read_cache(folder: Path, stem: str) -> pd.DataFrame | None:
    """The cached table ``<stem>.<sha256[:16]>.parquet`` if one is intact; a damaged one (its
    bytes no longer match the checksum in its name, or unreadable) is deleted, saying so."""
    for cache in sorted(folder.glob(f"{stem}.*.parquet")):
        try:
            data = cache.read_bytes()
            if checksummed_ok(cache, data):
                return pd.read_parquet(io.BytesIO(data))
            problem = "its SHA-256 does not match the checksum in its name"
        except Exception as exc:  # any unreadable cache is rebuilt from raw, never used
            problem = f"unreadable: {type(exc).__name__}: {exc}"
        log.warning("interim cache %s is damaged (%s): deleted, reading the raw file again", cache,
                    " ".join(problem.split()))
        cache.unlink(missing_ok=True)
    return None


def source_years(key: str, table: pd.DataFrame) -> tuple[int, int] | None:
    """(first, last) year the source covers; a spell still running covers to 2024."""
    span = year_span(table, READERS[key].years)
    open_end = READERS[key].open_end
    if span is None or open_end is None:
        return span
    end = table[READERS[key].years[-1]]
    if (end >= pd.Timestamp(open_end)).any():
        return span[0], LAST_YEAR
    return span
