"""The campaign runner on a real SQLite store and spool: per-contact failures are reported and
never stop the batch, re-runs never send twice, holdouts get nothing, ``send_to`` for one
contact, the sync step's rewards, and campaign definitions that are refused with a reason."""

from __future__ import annotations

import email
import email.policy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from postwise.cli import app
from postwise.core.db import DecisionRecord, EngageEventRecord, open_database
from postwise.core.errors import CampaignError
from postwise.core.settings import Settings, get_settings
from postwise.engage import bandit_store
from postwise.engage.campaign_report import campaign_report, sync_campaign
from postwise.engage.campaign_runner import CampaignRunner
from postwise.engage.campaigns import (
    CampaignMessageRecord,
    create_campaign,
    definition_from_mapping,
    definition_from_toml,
    load_campaign,
)
from postwise.engage.contacts import ContactStore
from postwise.engage.experiment_store import create_experiment
from postwise.engage.ingest import import_records
from postwise.engage.provenance import decisions_for
from postwise.engage.tracking import Tracker, TrackingConsentRule

AT = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
TEMPLATE = """
subject = "Hi {{ first_name | default('there') }}"
preheader = "News"
from = "Shop <news@shop.example>"
layout = '''<html><body><p>{{ blocks.main }}</p>
<p>Ratio {{ 10 // divisor }} {{ bio | default('') }}</p>
<a href="https://shop.example/sale">Sale</a> <a href="{{ unsubscribe_url }}">Unsubscribe</a>
</body></html>'''

[[blocks.main]]
when = "downgraded"
html = "Just the digest"

[[blocks.main]]
html = "Everything new"
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Settings, Any, ContactStore]]:
    settings = Settings(
        environment="test",
        data_dir=tmp_path / "data",
        tracking_base_url="https://t.shop.example",
        max_message_bytes=40_000,
    )
    engine = open_database(settings.resolved_database_url)
    yield settings, engine, ContactStore.from_settings(settings, engine)
    engine.dispose()


def _contacts(store: ContactStore, rows: list[dict[str, Any]]) -> list[str]:
    records = [
        {
            "email": row.pop("email"),
            "attributes": row,
            "consent": [
                {"purpose": "marketing", "channel": "email", "granted": True},
                {"purpose": "tracking", "channel": "email", "granted": True},
            ],
        }
        for row in rows
    ]
    report, _ = import_records(store, "contacts", records)
    assert report.failed == 0
    return [store.contact_id(str(r["email"])) for r in records]


def _campaign(engine: Any, **overrides: Any) -> None:
    definition = {
        "id": "news",
        "template_source": TEMPLATE,
        "segment": {"attribute": "country", "eq": "UK"},
        "subjects": ["Hello {{ first_name }}", "Our news"],
        **overrides,
    }
    create_campaign(engine, definition_from_mapping(definition), at=AT)


def _rows(engine: Any) -> dict[str, Any]:
    with engine.connect() as connection:
        return {
            r.contact_id: r
            for r in connection.execute(
                select(CampaignMessageRecord).where(CampaignMessageRecord.campaign_id == "news")
            )
        }


def _runner(settings: Settings, engine: Any) -> CampaignRunner:
    return CampaignRunner(settings, engine, rng=np.random.default_rng(7))


def test_a_failing_render_is_reported_and_the_rest_go_out(
    world: tuple[Settings, Any, ContactStore],
) -> None:
    settings, engine, store = world
    people = [{"email": f"r{i}@mail.example", "country": "UK", "divisor": 1} for i in range(6)]
    people[2]["divisor"] = 0  # 10 // 0: this contact's render fails
    ids = _contacts(store, people)
    _campaign(engine)
    runner = _runner(settings, engine)
    report = runner.send_campaign("news", AT)
    assert list(report.failed) == [ids[2]]
    assert report.failed[ids[2]].startswith("render: ")
    assert "division" in report.failed[ids[2]] or "zero" in report.failed[ids[2]]
    assert report.queued == 5
    rows = _rows(engine)
    assert rows[ids[2]].state == "failed" and rows[ids[2]].reason.startswith("render: ")
    assert sorted(c for c, r in rows.items() if r.state == "queued") == sorted(
        c for c in ids if c != ids[2]
    )
    assert load_campaign(engine, "news").status == "sent"
    # every queued message is a whole message addressed to its contact, with tracking
    for contact in ids:
        row = rows[contact]
        if row.state != "queued":
            continue
        raw = runner.outbound.queue.load(row.queue_message_id)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert parsed["To"] == store.address_of(contact)
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert parsed["List-Unsubscribe"].startswith("<https://t.shop.example/t/u/")
        html_part = parsed.get_body(("html",))
        assert html_part is not None
        html = html_part.get_content()
        assert "https://t.shop.example/t/c/" in html and "/t/o/" in html
        assert parsed["Subject"].startswith(("Hello", "Our news"))
    # fixing the contact and running again sends to it alone
    store.upsert("r2@mail.example", {"divisor": 5})
    again = runner.send_campaign("news", AT + timedelta(minutes=5))
    assert again.queued == 1 and again.duplicates == 5 and again.failed == {}
    assert _rows(engine)[ids[2]].state == "queued"
    with engine.connect() as connection:
        kinds = [
            r.decision["status"]
            for r in connection.execute(
                select(DecisionRecord).where(
                    DecisionRecord.contact_id == ids[2], DecisionRecord.kind == "campaign_send"
                )
            )
        ]
    assert sorted(kinds) == ["failed", "queued"]


def test_a_refused_submission_is_reported_per_contact(
    world: tuple[Settings, Any, ContactStore],
) -> None:
    settings, engine, store = world
    people = [{"email": f"q{i}@mail.example", "country": "UK", "divisor": 1} for i in range(3)]
    people[0]["bio"] = "long " * 10_000  # over max_message_bytes once rendered
    ids = _contacts(store, people)
    _campaign(engine)
    report = _runner(settings, engine).send_campaign("news", AT)
    assert list(report.failed) == [ids[0]]
    assert report.failed[ids[0]].startswith("queue: the message is ")
    assert "the limit is 40000" in report.failed[ids[0]]
    assert report.queued == 2
    with engine.connect() as connection:
        sent = connection.execute(
            select(EngageEventRecord.contact_id).where(EngageEventRecord.type == "sent")
        ).scalars()
        assert sorted(sent) == sorted(ids[1:])


def test_holdouts_get_nothing_and_are_recorded(world: tuple[Settings, Any, ContactStore]) -> None:
    settings, engine, store = world
    ids = _contacts(
        store,
        [{"email": f"h{i}@mail.example", "country": "UK", "divisor": 1} for i in range(40)],
    )
    create_experiment(engine, "everyone-else", holdout=0.25, at=AT)  # the global holdout
    _campaign(engine, holdout=0.3)
    report = _runner(settings, engine).send_campaign("news", AT)
    rows = _rows(engine)
    states = {c: rows[c].state for c in ids}
    assert set(states.values()) <= {"queued", "holdout", "global_holdout"}
    assert report.holdout == sum(s == "holdout" for s in states.values()) > 0
    assert report.global_holdout == sum(s == "global_holdout" for s in states.values()) > 0
    assert report.queued == sum(s == "queued" for s in states.values())
    held = [c for c, s in states.items() if s != "queued"]
    assert all(rows[c].queue_message_id is None and rows[c].variant is None for c in held)
    with engine.connect() as connection:
        sent = set(
            connection.execute(
                select(EngageEventRecord.contact_id).where(EngageEventRecord.type == "sent")
            ).scalars()
        )
    assert sent == {c for c, s in states.items() if s == "queued"}


def test_send_to_one_contact(world: tuple[Settings, Any, ContactStore]) -> None:
    settings, engine, store = world
    [one, other] = _contacts(
        store,
        [
            {"email": "one@mail.example", "country": "FR", "divisor": 1},
            {"email": "other@mail.example", "country": "FR", "divisor": 1},
        ],
    )
    store.record_consent(other, "marketing", "email", False, "test")
    _campaign(engine)
    runner = _runner(settings, engine)
    outcome = runner.send_to("news", one, AT, extra_context={"first_name": "Trigger"})
    assert outcome.status == "queued" and outcome.variant in ("a", "b")
    raw = runner.outbound.queue.load(str(outcome.queue_message_id))
    assert b"Trigger" in raw or outcome.variant == "b"
    again = runner.send_to("news", one, AT)
    assert again.status == "duplicate" and again.queue_message_id == outcome.queue_message_id
    refused = runner.send_to("news", other, AT)
    assert refused.status == "excluded" and "consent" in str(refused.reason)
    with pytest.raises(CampaignError, match="no campaign 'nope'"):
        runner.send_to("nope", one, AT)


def test_caps_exclude_new_contacts_and_a_rerun_is_not_capped_by_itself(
    world: tuple[Settings, Any, ContactStore],
) -> None:
    settings, engine, store = world
    ids = _contacts(
        store, [{"email": f"c{i}@mail.example", "country": "UK", "divisor": 1} for i in range(3)]
    )
    earlier = {
        "event_id": "other-send",
        "type": "sent",
        "occurred_at": (AT - timedelta(hours=2)).isoformat(),
        "contact_id": ids[0],
        "properties": {"campaign": "other", "channel": "email"},
    }
    import_records(store, "events", [earlier])
    _campaign(engine, caps={"per_channel": {"email": {"limit": 1, "window_days": 1}}})
    runner = _runner(settings, engine)
    first = runner.send_campaign("news", AT)
    assert first.audience["excluded_capped"] == 1 and first.queued == 2
    assert ids[0] not in _rows(engine)
    # the capped send is recorded with its rule; the sent ones are not capped decisions
    [capped] = [d for d in decisions_for(engine, ids[0]) if d.kind != "campaign_send"]
    assert capped.decision["action"] == "suppress" and "email" in str(capped.decision)
    assert all(d.kind == "campaign_send" for d in decisions_for(engine, ids[1]))
    again = runner.send_campaign("news", AT + timedelta(hours=1))
    assert again.duplicates == 2 and again.queued == 0
    assert again.audience["excluded_capped"] == 1  # still only the contact capped before


@pytest.mark.parametrize(
    ("rule", "tracked"),
    [
        (TrackingConsentRule.GRANTED, {"yes"}),
        (TrackingConsentRule.NOT_REFUSED, {"yes", "silent"}),
    ],
)
def test_links_are_tracked_by_the_trackers_consent_rule(
    world: tuple[Settings, Any, ContactStore], rule: TrackingConsentRule, tracked: set[str]
) -> None:
    settings, engine, store = world
    statements = {"yes": [True], "no": [False], "silent": [], "withdrawn": [True, False]}
    ids: dict[str, str] = {}
    for name, grants in statements.items():
        consent = [{"purpose": "marketing", "channel": "email", "granted": True}]
        for step, granted in enumerate(grants):
            at = (AT - timedelta(days=2 - step)).isoformat()
            consent.append(
                {"purpose": "tracking", "channel": "email", "granted": granted, "recorded_at": at}
            )
        record = {
            "email": f"{name}@mail.example",
            "attributes": {"country": "UK", "divisor": 1},
            "consent": consent,
        }
        report, _ = import_records(store, "contacts", [record])
        assert report.failed == 0
        ids[name] = store.contact_id(f"{name}@mail.example")
    _campaign(engine)
    tracker = Tracker.from_settings(settings)
    tracker.consent_rule = rule
    runner = CampaignRunner(settings, engine, tracker=tracker, rng=np.random.default_rng(7))
    assert runner.send_campaign("news", AT).queued == len(statements)
    rows = _rows(engine)
    seen: set[str] = set()
    for name, contact in ids.items():
        raw = runner.outbound.queue.load(rows[contact].queue_message_id)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        html_part = parsed.get_body(("html",))
        assert html_part is not None
        html = html_part.get_content()
        if "/t/o/" in html:
            assert "https://t.shop.example/t/c/" in html
            seen.add(name)
        else:
            assert 'href="https://shop.example/sale"' in html
    assert seen == tracked


def test_not_before_follows_the_sendtime_mode_now(
    world: tuple[Settings, Any, ContactStore],
) -> None:
    settings, engine, store = world
    _contacts(store, [{"email": "s@mail.example", "country": "UK", "divisor": 1}])
    _campaign(engine, send_time="model")
    report = _runner(settings, engine).send_campaign("news", AT)
    assert report.queued == 1 and report.scheduled == 0
    assert any("no sendtime:* model is promoted" in w for w in report.warnings)


def test_sync_feeds_clicks_and_silence_to_the_bandit(
    world: tuple[Settings, Any, ContactStore],
) -> None:
    settings, engine, store = world
    ids = _contacts(
        store, [{"email": f"b{i}@mail.example", "country": "UK", "divisor": 1} for i in range(4)]
    )
    _campaign(engine, reward_window_hours=24)
    _runner(settings, engine).send_campaign("news", AT)
    rows = _rows(engine)
    clicker = ids[0]
    event = {
        "event_id": "click-1",
        "type": "click",
        "occurred_at": (AT + timedelta(hours=1)).isoformat(),
        "contact_id": clicker,
        "properties": {
            "campaign": "news",
            "message": rows[clicker].tracking_message_id,
            "variant": rows[clicker].variant,
            "machine": False,
        },
    }
    import_records(store, "events", [event])
    early = sync_campaign(engine, "news", AT + timedelta(hours=2))
    assert (early.rewards, early.reward_ones) == (1, 1)
    late = sync_campaign(engine, "news", AT + timedelta(hours=30))
    assert (late.rewards, late.reward_ones) == (3, 0)
    assert sync_campaign(engine, "news", AT + timedelta(hours=40)).rewards == 0
    bandit = bandit_store.load_bandit(engine, "campaign:news")
    state = bandit.policy.to_state()
    assert sum(state["successes"]) == 1 and sum(state["failures"]) == 3
    variant = rows[clicker].variant
    assert state["successes"][list(bandit.arms).index(variant)] == 1
    report = campaign_report(engine, "news", as_of=AT + timedelta(hours=41))
    assert report["totals"]["clicks_human"] == 1 and report["totals"]["unique_clicks"] == 1
    assert report["bandit"]["successes"][variant] == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("id = 'x'\nsegment = 'uk'\n", "exactly one of 'template'"),
        ("id = 'Bad Id'\ntemplate_source = 'x'\nsegment = 'uk'\n", "id: Value error"),
        ("id = 'x'\ntemplate_source = 'x'\nsegment = 'uk'\ncolour = 1\n", "colour: Extra inputs"),
        ("id = 'x'\ntemplate_source = 'x'\nsegment = 'uk'\nholdout = 1.5\n", "holdout"),
        ("id = 'x'\n[broken\n", "invalid TOML"),
    ],
)
def test_bad_definitions_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(CampaignError, match=message):
        definition_from_toml(text, "bad.toml")


def test_create_refuses_unknown_segments_broken_templates_and_taken_ids(
    world: tuple[Settings, Any, ContactStore],
) -> None:
    _, engine, _ = world
    with pytest.raises(CampaignError, match=r"segment: .*nowhere"):
        _campaign(engine, segment="nowhere")
    with pytest.raises(CampaignError, match=r"template: .*subject"):
        _campaign(engine, template_source="from = 'a@b.example'\nlayout = 'x'\n")
    _campaign(engine)
    with pytest.raises(CampaignError, match="exists already"):
        _campaign(engine)


def test_cli_errors_are_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POSTWISE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("POSTWISE_ENVIRONMENT", "test")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    try:
        bad = tmp_path / "bad.toml"
        bad.write_text("id = 'x'\nsegment = 'uk'\n")
        runner = CliRunner()
        for args in (
            ["campaign", "create", str(bad)],
            ["campaign", "create", str(tmp_path / "missing.toml")],
            ["campaign", "send", "nope"],
            ["campaign", "report", "nope", "--json"],
            ["campaign", "send", "nope", "--at", "yesterday"],
        ):
            result = runner.invoke(app, args)
            assert result.exit_code == 1, (args, result.output)
            assert "error: " in result.output and "Traceback" not in result.output
        listed = runner.invoke(app, ["campaign", "list", "--json"])
        assert listed.exit_code == 0 and json.loads(listed.stdout) == {"campaigns": []}
    finally:
        get_settings.cache_clear()
