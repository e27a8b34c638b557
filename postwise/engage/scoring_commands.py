"""``postwise engage score``: score the consenting contacts with a promoted model."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from postwise.core.errors import PostwiseError


def score_command(
    model: str = typer.Option(..., "--model", help="registered model name"),
    purpose: str = typer.Option("marketing", help="consent purpose required to score"),
    channel: str = typer.Option("email", help="consent channel required to score"),
    cutoff: str | None = typer.Option(None, help="features as of this ISO time (default now)"),
    top: int = typer.Option(10, help="top contacts shown"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object"),
) -> None:
    """Score the contacts that consent to PURPOSE on CHANNEL with the promoted version of
    MODEL; every score is recorded (see `engage explain`) and drift is checked."""
    from postwise.core.db import open_database
    from postwise.core.settings import get_settings
    from postwise.engage.contacts import ContactStore
    from postwise.engage.scoring import parse_cutoff, score_contacts

    settings = get_settings()
    try:
        store = ContactStore.from_settings(settings, open_database(settings.resolved_database_url))
        run = score_contacts(store, model, purpose, channel, parse_cutoff(cutoff))
    except PostwiseError as error:
        Console(stderr=True).print(f"error: {error}", markup=False, highlight=False)
        raise typer.Exit(code=1) from None
    result = run.as_dict(top)
    if as_json:
        print(json.dumps(result, default=str))
        return
    console = Console(width=200)
    psi = result["drift_psi_max"]
    console.print(
        f"{run.model_name} {run.model_version} as of {result['cutoff']} "
        f"({run.purpose}/{run.channel}): {result['scored']} scored, "
        f"{result['skipped_consent']} skipped for consent, "
        f"{result['skipped_no_history']} without history; drift PSI max "
        + ("n/a" if psi is None else f"{psi:.3f}")
        + (" (ALERT)" if run.drift and run.drift.get("alert") else ""),
        markup=False,
        highlight=False,
    )
    table = Table(title="top contacts by score")
    table.add_column("contact")
    table.add_column("score", justify="right")
    for item in result["top"]:
        table.add_row(item["contact_id"], f"{item['score']:.4f}")
    console.print(table)


def register(engage_app: typer.Typer) -> None:
    engage_app.command("score")(score_command)
