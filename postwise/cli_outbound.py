"""The outbound commands: ``send``, ``queue``, ``suppression`` and ``feedback``.

They open the queue of the configured data folder without a delivery worker: ``send`` only
queues (a running ``postwise serve`` delivers it at its next poll).
"""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from postwise.cli_errors import fail
from postwise.core.errors import PostwiseError
from postwise.core.settings import get_settings

if TYPE_CHECKING:
    from postwise.services import OutboundServices

queue_app = typer.Typer(help="The outbound queue: list, show, retry, purge.")
suppression_app = typer.Typer(help="Addresses submission refuses.")
feedback_app = typer.Typer(help="Complaints and bounces received back.")

err = Console(stderr=True)


def _fail(error: Exception) -> NoReturn:
    fail(error, code=2)


@contextmanager
def _outbound() -> Iterator[OutboundServices]:
    from postwise.services import OutboundServices

    try:
        services = OutboundServices.from_settings(get_settings())
    except PostwiseError as error:
        _fail(error)
        raise  # unreachable: _fail exits
    try:
        yield services
    finally:
        services.engine.dispose()


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def send(
    mail_from: str = typer.Option(..., "--from", help="envelope sender ('' for the null sender)"),
    to: list[str] = typer.Option(..., "--to", help="a recipient (repeat for more)"),
    message: str = typer.Argument("-", help="the raw RFC 822 message: a file, or - for stdin"),
    idempotency_key: str = typer.Option(
        None, "--idempotency-key", help="a retried send with the same key queues nothing more"
    ),
    pool: str = typer.Option("default", help="egress pool to send through"),
    as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
) -> None:
    """Queue a message for delivery (a running `postwise serve` delivers it)."""
    from postwise.outbound.submission import SubmissionError

    try:
        raw = sys.stdin.buffer.read() if message == "-" else Path(message).read_bytes()
    except OSError as error:
        _fail(error)
        return
    with _outbound() as services:
        try:
            accepted = services.submit(
                mail_from,
                to,
                raw,
                source="cli",
                submitted_by=f"cli:{getpass.getuser()}",
                idempotency_key=idempotency_key,
                pool=pool,
            )
        except SubmissionError as error:
            _fail(PostwiseError(f"{message}: {error} ({error.code})"))
            return
    if as_json:
        print(json.dumps(accepted.to_json()))
        return
    print(accepted.enqueued.message_id)
    if accepted.enqueued.duplicate:
        err.print("already queued with this idempotency key: nothing queued again")
    for recipient, why in accepted.refused.items():
        err.print(f"[yellow]refused[/yellow] {recipient}: {why}")


@queue_app.command("list")
def queue_list(
    state: str = typer.Option(None, help="queued, held, delivered or bounced"),
    domain: str = typer.Option(None, help="only messages with a recipient at this domain"),
    limit: int = typer.Option(50, min=1, help="at most this many, newest first"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object a line"),
) -> None:
    """Queued messages, newest first, with their recipients counted per state."""
    from postwise.outbound.queue import QueueError

    with _outbound() as services:
        try:
            messages = services.queue.list_messages(state, domain, limit)
        except QueueError as error:
            _fail(error)
            return
        depth = services.queue.depth()
    if as_json:
        for entry in messages:
            sys.stdout.write(json.dumps(entry) + "\n")
        return
    title = ", ".join(f"{count} {name}" for name, count in depth.items())
    table = Table(title=f"outbound queue: {title} recipient(s)")
    columns = ("id", "submitted", "from", "subject", "queued", "held", "delivered", "bounced")
    for column in (*columns, "pool"):
        table.add_column(column, overflow="fold")
    for entry in messages:
        counts = entry["recipients"]
        table.add_row(
            entry["id"],
            _when(entry["created_at"]),
            entry["mail_from"] or "<>",
            entry["subject"],
            str(counts["queued"]),
            str(counts["held"]),
            str(counts["delivered"]),
            str(counts["bounced"]),
            entry["pool"],
        )
    Console(soft_wrap=True).print(table)


@queue_app.command("show")
def queue_show(
    message_id: str = typer.Argument(..., help="id from `queue list`"),
    as_json: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """One message: its envelope and each recipient's state and last reply."""
    from postwise.outbound.queue import QueueError

    with _outbound() as services:
        try:
            shown = services.queue.show(message_id)
        except QueueError as error:
            _fail(error)
            return
    if as_json:
        print(json.dumps(shown, indent=2))
        return
    console = Console(soft_wrap=True)
    for name in ("id", "mail_from", "subject", "header_message_id", "pool", "source"):
        console.print(f"[bold]{name}[/bold]: {shown[name]}", highlight=False)
    console.print(
        f"[bold]size[/bold]: {shown['size']} bytes; submitted {_when(shown['created_at'])}; "
        f"expires {_when(shown['expires_at'])}; in spool: {shown['in_spool']}",
        highlight=False,
    )
    table = Table()
    for column in ("recipient", "state", "attempts", "next attempt", "last mx", "last reply"):
        table.add_column(column, overflow="fold")
    for row in shown["recipients"]:
        table.add_row(
            row["recipient"],
            row["state"],
            str(row["attempts"]),
            _when(row["next_attempt_at"]),
            row["last_mx"],
            row["last_reply"],
        )
    console.print(table)
    for row in shown["recipients"]:
        detail = row.get("last_detail") or {}
        if not detail.get("mx_order"):
            continue
        console.print(
            f"[bold]{row['recipient']}[/bold]: last attempt via budget {detail.get('provider')}, "
            f"pool {detail.get('pool')}, source {detail.get('ip') or 'default'}, "
            f"TLS {'yes' if detail.get('tls') else 'no'}; MX order and the figures behind it:",
            highlight=False,
        )
        for choice in detail["mx_order"]:
            latency = choice.get("mean_latency")
            console.print(
                f"  {choice['preference']:>3} {choice['host']}: successes "
                f"{choice['successes']}, failures {choice['failures']}, mean latency "
                f"{'-' if latency is None else f'{latency * 1000:.0f} ms'}, sampled score "
                f"{choice['score']:.3f}{' (exploring)' if choice.get('explored') else ''}",
                highlight=False,
            )


@queue_app.command("retry")
def queue_retry(
    message_id: str = typer.Argument(None, help="one message (default: every queued one)"),
    domain: str = typer.Option(None, help="only recipients at this domain"),
) -> None:
    """Make queued recipients due now (a running worker picks them up at its next poll)."""
    from postwise.outbound.queue import QueueError

    with _outbound() as services:
        try:
            count = services.queue.retry(message_id, domain)
        except QueueError as error:
            _fail(error)
            return
    print(f"{count} recipient(s) due now")


@queue_app.command("hold")
def queue_hold(
    message_id: str = typer.Argument(None, help="one message (default: every queued one)"),
    domain: str = typer.Option(None, help="only recipients at this domain"),
) -> None:
    """Keep queued recipients from delivery until `queue release` (like postsuper -h)."""
    _move_recipients("hold", message_id, domain)


@queue_app.command("release")
def queue_release(
    message_id: str = typer.Argument(None, help="one message (default: every held one)"),
    domain: str = typer.Option(None, help="only recipients at this domain"),
) -> None:
    """Give held recipients back to delivery, due now."""
    _move_recipients("release", message_id, domain)


def _move_recipients(verb: str, message_id: str | None, domain: str | None) -> None:
    from postwise.outbound.queue import QueueError

    with _outbound() as services:
        move = services.queue.hold if verb == "hold" else services.queue.release
        try:
            count = move(message_id, domain)
        except QueueError as error:
            _fail(error)
            return
    print(f"{count} recipient(s) {'held' if verb == 'hold' else 'released'}")


@queue_app.command("purge")
def queue_purge(
    message_id: str = typer.Argument(..., help="id from `queue list`"),
    yes: bool = typer.Option(False, "--yes", help="do not ask for confirmation"),
) -> None:
    """Delete a message, its recipients and its spooled bytes (queued recipients are not
    delivered)."""
    from postwise.outbound.queue import QueueError

    if not yes:
        typer.confirm(f"purge {message_id}? Its queued recipients will not be sent", abort=True)
    with _outbound() as services:
        try:
            undelivered = services.queue.purge(message_id)
        except QueueError as error:
            _fail(error)
            return
    print(f"purged {message_id} ({undelivered} queued recipient(s) will not be delivered)")


@queue_app.command("hash-password")
def queue_hash_password() -> None:
    """Hash a submission password (asked twice, hidden) for the submission_users setting."""
    from postwise.outbound.submission_smtp import hash_password

    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    if not password:
        _fail(ValueError("an empty password cannot be used"))
    print(hash_password(password))


@suppression_app.command("list")
def suppression_list(
    source: str = typer.Option(None, help="bounce, complaint or operator"),
    limit: int = typer.Option(100, min=1, help="at most this many, newest first"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object a line"),
) -> None:
    """Suppressed addresses, newest first."""
    from postwise.outbound.suppression import SUPPRESSION_SOURCES

    if source is not None and source not in SUPPRESSION_SOURCES:
        _fail(ValueError(f"--source takes {', '.join(SUPPRESSION_SOURCES)}, not {source!r}"))
    with _outbound() as services:
        entries = services.suppressions.entries(limit, source)
    if as_json:
        for entry in entries:
            sys.stdout.write(json.dumps(entry.to_json()) + "\n")
        return
    table = Table(title=f"suppression list: {len(entries)} address(es) shown")
    for column in ("address", "source", "reason", "since"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(entry.address, entry.source, entry.reason, _when(entry.created_at))
    Console(soft_wrap=True).print(table)


@suppression_app.command("add")
def suppression_add(
    address: str = typer.Argument(..., help="the address submission must refuse"),
    reason: str = typer.Option("operator", help="why (kept with the entry)"),
) -> None:
    """Suppress an address (an address already listed keeps its first cause)."""
    from postwise.outbound.submission import SubmissionError, check_address

    try:
        checked = check_address(address, "address")
    except SubmissionError as error:
        _fail(error)
        return
    with _outbound() as services:
        services.suppressions.add(checked, reason, "operator")
    print(f"suppressed {checked}")


@suppression_app.command("remove")
def suppression_remove(
    address: str = typer.Argument(..., help="a suppressed address"),
) -> None:
    """Forget a suppressed address: submission accepts it again."""
    with _outbound() as services:
        removed = services.suppressions.remove(address)
    if not removed:
        _fail(ValueError(f"{address!r} is not on the suppression list"))
    print(f"removed {address}")


def _feedback_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.eml") if p.is_file())
        else:
            yield path


@feedback_app.command("ingest")
def feedback_ingest(
    paths: list[Path] = typer.Argument(..., help="complaint or bounce files, or folders of .eml"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object a line"),
) -> None:
    """Record complaints (event, suppression, reputation) and bounces (event, suppression of
    hard bounces) received back. Exits 1 only when every file failed."""
    from postwise.outbound.feedback import FeedbackError, ingest_feedback

    files = list(_feedback_files(paths))
    if not files:
        _fail(ValueError(f"no files found in {', '.join(str(p) for p in paths)}"))
    failures = 0
    with _outbound() as services:
        for path in files:
            outcome: dict[str, Any] = {"file": str(path)}
            try:
                result = ingest_feedback(path.read_bytes(), services)
            except (FeedbackError, OSError) as error:
                failures += 1
                outcome["error"] = str(error)
                if as_json:
                    print(json.dumps(outcome))
                else:
                    err.print(f"{path}: {error}", highlight=False)
                continue
            if as_json:
                print(json.dumps({**outcome, **result.to_json()}))
            else:
                print(f"{path}: {result.describe()}")
    if failures == len(files):
        raise typer.Exit(1)


def register_outbound_commands(app: typer.Typer) -> None:
    """Add the outbound commands to the ``postwise`` app."""
    app.command("send")(send)
    app.add_typer(queue_app, name="queue", no_args_is_help=True)
    app.add_typer(suppression_app, name="suppression", no_args_is_help=True)
    app.add_typer(feedback_app, name="feedback", no_args_is_help=True)
