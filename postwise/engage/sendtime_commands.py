"""``postwise engage train sendtime`` and ``postwise engage eval sendtime`` (issue #7)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from postwise.cli_errors import fail as _fail
from postwise.core.errors import PostwiseError
from postwise.core.json_safe import json_safe


def _table(result: dict[str, Any], title: str) -> Table:
    table = Table(title=title)
    for column in ("model", "hit rate ±1 h", "log-likelihood"):
        table.add_column(column)
    rows = [
        (f"postwise ({result['model']})", result),
        ("global most common hour", result["baseline_global"]),
        ("own most common hour", result["baseline_mode"]),
    ]
    for name, m in rows:
        table.add_row(name, f"{m['hit_rate_1h']:.4f}", f"{m['log_likelihood']:.4f}")
    return table


def register(train_app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the sendtime commands to the ``engage train`` and ``engage eval`` groups."""

    @eval_app.command("sendtime")
    def eval_sendtime_command(
        train: Path = typer.Option(..., help="online_retail folder to choose the model on"),
        test: Path = typer.Option(None, help="folder to score (default: an internal split)"),
        cutoff: datetime = typer.Option(
            None,
            formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S"],
            help="internal split at this moment (shop time) instead of 70 days before the end",
        ),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    ) -> None:
        """Hit rate within ±1 hour and log-likelihood of the next invoice's hour-of-week."""
        from postwise.engage.sendtime_evaluation import evaluate_sendtime

        try:
            result = evaluate_sendtime(train, test, cutoff)
        except (PostwiseError, ValueError) as error:
            _fail(error)
            return
        if as_json:
            print(json.dumps(json_safe(result)))
            return
        console = Console()
        console.print(
            f"{result['dataset']}: {result['protocol']}; cut-off {result['cutoff']}, "
            f"{result['customers']} customers",
            markup=False,
            highlight=False,
        )
        console.print(_table(result, "send time"))
        for name, gain in result["hit_rate_gain"].items():
            low, high = gain["ci95"]
            console.print(
                f"hit-rate gain {name.replace('_', ' ')} baseline: {gain['difference']:+.4f} "
                f"(95% paired bootstrap {low:+.4f} to {high:+.4f})",
                markup=False,
                highlight=False,
            )

    @train_app.command("sendtime")
    def train_sendtime_command(
        data: Path = typer.Option(..., help="online_retail folder (CSV files)"),
        out: Path = typer.Option(..., help="folder to write the profiles and model card to"),
        seed: int = typer.Option(0, help="seed of the exploration draws"),
    ) -> None:
        """Choose and fit the send-time model and write it with its model card."""
        from postwise.engage.registry import register_trained
        from postwise.engage.sendtime_evaluation import train_sendtime

        try:
            card = train_sendtime(data, out, seed=seed)
        except (PostwiseError, ValueError) as error:
            _fail(error)
            return
        console = Console()
        console.print(_table(card["internal_split_metrics"], "internal split"))
        console.print(f"wrote {out} ({card['version']})", markup=False, highlight=False)
        console.print(register_trained(out), markup=False, highlight=False)
