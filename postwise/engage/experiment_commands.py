"""``postwise engage experiment …``: stored experiments (create, assign, results, list, stop)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from postwise.cli_errors import fail as _fail
from postwise.core.errors import PostwiseError

experiment_app = typer.Typer(
    help="Experiments and holdouts on the store's contacts: create, assign, measure.",
    no_args_is_help=True,
)


def _engine() -> Any:
    from postwise.core.db import open_database
    from postwise.core.settings import get_settings

    return open_database(get_settings().resolved_database_url)


def _read_contacts(path: Path) -> list[str]:
    """One contact id a line; blank lines and ``#`` comments are skipped."""
    from postwise.engage.contacts import ContactError, check_contact_id

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        _fail(f"{path}: cannot be read ({error})")
    contacts: list[str] = []
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            contacts.append(check_contact_id(text))
        except ContactError as error:
            _fail(f"{path} line {number}: {error}")
    return contacts


@experiment_app.command("create")
def create_command(
    name: str = typer.Argument(..., help="experiment name (unique)"),
    holdout: float | None = typer.Option(
        None, help="holdout share (control); without --campaign: the global holdout"
    ),
    arms: str | None = typer.Option(None, help="A/B arms, e.g. a=0.5,b=0.5 (first = control)"),
    campaign: str | None = typer.Option(None, help="the campaign the experiment belongs to"),
    salt: str | None = typer.Option(None, help="assignment salt (default by kind)"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object"),
) -> None:
    """Store an experiment: a holdout (--holdout) or an A/B test (--arms)."""
    from postwise.engage.experiment_store import create_experiment, parse_arms

    try:
        parsed = None if arms is None else parse_arms(arms)
        stored = create_experiment(
            _engine(), name, holdout=holdout, arms=parsed, campaign=campaign, salt=salt
        )
    except PostwiseError as error:
        _fail(str(error))
    if as_json:
        print(json.dumps(stored.as_dict()))
        return
    what = (
        "global holdout"
        if stored.is_global_holdout
        else f"{stored.kind} experiment"
        + (f" of campaign {stored.campaign}" if stored.campaign else "")
    )
    shares = ", ".join(f"{arm}={share:g}" for arm, share in stored.arms)
    print(f"created {what} {stored.name}: {shares} (control: {stored.control}, salt {stored.salt})")


@experiment_app.command("assign")
def assign_command(
    name: str = typer.Argument(..., help="experiment name"),
    purpose: str = typer.Option("marketing", help="consent purpose required to assign"),
    channel: str = typer.Option("email", help="consent channel required to assign"),
    contacts: Path | None = typer.Option(
        None, "--contacts", help="file of contact ids, one a line (default: every contact)"
    ),
    as_json: bool = typer.Option(False, "--json", help="one JSON object"),
) -> None:
    """Assign contacts (every contact of the store, or --contacts FILE) to the arms of NAME;
    contacts without consent are skipped, earlier assignments kept."""
    from postwise.core.settings import get_settings
    from postwise.engage.experiment_store import all_contacts, assign

    ids = None if contacts is None else _read_contacts(contacts)
    try:
        engine = _engine()
        report = assign(
            engine,
            name,
            all_contacts(engine) if ids is None else ids,
            key=get_settings().resolved_engage_hmac_key(),
            purpose=purpose,
            channel=channel,
        )
    except PostwiseError as error:
        _fail(str(error))
    summary = report.as_dict()
    if as_json:
        print(json.dumps(summary))
        return
    per_arm = ", ".join(f"{arm} {count}" for arm, count in summary["per_arm"].items()) or "none"
    print(
        f"{name}: {summary['assigned']} assigned, {summary['already_assigned']} already "
        f"assigned, {summary['skipped_consent']} skipped for consent ({purpose}/{channel}), "
        f"{summary['global_holdout']} in the global holdout; per arm: {per_arm}"
    )


@experiment_app.command("results")
def results_command(
    name: str = typer.Argument(..., help="experiment name"),
    outcome: str = typer.Option(..., help="event type measured: purchase, open, click, …"),
    window_days: float = typer.Option(30.0, help="days after each assignment that count"),
    value: bool = typer.Option(False, "--value", help="sum of the events' value, not a rate"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object"),
) -> None:
    """Per arm: contacts and mean outcome; per arm against the control: the difference in
    means with its 95% interval."""
    from postwise.engage.experiment_store import results

    try:
        measured = results(_engine(), name, outcome, window_days, value)
    except PostwiseError as error:
        _fail(str(error))
    data = measured.as_dict()
    if as_json:
        print(json.dumps(data))
        return
    measure = f"sum of {outcome} value" if value else f"{outcome} rate"
    table = Table(title=f"{name}: {measure} within {window_days:g} days of assignment")
    for column in ("arm", "contacts", "mean", "effect vs " + measured.control, "95% CI"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm, outcome_of_arm in measured.arms.items():
        effect = measured.effects.get(arm)
        mean = "n/a" if outcome_of_arm.mean is None else f"{outcome_of_arm.mean:.4f}"
        if arm == measured.control:
            shown, interval = "(control)", ""
        elif effect is None:
            shown, interval = "n/a", ""
        else:
            low, high = effect["ate_ci"]
            shown, interval = f"{effect['ate']:+.4f}", f"[{low:+.4f}, {high:+.4f}]"
        table.add_row(arm, str(outcome_of_arm.n), mean, shown, interval)
    console = Console(width=200)
    console.print(table)
    for note in measured.notes:
        console.print(f"note: {note}", markup=False, highlight=False)


@experiment_app.command("list")
def list_command(as_json: bool = typer.Option(False, "--json", help="one JSON object")) -> None:
    """Every stored experiment with its contacts per arm."""
    from postwise.engage.experiment_store import list_experiments

    listed = list_experiments(_engine())
    if as_json:
        print(
            json.dumps(
                {"experiments": [{**e.as_dict(), "assigned": counts} for e, counts in listed]}
            )
        )
        return
    if not listed:
        print("no experiments (postwise engage experiment create NAME --holdout 0.1)")
        return
    table = Table(title="experiments")
    for column in ("name", "kind", "campaign", "arms", "assigned", "status", "created"):
        table.add_column(column, overflow="fold")
    for experiment, counts in listed:
        table.add_row(
            experiment.name,
            "global holdout" if experiment.is_global_holdout else experiment.kind,
            experiment.campaign or "",
            ", ".join(f"{arm}={share:g}" for arm, share in experiment.arms),
            ", ".join(f"{arm} {count}" for arm, count in counts.items()),
            experiment.status,
            experiment.created_at.isoformat(timespec="seconds"),
        )
    Console(width=200).print(table)


@experiment_app.command("stop")
def stop_command(name: str = typer.Argument(..., help="experiment name")) -> None:
    """Stop assigning contacts to NAME; its assignments and results stay."""
    from postwise.engage.experiment_store import stop_experiment

    try:
        stopped = stop_experiment(_engine(), name)
    except PostwiseError as error:
        _fail(str(error))
    print(f"{stopped.name} stopped at {stopped.stopped_at}")


def register(engage_app: typer.Typer) -> None:
    """Add the ``experiment`` group to ``engage``."""
    engage_app.add_typer(experiment_app, name="experiment")
