"""``foedus server start|stop|status``: parse, call ``foedus.server``, print where clients point."""

from __future__ import annotations

from pathlib import Path

import typer
from foedus.cli.common import err, out

server_app = typer.Typer(help="A shared MLflow tracking server on PostgreSQL, for a team (the database from "
                         "PGUSER, PGPASSWORD, PGHOST, PGPORT, PGDATABASE).", no_args_is_help=True)

STATE_HELP = ("The server's state file (default mlruns/server.json in the project; its log beside it). Another "
              "file runs a second server.")
NOT_RUNNING = 3  # the exit code of `status` when no server runs, as an init script's status


def _print(text: str) -> None:
    out.print(text, markup=False, highlight=False)


@server_app.command("start")
def server_start(
    host: str = typer.Option("127.0.0.1", help="The interface to bind: 127.0.0.1 keeps the server to this "
                             "machine; 0.0.0.0 opens it to the network (see the README's Team use first)."),
    port: int = typer.Option(5000, help="The TCP port (0: a free one)."),
    artifacts: Path | None = typer.Option(None, "--artifacts", help="Where the server keeps the artifacts it "
                                          "serves (default mlruns/server-artifacts in the project)."),
    workers: int | None = typer.Option(None, help="Server worker processes (default MLflow's, 4)."),
    allowed_hosts: str | None = typer.Option(None, "--allowed-hosts", help="Comma-separated Host headers MLflow "
                                             "accepts besides localhost (default: private addresses); clients "
                                             "that reach the server by name need it, e.g. statslab.example.org:5000."),
    state: Path | None = typer.Option(None, "--state", help=STATE_HELP),
) -> None:
    """Start MLflow's tracking server on PostgreSQL in the background and wait until it answers."""
    from foedus.server import start

    started = start(host, port, artifacts, workers=workers, allowed_hosts=allowed_hosts, state=state)
    _print(f"MLflow tracking server on {started.uri} (process {started.pid}; database {started.database}; "
           f"artifacts {started.artifacts}; log {started.log})")
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"note: bound to {host}: whoever reaches this port can read and write every run and model "
                  "(MLflow checks no password here); see the README's Team use", markup=False, highlight=False)
    _print(f"point foedus at it: export MLFLOW_TRACKING_URI={started.uri}")


@server_app.command("status")
def server_status(state: Path | None = typer.Option(None, "--state", help=STATE_HELP)) -> None:
    """Is the server running and answering, and which MLFLOW_TRACKING_URI reaches it (exit 3 if not running)."""
    from foedus.server import state_path, status

    found = status(state)
    if found.state is None:
        _print(f"not running: no server recorded in {state_path(state)} (`foedus server start`)")
        raise typer.Exit(NOT_RUNNING)
    recorded = found.state
    if found.running:
        _print(f"running at {recorded.uri} (process {recorded.pid}, since {recorded.started}; database "
               f"{recorded.database}; artifacts {recorded.artifacts}; log {recorded.log})")
        _print(f"export MLFLOW_TRACKING_URI={recorded.uri}")
        return
    if found.alive:
        _print(f"not answering: process {recorded.pid} runs but {recorded.uri}/health does not answer (starting, or "
               f"stuck: see {recorded.log})")
    else:
        _print(f"not running: process {recorded.pid} of {state_path(state)} has exited (its log: {recorded.log}); "
               "`foedus server start` starts a new one")
    raise typer.Exit(NOT_RUNNING)


@server_app.command("stop")
def server_stop(
    state: Path | None = typer.Option(None, "--state", help=STATE_HELP),
    timeout: float = typer.Option(10.0, help="Seconds the server gets to exit before it is killed."),
) -> None:
    """Stop the server (its whole process group, by process id) and remove its state file."""
    from foedus.server import state_path, stop

    stopped = stop(state, timeout=timeout)
    if stopped.state is None:
        _print(f"no server recorded in {state_path(state)}: nothing to stop")
    elif not stopped.was_running:
        _print(f"the server recorded at {stopped.state.uri} (process {stopped.state.pid}) had already exited; "
               "removed its state file")
    else:
        how = "killed (it did not exit within the timeout)" if stopped.forced else "stopped"
        _print(f"{how} the MLflow tracking server at {stopped.state.uri} (process group {stopped.state.pgid})")
