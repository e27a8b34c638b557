"""The ``postwise`` command: one sub-command group per subsystem."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from postwise.core.errors import PostwiseError
from postwise.core.settings import get_settings

app = typer.Typer(
    help="Postwise: inbound security, outbound delivery, personalization.",
    no_args_is_help=True,
    add_completion=False,
)
train_app = typer.Typer(help="Train models from a data folder.", no_args_is_help=True)
eval_app = typer.Typer(help="Measure models and policy on labelled data.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
quarantine_app = typer.Typer(help="Messages the gateway kept out of the mailbox.")
app.add_typer(quarantine_app, name="quarantine", no_args_is_help=True)
conformance_app = typer.Typer(help="Run the public SPF, DKIM and ARC test suites.")
app.add_typer(conformance_app, name="conformance", no_args_is_help=True)
dkim_app = typer.Typer(help="DKIM signing keys.")
app.add_typer(dkim_app, name="dkim", no_args_is_help=True)
domain_app = typer.Typer(help="A domain's mail DNS: audit it.")
app.add_typer(domain_app, name="domain", no_args_is_help=True)

err = Console(stderr=True)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _fail(error: Exception) -> None:
    err.print(f"[red]error:[/red] {error}")
    raise typer.Exit(2)


@train_app.command("inbound")
def train_inbound_command(
    data: Path = typer.Option(None, help="corpus folder (default: the corpus_dir setting)"),
    out: Path = typer.Option(None, help="model folder to write (default: the model_path setting)"),
    seed: int = typer.Option(0, help="seed of the split and the estimators"),
    validation_share: float = typer.Option(
        0.2, min=0.0, max=0.9, help="share of near-duplicate groups held out for validation"
    ),
    family: str = typer.Option(None, help="fit only this family (default: choose by measurement)"),
    workers: int = typer.Option(2, help="processes for parsing"),
    synthetic_commercial: int = typer.Option(
        2000, min=0, help="synthetic legitimate commercial messages added to training ham (0: none)"
    ),
) -> None:
    """Train the ham/spam/phish classifier and write a versioned model with its model card."""
    from postwise.inbound.corpus import read_corpus
    from postwise.inbound.training import model_card_markdown, train_inbound

    settings = get_settings()
    data = data or settings.corpus_dir
    out = out or settings.resolved_model_path
    try:
        total = sum(1 for _ in read_corpus(data))
        with _progress(err) as progress:
            task = progress.add_task("parsing", total=total)
            result = train_inbound(
                data,
                seed=seed,
                workers=workers,
                family=family,
                validation_share=validation_share,
                synthetic_commercial=synthetic_commercial,
                progress=lambda n: progress.advance(task, n),
            )
    except (PostwiseError, ValueError) as error:
        _fail(error)
        return
    model_file = result.model.save(out)
    (out / "MODEL_CARD.md").write_text(model_card_markdown(result.model.card))
    table = Table(title=f"validation recall at ham FPR <= 0.1% / 0.5% — chosen: {result.chosen}")
    for column in ("family", "threshold", "spam", "phish", "spam @0.5%", "phish @0.5%"):
        table.add_column(column)
    for name, m in result.comparison.items():
        table.add_row(
            name,
            f"{m['threshold']:.4f}",
            f"{m['spam_recall']:.4f}",
            f"{m['phish_recall']:.4f}",
            f"{m['spam_recall_at_0.5pct']:.4f}",
            f"{m['phish_recall_at_0.5pct']:.4f}",
        )
    Console().print(table)
    Console().print(f"wrote {model_file} ({result.model.version})")


_worker_scanner: Any = None


def _init_worker() -> None:
    global _worker_scanner
    from postwise.inbound.scanner import Scanner

    _worker_scanner = Scanner.from_settings()


def _scan_one(item: tuple[str, bytes] | dict[str, Any]) -> dict[str, Any]:
    if isinstance(item, dict):  # a source problem, reported in its place
        return item
    name, raw = item
    try:
        return dict(_worker_scanner.scan(raw, message_id=name).to_json())
    except PostwiseError as error:
        return {"id": name, "error": str(error)}


def _scan_items(paths: list[Path]) -> Iterator[tuple[str, bytes] | dict[str, Any]]:
    from postwise.mail.sources import SourceProblem, iter_messages

    for item in iter_messages(paths):
        if isinstance(item, SourceProblem):
            yield {"id": item.name, "error": item.error}
        else:
            yield (item.name, item.raw)


def _bounded_imap(
    pool: Any, items: Iterator[tuple[str, bytes] | dict[str, Any]], batch: int
) -> Iterator[dict[str, Any]]:
    """``pool.imap`` over ``items`` in batches: Pool.imap alone reads its whole input ahead,
    which would hold a large mbox in memory."""
    while chunk := list(itertools.islice(items, batch)):
        yield from pool.imap(_scan_one, chunk, chunksize=16)


@app.command()
def scan(
    paths: list[Path] = typer.Argument(..., help=".eml files, folders, mbox files or Maildirs"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object a line"),
    workers: int = typer.Option(1, min=1, help="scan with N processes"),
) -> None:
    """Scan messages and print each verdict: action, score, class and the symbols behind it.

    Exit status 1 when any message could not be read or scanned (each is reported)."""
    # Loaded here even when workers do the scanning: a bad model or policy must fail once,
    # clearly, not inside a pool initializer (which multiprocessing would restart forever).
    try:
        _init_worker()
    except PostwiseError as error:
        _fail(error)
    results: list[dict[str, Any]] = []
    out = Console(soft_wrap=True)
    # Messages stream from the sources to the scanner: an mbox of any size is never held whole.
    with _progress(err) as progress:
        task = progress.add_task("scanning", total=None, visible=not as_json)
        pool = multiprocessing.Pool(workers, initializer=_init_worker) if workers > 1 else None
        try:
            scanned = (
                _bounded_imap(pool, _scan_items(paths), batch=64 * workers)
                if pool is not None
                else map(_scan_one, _scan_items(paths))
            )
            for result in scanned:
                progress.advance(task)
                if as_json:
                    sys.stdout.write(json.dumps(result) + "\n")
                    results.append({"error": True} if "error" in result else {})
                else:
                    results.append(result)
        finally:
            if pool is not None:
                pool.close()
                pool.join()
    if not as_json:
        table = Table(show_lines=False)
        for column in ("message", "action", "score", "class", "top symbols"):
            table.add_column(column, overflow="fold")
        for result in results:
            if "error" in result:
                table.add_row(result["id"], "[red]error[/red]", "", "", result["error"])
                continue
            top = ", ".join(
                f"{s['name']}({s['score']:+.1f})" for s in result["symbols"][:4] if s["score"]
            )
            table.add_row(
                result["id"], result["action"], f"{result['score']:.2f}", result["class"], top
            )
        out.print(table)
    if any("error" in r for r in results):
        raise typer.Exit(1)


@app.command()
def learn(
    paths: list[Path] = typer.Argument(..., help=".eml files, folders, mbox files or Maildirs"),
    label: str = typer.Option(
        ..., "--as", metavar="ham|spam|phish", help="what these messages are: ham, spam or phish"
    ),
    as_json: bool = typer.Option(False, "--json", help="one JSON object a line"),
) -> None:
    """Teach the online model that messages are ham, spam or phish (feedback on verdicts).

    The correction is saved after each message (POSTWISE_ONLINE_MODEL_PATH) and running
    scanners pick it up at their next scan. Exit status 1 when any message could not be read."""
    from postwise.core.types import CLASSES
    from postwise.inbound.scanner import Scanner
    from postwise.mail.sources import SourceProblem, iter_messages

    if label not in CLASSES:
        _fail(ValueError(f"--as takes ham, spam or phish, not {label!r}"))
    try:
        scanner = Scanner.from_settings()
    except PostwiseError as error:
        _fail(error)
        return
    if scanner.online is None:
        _fail(ValueError("online learning is off: set POSTWISE_ONLINE_LEARNING=true to learn"))
        return
    rows: list[dict[str, Any]] = []
    with _progress(err) as progress:
        task = progress.add_task("learning", total=None, visible=not as_json)
        for item in iter_messages(paths):
            if isinstance(item, SourceProblem):
                row: dict[str, Any] = {"id": item.name, "error": item.error}
            else:
                try:
                    row = {"id": item.name, **scanner.learn(item.raw, label).to_json()}
                except PostwiseError as error:
                    row = {"id": item.name, "error": str(error)}
            progress.advance(task)
            if as_json:
                sys.stdout.write(json.dumps(row) + "\n")
            rows.append(row)
    if not as_json:
        table = Table(title=f"learned as {label}")
        for column in ("message", f"p({label}) before", f"p({label}) after"):
            table.add_column(column, overflow="fold")
        for row in rows:
            if "error" in row:
                table.add_row(row["id"], "[red]error[/red]", row["error"])
            else:
                before, after = row["before"][label], row["after"][label]
                table.add_row(row["id"], f"{before:.3f}", f"{after:.3f}")
        out = Console(soft_wrap=True)
        out.print(table)
        learned = sum(1 for row in rows if "error" not in row)
        out.print(
            f"{learned} of {len(rows)} learned; online model {scanner.online.version} "
            f"({scanner.online.counts}) in {scanner.online.path}"
        )
    if any("error" in row for row in rows):
        raise typer.Exit(1)


@eval_app.command("inbound")
def eval_inbound_command(
    data: Path = typer.Option(..., help="shared corpus folder, or a folder with ham/ spam/ phish/"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    split: str = typer.Option("validation", help="shared layout only: validation, train or all"),
    seed: int = typer.Option(0, help="seed of the split (as used in training)"),
    view: str = typer.Option("sender", help="sender (collection artefacts removed) or raw"),
) -> None:
    """Confusion matrix, ham FPR, spam and phish recall, speed and peak memory of the pipeline."""
    from postwise.inbound.corpus import sender_view
    from postwise.inbound.evaluation import evaluate, select_messages
    from postwise.inbound.scanner import Scanner

    if split not in ("validation", "train", "all") or view not in ("sender", "raw"):
        _fail(ValueError("--split takes validation, train or all; --view takes sender or raw"))
    try:
        scanner = Scanner.from_settings()
        messages = select_messages(data, split, seed)
    except PostwiseError as error:
        _fail(error)
        return
    if not messages:
        _fail(ValueError(f"{data}: no messages found"))
    with _progress(err) as progress:
        task = progress.add_task("evaluating", total=len(messages), visible=not as_json)
        report = evaluate(
            scanner,
            messages,
            view=sender_view if view == "sender" else (lambda raw: raw),
            progress=lambda n: progress.advance(task, n),
        )
    result = report.to_json()
    result["model_version"] = scanner.model_version
    result["policy_version"] = scanner.policy.version
    if as_json:
        print(json.dumps(result))
        return
    table = Table(title=f"confusion matrix ({result['messages']} messages; rows: truth)")
    table.add_column("truth")
    for label in ("ham", "spam", "phish"):
        table.add_column(label, justify="right")
    for label, row in result["confusion_matrix"].items():
        table.add_row(label, *(str(row[c]) for c in ("ham", "spam", "phish")))
    console = Console()
    console.print(table)
    for key in ("ham_fpr", "spam_recall", "phish_recall", "messages_per_second", "peak_memory_mb"):
        console.print(f"{key}: {result[key]}")


@app.command()
def serve(
    host: str = typer.Option(None, help="API bind address (default: the api_host setting)"),
    port: int = typer.Option(None, help="API port (default: the api_port setting, 8025)"),
) -> None:
    """Run the main job on loopback: the scan API (8025), the SMTP gateway (2525) and the
    milter (11332), with SQLite, the spool and the quarantine in the data folder."""
    import asyncio

    from postwise.services import run_services

    settings = get_settings()
    try:
        asyncio.run(run_services(settings, host or settings.api_host, port or settings.api_port))
    except PostwiseError as error:
        _fail(error)
    except OSError as error:  # a port in use, an unwritable data folder
        _fail(error)


def _quarantine_store() -> Any:
    from postwise.core.db import open_database
    from postwise.inbound.quarantine import QuarantineStore

    settings = get_settings()
    return QuarantineStore(
        settings.data_dir / "quarantine", open_database(settings.resolved_database_url)
    )


@quarantine_app.command("list")
def quarantine_list(
    as_json: bool = typer.Option(False, "--json", help="one JSON object a line"),
    limit: int = typer.Option(100, min=1, help="at most this many, newest first"),
) -> None:
    """Quarantined messages, newest first."""
    store = _quarantine_store()
    entries = store.list(limit)
    if as_json:
        for entry in entries:
            sys.stdout.write(json.dumps(entry.to_json()) + "\n")
        return
    table = Table(title=f"quarantine: {store.count()} message(s)")
    for column in ("id", "received", "from", "to", "subject", "class", "score", "origin"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        table.add_row(
            entry.id,
            entry.created_at.strftime("%Y-%m-%d %H:%M"),
            entry.mail_from or "<>",
            ", ".join(entry.rcpt_to),
            entry.subject,
            entry.message_class,
            f"{entry.score:.1f}",
            entry.origin,
        )
    Console(soft_wrap=True).print(table)


@quarantine_app.command("show")
def quarantine_show(
    entry_id: str = typer.Argument(..., help="id from `quarantine list`"),
    raw: bool = typer.Option(False, "--raw", help="print the stored message instead"),
) -> None:
    """One quarantined message: its envelope and verdict (JSON), or the message itself."""
    from postwise.inbound.quarantine import QuarantineError

    store = _quarantine_store()
    try:
        entry = store.get(entry_id)
        if raw:
            sys.stdout.buffer.write(store.raw(entry))
            return
    except QuarantineError as error:
        _fail(error)
        return
    print(json.dumps({**entry.to_json(), "verdict": entry.verdict}, indent=2))


@quarantine_app.command("release")
def quarantine_release(
    entry_ids: list[str] = typer.Argument(..., help="ids from `quarantine list`"),
) -> None:
    """Relay messages to the next hop (or the local Maildir) and learn them as ham."""
    import asyncio

    from postwise.inbound.quarantine import QuarantineError, release
    from postwise.inbound.scanner import Scanner
    from postwise.services import destination_for

    settings = get_settings()
    store = _quarantine_store()
    scanner = Scanner.from_settings(settings) if settings.online_learning else None

    def learn_ham(message: bytes) -> object:
        return scanner.learn(message, "ham") if scanner is not None else None

    async def release_all() -> int:
        destination = destination_for(settings)
        failures = 0
        try:
            for entry_id in entry_ids:
                try:
                    entry, delivery = await release(store, entry_id, destination, learn_ham)
                except QuarantineError as error:
                    err.print(f"[red]error:[/red] {error}")
                    failures += 1
                    continue
                print(f"released {entry.id} to {destination.description}: {delivery.reply}")
        finally:
            await destination.close()
        return failures

    if asyncio.run(release_all()):
        raise typer.Exit(1)


@quarantine_app.command("delete")
def quarantine_delete(
    entry_ids: list[str] = typer.Argument(..., help="ids from `quarantine list`"),
) -> None:
    """Delete quarantined messages."""
    from postwise.inbound.quarantine import QuarantineError

    store = _quarantine_store()
    failures = 0
    for entry_id in entry_ids:
        try:
            store.remove(entry_id)
        except QuarantineError as error:
            err.print(f"[red]error:[/red] {error}")
            failures += 1
            continue
        print(f"deleted {entry_id}")
    if failures:
        raise typer.Exit(1)


@quarantine_app.command("expire")
def quarantine_expire() -> None:
    """Delete messages older than the quarantine_retention_days setting (serve does this
    hourly)."""
    settings = get_settings()
    count = _quarantine_store().expire(settings.quarantine_retention_days)
    print(f"expired {count} message(s) older than {settings.quarantine_retention_days:g} days")


def main() -> None:
    try:
        app()
    except PostwiseError as error:
        err.print(f"[red]error:[/red] {error}")
        sys.exit(2)


if __name__ == "__main__":
    main()
