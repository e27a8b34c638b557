"""``postwise copy …`` commands. Scaffolding: filled in by their author."""

from __future__ import annotations

import typer


def register(group: typer.Typer) -> None:
    """Add the commands to the ``copy`` group."""
    del group
