"""``postwise engage explain CONTACT``: the decisions recorded for a contact."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table


def explain_command(
    contact: str = typer.Argument(..., help="contact id (pseudonymous)"),
    limit: int = typer.Option(50, help="newest decisions shown"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object"),
) -> None:
    """Every score or decision recorded for CONTACT: model version, features hash, policy."""
    from postwise.core.db import open_database
    from postwise.core.settings import get_settings
    from postwise.engage.provenance import decisions_for

    decisions = decisions_for(open_database(get_settings().resolved_database_url), contact, limit)
    if as_json:
        print(
            json.dumps(
                {"contact_id": contact, "decisions": [d.as_dict() for d in decisions]},
                default=str,
            )
        )
        return
    if not decisions:
        print(f"no decisions recorded for {contact}")
        return
    table = Table(title=f"decisions for {contact}")
    for column in ("when", "kind", "decision", "model", "features sha256", "policy"):
        table.add_column(column, overflow="fold")
    for d in decisions:
        model = f"{d.model_name} {d.model_version}" if d.model_name else "(rule)"
        table.add_row(
            d.decided_at.isoformat(timespec="seconds"),
            d.kind,
            json.dumps(d.decision, default=str),
            model,
            d.features_sha256[:16],
            json.dumps(d.policy, default=str),
        )
    Console(width=200).print(table)


def register(engage_app: typer.Typer) -> None:
    engage_app.command("explain")(explain_command)
