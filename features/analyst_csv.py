"""CSV files an analyst writes: the pairs of ``foedus score --input`` and the treaties of
``--supplement``.

Both are read the same way, and refused the same way, in one line naming the file and what to
do: a missing or empty file, bytes that are not UTF-8 (with the line and byte where decoding
failed), a binary file, a header without a required column, a column named twice or not at
all, a row with more fields than the header. A UTF-8 byte-order mark (Excel's "CSV UTF-8")
and Windows line endings are accepted; quoted fields may hold commas and line breaks.
Header names are matched ignoring case and surrounding spaces. Every value is read as text:
what a value means is the caller's to check.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from foedus.infra.errors import InvalidInput

# Bytes decoded at a time when checking the encoding: the check holds one block in memory.
BLOCK = 1 << 20
NUL, NEWLINE = b"\0", b"\n"


def check_text(path: Path, what: str, header: Sequence[str]) -> None:
    """Refuse ``path`` unless it is a non-empty UTF-8 text file (``what`` names it, e.g.
    "pairs file"; ``header`` is the header to suggest). One pass over the file, in blocks."""
    expected = ",".join(header)
    if not path.exists():
        raise InvalidInput(f"{what} {path} does not exist: give a CSV with the header {expected}")
    if not path.is_file():
        raise InvalidInput(f"{what} {path} is not a file: give a CSV with the header {expected}")
    offset, lines, carry = 0, 0, b""  # carry: a character cut in two by the end of a block
    try:
        with path.open("rb") as handle:
            while True:
                block = handle.read(BLOCK)
                data = carry + block
                good, bad = _utf8_prefix(data, final=not block)
                nul = data.find(NUL, 0, good)
                if bad is not None or nul >= 0:
                    at = nul if nul >= 0 else good
                    where = f"line {lines + 1 + data.count(NEWLINE, 0, at)}, byte {offset + at}"
                    if nul >= 0:
                        raise InvalidInput(f"{what} {path} holds a NUL byte ({where}): it is a binary file, not a "
                                           "CSV; save it as UTF-8 CSV")
                    raise InvalidInput(f"{what} {path} is not UTF-8 text ({where}: {bad}): save it as UTF-8 "
                                       "(in Excel: CSV UTF-8)")
                lines += data.count(NEWLINE, 0, good)
                offset += good
                carry = data[good:]
                if not block:
                    break
    except OSError as error:
        raise InvalidInput(f"cannot read {what} {path}: {error.strerror or error}") from error
    if offset == 0:
        raise InvalidInput(f"{what} {path} is empty: give a CSV with the header {expected}")


def _utf8_prefix(data: bytes, final: bool) -> tuple[int, str | None]:
    """How many leading bytes of ``data`` are whole UTF-8 characters, and why the next byte is
    not one (None if all are, or if only a character cut by the block's end is left over)."""
    try:
        data.decode("utf-8")
        return len(data), None
    except UnicodeDecodeError as error:
        valid = data[:error.start]
        if not final and error.end == len(data) and error.reason == "unexpected end of data":
            return len(valid), None  # the rest of the character is in the next block
        return len(valid), error.reason


def read_header(path: Path, what: str, required: Sequence[str], *, skip_blank_lines: bool = True) -> list[str]:
    """The column names of the CSV ``path`` after ``check_text``: stripped of spaces, the
    ``required`` ones spelled as given whatever their case. Refuses a header that lacks one of
    them, names a column twice or leaves a name empty. ``skip_blank_lines``: as ``read_rows``'s."""
    check_text(path, what, required)
    expected = ",".join(required)
    try:
        first = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                            skip_blank_lines=skip_blank_lines)
    except pd.errors.EmptyDataError as error:
        raise InvalidInput(f"{what} {path} has no header: give a CSV with the header {expected}") from error
    except pd.errors.ParserError as error:
        raise InvalidInput(f"{what} {path}: {parser_problem(error)}; give a CSV with the header {expected}") from error
    spelled = {c.lower(): c for c in required}
    names = [str(name).strip() for name in first.iloc[0]]
    names = [spelled.get(name.lower(), name) for name in names]
    missing = [c for c in required if c not in names]
    if missing:
        raise InvalidInput(f"{what} {path} lacks the column(s) {', '.join(missing)}: its header is "
                           f"{','.join(names)[:200]}; give the header {expected}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidInput(f"{what} {path} names the column(s) {', '.join(twice)} twice in its header: keep one")
    if "" in names:
        raise InvalidInput(f"{what} {path}: column {names.index('') + 1} of the header has no name (a trailing "
                           "comma?): name it or delete the column")
    return names


def read_rows(path: Path, names: Sequence[str], what: str, *, chunk_rows: int | None = None,
              nrows: int | None = None, skip_blank_lines: bool = True) -> pd.DataFrame | Iterator[pd.DataFrame]:
    """The rows of ``path`` as text under ``names`` (from ``read_header``): one frame (at most
    ``nrows`` rows), or frames of ``chunk_rows`` rows read as they are iterated. An empty field
    is ``""``, a row with fewer fields than the header is filled with ``""``; blank lines are
    skipped unless ``skip_blank_lines`` is false (then they are rows of ``""``, and the frame's
    index counts lines)."""
    options = dict(header=0, names=list(names), index_col=False, dtype=str, keep_default_na=False,
                   encoding="utf-8-sig", nrows=nrows, skip_blank_lines=skip_blank_lines)
    if chunk_rows is None:
        with _strict(path, what, names):
            return pd.read_csv(path, **options)
    return _chunks(path, what, names, options, chunk_rows)


def _chunks(path: Path, what: str, names: Sequence[str], options: dict, chunk_rows: int) -> Iterator[pd.DataFrame]:
    with _strict(path, what, names):
        reader = pd.read_csv(path, chunksize=chunk_rows, **options)
    with reader:
        while True:
            with _strict(path, what, names):
                chunk = next(reader, None)
            if chunk is None:
                return
            yield chunk


@contextmanager
def _strict(path: Path, what: str, names: Sequence[str]) -> Iterator[None]:
    """pandas' reading errors as one line; and its warning that a first row longer than the
    header was cut short (it drops the surplus values) as an error: never a value lost."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            yield
    except pd.errors.ParserWarning as error:
        raise InvalidInput(f"{what} {path}: its first row has more fields than the header's {len(names)} (quote a "
                           "value that holds a comma)") from error
    except OSError as error:
        raise InvalidInput(f"cannot read {what} {path}: {error.strerror or error}") from error
    except UnicodeDecodeError as error:
        raise InvalidInput(f"{what} {path} is not UTF-8 text ({error.reason}): save it as UTF-8 "
                           "(in Excel: CSV UTF-8)") from error
    except pd.errors.ParserError as error:
        raise InvalidInput(f"{what} {path}: {parser_problem(error)}") from error


def parser_problem(error: Exception) -> str:
    """pandas' tokenizer error in a few words: "line 7 has 4 fields, the header 3"."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    text = text.removeprefix("Error tokenizing data. C error: ")
    found = re.fullmatch(r"Expected (\d+) fields in line (\d+), saw (\d+)", text.strip())
    if found:
        fields, line, saw = found.groups()
        return f"line {line} has {saw} fields, the header {fields} (quote a value that holds a comma)"
    return text
