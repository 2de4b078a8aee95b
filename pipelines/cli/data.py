"""The data commands: fetch and status of the raw data, states, the feature catalogue, build,
describe and cite."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from foedus.cli.common import FOR_YEAR_HELP, err, out, print_threat_summary, report_build, spec_option
from foedus.infra.errors import FoedusError
from rich.table import Table

data_app = typer.Typer(help="Fetch, verify and inspect the raw data.", no_args_is_help=True)
states_app = typer.Typer(help="Look up states in the COW registry.", no_args_is_help=True)
features_app = typer.Typer(help="The feature catalogue.", no_args_is_help=True)


@data_app.command("fetch")
def data_fetch(
    origin: str | None = typer.Option(None, "--from", help="Folder or http(s) URL laid out like ../shared/data."),
    force: bool = typer.Option(False, help="Fetch again even if a verified copy is present."),
) -> None:
    """Fill data/raw/ from --from, else the local mirror, else upstream; verify every checksum."""
    from foedus.jobs import fetch_data

    if origin is not None and not origin.startswith(("http://", "https://")) and not Path(origin).is_dir():
        raise FoedusError(f"--from {origin}: no such folder (give a folder or an http(s) URL)")
    done = fetch_data(origin, force=force, show_progress=out.is_terminal)
    fetched = [f for f in done if f.origin != "already present"]
    for item in fetched:
        out.print(f"fetched {item.source.path}  [dim]from {item.origin}[/dim]")
    out.print(f"[green]{len(done)} raw files verified[/green] ({len(fetched)} fetched, "
              f"{len(done) - len(fetched)} already present)")


@data_app.command("status")
def data_status_cmd() -> None:
    """Show each source: present, verified, version, years covered."""
    import pandas as pd
    from foedus.jobs import data_status

    status = data_status()
    table = Table("source", "file", "state", "version", "years")
    for row in status.itertuples():
        colour = "green" if row.verified else "red"
        years = "-" if pd.isna(row.first_year) else f"{row.first_year}-{row.last_year}"
        table.add_row(row.source, row.path, f"[{colour}]{row.state}[/{colour}]", row.version, years)
    out.print(table)
    bad = status[~status["verified"]]
    if len(bad):
        raise FoedusError(f"{len(bad)} of {len(status)} raw files are missing or fail their checksum: "
                          "run `foedus data fetch`")


@states_app.command("resolve")
def states_resolve(
    query: str = typer.Argument(..., help="COW code, COW abbreviation or country name."),
    year: int | None = typer.Option(None, help="Also check the state was a system member this year."),
) -> None:
    """Resolve a code, abbreviation or name to one COW state."""
    from foedus.features.states import resolve_state

    out.print(str(resolve_state(query, year)))


def build(
    spec: str = spec_option(),
    first: int = typer.Option(1816, help="First year (1816-2024)."),
    last: int = typer.Option(2024, help="Last year (1816-2024)."),
    labels_only: bool = typer.Option(False, "--labels-only", help="Only the universe and labels, no features."),
    force: bool = typer.Option(False, help="Rebuild even if an identical build exists."),
    for_year: int | None = typer.Option(None, "--for-year", help=FOR_YEAR_HELP),
) -> None:
    """Build the dyad-year table (features and labels) into data/processed/ and print counts by era."""
    from foedus.jobs import build as build_job

    report_build(build_job(spec, first, last, labels_only=labels_only, force=force, for_year=for_year))


def describe(spec: str = spec_option()) -> None:
    """Onset rates overall and within shared-threat dyad-years, by era (builds the table if needed)."""
    from foedus.jobs import describe as describe_job

    print_threat_summary(describe_job(spec))


@features_app.command("list")
def features_list(
    markdown: Path | None = typer.Option(None, "--markdown", help="Write the catalogue as Markdown to this file."),
    spec: str = spec_option(),
) -> None:
    """Print every feature: name, family, sources (with their last covered year), lag, unit, meaning."""
    from foedus.jobs import feature_catalogue

    frame, text = feature_catalogue(spec)
    if markdown is not None:
        from foedus.infra.atomic import write_atomic

        write_atomic(markdown, lambda tmp: tmp.write_text(text + "\n"))
        out.print(f"wrote the catalogue of {len(frame)} features to {markdown}")
        return
    table = Table("feature", "family", "sources", "lag", "unit", "meaning", title=f"{len(frame)} features")
    for row in frame.itertuples():
        table.add_row(row.name, row.family, row.sources, str(row.lag), row.unit, row.meaning)
    out.print(table)


def cite(
    spec: str = spec_option(),
    fmt: str = typer.Option("bibtex", "--format", help="bibtex, text (one APA-like line per reference) or both."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file (atomically), not stdout."),
    all_sources: bool = typer.Option(False, "--all", help="Cite every source in the manifest, not only a build's."),
) -> None:
    """Print the references to cite for exactly the sources a build used (its sidecar, else the spec), as ps_cite()."""
    from foedus.infra.errors import InvalidInput
    from foedus.jobs import cite as cite_job

    if output is not None and output.is_dir():
        raise InvalidInput(f"--output {output} is a folder: give a file name, e.g. {output / 'references.bib'}")
    cited = cite_job(spec, all_sources=all_sources)
    text = cited.render(fmt)
    summary = f"{len(cited.references)} references for the {len(cited.sources)} sources of {cited.origin}"
    if output is not None:
        from foedus.infra.atomic import write_atomic

        write_atomic(output, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"))
        out.print(f"wrote {summary} to {output}", markup=False, highlight=False)
        return
    sys.stdout.write(text + "\n")  # raw: BibTeX braces and brackets are not rich markup
    err.print(summary, markup=False, highlight=False)
