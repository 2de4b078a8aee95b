"""The ``foedus`` command's entry point: the process's memory set up first, then the CLI."""

from __future__ import annotations


def main() -> None:
    from foedus.features.memory import with_huge_pages

    with_huge_pages()  # before the CLI's imports: the process may start over
    from foedus.cli import main as cli_main

    cli_main()
