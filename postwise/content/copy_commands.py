"""``postwise copy …``: generate subject lines and preheaders behind guardrails, list them,
approve the ones that wait for a person."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from postwise.cli_errors import fail as _fail
from postwise.core.errors import PostwiseError

if TYPE_CHECKING:
    from postwise.content.copy import StoredCandidate


def _print_table(rows: list[StoredCandidate], title: str) -> None:
    table = Table(title=title, show_lines=True)
    for column in ("id", "status", "subject", "preheader", "score", "source", "reasons"):
        table.add_column(column, overflow="fold")
    for row in rows:
        reasons = "; ".join(row.reasons)
        if row.approved_by:
            reasons = (reasons + "; " if reasons else "") + f"approved by {row.approved_by}"
        cells = (
            str(row.id),
            row.status,
            row.subject,
            row.preheader,
            "" if row.spam_score is None else f"{row.spam_score:g}",
            row.source,
            reasons,
        )
        table.add_row(*(Text(cell) for cell in cells))
    Console(width=200).print(table)


def register(group: typer.Typer) -> None:
    """Add the commands to the ``copy`` group."""

    @group.command("generate")
    def generate_command(
        topic: str = typer.Option(..., "--topic", help="what the mail is about"),
        facts: list[str] = typer.Option(
            [], "--facts", help="a key fact the copy may use (repeat for more)"
        ),
        tone: str = typer.Option("friendly", help="friendly, neutral, formal or playful"),
        segment: str | None = typer.Option(None, help="audience segment (sensitive: approval)"),
        n: int = typer.Option(5, "--n", help="how many candidates to generate"),
        language: str = typer.Option("en", help="language of the copy"),
        backend: str = typer.Option(
            "auto", help="offline, llm (POSTWISE_COPY_LLM_URL) or auto (llm when set)"
        ),
        seed: int = typer.Option(0, help="seed of the offline generator"),
        policy: Path | None = typer.Option(
            None, "--policy", help="copy policy TOML layered over conf/copy_policy.toml"
        ),
        as_json: bool = typer.Option(False, "--json", help="one JSON object per line"),
    ) -> None:
        """Generate N candidates for a brief, check each against the guardrails and store each
        with its status and reasons (rejected ones too)."""
        from postwise.content.copy import CopyBrief, CopyService

        if backend not in ("auto", "offline", "llm"):
            _fail(f"--backend must be offline, llm or auto, not {backend!r}")
        try:
            brief = CopyBrief(
                topic=topic,
                facts=tuple(facts),
                tone=tone,
                segment=segment,
                count=n,
                language=language,
            )
            service = CopyService.from_settings(
                backend=backend,  # type: ignore[arg-type]
                policy_path=policy,
                seed=seed,
            )
            stored = service.generate(brief)
        except PostwiseError as error:
            _fail(str(error))
        if as_json:
            for row in stored:
                print(json.dumps(row.as_dict()))
            return
        usable = sum(1 for row in stored if row.usable)
        _print_table(stored, f"{len(stored)} candidates for {brief.topic!r}, {usable} usable")

    @group.command("list")
    def list_command(
        status: str | None = typer.Option(
            None, help="only approved, rejected or needs_approval candidates"
        ),
        limit: int = typer.Option(100, help="at most this many, newest first"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object per line"),
    ) -> None:
        """List stored candidates, newest first."""
        from postwise.content.copy import CopyStore
        from postwise.core.db import open_database
        from postwise.core.settings import get_settings

        try:
            store = CopyStore(open_database(get_settings().resolved_database_url))
            rows = store.recent(status=status, limit=limit)
        except PostwiseError as error:
            _fail(str(error))
        if as_json:
            for row in rows:
                print(json.dumps(row.as_dict()))
            return
        _print_table(rows, f"{len(rows)} copy candidates" + (f" ({status})" if status else ""))

    @group.command("approve")
    def approve_command(
        candidate_id: int = typer.Argument(..., help="candidate id (see `postwise copy list`)"),
        by: str = typer.Option(..., "--by", help="who approves"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object"),
    ) -> None:
        """Approve a candidate that waits for a person (a sensitive segment's copy)."""
        from postwise.content.copy import CopyStore
        from postwise.core.db import open_database
        from postwise.core.settings import get_settings

        try:
            store = CopyStore(open_database(get_settings().resolved_database_url))
            row = store.approve(candidate_id, by)
        except PostwiseError as error:
            _fail(str(error))
        if as_json:
            print(json.dumps(row.as_dict()))
            return
        print(f"approved copy candidate {row.id} by {row.approved_by}: {row.subject}")
