"""``postwise engage``: personalization commands (train and evaluate models on a data folder)."""

from __future__ import annotations

import typer

from postwise.engage import (
    bandit_commands,
    experiment_commands,
    fatigue_commands,
    headlines_commands,
    ingest_commands,
    propensity_commands,
    provenance_commands,
    scoring_commands,
    sendtime_commands,
    uplift_commands,
)

engage_app = typer.Typer(help="Personalization: models of who gets what.", no_args_is_help=True)
engage_train_app = typer.Typer(help="Train personalization models.", no_args_is_help=True)
engage_eval_app = typer.Typer(help="Measure personalization models.", no_args_is_help=True)
engage_app.add_typer(engage_train_app, name="train")
engage_app.add_typer(engage_eval_app, name="eval")


def register_engage_commands(app: typer.Typer) -> None:
    """Add the ``engage`` group (train, eval, import, score, explain, experiment) to ``app``."""
    for module in (
        propensity_commands,
        uplift_commands,
        sendtime_commands,
        fatigue_commands,
        bandit_commands,
        headlines_commands,
    ):
        module.register(engage_train_app, engage_eval_app)
    experiment_commands.register(engage_app)
    provenance_commands.register(engage_app)
    scoring_commands.register(engage_app)
    ingest_commands.register(engage_app)
    app.add_typer(engage_app, name="engage")
