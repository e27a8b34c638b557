"""``postwise template|copy|campaign``: build messages, generate copy, run campaigns."""

from __future__ import annotations

import typer

from postwise.content import copy_commands, template_commands
from postwise.engage import campaign_commands

template_app = typer.Typer(help="Lint and render message templates.", no_args_is_help=True)
copy_app = typer.Typer(
    help="Generate subject lines and preheaders behind guardrails.", no_args_is_help=True
)
campaign_app = typer.Typer(help="Audiences, sends and reports of campaigns.", no_args_is_help=True)


def register_campaign_commands(app: typer.Typer) -> None:
    """Add the ``template``, ``copy`` and ``campaign`` groups to ``app``."""
    template_commands.register(template_app)
    copy_commands.register(copy_app)
    campaign_commands.register(campaign_app)
    app.add_typer(template_app, name="template")
    app.add_typer(copy_app, name="copy")
    app.add_typer(campaign_app, name="campaign")
