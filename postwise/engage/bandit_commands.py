"""``postwise engage eval bandit`` (issue #7). Scaffolding: the command is added by its author."""

from __future__ import annotations

import typer


def register(train_app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the bandit commands to the ``engage train`` and ``engage eval`` groups."""
    del train_app, eval_app
