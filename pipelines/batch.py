"""Scoring a CSV file of pairs, read and written chunk by chunk (``foedus score --input``).

``score_csv`` reads the pairs ``CHUNK_ROWS`` rows at a time, scores each chunk with one
``BatchScorer`` (the model loaded once, each year's forecasts computed once, each distinct
state string resolved once) and appends it to a temporary file beside the output, renamed
onto the output only when every row is written: memory does not grow with the file, and a
failure leaves no partial output (a previous file at that path is untouched).

The file: UTF-8 (a byte-order mark and Windows line endings are fine), a header with
``state_a``, ``state_b`` and ``year`` (any order, any case); other columns are copied to the
output as they are. Each row is scored as ``foedus.models.pairs.score_batch`` scores it: a row
that cannot be scored keeps its reason in ``error``. A file that cannot be read as such a CSV
is refused whole (``InvalidInput``, one line naming the file).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from foedus.features.analyst_csv import read_header, read_rows
from foedus.features.labels import DEFAULT_LABEL_SPEC, LabelSpec
from foedus.infra.atomic import atomic_path
from foedus.infra.config import Paths
from foedus.infra.errors import InvalidInput
from foedus.models.pairs import BATCH_COLUMNS, SCORE_COLUMNS, BatchScorer

# Rows read, scored and written at a time. Measured on 1,000,000 rows (benchmarks/batch_scoring.py):
# the peak memory grows with it, the speed hardly (the per-chunk work is whole-column).
CHUNK_ROWS = 100_000
WHAT = "pairs file"


@dataclass(frozen=True)
class BatchResult:
    """What ``score_csv`` wrote: the output, its number of rows, how many could not be
    scored and the first of those (its row number in the output, 1 for the first row)."""

    output: Path
    rows: int
    failed: int
    first_failed: int | None


def check_paths(input_path: Path, output_path: Path) -> None:
    """Refuse an output that would overwrite the input, is a folder or lies in a folder that does
    not exist, before any work."""
    if output_path.is_dir():
        raise InvalidInput(f"the output {output_path} is a folder: give the path of the CSV file to write")
    if not output_path.parent.is_dir():
        raise InvalidInput(f"the folder {output_path.parent} of the output {output_path.name} does not exist: "
                           "create it first or give another path")
    if input_path.exists() and (output_path.resolve() == input_path.resolve()
                                or output_path.exists() and output_path.samefile(input_path)):
        raise InvalidInput(f"the output {output_path} is the input file: give another path, the input is read "
                           "while the output is written")


def score_csv(input_path: Path | str, output_path: Path | str, spec: LabelSpec | str = DEFAULT_LABEL_SPEC, *,
              model_uri: str | None = None, paths: Paths | None = None, supplements=None,
              chunk_rows: int | None = None) -> BatchResult:
    """Score every row of the CSV ``input_path`` into the CSV ``output_path``, in input order:
    the input's columns, then ``ccode_a``, ``name_a``, ``ccode_b``, ``name_b``,
    ``probability``, ``percentile``, ``already_allied``, ``error`` (``score_batch``'s). A
    header without rows gives an output of the header alone. ``chunk_rows`` rows are held at a
    time (default ``CHUNK_ROWS``); the output appears, atomically, only once complete.

    >>> foedus.batch.score_csv("pairs.csv", "scored.csv")   # doctest: +SKIP
    """
    input_path, output_path = Path(input_path), Path(output_path)
    chunk_rows = CHUNK_ROWS if chunk_rows is None else chunk_rows
    if chunk_rows < 1:
        raise InvalidInput(f"--chunk-rows {chunk_rows}: give at least 1 row")
    check_paths(input_path, output_path)
    names = read_header(input_path, WHAT, BATCH_COLUMNS)
    taken = [c for c in names if c in SCORE_COLUMNS]
    if taken:
        raise InvalidInput(f"{WHAT} {input_path} has the column(s) {', '.join(taken)}, which the output adds: "
                           "rename or delete them")
    # the tracking server must answer before any row: otherwise every row would carry its absence
    from foedus.models.tracking import configure

    paths = paths or Paths.discover()
    configure(paths.root)
    scorer = BatchScorer(spec, model_uri=model_uri, paths=paths, supplements=supplements)
    rows = failed = 0
    first_failed = None
    with atomic_path(output_path) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
        for chunk in read_rows(input_path, names, WHAT, chunk_rows=chunk_rows):
            scored = scorer.score(chunk)
            bad = scored["error"].notna().to_numpy()
            if first_failed is None and bad.any():
                first_failed = rows + int(bad.argmax()) + 1
            failed += int(bad.sum())
            chunk[list(SCORE_COLUMNS)] = scored
            chunk.to_csv(handle, header=handle.tell() == 0, index=False)
            rows += len(chunk)
        if handle.tell() == 0:  # a header without rows
            pd.DataFrame(columns=[*names, *SCORE_COLUMNS]).to_csv(handle, index=False)
    return BatchResult(output_path, rows, failed, first_failed)
