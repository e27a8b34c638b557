"""``postwise campaign …``: create, preview, send, list, sync and report campaigns
(docs/campaigns.md). Errors print ``error: …`` and exit 1, never a traceback."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from postwise.cli_errors import fail as _fail
from postwise.core.errors import PostwiseError


def _engine() -> Any:
    from postwise.core.db import open_database
    from postwise.core.settings import get_settings

    try:
        return open_database(get_settings().resolved_database_url)
    except PostwiseError as error:
        _fail(str(error))


def _moment(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"--at {text!r} is not an ISO 8601 time (e.g. 2026-05-01T09:00:00+00:00)")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _print(text: str) -> None:
    Console(soft_wrap=True).print(text, markup=False, highlight=False)


def register(group: typer.Typer) -> None:
    """Add the commands to the ``campaign`` group."""

    @group.command("create")
    def create_command(
        file: Path = typer.Argument(..., help="campaign definition (TOML)"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object"),
    ) -> None:
        """Validate a campaign file and store the campaign (status draft)."""
        from postwise.engage.campaigns import create_campaign, load_campaign_file

        try:
            definition = load_campaign_file(file)
            stored = create_campaign(_engine(), definition)
        except PostwiseError as error:
            _fail(str(error))
        if as_json:
            print(json.dumps(stored.as_dict()))
            return
        variants = ", ".join(
            f"{v.name}: {v.subject or '(template subject)'}" for v in stored.variants
        )
        _print(
            f"campaign {stored.id} created (draft): holdout {stored.definition.holdout:g}, "
            f"send time {stored.definition.send_time}, variants {variants}"
        )

    @group.command("preview")
    def preview_command(
        campaign_id: str = typer.Argument(..., metavar="ID"),
        at: str | None = typer.Option(None, help="evaluate as of this ISO time (default now)"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object"),
    ) -> None:
        """Audience counts by exclusion reason and a rendered sample; records nothing."""
        from postwise.core.settings import get_settings
        from postwise.engage.audiences import preview
        from postwise.engage.campaign_runner import sample_messages
        from postwise.engage.campaigns import load_campaign
        from postwise.engage.contacts import ContactStore

        engine = _engine()
        moment = _moment(at)
        try:
            campaign = load_campaign(engine, campaign_id)
            store = ContactStore.from_settings(get_settings(), engine)
            counts = preview(
                store,
                campaign.definition.segment,
                moment,
                campaign.definition.purpose,
                campaign.definition.channel,
                campaign.caps(),
                segments=campaign.definition.segments or None,
            )
            sample = sample_messages(get_settings(), engine, moment, campaign)
        except PostwiseError as error:
            _fail(str(error))
        expected_holdout = round(counts["included"] * campaign.definition.holdout)
        if as_json:
            print(
                json.dumps(
                    {
                        "campaign": campaign.id,
                        "audience": counts,
                        "holdout_fraction": campaign.definition.holdout,
                        "expected_holdout": expected_holdout,
                        "sample": sample,
                    }
                )
            )
            return
        table = Table(title=f"campaign {campaign.id}: audience as of {moment.isoformat()}")
        table.add_column("step")
        table.add_column("contacts", justify="right")
        for key, value in counts.items():
            table.add_row(key.replace("_", " "), str(value))
        table.add_row("held out (about)", str(expected_holdout))
        Console().print(table)
        _print(f"sample for contact {sample['contact'] or '(none: empty context)'}:")
        for name, rendered in sample["variants"].items():
            _print(f"--- variant {name}: {rendered['subject']}")
            _print(rendered["text"].rstrip())
            for warning in rendered["warnings"]:
                _print(f"warning: {warning}")

    @group.command("send")
    def send_command(
        campaign_id: str = typer.Argument(..., metavar="ID"),
        at: str | None = typer.Option(None, help="send as of this ISO time (default now)"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object"),
    ) -> None:
        """Send the campaign: queue one message per contact (a re-run sends nothing twice)."""
        from postwise.core.settings import get_settings
        from postwise.engage.campaign_runner import CampaignRunner

        try:
            runner = CampaignRunner(get_settings(), _engine())
            report = runner.send_campaign(campaign_id, _moment(at))
        except PostwiseError as error:
            _fail(str(error))
        if as_json:
            print(json.dumps(report.as_dict()))
            return
        _print(
            f"campaign {report.campaign}: {report.queued} queued ({report.scheduled} for later "
            f"send-time slots), {report.duplicates} queued before, {report.holdout} held out, "
            f"{report.global_holdout} in the global holdout, {len(report.failed)} failed"
        )
        audience = ", ".join(f"{k} {v}" for k, v in report.audience.items())
        _print(f"audience: {audience}")
        if report.variants:
            _print("variants: " + ", ".join(f"{k} {v}" for k, v in report.variants.items()))
        for contact, reason in list(report.failed.items())[:20]:
            _print(f"failed {contact[:16]}…: {reason}")
        for warning in report.warnings:
            _print(f"warning: {warning}")
        if report.failed:
            raise typer.Exit(code=1)

    @group.command("list")
    def list_command(as_json: bool = typer.Option(False, "--json", help="one JSON object")) -> None:
        """Every stored campaign."""
        from postwise.engage.campaigns import list_campaigns

        campaigns = list_campaigns(_engine())
        if as_json:
            print(json.dumps({"campaigns": [c.as_dict() for c in campaigns]}))
            return
        table = Table(title="campaigns")
        for column in ("id", "name", "status", "variants", "holdout", "created", "sent"):
            table.add_column(column)
        for c in campaigns:
            table.add_row(
                c.id,
                c.name,
                c.status,
                ", ".join(v.name for v in c.variants),
                f"{c.definition.holdout:g}",
                c.created_at.isoformat(timespec="seconds"),
                c.sent_at.isoformat(timespec="seconds") if c.sent_at else "",
            )
        Console().print(table)

    @group.command("sync")
    def sync_command(
        campaign_id: str = typer.Argument(..., metavar="ID"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object"),
    ) -> None:
        """Write delivered events and feed known rewards to the campaign's bandit."""
        from postwise.engage.campaign_report import sync_campaign

        try:
            result = sync_campaign(_engine(), campaign_id)
        except PostwiseError as error:
            _fail(str(error))
        if as_json:
            print(json.dumps(result.as_dict()))
            return
        _print(
            f"campaign {result.campaign}: {result.delivered_events} delivered events written, "
            f"{result.rewards} rewards fed to the bandit ({result.reward_ones} positive)"
        )

    @group.command("report")
    def report_command(
        campaign_id: str = typer.Argument(..., metavar="ID"),
        window_days: float | None = typer.Option(
            None, help="conversion window in days (default: the campaign's, 7)"
        ),
        no_sync: bool = typer.Option(False, "--no-sync", help="do not run the sync step first"),
        as_json: bool = typer.Option(False, "--json", help="one JSON object"),
    ) -> None:
        """Sends, deliveries, bounces, opens, clicks, conversions, unsubscribes and complaints,
        per variant and segment, and the lift over the holdout."""
        from postwise.engage.campaign_report import METRICS, campaign_report

        try:
            report = campaign_report(
                _engine(), campaign_id, conversion_window_days=window_days, sync=not no_sync
            )
        except PostwiseError as error:
            _fail(str(error))
        if as_json:
            print(json.dumps(report))
            return
        console = Console()
        table = Table(title=f"campaign {report['campaign']} ({report['status']})")
        table.add_column("metric")
        groups = [("total", report["totals"])]
        groups += [(f"variant {k}", v) for k, v in report["variants"].items()]
        groups += [(f"segment {k}", v) for k, v in report["segments"].items()]
        for name, _ in groups:
            table.add_column(name, justify="right")
        for metric in METRICS:
            table.add_row(metric, *(str(values.get(metric, "")) for _, values in groups))
        console.print(table)
        contacts = report["contacts"]
        _print(
            f"held out {contacts['holdout']}, global holdout {contacts['global_holdout']}, "
            f"failed {contacts['failed']}; conversions within "
            f"{report['conversion_window_days']:g} days"
        )
        for name, lift in (report["lift"] or {}).items():
            interval = lift["ci95"]
            shown = (
                "n/a"
                if lift["lift"] is None
                else f"{lift['lift']:+.4f} (95% CI {interval[0]:+.4f} to {interval[1]:+.4f})"
            )
            _print(f"lift on {name} per contact over the holdout: {shown}")
