"""``postwise engage import contacts|events FILE``: load CSV or JSON-lines files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # the database layer loads in the command, not when the CLI starts
    from postwise.engage.ingest import ImportReport

SHOWN_ERRORS = 50


def _print_report(report: ImportReport) -> None:
    console = Console()
    table = Table(title=f"import {report.kind}: {report.source}")
    table.add_column("rows", justify="right")
    labels = (
        ("created", "updated", "failed")
        if report.kind == "contacts"
        else ("imported", "duplicates", "consent_withdrawn", "failed")
    )
    for label in labels:
        table.add_column(label.replace("_", " "), justify="right")
    table.add_row(str(report.rows), *(str(getattr(report, label)) for label in labels))
    console.print(table)
    for problem in report.errors[:SHOWN_ERRORS]:
        console.print(f"[red]skipped[/red] {problem}", highlight=False, markup=True)
    hidden = report.failed - min(len(report.errors), SHOWN_ERRORS)
    if hidden > 0:
        console.print(f"… and {hidden} more skipped rows (use --json for the listed ones)")


def _run(
    kind: Literal["contacts", "events"], path: Path, file_format: str | None, as_json: bool
) -> None:
    from postwise.core.db import open_database
    from postwise.core.errors import PostwiseError
    from postwise.core.settings import get_settings
    from postwise.engage.contacts import ContactStore
    from postwise.engage.ingest import import_file

    try:
        settings = get_settings()
        store = ContactStore.from_settings(settings, open_database(settings.resolved_database_url))
        report = import_file(store, kind, path, file_format)
    except PostwiseError as error:
        Console(stderr=True).print(f"error: {error}", markup=False, highlight=False)
        raise typer.Exit(code=2) from None
    if as_json:
        print(json.dumps(report.to_json()))
    else:
        _print_report(report)
    if report.all_failed:
        raise typer.Exit(code=1)


_FORMAT = typer.Option(None, "--format", help="csv or jsonl; default: from the file name")
_JSON = typer.Option(False, "--json", help="print the report as one JSON object")


def import_contacts(
    path: Path = typer.Argument(..., help="CSV or JSON-lines file of contacts"),
    file_format: str | None = _FORMAT,
    as_json: bool = _JSON,
) -> None:
    """Create or update contacts (and their consent) from FILE. Bad rows are listed with their
    line and skipped; exit code 1 only when every row failed."""
    _run("contacts", path, file_format, as_json)


def import_events(
    path: Path = typer.Argument(..., help="CSV or JSON-lines file of events"),
    file_format: str | None = _FORMAT,
    as_json: bool = _JSON,
) -> None:
    """Append engagement events from FILE, each event id once. Unsubscribes and complaints
    withdraw marketing-email consent. Exit code 1 only when every row failed."""
    _run("events", path, file_format, as_json)


def register(engage_app: typer.Typer) -> None:
    """Add ``import contacts|events`` to the ``engage`` group."""
    import_app = typer.Typer(help="Load contacts and events from files.", no_args_is_help=True)
    import_app.command("contacts")(import_contacts)
    import_app.command("events")(import_events)
    engage_app.add_typer(import_app, name="import")
