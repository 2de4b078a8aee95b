"""The ui command: the MLflow UI on the project's store, or the links of a tracking server."""

from __future__ import annotations

import typer
from foedus.cli.common import out
from foedus.infra.errors import FoedusError


def _print_links(links) -> None:
    for name, url in links.experiments.items():
        out.print(f"  {name}: {url}", markup=False, highlight=False)
    if links.compare:
        out.print(f"  compare the latest backtest's {len(links.compared_runs)} models: {links.compare}",
                  markup=False, highlight=False)
    else:
        out.print("  no backtest yet: run `foedus run` or `foedus backtest` first", markup=False)


def ui(port: int | None = typer.Option(None, help="Port on 127.0.0.1 (default: a free one).")) -> None:
    """Start the MLflow UI on the project's store and print where to look; Ctrl-C stops it. With a
    tracking server in MLFLOW_TRACKING_URI, print where to look on that server (it is the UI)."""
    from foedus.infra.config import Paths
    from foedus.models.tracking import tracking_uri
    from foedus.ui import start_server, stop_server, ui_links

    if port is not None and not 0 < port < 65536:
        raise FoedusError(f"--port {port}: give a TCP port between 1 and 65535")
    uri = tracking_uri(Paths.discover().root)
    if uri.startswith(("http://", "https://")):
        base = uri.rstrip("/")
        links = ui_links(base)  # meets the server first: unreachable, one line
        out.print(f"MLflow UI of the tracking server {base} (MLFLOW_TRACKING_URI)", markup=False, highlight=False)
        _print_links(links)
        return
    process, base = start_server(port=port)
    try:
        links = ui_links(base)
        out.print(f"MLflow UI on {base} (process {process.pid}); Ctrl-C stops it", markup=False, highlight=False)
        _print_links(links)
        process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop_server(process)
