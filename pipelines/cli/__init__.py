"""The ``foedus`` command line: each command parses, calls one function of ``foedus.jobs``, prints.

The commands live in modules by what they do (``data``, ``experiments``, ``ui``, ``scoring``,
``report``, ``server``), as plain functions and groups; this module assembles them onto ``app``
in one place, in the order ``foedus --help`` lists them, and holds the entry point.
"""

from __future__ import annotations

import logging
import os
import sys

import typer
from foedus.cli import data, experiments, report, scoring, server, ui
from foedus.cli.common import err
from foedus.infra.errors import FoedusError
from rich.markup import escape

app = typer.Typer(
    help="foedus: forecast formal military alliances between pairs of states.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
COMMANDS = (data.build, data.describe, experiments.backtest, experiments.train, experiments.sweep,
            experiments.staleness, experiments.compare, experiments.run, ui.ui, data.cite, report.report,
            scoring.score, scoring.rank, scoring.threats)
GROUPS = {"data": data.data_app, "states": data.states_app, "features": data.features_app, "server": server.server_app}
for command in COMMANDS:
    app.command()(command)
for name, group in GROUPS.items():
    app.add_typer(group, name=name)


class _OneLineWarnings(logging.Handler):
    """foedus's warnings (a damaged cache deleted, a build rebuilt or waiting for another) as
    one line each on stderr, beside the errors."""

    def emit(self, record: logging.LogRecord) -> None:
        message = " ".join(self.format(record).split())
        err.print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)


def _route_warnings() -> None:
    logger = logging.getLogger("foedus")
    if not any(isinstance(h, _OneLineWarnings) for h in logger.handlers):
        handler = _OneLineWarnings(logging.WARNING)
        logger.addHandler(handler)
        logger.propagate = False  # not a second time through Python's last-resort handler


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    _route_warnings()
    try:
        app()
    except FoedusError as exc:
        err.print(f"[bold red]error:[/bold red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a bug: say so plainly; FOEDUS_DEBUG=1 shows the traceback
        if os.environ.get("FOEDUS_DEBUG"):
            raise
        err.print(f"[bold red]internal error:[/bold red] {type(exc).__name__}: {escape(str(exc))} "
                  "(a bug in foedus; rerun with FOEDUS_DEBUG=1 for the traceback and report it)", highlight=False)
        sys.exit(1)
