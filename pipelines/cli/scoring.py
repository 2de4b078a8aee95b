"""``foedus score``, ``foedus rank`` and ``foedus threats``: parse, call ``foedus.scoring``, print."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from foedus.cli.common import err, out, spec_option
from foedus.infra.errors import FoedusError, InvalidInput
from rich.panel import Panel
from rich.table import Table

MODEL_URI_HELP = ("A model of the tracking store instead of the label spec's champion: models:/<name>/<version>, "
                  "models:/<name>@<alias> or runs:/<run id>/model.")
JSON_HELP = "Print stable JSON (documented in the README) instead of tables."
SUPPLEMENT_HELP = ("A CSV of treaties signed after the alliance data end (state_a,state_b,year,obligation,source; "
                   "see docs/supplements-example.csv): those pairs count as already allied in later years.")
INPUT_HELP = ("Batch: a UTF-8 CSV (a byte-order mark and Windows line endings are fine) with the header "
              "state_a,state_b,year; other columns are copied to the output. Read in chunks, so any size.")
OUTPUT_HELP = ("Batch: the scored CSV to write: the input's columns, then ccode_a, name_a, ccode_b, name_b, "
               "probability, percentile, already_allied, error. Written whole or not at all; its folder must exist. "
               "A row that cannot be scored keeps its reason in error (exit code 2).")
CHUNK_HELP = "Batch: rows read and scored at a time (default 100,000; memory grows with it)."
YEAR_HELP = ("The forecast year (default: the first year after the alliance data end, 2019 for ATOP). Later "
             "years through next year use the present-day model trained for that year (foedus train --for-year).")


def _supplement_option():
    return typer.Option(None, "--supplement", help=SUPPLEMENT_HELP)


def _vintage_lines(data: dict) -> list[str]:
    """The data vintage of a present-day forecast and the supplements used, in words."""
    lines = []
    vintage = data.get("vintage")
    if vintage is not None:
        stale = [f"{r['source']} to {r['last_year']} (+{r['staleness']})" for r in vintage["sources"] if r["staleness"]]
        fresh = [r["source"] for r in vintage["sources"] if not r["staleness"]]
        lines.append(f"data vintage for {vintage['target']}: stale sources, last year (+years stale): "
                     f"{', '.join(stale)}; current: {', '.join(fresh) or 'none'}")
        if vintage["system_note"]:
            lines.append(vintage["system_note"])
    supplements = data.get("supplements")
    if supplements is not None:
        used = "; ".join(f"{u['state_a']} - {u['state_b']} {u['obligation']} {u['year']}" for u in supplements["used"])
        lines.append(f"supplements {supplements['file']}: {supplements['treaties']} treaties; made already allied "
                     f"this year: {used or 'none'}")
    return lines


def _listing(frame) -> dict:
    """The --json form of rank and threats: which model and data, then the pairs."""
    return {"model": frame.attrs.get("model"), "data": frame.attrs.get("data"),
            "at_risk_dyads": frame.attrs.get("at_risk_dyads"), "pairs": frame.to_dict("records")}


def _source_line(frame) -> str:
    model, data = frame.attrs["model"], frame.attrs["data"]
    line = (f"model: {model['name']} {model['registered'] or ''} v{model['version'] or '-'} (run {model['run_id']}); "
            f"data {data['digest']}; {frame.attrs['at_risk_dyads']:,} at-risk dyads that year (alliance record "
            f"of {data['record_year']})")
    return "\n".join([line, *_vintage_lines(data)])


def _json(payload) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")


def _pct(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _prob(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def _years(years: list[int]) -> str:
    return ", ".join(str(y) for y in years)


def _threat_lines(threat: dict) -> list[str]:
    unknown = "unknown (the threat sources that cover t-1 show none; the others do not cover it)"
    status = {1: "yes", 0: "no", None: unknown}[threat["status"]]
    lines = [f"shared threat: {status}"]
    if threat["common_foes"] is None:
        lines.append("  common foes (GML MIDs): not covered for t-1")
    for foe in threat["common_foes"] or []:
        lines.append(f"  common foe {foe['name']}: disputes with the first in {_years(foe['years_a'])}, "
                     f"with the second in {_years(foe['years_b'])}")
    if threat["common_rivals"] is None:
        lines.append("  common rivals: not covered for t-1")
    elif not threat["common_rivals"]:
        lines.append("  common rivals: none")
    if threat["common_foes"] == []:
        lines.append("  common foes (GML MIDs, 10 years): none")
    for rival in threat["common_rivals"] or []:
        lines.append(f"  common rival {rival['name']} ({', '.join(rival['sources'])})")
    return lines


def _print_pair(result) -> None:
    a, b = result.state_a["name"], result.state_b["name"]
    lines = []
    if result.already_allied:
        lines.append(f"[bold]already allied[/bold] under {', '.join(result.allied_under)} "
                     f"({'supplement' if result.supplements else result.record_year})")
        if result.at_risk_under:
            lines.append(f"still at risk under: {', '.join(result.at_risk_under)} (score with -l)")
    else:
        lines.append(f"P(onset in {result.year}) = [bold]{result.probability:.4f}[/bold], percentile "
                     f"{result.percentile:.1f} among {result.at_risk_dyads:,} at-risk dyads")
        if result.allied_under:
            lines.append(f"allied in {result.record_year} under {', '.join(result.allied_under)} only")
    if result.out_of_time is not None:
        oot = result.out_of_time
        lines.append(f"out of time (backtest fold {oot['fold']}): {oot['probability']:.4f}, percentile "
                     f"{oot['percentile']:.1f}; onset observed: {'yes' if oot['onset'] else 'no'}")
    lines += _threat_lines(result.shared_threat)
    if result.missing_sources:
        lines.append(f"sources not covering {result.year - 1}: {', '.join(result.missing_sources)}")
    if result.vintage is not None and result.missing_features:
        lines.append(f"features without a value for this pair: {', '.join(result.missing_features)}")
    lines += [f"note: {n}" for n in result.notes]
    model = result.model
    lines.append(f"model: {model['name']} {model['registered'] or ''} v{model['version'] or '-'} "
                 f"(run {model['run_id']}); data {result.data['digest']}")
    out.print(Panel("\n".join(lines), title=f"{a} - {b}, {result.year} ({result.label})", expand=False))
    for line in _vintage_lines(result.data):  # long: printed below the panel, wrapped
        out.print(line, highlight=False)
    if result.factors:
        table = Table("factor", "value", "unit", "push (log-odds)", title="What pushed the probability up and down")
        for f in result.factors:
            value = "missing" if f["value"] is None else f"{f['value']:.4g}"
            table.add_row(f["label"], value, f["unit"] or "", f"{f['contribution']:+.3f}")
        out.print(table)


def score(
    state_a: str | None = typer.Argument(None, help="A state: COW code, abbreviation or name."),
    state_b: str | None = typer.Argument(None, help="The other state."),
    year: int | None = typer.Option(None, help=YEAR_HELP),
    spec: str = spec_option(),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    model_uri: str | None = typer.Option(None, help=MODEL_URI_HELP),
    input_file: Path | None = typer.Option(None, "--input", help=INPUT_HELP),
    output: Path | None = typer.Option(None, "--output", help=OUTPUT_HELP),
    supplement: Path | None = _supplement_option(),
    chunk_rows: int | None = typer.Option(None, "--chunk-rows", help=CHUNK_HELP),
) -> None:
    """How likely is a formal treaty between two states in a year, and why (not)?"""
    from foedus.scoring import score as score_pair

    if input_file is not None:
        _score_batch(input_file, output, spec, model_uri, supplement, chunk_rows)
        return
    if state_a is None or state_b is None:
        raise InvalidInput("give two states (e.g. `foedus score India Australia --year 2019`) or --input pairs.csv")
    result = score_pair(state_a, state_b, year, spec, model_uri=model_uri, supplements=supplement)
    if as_json:
        _json(result.to_dict())
    else:
        _print_pair(result)


def _score_batch(input_file: Path, output: Path | None, spec: str, model_uri: str | None,
                 supplement: Path | None, chunk_rows: int | None) -> None:
    from foedus.batch import score_csv

    if output is None:
        raise InvalidInput("--input needs --output (where to write the scored CSV)")
    result = score_csv(input_file, output, spec, model_uri=model_uri, supplements=supplement, chunk_rows=chunk_rows)
    out.print(f"scored {result.rows - result.failed:,} of {result.rows:,} rows into {output}", highlight=False,
              markup=False)
    if result.failed:
        err.print(f"{result.failed:,} row(s) could not be scored: see the error column of {output} (the first is "
                  f"row {result.first_failed:,})", highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(2)


def rank(
    year: int | None = typer.Option(None, help=YEAR_HELP),
    top: int = typer.Option(20, help="How many pairs."),
    with_state: str | None = typer.Option(None, "--with", help="Only pairs containing this state."),
    region: str | None = typer.Option(None, help="Only pairs within: americas, europe, africa, middle east, asia."),
    spec: str = spec_option(),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    model_uri: str | None = typer.Option(None, help=MODEL_URI_HELP),
    supplement: Path | None = _supplement_option(),
) -> None:
    """The likeliest new alliances of a year among the pairs not yet allied, each with its main reason."""
    from foedus.scoring import rank as rank_job

    frame = rank_job(year, spec, top=top, with_state=with_state, region=region, model_uri=model_uri,
                     supplements=supplement)
    if as_json:
        _json(_listing(frame))
        return
    print_rank(frame, spec)


def print_rank(frame, spec) -> None:
    """A ``foedus.scoring.rank`` listing as a table, with the model and data behind it."""
    table = Table("#", "pair", "probability", "percentile", "main reason",
                  title=f"Likeliest new alliances, {spec}, {frame.attrs['year']}")
    for i, row in enumerate(frame.itertuples(), start=1):
        table.add_row(str(i), f"{row.name1} - {row.name2}", _prob(row.probability), _pct(row.percentile), row.reason)
    out.print(table)
    out.print(_source_line(frame), highlight=False)


def threats(
    year: int | None = typer.Option(None, help=YEAR_HELP),
    top: int = typer.Option(20, help="How many pairs."),
    spec: str = spec_option(),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    model_uri: str | None = typer.Option(None, help=MODEL_URI_HELP),
    supplement: Path | None = _supplement_option(),
) -> None:
    """Pairs that share a threat and are not allied, most threatened first, with what holds each back."""
    from foedus.scoring import threats as threats_job

    frame = threats_job(year, spec, top=top, model_uri=model_uri, supplements=supplement)
    if as_json:
        _json(_listing(frame))
        return
    table = Table("pair", "common foes", "common rivals", "probability", "percentile", "held back by",
                  title=f"Threat without alliance, {spec}")
    for row in frame.itertuples():
        table.add_row(f"{row.name1} - {row.name2}", f"{row.common_foes:.0f}", f"{row.common_rivals:.0f}",
                      _prob(row.probability), _pct(row.percentile), row.held_back_by)
    out.print(table)
    out.print(_source_line(frame), highlight=False)


__all__ = ["score", "rank", "threats", "FoedusError"]
