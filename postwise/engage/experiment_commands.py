"""``postwise engage experiment …``: stored experiments. Scaffolding: filled in by its author."""

from __future__ import annotations

import typer


def register(engage_app: typer.Typer) -> None:
    """Add the ``experiment`` group to ``engage``."""
    del engage_app
