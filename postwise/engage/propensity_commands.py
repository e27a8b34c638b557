"""``postwise engage train propensity`` and ``postwise engage eval propensity``."""

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

TARGET_HELP = (
    "purchase (next 30 days; every data set) or churn (no purchase in the 90 days after the "
    "cut-off, customers active in the 90 days before it; online_retail only), or open / click "
    "(in the 7 days after the cut-off; event logs only)"
)
WINDOW_HELP = "label window in days for an event log (default: 7 for open and click, 30 purchase)"
DATA_HELP = "online_retail, bank_marketing (CSV files) or event-log folder (CSV / JSON lines)"


def _metrics_table(result: dict[str, Any], title: str) -> Table:
    table = Table(title=title)
    for column in ("model", "AUC", "log loss", "ECE", "top-decile lift"):
        table.add_column(column)
    rows = [("propensity", result), *result["baseline"].items()]
    for name, m in rows:
        table.add_row(
            name,
            *(
                str(m.get(key, "")) if m.get(key) is not None else ""
                for key in ("auc", "log_loss", "ece", "top_decile_lift")
            ),
        )
    return table


def _print_skipped(console: Console, result: dict[str, Any]) -> None:
    """An event log's invalid rows (skipped, as an import skips them), the first ones listed."""
    if not result.get("skipped_rows"):
        return
    console.print(
        f"skipped {result['skipped_rows']} invalid event row(s):", markup=False, highlight=False
    )
    for problem in result.get("skipped_examples", []):
        console.print(f"  {problem}", markup=False, highlight=False)


def register(train_app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the propensity commands to the ``engage train`` and ``engage eval`` groups."""

    @train_app.command("propensity")
    def train_propensity_command(
        data: Path = typer.Option(..., help=DATA_HELP),
        out: Path = typer.Option(..., help="folder to write the model and its model card to"),
        seed: int = typer.Option(0, help="seed of the split, folds and trees"),
        target: str = typer.Option("purchase", help=TARGET_HELP),
        window_days: int = typer.Option(None, "--window-days", help=WINDOW_HELP),
    ) -> None:
        """Train a calibrated propensity model and write it with its model card."""
        from postwise.engage.propensity import train_propensity
        from postwise.engage.registry import register_trained

        try:
            card = train_propensity(data, out, seed=seed, target=target, window_days=window_days)
        except (PostwiseError, ValueError) as error:
            _fail(error)
            return
        console = Console()
        _print_skipped(console, card["internal_split_metrics"])
        console.print(_metrics_table(card["internal_split_metrics"], "internal split"))
        console.print(f"wrote {out} ({card['version']})")
        console.print(register_trained(out), markup=False, highlight=False)

    @eval_app.command("propensity")
    def eval_propensity_command(
        train: Path = typer.Option(..., help="folder to train on"),
        test: Path = typer.Option(None, help="folder to score (default: an internal split)"),
        seed: int = typer.Option(0, help="seed of the split, folds and trees"),
        target: str = typer.Option("purchase", help=TARGET_HELP),
        window_days: int = typer.Option(None, "--window-days", help=WINDOW_HELP),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    ) -> None:
        """AUC, log loss, calibration error and top-decile lift of the propensity model."""
        from postwise.engage.propensity import evaluate_folder

        try:
            result = evaluate_folder(train, test, seed=seed, target=target, window_days=window_days)
        except (PostwiseError, ValueError) as error:
            _fail(error)
            return
        if as_json:
            print(json.dumps(json_safe(result)))
            return
        console = Console()
        if "note" in result:
            console.print(f"note: {result['note']}", markup=False, highlight=False)
        _print_skipped(console, result)
        console.print(
            f"{result['dataset']} ({result['target']}): {result['protocol']}; "
            f"{result['rows']} rows scored, "
            f"{result['train_rows']} training rows; {result['model']}"
        )
        console.print(_metrics_table(result, "propensity"))
