"""``postwise engage eval headlines`` (issue #7). Scaffolding: filled in by its author."""

from __future__ import annotations

import typer


def register(train_app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add the headlines commands to the ``engage train`` and ``engage eval`` groups."""
    del train_app, eval_app
