"""The ``postwise`` command: one sub-command group per subsystem."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from postwise.cli_campaigns import register_campaign_commands
from postwise.cli_engage import register_engage_commands
from postwise.cli_errors import fail
from postwise.cli_models import models_app
from postwise.cli_outbound import register_outbound_commands
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
dmarc_app = typer.Typer(help="DMARC aggregate and failure reports, SMTP TLS reports.")
app.add_typer(dmarc_app, name="dmarc", no_args_is_help=True)
conformance_app = typer.Typer(help="Run the public SPF, DKIM and ARC test suites.")
app.add_typer(conformance_app, name="conformance", no_args_is_help=True)
dkim_app = typer.Typer(help="DKIM signing keys.")
app.add_typer(dkim_app, name="dkim", no_args_is_help=True)
domain_app = typer.Typer(help="A domain's mail DNS: audit it.")
app.add_typer(domain_app, name="domain", no_args_is_help=True)
shaping_app = typer.Typer(help="Outbound traffic shaping policy.")
app.add_typer(shaping_app, name="shaping", no_args_is_help=True)
register_outbound_commands(app)
register_engage_commands(app)
register_campaign_commands(app)
app.add_typer(models_app, name="models")

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


def _fail(error: Exception) -> NoReturn:
    fail(error, code=2)


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


@train_app.command("bounces")
def train_bounces_command(
    data: Path = typer.Option(..., help="bounce folder in the shared layout (manifest.csv)"),
    out: Path = typer.Option(None, help="model folder (default: the bounce_model_path setting)"),
    seed: int = typer.Option(0, help="seed of the near-duplicate-group split"),
) -> None:
    """Train the bounce reason model and write a versioned model folder with its model card."""
    from postwise.outbound.bounce_training import model_card_markdown, train_bounces

    out = out or get_settings().resolved_bounce_model_path
    try:
        model = train_bounces(data, seed=seed)
    except (PostwiseError, ValueError) as error:
        _fail(error)
        return
    model_file = model.save(out)
    (out / "MODEL_CARD.md").write_text(model_card_markdown(model.card))
    table = Table(title=f"validation accuracy (measured only) — shipped: {model.strategy}")
    for column in ("classifier", "reason", "hard/soft", "recipient"):
        table.add_column(column)
    for name, m in model.card["validation_metrics"].items():
        table.add_row(
            name,
            f"{m['reason_accuracy']:.4f}",
            f"{m['hardbounce_accuracy']:.4f}",
            f"{m['recipient_accuracy']:.4f}",
        )
    Console().print(table)
    cv = model.card["cross_validation_metrics"]
    Console().print(
        f"chosen by grouped cross-validation on train: {model.card['chosen']} "
        f"(reason {cv[model.card['chosen']]['reason_accuracy']:.4f}, hard/soft "
        f"{cv[model.card['chosen']]['hardbounce_accuracy']:.4f}; rules alone "
        f"{cv['rules']['reason_accuracy']:.4f} / {cv['rules']['hardbounce_accuracy']:.4f})"
    )
    Console().print(f"wrote {model_file} ({model.version})")


@eval_app.command("bounces")
def eval_bounces_command(
    data: Path = typer.Option(..., help="bounce folder in the shared layout (manifest.csv)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    split: str = typer.Option("validation", help="validation, train or all"),
    seed: int = typer.Option(0, help="seed of the split (as used in training)"),
    confusion: bool = typer.Option(
        False, "--confusion", help="also show, per true reason, what was predicted"
    ),
) -> None:
    """Reason, hard/soft and recipient accuracy: combined classifier and rules alone."""
    from postwise.outbound.bounce_evaluation import evaluate, read_bounces, select
    from postwise.outbound.bounce_model import BounceModel

    if split not in ("validation", "train", "all"):
        _fail(ValueError("--split takes validation, train or all"))
    try:
        model = BounceModel.load(get_settings().resolved_bounce_model_path)
        bounces = select(read_bounces(data), split, seed)
    except PostwiseError as error:
        _fail(error)
        return
    if not bounces:
        _fail(ValueError(f"{data}: no labelled bounces in the {split} split"))
    result = evaluate(bounces, model.classify)
    rules = evaluate(bounces)
    result["rules_only"] = {k: v for k, v in rules.items() if k not in ("confusions", "per_reason")}
    if confusion:
        result["rules_only"]["per_reason"] = rules["per_reason"]
    else:
        del result["per_reason"]
    result.update(split=split, seed=seed, model_version=model.version, strategy=model.strategy)
    if as_json:
        print(json.dumps(result))
        return
    console = Console()
    console.print(
        f"{split} split (near-duplicate groups hashed with seed {seed}): "
        f"{result['mails']} mails, {result['recipients']} recipients; model {model.version}"
    )
    table = Table(title="accuracy")
    for column in ("classifier", "reason", "hard/soft", "recipient"):
        table.add_column(column)
    for name, m in (("combined", result), ("rules only", result["rules_only"])):
        table.add_row(
            name,
            f"{m['reason_accuracy']:.4f}",
            f"{m['hardbounce_accuracy']:.4f}",
            f"{m['recipient_accuracy']:.4f}",
        )
    console.print(table)
    confusions = Table(title="most frequent confusions (combined)")
    for column in ("truth", "predicted", "count"):
        confusions.add_column(column)
    for row in result["confusions"]:
        confusions.add_row(row["truth"], row["predicted"], str(row["count"]))
    console.print(confusions)
    if confusion:
        per_reason = Table(title="per true reason (combined; rules only in brackets)")
        for column in ("truth", "recipients", "correct", "predicted"):
            per_reason.add_column(column)
        for truth, row in result["per_reason"].items():
            ruled = result["rules_only"]["per_reason"].get(truth, {})
            per_reason.add_row(
                truth,
                str(row["recipients"]),
                f"{row['correct']} ({ruled.get('correct', 0)})",
                ", ".join(f"{p}:{c}" for p, c in row["predicted"].items() if p != truth),
            )
        console.print(per_reason)


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


def _dmarc_engine() -> Any:
    from postwise.core.db import open_database

    return open_database(get_settings().resolved_database_url)


@dmarc_app.command("ingest")
def dmarc_ingest(
    paths: list[Path] = typer.Argument(
        ..., help="report files (.xml, .gz, .zip, .json, .eml) or folders (walked)"
    ),
    as_json: bool = typer.Option(False, "--json", help="one JSON object a line"),
) -> None:
    """Store DMARC aggregate and failure reports and SMTP TLS reports, each once.

    Every file is reported as stored, already stored or error (with the reason) and the batch
    always goes on. Exit status 1 when any file could not be read as a report."""
    from rich.text import Text

    from postwise.ops.dmarc_store import ingest_paths

    engine = _dmarc_engine()
    out = Console(soft_wrap=True, highlight=False)
    counts = {"stored": 0, "already stored": 0, "error": 0}
    try:
        for result in ingest_paths(engine, paths):
            counts[result.status] += 1
            if as_json:
                sys.stdout.write(json.dumps(result.to_json()) + "\n")
                sys.stdout.flush()
            elif result.error is not None:
                out.print(Text.assemble(("error", "red"), f": {result.error}"))
            else:
                for report in result.reports:
                    note = "" if report.same_content else " (a different copy is stored; kept it)"
                    status = (report.status, "green" if report.stored else "yellow")
                    line = f": {result.source}: {report.description}{note}"
                    out.print(Text.assemble(status, line))
    finally:
        engine.dispose()
    if not as_json:
        out.print(
            f"{sum(counts.values())} file(s): {counts['stored']} stored, "
            f"{counts['already stored']} already stored, {counts['error']} error(s)"
        )
    if counts["error"]:
        raise typer.Exit(1)


@dmarc_app.command("summary")
def dmarc_summary(
    domain: str = typer.Option(None, help="only this domain (policy or header-from domain)"),
    since: str = typer.Option(None, metavar="YYYY-MM-DD", help="only reports from this day on"),
    by: str = typer.Option("ip", metavar="ip|domain|day", help="group by source IP, domain, day"),
    limit: int = typer.Option(50, min=0, help="at most this many groups (0: all)"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """DMARC pass/fail, DKIM and SPF alignment and dispositions from the stored aggregate
    reports, by source IP, header-from domain or day; with failure and TLS report counts."""
    from datetime import date

    from postwise.ops.dmarc_summary import GROUPINGS, summarize

    grouping = next((g for g in GROUPINGS if g == by), None)
    if grouping is None:
        _fail(ValueError(f"--by takes ip, domain or day, not {by!r}"))
        return
    try:
        since_day = date.fromisoformat(since) if since else None
    except ValueError:
        _fail(ValueError(f"--since takes a day as YYYY-MM-DD, not {since!r}"))
        return
    engine = _dmarc_engine()
    try:
        summary = summarize(
            engine, by=grouping, domain=domain, since=since_day, limit=limit or None
        )
    finally:
        engine.dispose()
    if as_json:
        print(json.dumps(summary.to_json()))
        return
    label = {"ip": "source IP", "domain": "header-from domain", "day": "day"}[grouping]
    scope = [f"domain {summary.domain}"] if summary.domain else []
    scope += [f"since {summary.since}"] if summary.since else []
    if len(summary.rows) < summary.groups:
        scope.append(f"top {len(summary.rows)} of {summary.groups}")
    title = f"DMARC aggregate reports by {label}" + (f" ({', '.join(scope)})" if scope else "")
    table = Table(title=title)
    rows = [row.to_json() for row in summary.rows]
    total = {**summary.totals.to_json(), "key": "total"}
    width = max(len(str(row["key"])) for row in [*rows, total])
    table.add_column(label, no_wrap=True, min_width=width)
    for column in ("reports", "messages", "DMARC pass", "fail", "pass %", "DKIM %", "SPF %"):
        table.add_column(column, justify="right")
    for column in ("none", "quarantine", "reject"):
        table.add_column(column, justify="right")

    def percent(rate: float | None) -> str:
        return "" if rate is None else f"{100 * rate:.1f}"

    for index, row in enumerate([*rows, total]):
        table.add_row(
            str(row["key"]),
            str(row["reports"]),
            str(row["messages"]),
            str(row["dmarc_pass"]),
            str(row["dmarc_fail"]),
            percent(row["dmarc_pass_rate"]),
            percent(row["dkim_aligned_rate"]),
            percent(row["spf_aligned_rate"]),
            *(str(row["dispositions"].get(d, 0)) for d in ("none", "quarantine", "reject")),
            end_section=index == len(rows) - 1,
        )
    console = Console(soft_wrap=True)
    console.print(table)
    console.print(
        f"failure reports: {summary.failure_reports}; TLS reports: {summary.tls_reports} "
        f"({summary.tls_successful_sessions} successful, {summary.tls_failed_sessions} failed "
        "sessions)"
    )


@conformance_app.command("spf")
def conformance_spf(
    data: Path = typer.Option(
        None, help="shared data folder holding spf/ (default: the corpus_dir setting's parent)"
    ),
    suite: list[str] = typer.Option(
        ["rfc7208"], help="suite to run: rfc7208, rfc4408 or pyspf (repeat for several)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Run the public SPF test suites through Postwise's SPF check, DNS served by a loopback
    server: passed, failed and skipped, with the reason for each failure and skip.

    Exit status 1 when any case failed, 2 when a suite cannot be read."""
    from postwise.auth.conformance import run_spf_suites

    folder = data or get_settings().corpus_dir.parent
    try:
        reports = run_spf_suites(folder, suite)
    except (OSError, ValueError) as error:
        _fail(ValueError(f"{folder}: cannot run the SPF suites: {error}"))
        return
    suites = [report.to_json() for report in reports]
    result: dict[str, Any] = {
        "suite": "+".join(s["suite"] for s in suites),
        **{key: sum(s[key] for s in suites) for key in ("total", "passed", "failed", "skipped")},
        "failures": [{"suite": s["suite"], **f} for s in suites for f in s["failures"]],
        "skips": [{"suite": s["suite"], **k} for s in suites for k in s["skips"]],
        "suites": suites,
    }
    if as_json:
        print(json.dumps(result))
    else:
        console = Console(soft_wrap=True)
        table = Table(title=f"SPF conformance ({folder / 'spf'})")
        for column in ("suite", "cases", "passed", "failed", "skipped"):
            table.add_column(column, justify="left" if column == "suite" else "right")
        for s in suites:
            table.add_row(
                s["suite"], str(s["total"]), str(s["passed"]), str(s["failed"]), str(s["skipped"])
            )
        console.print(table)
        for failure in result["failures"]:
            console.print(
                f"[red]failed[/red] {failure['suite']}/{failure['case']}: expected "
                f"{' or '.join(failure['expected'])}, got {failure['got']} "
                f"({failure['explanation']})",
                highlight=False,
            )
        for skip in result["skips"]:
            console.print(f"skipped {skip['suite']}/{skip['case']}: {skip['reason']}")
    if result["failed"]:
        raise typer.Exit(1)


def _conformance_result(report: Any, unexplained: int) -> dict[str, Any]:
    """A DKIM/ARC conformance report as one JSON object, with per-group counts (the part of a
    case name before ':') and the pass rate of the cases run."""
    result: dict[str, Any] = report.to_json()
    groups: dict[str, dict[str, int]] = {}
    for case in report.cases:
        counts = groups.setdefault(case.name.partition(":")[0], {})
        counts[case.status] = counts.get(case.status, 0) + 1
    ran = result["passed"] + result["failed"]
    result["pass_rate"] = round(result["passed"] / ran, 4) if ran else 0.0
    result["unexplained_failures"] = unexplained
    result["groups"] = groups
    return result


def _print_conformance(title: str, result: dict[str, Any]) -> None:
    console = Console(soft_wrap=True, highlight=False)
    table = Table(title=title)
    for column in ("cases", "total", "passed", "failed", "skipped"):
        table.add_column(column, justify="left" if column == "cases" else "right")
    for group, counts in result["groups"].items():
        row = [counts.get(s, 0) for s in ("passed", "failed", "skipped")]
        table.add_row(group, str(sum(row)), *(str(n) for n in row))
    table.add_row("all", *(str(result[k]) for k in ("total", "passed", "failed", "skipped")))
    console.print(table)
    for failure in result["failures"]:
        console.print(
            f"[red]failed[/red] {failure['case']}: expected {' or '.join(failure['expected'])}, "
            f"got {failure['got']} ({failure['explanation']})"
        )
    for skip in result["skips"]:
        console.print(f"skipped {skip['case']}: {skip['reason']}")
    console.print(f"pass rate {result['pass_rate']:.2%} of the cases run")


def _run_conformance(suite: str, data: Path | None, as_json: bool) -> dict[str, Any]:
    from postwise.auth.conformance_dkim import (
        run_arc_conformance,
        run_dkim_conformance,
        unexplained_failures,
    )

    folder = data or get_settings().corpus_dir.parent
    runner = run_dkim_conformance if suite == "dkim" else run_arc_conformance
    try:
        report = runner(folder)
    except (OSError, ValueError) as error:
        err.print(f"[red]error:[/red] cannot run the {suite.upper()} suites: {error}")
        raise typer.Exit(2) from None
    result = _conformance_result(report, len(unexplained_failures(report)))
    if as_json:
        print(json.dumps(result))
    else:
        _print_conformance(f"{suite.upper()} conformance ({folder / suite})", result)
    return result


@conformance_app.command("dkim")
def conformance_dkim(
    data: Path = typer.Option(
        None, help="shared data folder holding dkim/ (default: the corpus_dir setting's parent)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Run the DKIM vectors (verify, sign, key records) through Postwise's DKIM code, DNS
    served by a loopback server: passed, failed and skipped, with the reason for each.

    Exit status 1 when any case failed (the target is all of them), 2 when the data cannot be
    read."""
    if _run_conformance("dkim", data, as_json)["failed"]:
        raise typer.Exit(1)


@conformance_app.command("arc")
def conformance_arc(
    data: Path = typer.Option(
        None, help="shared data folder holding arc/ (default: the corpus_dir setting's parent)"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
) -> None:
    """Run the ARC test suite (validation, signing) and sealed real mail through Postwise's ARC
    code, DNS served by a loopback server: passed, failed and skipped, with the reason for each.

    The suite predates RFC 8617, so a failure may be the suite's: those are listed with their
    reason in postwise.auth.conformance_dkim.ARC_EXPLAINED. Exit status 1 when a failure is not
    so explained or fewer than 95% of the cases run pass, 2 when the data cannot be read."""
    result = _run_conformance("arc", data, as_json)
    if result["unexplained_failures"] or result["pass_rate"] < 0.95:
        raise typer.Exit(1)


@dkim_app.command("keygen")
def dkim_keygen(
    domain: str = typer.Argument(..., help="the signing domain (d=), e.g. example.com"),
    selector: str = typer.Argument(..., help="the selector (s=), e.g. 2025a"),
    algorithm: str = typer.Option("rsa", metavar="rsa|ed25519", help="key type"),
    bits: int = typer.Option(2048, help="RSA key size (1024 to 4096)"),
    out: Path = typer.Option(
        None, help="folder for <domain>.<selector>.key (default: <data_dir>/dkim)"
    ),
) -> None:
    """Make a DKIM key pair: write the private key (mode 0600; never over an existing file)
    and print the DNS TXT record to publish and the settings entry that signs with it."""
    import os
    import re

    from postwise.auth.dkim import dns_record, generate_key

    name = r"(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
    for label, value in (("domain", domain), ("selector", selector)):
        if not re.fullmatch(rf"{name}(?:\.{name})*\.?", value):
            _fail(ValueError(f"{label} {value!r} is not a DNS name"))
    if algorithm not in ("rsa", "ed25519"):
        _fail(ValueError(f"--algorithm takes rsa or ed25519, not {algorithm!r}"))
    folder = out or get_settings().data_dir / "dkim"
    path = folder / f"{domain.rstrip('.')}.{selector}.key"
    try:
        private_pem, txt_value = generate_key("rsa" if algorithm == "rsa" else "ed25519", bits)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        _fail(ValueError(f"{path} exists: keys are never overwritten (choose a new selector)"))
        return
    except (OSError, ValueError) as error:
        _fail(error)
        return
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(private_pem)
    err.print(f"wrote {path} ({algorithm}{'' if algorithm == 'ed25519' else f', {bits} bits'})")
    print(dns_record(domain, selector, txt_value))
    print()
    print("# add to postwise.toml to sign mail from this domain:")
    print("[[dkim_keys]]")
    print(f'domain = "{domain.rstrip(".")}"')
    print(f'selector = "{selector}"')
    print(f"key_file = {json.dumps(str(path.resolve()))}")


@dkim_app.command("sign")
def dkim_sign(
    message: Path = typer.Argument(..., help="the message to sign (.eml; - for standard input)"),
    domain: str = typer.Option(..., help="the signing domain (d=)"),
    selector: str = typer.Option(..., help="the selector (s=)"),
    key: Path = typer.Option(..., help="the private key file (PEM, RSA or Ed25519)"),
) -> None:
    """Print the message with a DKIM-Signature (rsa-sha256 or ed25519-sha256 by the key's
    type; relaxed/relaxed; From signed twice so that no From can be added)."""
    from postwise.auth.dkim import sign_dkim

    try:
        raw = sys.stdin.buffer.read() if str(message) == "-" else message.read_bytes()
        signed = sign_dkim(raw, domain, selector, key.read_bytes())
    except (OSError, PostwiseError) as error:
        _fail(error)
        return
    sys.stdout.buffer.write(signed)


_SEVERITY_STYLES = {
    "critical": "bold red",
    "high": "red",
    "medium": "yellow",
    "low": "cyan",
    "info": "dim",
}


@domain_app.command("audit")
def domain_audit_command(
    domain: str = typer.Argument(..., help="the domain to audit, e.g. example.org"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    resolver_address: str = typer.Option(
        None,
        "--resolver",
        metavar="HOST:PORT",
        help="ask this DNS server (default: the dns_servers setting, else the system's)",
    ),
    selectors: list[str] = typer.Option(
        [], "--selector", metavar="SELECTOR", help="a DKIM selector to check (repeatable)"
    ),
    no_starttls: bool = typer.Option(
        False, "--no-starttls", help="do not connect to the MX hosts to try STARTTLS"
    ),
    smtp_port: int = typer.Option(
        25, "--smtp-port", min=1, max=65535, help="the port of the STARTTLS probe"
    ),
    timeout: float = typer.Option(
        10.0, min=0.1, help="seconds per step of the STARTTLS probe and the MTA-STS fetch"
    ),
    fetch_mta_sts: bool = typer.Option(
        False, "--fetch-mta-sts", help="fetch the MTA-STS policy over HTTPS (public internet)"
    ),
) -> None:
    """Audit a domain's mail DNS: MX and STARTTLS, SPF, DMARC, DKIM, MTA-STS, TLS-RPT, BIMI
    and DNSSEC; each finding with its severity, evidence and fix, and a grade (A-F).

    Exit status 0 whatever the grade; 2 when an argument is invalid."""
    import ipaddress
    from functools import partial

    from rich.markup import escape

    from postwise.auth.dns import Resolver, default_resolver, parse_server
    from postwise.ops.domain_audit import audit_domain, fetch_mta_sts_policy

    try:
        if resolver_address:
            host, port = parse_server(resolver_address)
            ipaddress.ip_address(host)
            if not 0 < port < 65536:
                raise ValueError(port)
            resolver = Resolver([(host, port)], get_settings().dns_timeout)
        else:
            resolver = default_resolver()
    except ValueError:
        _fail(
            ValueError(
                f"--resolver takes an IP address and a port, e.g. 127.0.0.1:5353, "
                f"not {resolver_address!r}"
            )
        )
        return
    try:
        report = audit_domain(
            domain,
            resolver,
            selectors,
            check_starttls=not no_starttls,
            smtp_port=smtp_port,
            timeout=timeout,
            mta_sts_fetcher=partial(fetch_mta_sts_policy, timeout=timeout)
            if fetch_mta_sts
            else None,
        )
    except PostwiseError as error:
        _fail(error)
        return
    if as_json:
        print(json.dumps(report.to_json()))
        return
    summary = report.to_json()["counts"]
    table = Table(
        title=f"{report.domain}: grade {report.grade} ({report.score}/100)", show_lines=True
    )
    for column in ("severity", "code", "finding", "evidence", "fix"):
        table.add_column(column, overflow="fold", no_wrap=column in ("severity", "code"))
    for finding in report.findings:
        style = _SEVERITY_STYLES[finding.severity]
        table.add_row(
            f"[{style}]{finding.severity}[/{style}]",
            finding.code,
            escape(finding.summary),
            escape(finding.evidence),
            escape(finding.fix),
        )
    console = Console(soft_wrap=False)
    console.print(table)
    console.print(
        f"grade {report.grade} (score {report.score}/100): "
        + ", ".join(f"{count} {severity}" for severity, count in summary.items())
    )


@shaping_app.command("show")
def shaping_show(
    domain: str | None = typer.Option(None, "--domain", help="show the limits for this domain"),
    mx: list[str] = typer.Option([], "--mx", help="the domain's MX hosts, by preference"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object for machines"),
) -> None:
    """Print the effective shaping policy (shipped + POSTWISE_SHAPING_POLICY_PATH), or the
    limits for one destination with --domain (and --mx)."""
    from rich.markup import escape

    from postwise.outbound.shaping import LIMIT_KEYS, load_shaping

    try:
        policy = load_shaping(get_settings().shaping_policy_path)
    except PostwiseError as error:
        _fail(error)
        return
    if domain is not None:
        limits = policy.limits_for(domain, mx)
        rules = [rule.to_json() for rule in policy.rules_for(limits.budget_key)]
        if as_json:
            print(json.dumps({"domain": domain, **limits.to_json(), "automation": rules}))
            return
        table = Table(title=f"{escape(domain)}: budget {limits.budget_key} ({policy.version})")
        table.add_column("limit")
        table.add_column("value", justify="right")
        values = limits.to_json()
        for key in ("source", *LIMIT_KEYS):
            value = values[key]
            table.add_row(key, "no limit" if value is None else escape(str(value)))
        Console(soft_wrap=False).print(table)
        for rule in rules:
            print(f"automation {rule['name']}: /{rule['regex']}/ -> {rule['action']}")
        return
    if as_json:
        print(json.dumps(policy.to_json()))
        return
    table = Table(title=f"shaping policy {policy.version}")
    for column in ("budget", "mx suffixes", "conn", "msg/conn", "msg/min", "msg/h", "rules"):
        table.add_column(column, overflow="fold", no_wrap=column == "budget")
    budgets = ["default"] + [f"provider:{p}" for p in policy.providers]
    budgets += [f"domain:{d}" for d in policy.domains]
    for key in budgets:
        limits = policy.limits_for_key(key)
        provider = policy.providers.get(key.removeprefix("provider:"))
        table.add_row(
            key,
            " ".join(provider.mx_suffixes) if provider else "",
            str(limits.max_connections),
            str(limits.max_messages_per_connection),
            str(limits.messages_per_minute or "-"),
            str(limits.messages_per_hour or "-"),
            str(len(policy.rules.get(key, ()))),
        )
    console = Console(soft_wrap=False)
    console.print(table)
    console.print(f"{len(policy.rules.get('*', ()))} automation rule(s) for every destination")


@shaping_app.command("check")
def shaping_check(
    path: Path | None = typer.Argument(
        None, help="operator shaping TOML; default POSTWISE_SHAPING_POLICY_PATH"
    ),
) -> None:
    """Validate an operator shaping file layered over the shipped one; exit 2 with the error."""
    from postwise.outbound.shaping import load_shaping

    target = path or get_settings().shaping_policy_path
    try:
        policy = load_shaping(target)
    except PostwiseError as error:
        _fail(error)
        return
    rules = sum(len(r) for r in policy.rules.values())
    print(
        f"{target or 'shipped policy'}: ok (version {policy.version}, "
        f"{len(policy.providers)} providers, {len(policy.domains)} domains, {rules} rules)"
    )


def main() -> None:
    try:
        app()
    except PostwiseError as error:
        err.print(f"[red]error:[/red] {error}")
        sys.exit(2)


if __name__ == "__main__":
    main()
