"""Triggered messages: the trigger watcher on a real SQLite store and spool (matching, property
filters, delay, max age, once per hours, one message per event, the cursor across restarts,
every outcome recorded), the 0012 migration on SQLite, and the whole path over real sockets:
``postwise serve`` (uvicorn API, trigger watcher, delivery worker) and an SMTP sink, where a
``cart_abandoned`` event POSTed to /v1/events arrives as a message listing the cart."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import numpy as np
import pytest
from alembic import command
from sqlalchemy import Table, create_engine, delete, func, inspect, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from postwise.core.db import DecisionRecord, OutboundMessageRecord, _alembic_config, open_database
from postwise.core.errors import CampaignError
from postwise.core.settings import Settings
from postwise.engage.campaign_report import campaign_report
from postwise.engage.campaign_runner import CampaignRunner
from postwise.engage.campaigns import (
    CampaignMessageRecord,
    create_campaign,
    definition_from_mapping,
    definition_from_toml,
)
from postwise.engage.contacts import ContactStore
from postwise.engage.ingest import import_records
from postwise.engage.triggers import TriggerCursorRecord, TriggerPendingRecord, TriggerWatcher
from tests.outbound.delivery_harness import OutboundWorld

AT = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
TEMPLATE = """
subject = "{{ first_name | default('Hi') }}, your cart is waiting"
from = "Shop <news@shop.example>"
layout = '''<html><body><p>You left:</p><ul>
{% for item in event["cart"] %}<li>{{ item.title }} ({{ item.price }})</li>{% endfor %}
</ul><p>event {{ event.id }} of type {{ event.type }}</p>
<a href="https://shop.example/cart">Back to the cart</a>
<a href="{{ unsubscribe_url }}">Unsubscribe</a></body></html>'''
"""


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Settings, Engine, ContactStore]]:
    settings = Settings(
        environment="test",
        data_dir=tmp_path / "data",
        tracking_base_url="https://t.shop.example",
    )
    engine = open_database(settings.resolved_database_url)
    yield settings, engine, ContactStore.from_settings(settings, engine)
    engine.dispose()


def _contact(store: ContactStore, address: str, consent: bool = True, **attributes: Any) -> str:
    report, _ = import_records(
        store,
        "contacts",
        [
            {
                "email": address,
                "attributes": attributes,
                "consent": [{"purpose": "marketing", "channel": "email", "granted": consent}],
            }
        ],
    )
    assert report.failed == 0
    return store.contact_id(address)


def _trigger_campaign(engine: Engine, campaign_id: str = "cart", **trigger: Any) -> None:
    definition = {
        "id": campaign_id,
        "template_source": TEMPLATE,
        "segment": {"attribute": "country", "eq": "UK"},
        "trigger": {"event": "custom", "name": "cart_abandoned", **trigger},
    }
    create_campaign(engine, definition_from_mapping(definition), at=AT)


def _event(
    store: ContactStore,
    event_id: str,
    contact: str,
    at: datetime,
    kind: str = "custom",
    **properties: Any,
) -> None:
    report, _ = import_records(
        store,
        "events",
        [
            {
                "event_id": event_id,
                "type": kind,
                "contact_id": contact,
                "occurred_at": at.isoformat(),
                "properties": properties,
            }
        ],
    )
    assert report.imported == 1


def _cart(**extra: Any) -> dict[str, Any]:
    return {
        "name": "cart_abandoned",
        "cart": [{"title": "Blue mug", "price": 12.5}, {"title": "Tea", "price": 4}],
        **extra,
    }


def _watcher(settings: Settings, engine: Engine) -> TriggerWatcher:
    runner = CampaignRunner(settings, engine, rng=np.random.default_rng(3))
    return TriggerWatcher(runner, engine, poll_seconds=0.05)


def _messages(engine: Engine, campaign: str = "cart") -> list[Any]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(CampaignMessageRecord)
                .where(CampaignMessageRecord.campaign_id == campaign)
                .order_by(CampaignMessageRecord.id)
            )
        )


def _queue_count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count(OutboundMessageRecord.id))).scalar_one())


def _decisions(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [
            dict(row[0])
            for row in connection.execute(
                select(DecisionRecord.decision)
                .where(DecisionRecord.kind == "trigger_fired")
                .order_by(DecisionRecord.id)
            )
        ]


def test_a_matching_event_sends_the_message_rendered_with_its_properties(
    world: tuple[Settings, Engine, ContactStore],
) -> None:
    settings, engine, store = world
    ada = _contact(store, "ada@mail.example", first_name="Ada")
    _trigger_campaign(engine, properties={"shop": ["web", "app"]})
    at = AT + timedelta(minutes=5)
    _event(store, "e-match", ada, at, **_cart(shop="web"))
    _event(store, "e-other-shop", ada, at, **_cart(shop="outlet"))
    _event(store, "e-other-name", ada, at, name="wishlist", shop="web")
    _event(store, "e-purchase", ada, at, kind="purchase", name="cart_abandoned", shop="web")
    watcher = _watcher(settings, engine)
    outcomes = watcher.tick(at + timedelta(seconds=2))
    assert [(o.event_id, o.status) for o in outcomes] == [("e-match", "queued")]
    [row] = _messages(engine)
    assert (row.contact_id, row.occasion, row.state) == (ada, "e-match", "queued")
    raw = watcher.runner.outbound.queue.load(row.queue_message_id)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == "Ada, your cart is waiting"
    assert parsed["X-Postwise-Campaign"] == "cart"
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Blue mug (12.5)" in html and "Tea (4)" in html
    assert "event e-match of type custom" in html
    # its own sent event (properties.campaign = cart) never fires it again
    assert watcher.tick(at + timedelta(seconds=3)) == []


def test_one_message_per_event_and_one_per_contact_within_once_per_hours(
    world: tuple[Settings, Engine, ContactStore],
) -> None:
    settings, engine, store = world
    ada = _contact(store, "ada@mail.example")
    _trigger_campaign(engine, once_per_hours=0)
    _trigger_campaign(engine, "cart-daily", once_per_hours=24)
    watcher = _watcher(settings, engine)
    first = AT + timedelta(minutes=1)
    _event(store, "e1", ada, first, **_cart())
    _event(store, "e2", ada, first + timedelta(hours=1), **_cart())
    outcomes = watcher.tick(first + timedelta(hours=1, seconds=1))
    got = {(o.campaign, o.event_id): o.status for o in outcomes}
    assert got == {
        ("cart", "e1"): "queued",
        ("cart", "e2"): "queued",
        ("cart-daily", "e1"): "queued",
        ("cart-daily", "e2"): "excluded",
    }
    excluded = next(o for o in outcomes if o.status == "excluded")
    assert excluded.reason is not None and "once_per_hours = 24" in excluded.reason
    assert [r.occasion for r in _messages(engine)] == ["e1", "e2"]
    assert _queue_count(engine) == 3
    # the same event again: the runner answers duplicate, the queue gets nothing
    again = watcher.runner.send_to("cart", ada, at=first, occasion="e1")
    assert again.status == "duplicate"
    assert again.queue_message_id == _messages(engine)[0].queue_message_id
    # a watcher that lost its cursor (a crash before saving it) meets the events again
    with engine.begin() as connection:
        connection.execute(delete(TriggerCursorRecord))
    replay = watcher.tick(first + timedelta(hours=1, seconds=2))
    assert {(o.campaign, o.event_id): o.status for o in replay} == {
        ("cart", "e1"): "duplicate",
        ("cart", "e2"): "duplicate",
        ("cart-daily", "e1"): "duplicate",
        ("cart-daily", "e2"): "excluded",
    }
    assert _queue_count(engine) == 3
    # a day later the daily campaign may send again
    _event(store, "e3", ada, first + timedelta(hours=25), **_cart())
    later = watcher.tick(first + timedelta(hours=25, seconds=1))
    assert {(o.campaign, o.status) for o in later} == {("cart", "queued"), ("cart-daily", "queued")}


def test_a_tick_prepares_each_campaign_once_however_many_events_fire(
    world: tuple[Settings, Engine, ContactStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, engine, store = world
    contacts = [_contact(store, f"p{n}@mail.example") for n in range(4)]
    _trigger_campaign(engine, once_per_hours=0)
    _trigger_campaign(engine, "cart-too", once_per_hours=0)
    watcher = _watcher(settings, engine)
    prepared: list[str] = []
    plan = CampaignRunner._plan

    def counting(runner: CampaignRunner, campaign: Any) -> Any:
        prepared.append(campaign.id)
        return plan(runner, campaign)

    monkeypatch.setattr(CampaignRunner, "_plan", counting)
    first = AT + timedelta(minutes=1)
    for n, contact in enumerate(contacts):
        _event(store, f"e{n}", contact, first, **_cart())
    outcomes = watcher.tick(first + timedelta(seconds=1))
    assert [o.status for o in outcomes] == ["queued"] * 8
    assert sorted(prepared) == ["cart", "cart-too"]
    # outside a tick nothing is kept: a changed campaign is read again
    watcher.runner.send_to("cart", contacts[0], at=first, occasion="direct-1")
    watcher.runner.send_to("cart", contacts[0], at=first, occasion="direct-2")
    assert sorted(prepared) == ["cart", "cart", "cart", "cart-too"]


def test_delay_waits_in_pending_and_max_age_skips_stale_events(
    world: tuple[Settings, Engine, ContactStore],
) -> None:
    settings, engine, store = world
    ada = _contact(store, "ada@mail.example")
    bob = _contact(store, "bob@mail.example")
    _trigger_campaign(engine, delay_seconds=600, max_age_hours=1)
    watcher = _watcher(settings, engine)
    at = AT + timedelta(minutes=1)
    _event(store, "late-ada", ada, at, **_cart())
    _event(store, "old-bob", bob, AT - timedelta(minutes=1), **_cart())  # before the campaign
    first = watcher.tick(at + timedelta(seconds=1))
    assert {o.event_id: o.status for o in first} == {"late-ada": "pending", "old-bob": "skipped"}
    assert watcher.tick(at + timedelta(seconds=300)) == []  # not due yet; the cursor moved on
    with engine.connect() as connection:
        assert connection.execute(select(func.count(TriggerPendingRecord.id))).scalar_one() == 1
    due = watcher.tick(at + timedelta(seconds=601))
    assert [(o.event_id, o.status) for o in due] == [("late-ada", "queued")]
    with engine.connect() as connection:
        assert connection.execute(select(func.count(TriggerPendingRecord.id))).scalar_one() == 0
    # seen long after its fire time (a downtime): skipped, with the reason
    _event(store, "stale-bob", bob, at + timedelta(minutes=2), **_cart())
    stale = watcher.tick(at + timedelta(hours=3))
    assert [(o.event_id, o.status) for o in stale] == [("stale-bob", "skipped")]
    assert stale[0].reason is not None and "max_age_hours = 1" in stale[0].reason
    assert [r.occasion for r in _messages(engine)] == ["late-ada"]


def test_every_outcome_is_recorded_and_the_cursor_survives_a_restart(
    world: tuple[Settings, Engine, ContactStore],
) -> None:
    settings, engine, store = world
    ada = _contact(store, "ada@mail.example")
    refused = _contact(store, "no@mail.example", consent=False)
    _trigger_campaign(engine)
    at = AT + timedelta(minutes=1)
    _event(store, "e-ada", ada, at, **_cart())
    _event(store, "e-refused", refused, at, **_cart())
    assert len(_watcher(settings, engine).tick(at + timedelta(seconds=1))) == 2
    recorded = {(d["event_id"], d["status"]): d for d in _decisions(engine)}
    assert set(recorded) == {("e-ada", "queued"), ("e-refused", "excluded")}
    assert "consent" in recorded[("e-refused", "excluded")]["reason"]
    assert recorded[("e-ada", "queued")]["queue_message_id"]
    # a new watcher (a restart) starts after the stored cursor
    restarted = _watcher(settings, engine)
    assert restarted.tick(at + timedelta(seconds=2)) == []
    _event(store, "e-ada-2", ada, at + timedelta(seconds=3), **_cart())
    assert [o.event_id for o in restarted.tick(at + timedelta(seconds=4))] == ["e-ada-2"]


def test_no_trigger_campaign_means_idle_and_campaign_send_refuses_trigger_campaigns(
    world: tuple[Settings, Engine, ContactStore],
) -> None:
    settings, engine, store = world
    ada = _contact(store, "ada@mail.example", country="UK")
    _event(store, "before", ada, AT, **_cart())
    watcher = _watcher(settings, engine)
    assert watcher.tick(AT) == []
    with engine.connect() as connection:
        assert connection.execute(select(TriggerCursorRecord.last_event_row)).scalar_one() > 0
    _trigger_campaign(engine)
    with pytest.raises(CampaignError, match="trigger campaign"):
        watcher.runner.send_campaign("cart", AT)
    assert _messages(engine) == []


def test_the_report_counts_several_messages_per_contact(
    world: tuple[Settings, Engine, ContactStore],
) -> None:
    settings, engine, store = world
    ada = _contact(store, "ada@mail.example")
    _trigger_campaign(engine, once_per_hours=0)
    watcher = _watcher(settings, engine)
    for n in range(3):
        _event(store, f"c{n}", ada, AT + timedelta(hours=n + 1), **_cart())
        watcher.tick(AT + timedelta(hours=n + 1, seconds=1))
    report_in, _ = import_records(
        store,
        "events",
        [
            {
                "event_id": "buy",
                "type": "purchase",
                "contact_id": ada,
                "occurred_at": (AT + timedelta(hours=5)).isoformat(),
                "value": 20.0,
            }
        ],
    )
    assert report_in.imported == 1
    report = campaign_report(engine, "cart", as_of=AT + timedelta(hours=6), sync=False)
    assert report["contacts"]["queued"] == 3
    assert report["totals"]["sends"] == 3
    assert report["totals"]["conversions"] == 1
    assert report["totals"]["revenue"] == 20.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('trigger = { event = "custom", bogus = 1 }', "trigger.bogus"),
        ('trigger = { event = "visit" }', "trigger.event"),
        ("trigger = { max_age_hours = 0 }", "trigger.max_age_hours"),
        ("trigger = { once_per_hours = -1 }", "trigger.once_per_hours"),
        ("trigger = { properties = { cart = { a = 1 } } }", "trigger.properties"),
    ],
)
def test_bad_triggers_are_refused_with_the_key(text: str, message: str) -> None:
    source = f'id = "t"\ntemplate_source = "x"\nsegment = "s"\n{text}\n'
    with pytest.raises(CampaignError, match=message):
        definition_from_toml(source, "t.toml")


def test_migration_0012_on_sqlite(tmp_path: Path) -> None:
    check_occasion_migration(f"sqlite:///{tmp_path / 'migrate.db'}")


def check_occasion_migration(url: str) -> None:
    """From 0011 with a stored message to head: the message gets occasion '', the unique key
    is (campaign, contact, occasion); and back down again. (Also run on PostgreSQL.)"""
    config = _alembic_config(url)
    command.upgrade(config, "0011")
    engine = create_engine(url)
    now = datetime(2026, 5, 4, tzinfo=UTC)
    row = {
        "campaign_id": "mig",
        "contact_id": "c1",
        "state": "queued",
        "reason": "",
        "tracking_message_id": "m1",
        "send_at": now,
        "created_at": now,
        "updated_at": now,
    }
    columns = ", ".join(row)
    values = ", ".join(f":{k}" for k in row)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM campaign_messages WHERE campaign_id = 'mig'"))
        connection.execute(
            text(f"INSERT INTO campaign_messages ({columns}) VALUES ({values})"), row
        )
    command.upgrade(config, "head")
    table = cast(Table, CampaignMessageRecord.__table__)
    with engine.begin() as connection:
        stored = connection.execute(
            select(table.c.occasion).where(table.c.campaign_id == "mig")
        ).scalar_one()
        assert stored == ""
        connection.execute(table.insert(), [{**row, "occasion": "event-1"}])
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(table.insert(), [{**row, "occasion": "event-1"}])
    names = {u["name"] for u in inspect(engine).get_unique_constraints("campaign_messages")}
    assert "uq_campaign_messages_occasion" in names
    assert {"trigger_cursors", "trigger_pending"} <= set(inspect(engine).get_table_names())
    command.downgrade(config, "0011")
    with engine.connect() as connection:
        kept = connection.execute(
            text("SELECT COUNT(*) FROM campaign_messages WHERE campaign_id = 'mig'")
        ).scalar_one()
    assert kept == 1
    command.upgrade(config, "head")
    engine.dispose()


# --------------------------------------------------------------------------- end to end

TRACKING_ROOT = "https://t.postwise.test"
KEY = "trigger-e2e-engage-key-0123456789abcdef"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_posted_event_arrives_as_a_message_over_real_sockets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, test_model_dir: Path
) -> None:
    from postwise.services import run_services

    for name in list(os.environ):
        if name.upper().startswith("POSTWISE_"):
            monkeypatch.delenv(name)
    async with OutboundWorld(
        tmp_path,
        tracking_base_url=TRACKING_ROOT,
        engage_hmac_key=KEY,
        model_path=test_model_dir,
        smtp_enabled=False,
        milter_enabled=False,
        submission_enabled=False,
    ) as world:
        await world.stop_worker()  # `postwise serve` runs its own
        settings = world.settings
        store = ContactStore.from_settings(settings, world.engine)
        reader = _contact(store, "reader1@mail.test", first_name="Ada")
        create_campaign(
            world.engine,
            definition_from_mapping(
                {
                    "id": "cart",
                    "template_source": TEMPLATE.replace("news@shop.example", "shop@corp.test"),
                    "segment": {"attribute": "country", "eq": "UK"},
                    "trigger": {"event": "custom", "name": "cart_abandoned"},
                }
            ),
        )
        port = _free_port()
        serving = asyncio.create_task(run_services(settings, "127.0.0.1", port))
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                for _ in range(400):  # up to ~20 s for the server to listen
                    with contextlib.suppress(httpx.TransportError):
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    await asyncio.sleep(0.05)
                reply = await client.post(
                    "/v1/events",
                    json={
                        "event_id": "cart-e2e-1",
                        "type": "custom",
                        "email": "reader1@mail.test",
                        "occurred_at": datetime.now(UTC).isoformat(),
                        "properties": _cart(),
                    },
                )
                assert reply.status_code == 200, reply.text
                assert reply.json()["imported"] == 1

                def arrived() -> list[Any]:
                    return [
                        m
                        for sink in world.sinks.values()
                        for m in sink.messages
                        if m.rcpt_to == ("reader1@mail.test",)
                    ]

                await world.until(lambda: bool(arrived()), timeout=20)
                [message] = arrived()
                parsed = email.message_from_bytes(message.data, policy=email.policy.default)
                assert parsed["Subject"] == "Ada, your cart is waiting"
                html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
                assert "Blue mug (12.5)" in html and "Tea (4)" in html
                [row] = _messages(world.engine)
                assert (row.contact_id, row.occasion) == (reader, "cart-e2e-1")
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
