"""``postwise engage``: personalization commands (train and evaluate models on a data folder)."""

from __future__ import annotations

import typer

from postwise.engage import (
    ingest_commands,
    propensity_commands,
    provenance_commands,
    scoring_commands,
    uplift_commands,
)

engage_app = typer.Typer(help="Personalization: models of who gets what.", no_args_is_help=True)
engage_train_app = typer.Typer(help="Train personalization models.", no_args_is_help=True)
engage_eval_app = typer.Typer(help="Measure personalization models.", no_args_is_help=True)
engage_app.add_typer(engage_train_app, name="train")
engage_app.add_typer(engage_eval_app, name="eval")


def register_engage_commands(app: typer.Typer) -> None:
    """Add ``engage train|eval propensity|uplift`` to ``app``."""
    for module in (propensity_commands, uplift_commands):
        module.register(engage_train_app, engage_eval_app)
    provenance_commands.register(engage_app)
    scoring_commands.register(engage_app)
    ingest_commands.register(engage_app)
    app.add_typer(engage_app, name="engage")
