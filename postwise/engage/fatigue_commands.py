"""``postwise engage eval fatigue`` (issue #7): the response curve against the number of
contacts, the cap it implies and its gain at equal attempts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from postwise.cli_errors import fail as _fail
from postwise.core.errors import PostwiseError
from postwise.core.json_safe import json_safe


def _curve_table(result: dict[str, Any]) -> Table:
    table = Table(title="response curve (training rows)")
    for column in (
        "contacts",
        "clients",
        "P(y | contacts) [95% CI]",
        "at risk",
        "hazard [95% CI]",
        "smoothed",
        "adjusted",
    ):
        table.add_column(column, justify="right")
    for row in result["curve"]:
        low, high = row["response_rate_ci"]
        h_low, h_high = row["hazard_ci"]
        table.add_row(
            str(row["contacts"]),
            str(row["clients"]),
            f"{row['response_rate']:.3f} [{low:.3f}, {high:.3f}]",
            str(row["at_risk"]),
            f"{row['hazard']:.4f} [{h_low:.4f}, {h_high:.4f}]",
            f"{row['smoothed_hazard']:.4f}",
            f"{row.get('adjusted_hazard', float('nan')):.4f}",
        )
    return table


def _policy_table(result: dict[str, Any]) -> Table:
    table = Table(title="caps on the scored rows (gain per 1000 clients at equal attempts)")
    for column in ("policy", "cap", "responses", "attempts", "per attempt", "gain [95% CI]"):
        table.add_column(column, justify="right")
    for name, m in result["policies"].items():
        low, high = m["gain_ci"]
        table.add_row(
            name + (" *" if name == result["policy"] else ""),
            "none" if m["cap"] is None else str(m["cap"]),
            str(m["responses"]),
            str(m["attempts"]),
            f"{m['responses_per_attempt']:.4f}",
            f"{m['gain_per_1000']:.2f} [{low:.2f}, {high:.2f}]",
        )
    return table


def register(train_app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the fatigue commands to the ``engage train`` and ``engage eval`` groups."""
    del train_app

    @eval_app.command("fatigue")
    def eval_fatigue_command(
        train: Path = typer.Option(..., help="bank_marketing folder (CSV files) to estimate on"),
        test: Path = typer.Option(None, help="folder to measure on (default: an internal split)"),
        seed: int = typer.Option(0, help="seed of the splits, the model and the bootstrap"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    ) -> None:
        """Response curve by number of contacts, the best frequency cap and its gain."""
        from postwise.engage.fatigue import evaluate_fatigue_folder

        try:
            result = evaluate_fatigue_folder(train, test, seed=seed)
        except (PostwiseError, ValueError) as error:
            _fail(error)
            return
        if as_json:
            print(json.dumps(json_safe(result)))
            return
        console = Console()
        console.print(
            f"{result['dataset']}: {result['protocol']}; {result['rows']} rows scored, "
            f"{result['train_rows']} training rows; break-even hazard "
            f"{result['break_even_hazard']:.4f} (uncapped responses per attempt)",
            markup=False,
            highlight=False,
        )
        console.print(_curve_table(result))
        console.print(_policy_table(result))
        low, high = result["expected_gain_ci"]
        console.print(
            f"best cap {result['best_cap']}; chosen policy {result['policy']} (by its gain on "
            f"training rows): {result['expected_gain']:.2f} responses per 1000 clients "
            f"[{low:.2f}, {high:.2f}] at equal attempts",
            markup=False,
            highlight=False,
        )
