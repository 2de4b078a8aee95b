"""Batch scoring (`foedus score --input`) and treaty supplements (`--supplement`) against
malformed and hostile files. What each case gives is decided in the README (Scoring candidate
dyads, "Batch scoring"): scored, a row's `error`, or the whole file refused in one line naming
it (exit 2, nothing written). Mostly through the real CLI, with the champion of the shared
`store` fixture (tests/pipelines/conftest.py)."""

from __future__ import annotations

import importlib.util
import random

import numpy as np
import pandas as pd
import pytest

from tests.pipelines.cli_helpers import ROOT, assert_user_error
from tests.pipelines.cli_helpers import foedus_here as foedus

SPEC = "atop:any:1"
HEADER = "state_a,state_b,year"
OUTPUT_COLUMNS = ["ccode_a", "name_a", "ccode_b", "name_b", "probability", "percentile", "already_allied", "error"]
INDIA, ISRAEL, USA, UK = 750, 666, 2, 200


def benchmark():
    """benchmarks/batch_scoring.py: its million-row workload is the one tested here."""
    spec = importlib.util.spec_from_file_location("batch_scoring", ROOT / "benchmarks" / "batch_scoring.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def score_file(tmp_path, content: str | bytes, *args, name: str = "pairs.csv"):
    """Write ``content`` as the input, run `foedus score --input ... --output ...`: the result and the output path."""
    source = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    source.write_bytes(content)
    output = tmp_path / f"scored-{name}"
    return foedus("score", "--input", str(source), "--output", str(output), *args), output


def read_output(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def per_row_reference(pairs: pd.DataFrame, paths) -> pd.DataFrame:
    """How foedus scored a batch before it streamed: a year's context, then one row at a time
    through ``_pair``, the lookup ``foedus score`` makes for one pair. The oracle."""
    from foedus.infra.errors import FoedusError
    from foedus.scoring import _pair, year_context

    out = pairs[["state_a", "state_b", "year"]].copy()
    for column in OUTPUT_COLUMNS:
        out[column] = None
    years = pd.to_numeric(out["year"], errors="coerce")
    whole = years.notna() & (years == years.round())
    out.loc[~whole, "error"] = [f"year {y!r} is not a whole number" for y in out.loc[~whole, "year"]]
    for year in sorted(years[whole].astype(int).unique()):
        here = whole & (years == year)
        try:
            context = year_context(SPEC, int(year), paths=paths)
        except FoedusError as error:
            out.loc[here, "error"] = str(error)
            continue
        for i in out.index[here]:
            try:
                states, index = _pair(context, out.at[i, "state_a"], out.at[i, "state_b"])
            except FoedusError as error:
                out.at[i, "error"] = str(error)
                continue
            out.loc[i, ["ccode_a", "name_a", "ccode_b", "name_b"]] = [states[0].ccode, states[0].name,
                                                                      states[1].ccode, states[1].name]
            allied = index not in context.forecasts.index
            out.at[i, "already_allied"] = allied
            if not allied:
                out.at[i, "probability"] = float(context.forecasts.at[index, "probability"])
                out.at[i, "percentile"] = float(context.forecasts.at[index, "percentile"])
    return out


@pytest.fixture(scope="module")
def real_pairs(registry, tmp_path_factory):
    """Four hundred pairs of member states over three years, named by name, abbreviation or
    code, with the rows that fail each check: an unknown name, a state twice, a state not a
    member that year, two members never members together, a year that is not one."""
    folder = tmp_path_factory.mktemp("pairs")
    benchmark().write_pairs(folder / "pairs.csv", 400, registry, years=(1939, 1990, 2019), seed=3)
    pairs = pd.read_csv(folder / "pairs.csv", dtype=str, keep_default_na=False)[["state_a", "state_b", "year"]]
    hostile = pd.DataFrame([
        ("Atlantis", "Japan", "2019"), ("France", "FRN", "2019"), ("Czechoslovakia", "Japan", "2019"),
        ("Yemen", "Yemen Arab Republic", "1990"), ("India", "Israel", "abc"), ("India", "Israel", "1990.5"),
        ("India", "Israel", ""), ("India", "Israel", "-5"), ("India", "Israel", "2019.0"), ("USA", "UKG", "2019"),
        ("India", "Israel", "1700"), (" india ", "ISR", "2019"), ("Soviet Union", "United Kingdom", "1939"),
    ], columns=["state_a", "state_b", "year"])
    return pd.concat([pairs, hostile, pairs.iloc[:20]], ignore_index=True)


def test_batch_scoring_gives_what_scoring_row_by_row_gives(store, paths, real_pairs, tmp_path):
    from foedus.batch import score_csv
    from foedus.scoring import score_batch

    expected = per_row_reference(real_pairs, paths)
    scored = score_batch(real_pairs, SPEC, paths=paths)
    pd.testing.assert_frame_equal(scored, expected)
    for column in OUTPUT_COLUMNS:  # the same Python values (int, str, float, bool, None), not just equal ones
        assert scored[column].map(type).tolist() == expected[column].map(type).tolist(), column
    # every check fails somewhere, and most rows are scored
    errors = scored["error"].dropna()
    for fragment in ("no state matches 'Atlantis'", "twice", "not a member", "are not a dyad of 1990",
                     "is not a whole number", "outside what foedus scores"):
        assert errors.str.contains(fragment, regex=False).any(), fragment
    assert scored["probability"].notna().sum() > 300 and scored["already_allied"].eq(True).any()
    # the CSV, in chunks that split years and duplicates, is the same text
    source = tmp_path / "pairs.csv"
    real_pairs.to_csv(source, index=False)
    result = score_csv(source, tmp_path / "scored.csv", SPEC, paths=paths, chunk_rows=37)
    assert (tmp_path / "scored.csv").read_text() == expected.to_csv(index=False)
    assert (result.rows, result.failed) == (len(real_pairs), int(expected["error"].notna().sum()))
    assert result.first_failed == int(np.flatnonzero(expected["error"].notna())[0]) + 1


def test_chunk_size_does_not_change_the_output(store, paths, real_pairs, tmp_path):
    from foedus.batch import score_csv

    source = tmp_path / "pairs.csv"
    real_pairs.iloc[390:].to_csv(source, index=False)
    texts = set()
    for rows in (1, 4, 1_000):
        score_csv(source, tmp_path / f"scored-{rows}.csv", SPEC, paths=paths, chunk_rows=rows)
        texts.add((tmp_path / f"scored-{rows}.csv").read_text())
    assert len(texts) == 1


def test_missing_columns_refuse_the_file_naming_them_and_the_header(store, tmp_path):
    result, output = score_file(tmp_path, "state_a,state_b\nIndia,Israel\n")
    assert_user_error(result, str(tmp_path / "pairs.csv"), "lacks the column(s) year", f"give the header {HEADER}")
    assert not output.exists()


def test_extra_columns_are_copied_and_header_case_and_spaces_do_not_matter(store, tmp_path):
    result, output = score_file(tmp_path, 'id,State_A, STATE_B ,year,note\n7,India,Israel,2019,"a, b"\n'
                                          "8,USA,UKG,2019,\n")
    assert result.returncode == 0, result.stderr
    frame = read_output(output)
    assert list(frame.columns) == ["id", "state_a", "state_b", "year", "note", *OUTPUT_COLUMNS]
    assert frame["id"].tolist() == ["7", "8"] and frame["note"].tolist() == ["a, b", ""]
    assert frame["ccode_a"].tolist() == [str(INDIA), str(USA)] and frame["already_allied"].tolist() == ["False", "True"]


def test_wrong_types_of_year_fail_their_rows_only(store, tmp_path):
    years = ["abc", "1990.5", "", "99999999999999999999", "-5", "inf", "1e400", "2019.0", "2019", " 2019 "]
    rows = "".join(f"India,Israel,{y}\n" for y in years)
    result, output = score_file(tmp_path, f"{HEADER}\n{rows}")
    assert_user_error(result, "7 row(s) could not be scored", str(output), "the first is row 1")
    frame = read_output(output)
    errors = dict(zip(frame.index, frame["error"]))
    for i in (0, 1, 2, 5, 6):
        assert errors[i] == f"year {years[i]!r} is not a whole number"
    for i in (3, 4):
        assert "outside what foedus scores" in errors[i]
    scored = frame.iloc[7:]
    assert (scored["error"] == "").all() and scored["probability"].nunique() == 1 and scored["probability"].iloc[0]


@pytest.mark.parametrize("content, fragments", [
    (b"", ["is empty", f"give a CSV with the header {HEADER}"]),
    (b"\xef\xbb\xbf", ["has no header"]),
    (b"\n\n\n", ["has no header"]),
])
def test_an_empty_file_is_refused(store, tmp_path, content, fragments):
    result, output = score_file(tmp_path, content)
    assert_user_error(result, str(tmp_path / "pairs.csv"), *fragments)
    assert not output.exists()


def test_a_header_without_rows_gives_an_output_of_the_header_alone(store, tmp_path):
    result, output = score_file(tmp_path, "state_a,state_b,year,id\r\n")
    assert result.returncode == 0, result.stderr
    assert "scored 0 of 0 rows" in result.stdout
    assert output.read_text() == ",".join(["state_a", "state_b", "year", "id", *OUTPUT_COLUMNS]) + "\n"


def test_duplicate_rows_are_each_scored_alike(store, tmp_path):
    result, output = score_file(tmp_path, f"{HEADER}\nIndia,Israel,2019\nIND,ISR,2019\nIndia,Israel,2019\n"
                                          "India,Israel,2019\nUSA,UKG,2019\n")
    assert result.returncode == 0, result.stderr
    frame = read_output(output)
    assert len(frame) == 5
    assert frame.iloc[:4][OUTPUT_COLUMNS].drop_duplicates().shape[0] == 1


def test_a_byte_order_mark_and_windows_line_endings_change_nothing(store, tmp_path):
    rows = ["India,Israel,2019", "USA,UKG,2019", "Atlantis,Japan,2019", "id,Israel,2019"]
    clean, clean_output = score_file(tmp_path, "\n".join([HEADER, *rows]) + "\n", name="clean.csv")
    excel, excel_output = score_file(tmp_path, "\ufeff" + "\r\n".join([HEADER, *rows]) + "\r\n", name="excel.csv")
    assert clean.returncode == excel.returncode == 2
    assert excel_output.read_bytes() == clean_output.read_bytes()
    assert read_output(excel_output).columns[0] == "state_a"


def test_a_latin1_file_is_refused_with_the_line_and_byte(store, tmp_path):
    content = f"{HEADER}\nIndia,Israel,2019\nCôte d'Ivoire,Ghana,1990\n".encode("latin-1")
    result, output = score_file(tmp_path, content)
    byte = content.index("ô".encode("latin-1"))
    assert_user_error(result, str(tmp_path / "pairs.csv"), "is not UTF-8", f"line 3, byte {byte}",
                      "save it as UTF-8")
    assert not output.exists()


def test_a_binary_file_is_refused(store, tmp_path):
    noise = random.Random(19).randbytes(4096)
    result, output = score_file(tmp_path, noise, name="noise.bin")
    assert_user_error(result, str(tmp_path / "noise.bin"), "save it as UTF-8")
    spreadsheet = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + noise  # an .xlsx is a zip
    result, output = score_file(tmp_path, spreadsheet, name="pairs.xlsx")
    assert_user_error(result, str(tmp_path / "pairs.xlsx"), "binary file", "save it as UTF-8")
    assert not output.exists()


def test_the_encoding_check_reads_in_blocks_without_losing_place(tmp_path):
    from foedus.features.analyst_csv import BLOCK, check_text
    from foedus.infra.errors import InvalidInput

    body = b"a" * (BLOCK - 1) + "ô".encode() + b"\n"  # a two-byte character cut by the first block's end
    (tmp_path / "cut.csv").write_bytes(HEADER.encode() + b"\n" + body * 2)
    check_text(tmp_path / "cut.csv", "pairs file", HEADER.split(","))
    bad = HEADER.encode() + b"\n" + body * 2 + b"x\xff\n"
    (tmp_path / "bad.csv").write_bytes(bad)
    with pytest.raises(InvalidInput, match=f"line 4, byte {len(bad) - 2}: invalid start byte"):
        check_text(tmp_path / "bad.csv", "pairs file", HEADER.split(","))


def test_paths_that_cannot_be_read_or_written_are_refused_before_any_work(tmp_path):
    source = tmp_path / "pairs.csv"
    source.write_text(f"{HEADER}\nIndia,Israel,2019\n")
    missing = foedus("score", "--input", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "out.csv"))
    assert_user_error(missing, str(tmp_path / "nope.csv"), "does not exist", HEADER)
    folder = foedus("score", "--input", str(tmp_path), "--output", str(tmp_path / "out.csv"))
    assert_user_error(folder, str(tmp_path), "is not a file")
    nowhere = tmp_path / "no-such-folder" / "out.csv"
    result = foedus("score", "--input", str(source), "--output", str(nowhere))
    assert_user_error(result, str(nowhere.parent), "does not exist", "create it first")
    assert not nowhere.parent.exists()
    same = foedus("score", "--input", str(source), "--output", str(tmp_path / "." / "pairs.csv"))
    assert_user_error(same, "is the input file")
    assert source.read_text() == f"{HEADER}\nIndia,Israel,2019\n"
    assert_user_error(foedus("score", "--input", str(source), "--output", str(tmp_path)), "is a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.csv"]


def test_quoted_commas_and_line_breaks_are_values(store, tmp_path):
    content = (f'{HEADER},note\n"India","Israel","2019","Delhi, 2019"\n"Ind\nia",ISR,2019,"two\nlines"\n'
               '" India ",ISR,2019,"say ""yes"""\n')
    result, output = score_file(tmp_path, content)
    assert_user_error(result, "1 row(s) could not be scored", "the first is row 2")
    frame = read_output(output)
    assert frame["note"].tolist() == ["Delhi, 2019", "two\nlines", 'say "yes"']
    assert frame["state_a"].tolist() == ["India", "Ind\nia", " India "]
    assert frame.loc[0, "probability"] == frame.loc[2, "probability"] != ""
    assert "no state matches" in frame.loc[1, "error"]


def test_a_malformed_row_refuses_the_file_and_leaves_the_previous_output(store, tmp_path):
    output = tmp_path / "scored-pairs.csv"
    output.write_text("the previous output\n")
    rows = "India,Israel,2019\n" * 5 + "India,Israel,2019,surplus\n"
    result, _ = score_file(tmp_path, f"{HEADER}\n{rows}", "--chunk-rows", "2")
    assert_user_error(result, str(tmp_path / "pairs.csv"), "line 7 has 4 fields, the header 3")
    assert output.read_text() == "the previous output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.csv", "scored-pairs.csv"]  # no partial file


@pytest.mark.parametrize("rows, fragment", [
    ("India,Israel,2019,surplus\nIndia,Israel,2019\n", "its first row has more fields than the header's 3"),
    ("India,Israel,2019\nIndia,Israel,2019,surplus\n", "line 3 has 4 fields, the header 3"),
])
def test_a_row_longer_than_the_header_refuses_the_file(tmp_path, rows, fragment):
    from foedus.batch import score_csv
    from foedus.infra.errors import InvalidInput

    source = tmp_path / "pairs.csv"
    source.write_text(f"{HEADER}\n{rows}")
    with pytest.raises(InvalidInput, match=fragment):  # pandas would drop a first row's surplus values
        score_csv(source, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("header, fragments", [
    ("state_a,state_b,year,error", ["error", "which the output adds"]),
    ("state_a,State_A,state_b,year", ["state_a twice"]),
    ("state_a,state_b,year,", ["column 4 of the header has no name"]),
])
def test_a_header_foedus_cannot_write_beside_is_refused(tmp_path, header, fragments):
    from foedus.batch import score_csv
    from foedus.infra.errors import InvalidInput

    source = tmp_path / "pairs.csv"
    source.write_text(f"{header}\nIndia,Israel,2019,x\n")
    with pytest.raises(InvalidInput) as caught:
        score_csv(source, tmp_path / "out.csv")
    for fragment in (str(source), *fragments):
        assert fragment in str(caught.value)
    assert not (tmp_path / "out.csv").exists()


def test_a_million_rows_are_scored_in_order_in_bounded_memory(store, registry, tmp_path):
    """The benchmark's workload. A chunk holds 100,000 rows: the peak must stay near what a batch
    of a thousand rows over the same ten years takes (the imports, the model, ten years'
    forecasts: 528 MB measured), not grow with the file. Measured: the chunks peaked at 575 MB
    (+47 MB); scoring the whole file at once at 1,140 MB (+612 MB). The bound is between."""
    bench = benchmark()
    source, few = tmp_path / "pairs.csv", tmp_path / "few.csv"
    truth = bench.write_pairs(source, 1_000_000, registry)
    pd.read_csv(source, nrows=bench.BASELINE_ROWS, dtype=str).to_csv(few, index=False)
    code, _, baseline, _ = bench.run_with_peak(["score", "--input", str(few), "--output",
                                                 str(tmp_path / "few-out.csv")])
    assert code == 2
    code, seconds, peak, stderr = bench.run_with_peak(["score", "--input", str(source), "--output",
                                                       str(tmp_path / "scored.csv")])
    frame = pd.read_csv(tmp_path / "scored.csv", dtype={"id": "int64", "error": str, "ccode_a": "Int64",
                                                         "ccode_b": "Int64"}, keep_default_na=False,
                        usecols=["id", "ccode_a", "ccode_b", "probability", "error"])
    assert len(frame) == 1_000_000 and (frame["id"].to_numpy() == np.arange(1, 1_000_001)).all()
    failed = frame["error"] != ""
    assert code == 2 and f"{failed.sum():,} row(s) could not be scored" in stderr
    assert failed[truth["bad"]].all()
    assert frame.loc[failed & ~truth["bad"], "error"].str.contains("are not a dyad of").all()
    assert (frame.loc[~failed, "ccode_a"] == truth.loc[~failed, "ccode_a"]).all()
    assert (frame.loc[~failed, "ccode_b"] == truth.loc[~failed, "ccode_b"]).all()
    # a pair-year scored in several chunks has one probability
    same = frame.loc[~failed].assign(year=truth["year"]).groupby(["ccode_a", "ccode_b", "year"])["probability"]
    assert (same.nunique() == 1).all()
    assert peak - baseline < 250 * 2**20, (peak / 2**20, baseline / 2**20)
    print(f"1,000,000 rows: {seconds:.1f} s, peak {peak / 2**20:.0f} MB (a thousand rows: {baseline / 2**20:.0f} MB)")


# --- supplement files ------------------------------------------------------------------------

SUPPLEMENT_HEADER = "state_a,state_b,year,obligation,source"


@pytest.fixture(scope="module")
def recorded(paths):
    from foedus.features.alliances import ALLIANCE_SOURCES, alliance_state
    from foedus.features.readers import load_source

    return alliance_state(load_source("atop_alliance", paths), ALLIANCE_SOURCES["atop"])


def supplements(path, recorded, registry):
    from foedus.features.alliances import ALLIANCE_SOURCES
    from foedus.features.supplements import read_supplements

    return read_supplements(path, ALLIANCE_SOURCES["atop"], registry, recorded, 2018)


def refused(path, recorded, registry) -> str:
    from foedus.infra.errors import InvalidInput

    with pytest.raises(InvalidInput) as caught:
        supplements(path, recorded, registry)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    return message


def test_a_supplement_file_with_extra_columns_bom_and_crlf_reads_as_a_clean_one(tmp_path, recorded, registry):
    rows = ["Russia,North Korea,2024,defense,Pyongyang treaty", "Saudi Arabia,Pakistan,2025,defense,Riyadh"]
    (tmp_path / "clean.csv").write_text("\n".join([SUPPLEMENT_HEADER, *rows]) + "\n")
    (tmp_path / "excel.csv").write_bytes(("\ufeffnote, State_A,state_b,YEAR,obligation,source\r\n"
                                          + "".join(f"checked,{r}\r\n" for r in rows)).encode())
    clean, excel = (supplements(tmp_path / n, recorded, registry).treaties for n in ("clean.csv", "excel.csv"))
    assert len(clean) == 2
    pd.testing.assert_frame_equal(excel, clean)


def test_a_supplement_file_with_only_a_header_has_no_treaties(tmp_path, recorded, registry):
    (tmp_path / "none.csv").write_text(SUPPLEMENT_HEADER + "\n\n")
    assert supplements(tmp_path / "none.csv", recorded, registry).treaties.empty


@pytest.mark.parametrize("content, fragments", [
    (b"", ["is empty", SUPPLEMENT_HEADER]),
    (b"state_a,state_b,year\nIndia,Japan,2022\n", ["lacks the column(s) obligation, source", SUPPLEMENT_HEADER]),
    (f"{SUPPLEMENT_HEADER}\nIndia,Japan,2022,defense,Bogotá\n".encode("latin-1"),
     ["not UTF-8", f"line 2, byte {len(SUPPLEMENT_HEADER) + 1 + len('India,Japan,2022,defense,Bogot')}",
      "save it as UTF-8"]),
    (f"{SUPPLEMENT_HEADER}\nIndia,Japan,2022,defense,x,surplus\n".encode(),
     ["its first row has more fields than the header's 5"]),
    (f"{SUPPLEMENT_HEADER}\nIndia,Japan,2022,defense,x\nIndia,Nepal,2022,defense,x,surplus\n".encode(),
     ["line 3 has 6 fields, the header 5"]),
])
def test_a_supplement_file_that_is_not_a_treaty_csv_is_refused(tmp_path, recorded, registry, content, fragments):
    (tmp_path / "bad.csv").write_bytes(content)
    message = refused(tmp_path / "bad.csv", recorded, registry)
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("year", ["abc", "2022.0", "", "²⁰²²", "-2022", "99999999999999999999"])
def test_a_supplement_year_that_is_not_one_is_refused_with_its_line(tmp_path, recorded, registry, year):
    # line 3 is blank, so the bad row is on line 4
    (tmp_path / "bad.csv").write_text(f"{SUPPLEMENT_HEADER}\nIndia,Japan,2022,defense,x\n\n"
                                      f"India,Nepal,{year},defense,x\n")
    message = refused(tmp_path / "bad.csv", recorded, registry)
    assert "line 4: year" in message and year in message, message


def test_a_supplement_row_listed_twice_is_refused(tmp_path, recorded, registry):
    row = "India,Japan,2022,defense,x"
    (tmp_path / "twice.csv").write_text(f"{SUPPLEMENT_HEADER}\n{row}\n{row}\n")
    assert "line 3: India - Japan (defense) is listed twice" in refused(tmp_path / "twice.csv", recorded, registry)


def test_a_supplement_file_of_a_million_rows_is_refused_unread(tmp_path, recorded, registry):
    from foedus.features.supplements import MAX_TREATIES

    rows = pd.DataFrame({"state_a": "India", "state_b": "Japan", "year": "2022", "obligation": "defense",
                         "source": np.arange(1_000_000)})
    rows.to_csv(tmp_path / "huge.csv", index=False)
    assert f"more than {MAX_TREATIES:,} rows" in refused(tmp_path / "huge.csv", recorded, registry)


def test_the_cli_refuses_a_bad_supplement_before_scoring(store, tmp_path):
    (tmp_path / "latin1.csv").write_bytes(f"{SUPPLEMENT_HEADER}\nIndia,Japan,2022,defense,Bogotá\n".encode("latin-1"))
    result, output = score_file(tmp_path, f"{HEADER}\nIndia,Israel,2019\n", "--supplement",
                                str(tmp_path / "latin1.csv"))
    assert_user_error(result, str(tmp_path / "latin1.csv"), "line 2", "save it as UTF-8")
    assert not output.exists()
