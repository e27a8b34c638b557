"""``postwise.cli_errors.fail``: the one way commands report a failure."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from postwise.cli_errors import fail


def _app(code: int) -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def broken() -> None:
        fail("rates.csv line 3: 'p' holds 2, expected a value in [0, 1] ([bold]raw[/bold])", code)

    return app


def test_fail_prints_the_message_verbatim_on_stderr_and_exits_with_the_code() -> None:
    for code in (1, 2):
        result = CliRunner().invoke(_app(code), [])
        assert result.exit_code == code
        assert result.stdout == ""
        # no Rich markup: bracketed text in messages survives as written, on one line
        assert result.stderr == (
            "error: rates.csv line 3: 'p' holds 2, expected a value in [0, 1] ([bold]raw[/bold])\n"
        )
