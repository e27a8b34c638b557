"""``postwise template lint|render``: check a template and preview it for a contact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from postwise.cli_errors import fail as _fail
from postwise.core.errors import PostwiseError

_PREVIEW_RECIPIENT = "preview@example.com"


def _contact_sample(contact: str) -> tuple[dict[str, Any], str | None]:
    """The render context of a stored contact (by id or address) and its address."""
    from postwise.content.templates import contact_context
    from postwise.core.db import open_database
    from postwise.core.settings import get_settings
    from postwise.engage.contacts import ContactStore

    settings = get_settings()
    store = ContactStore.from_settings(settings, open_database(settings.resolved_database_url))
    contact_id = store.contact_id(contact) if "@" in contact else contact
    attributes = store.attributes(contact_id)
    if attributes is None:
        _fail(f"no contact {contact!r} in the contact store")
    return contact_context(attributes), store.address_of(contact_id)


def _samples(
    contact: str | None, vars_file: Path | None
) -> tuple[list[dict[str, Any]], str | None]:
    from postwise.content.templates import contact_context, load_vars_file

    if contact and vars_file:
        _fail("give --contact or --vars, not both")
    if contact:
        context, address = _contact_sample(contact)
        return [context], address
    if vars_file:
        return [contact_context(item) for item in load_vars_file(vars_file)], None
    return [], None


def lint_command(
    file: Path = typer.Argument(..., help="template TOML file"),
    contact: str | None = typer.Option(None, "--contact", help="contact id or address"),
    vars_file: Path | None = typer.Option(
        None, "--vars", help="JSON object (or list of objects) of variables"
    ),
    as_json: bool = typer.Option(False, "--json", help="findings as one JSON object"),
) -> None:
    """Check FILE: missing variables, broken links, images without alt, HTML over Gmail's
    102 KB clip, long subject, missing preheader or unsubscribe link. Exit 1 on errors."""
    from postwise.content.templates import lint, load_template

    try:
        samples, _ = _samples(contact, vars_file)
        findings = lint(load_template(file), samples)
    except PostwiseError as error:
        if as_json:
            print(json.dumps({"file": str(file), "ok": False, "error": str(error)}))
            raise typer.Exit(code=1) from None
        _fail(str(error))
    errors = sum(1 for finding in findings if finding.severity == "error")
    if as_json:
        print(
            json.dumps(
                {
                    "file": str(file),
                    "ok": errors == 0,
                    "findings": [finding.as_dict() for finding in findings],
                }
            )
        )
    else:
        console = Console(width=160)
        if findings:
            table = Table(title=f"{file}: {len(findings)} finding(s)")
            for column in ("severity", "code", "line", "message"):
                table.add_column(column)
            for finding in findings:
                table.add_row(
                    finding.severity,
                    finding.code,
                    "" if finding.line is None else str(finding.line),
                    finding.message,
                )
            console.print(table)
        else:
            console.print(f"{file}: no findings", markup=False, highlight=False)
    if errors:
        raise typer.Exit(code=1)


def render_command(
    file: Path = typer.Argument(..., help="template TOML file"),
    contact: str | None = typer.Option(None, "--contact", help="contact id or address"),
    vars_file: Path | None = typer.Option(
        None, "--vars", help="JSON object of variables (the first if a list)"
    ),
    output_format: str = typer.Option("html", "--format", help="html, text or eml"),
    out: Path | None = typer.Option(None, "--out", help="write here instead of stdout"),
    unsubscribe_url: str = typer.Option(
        "https://example.invalid/unsubscribe/preview", help="unsubscribe URL of the preview"
    ),
) -> None:
    """Render FILE for a contact (or variables) as HTML, text or a whole .eml message."""
    from postwise.content.rendering import build_message, message_bytes
    from postwise.content.templates import contact_context, load_template, render

    if output_format not in {"html", "text", "eml"}:
        _fail(f"--format {output_format!r}: expected html, text or eml")
    try:
        samples, address = _samples(contact, vars_file)
        context = {
            "unsubscribe_url": unsubscribe_url,
            **(samples[0] if samples else contact_context({})),
        }
        rendered = render(load_template(file), context)
        if output_format == "eml":
            message = build_message(
                rendered,
                None,
                address or str(context.get("email") or _PREVIEW_RECIPIENT),
                unsubscribe_url=unsubscribe_url,
            )
            data = message_bytes(message)
        else:
            data = (rendered.html if output_format == "html" else rendered.text).encode("utf-8")
    except PostwiseError as error:
        _fail(str(error))
    for warning in rendered.warnings:
        Console(stderr=True).print(f"warning: {warning}", markup=False, highlight=False)
    if out is None:
        typer.echo(data.decode("utf-8"), nl=False)
    else:
        out.write_bytes(data)
        Console(stderr=True).print(f"wrote {out} ({len(data)} bytes)", markup=False)


def register(group: typer.Typer) -> None:
    """Add the commands to the ``template`` group."""
    group.command("lint")(lint_command)
    group.command("render")(render_command)
