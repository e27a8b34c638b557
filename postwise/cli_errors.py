"""How a command reports a failure it cannot go on from: one line on standard error, then exit.

Every command group uses :func:`fail`, so errors look alike across the CLI (``error: <what was
wrong>``) and no message is mangled: Rich markup is off, because messages quote file contents,
TOML keys and intervals such as ``[0, 1]``.
"""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console


def fail(message: object, code: int = 1) -> NoReturn:
    """Print ``error: <message>`` on standard error (unwrapped, no markup) and exit with
    ``code`` (raises :class:`typer.Exit`)."""
    Console(stderr=True, soft_wrap=True).print(f"error: {message}", markup=False, highlight=False)
    raise typer.Exit(code=code)
