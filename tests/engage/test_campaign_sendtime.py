"""A campaign with ``send_time = "model"`` on a real model, store and queue: a send-time model
trained (:func:`train_sendtime`) on an online_retail-layout log in which customers have planted
hours, registered and promoted; contacts linked to those customers by their ``customer_id``
attribute are queued for their next planted hour (in their zone, as UTC), contacts without
history get a seeded draw from their cohort's profile, the send and the report count them all
as scheduled, and the queue gives none of them to the delivery worker before its time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from postwise.core.db import DecisionRecord, OutboundRecipientRecord, open_database
from postwise.core.settings import Settings
from postwise.engage.campaign_report import campaign_report
from postwise.engage.campaign_runner import CampaignRunner
from postwise.engage.campaigns import create_campaign, definition_from_mapping, load_campaign
from postwise.engage.contacts import ContactStore
from postwise.engage.ingest import import_file
from postwise.engage.registry import promote, register
from postwise.engage.sendtime import SLOTS, next_send_time
from postwise.engage.sendtime_evaluation import load_sendtime, train_sendtime

RETAIL_HEADER = (
    "row_id,InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
)
# The log is in shop time (Europe/London). Planted habits: (country, weekday, shop hour).
PLANTED = {
    **{13001 + i: ("United Kingdom", 1, 10) for i in range(4)},  # Tuesdays ~10:00
    **{13011 + i: ("United Kingdom", 4, 18) for i in range(4)},  # Fridays ~18:00
    **{13021 + i: ("Germany", 2, 14) for i in range(3)},  # Wednesdays ~15:00 in Berlin
}
BACKGROUND = range(13101, 13131)  # UK customers buying at any weekday hour 8-17
# The send: a Monday of winter (London = UTC, Berlin = UTC+1, New York = UTC-5), half past
# the hour, later than the wall clock (the queue never makes a message due before now).
AT = datetime(2040, 1, 2, 9, 30, tzinfo=UTC)
TEMPLATE = """
subject = "News for {{ first_name }}"
from = "Shop <news@shop.example>"
layout = '''<html><body><p>Hello {{ first_name }}</p>
<a href="https://shop.example/sale">Sale</a> <a href="{{ unsubscribe_url }}">Unsubscribe</a>
</body></html>'''
"""


def _retail_log(seed: int) -> list[str]:
    """Thirty weeks from Monday 2011-01-03: planted customers buy on their weekday in four weeks
    of five, at their hour (one time in four an hour early, one in four an hour late)."""
    rng = np.random.default_rng(seed)
    lines: list[str] = []
    invoice = 540_000

    def invoice_at(customer: int, country: str, at: datetime) -> None:
        nonlocal invoice
        invoice += 1
        for _ in range(2):  # two lines per invoice
            lines.append(
                f"{len(lines)},{invoice},85123A,THING,2,{at:%Y-%m-%d %H:%M:%S},2.55,"
                f"{customer},{country}"
            )

    for week in range(30):
        monday = datetime(2011, 1, 3) + timedelta(weeks=week)
        for customer, (country, weekday, hour) in PLANTED.items():
            if rng.random() < 0.8:
                jitter = int(rng.choice([-1, 0, 0, 1]))
                minute = int(rng.integers(0, 60))
                invoice_at(
                    customer,
                    country,
                    monday + timedelta(days=weekday, hours=hour + jitter, minutes=minute),
                )
        for customer in BACKGROUND:
            if rng.random() < 0.3:
                day, hour, minute = (int(v) for v in rng.integers((0, 8, 0), (5, 18, 60)))
                invoice_at(
                    customer,
                    "United Kingdom",
                    monday + timedelta(days=day, hours=hour, minutes=minute),
                )
    return lines


# email, customer_id, country, timezone; and the expected send time (None: no history)
CONTACTS: list[tuple[str, str, str, str, datetime | None]] = [
    ("tue1@mail.example", "13001", "United Kingdom", "", datetime(2040, 1, 3, 10, 0, tzinfo=UTC)),
    # the retail log's float spelling of a customer number names the same customer
    ("tue2@mail.example", "13002.0", "United Kingdom", "",
     datetime(2040, 1, 3, 10, 0, tzinfo=UTC)),
    ("fri@mail.example", "13011", "United Kingdom", "", datetime(2040, 1, 6, 18, 0, tzinfo=UTC)),
    # a timezone that is no IANA name is ignored: the country's zone
    ("fri2@mail.example", "13013", "United Kingdom", "Mars/Olympus",
     datetime(2040, 1, 6, 18, 0, tzinfo=UTC)),
    # Wednesday 15:00 in Berlin (learnt from 14:00 shop time) is 14:00 UTC
    ("wed@mail.example", "13021", "Germany", "", datetime(2040, 1, 4, 14, 0, tzinfo=UTC)),
    # its timezone attribute wins over the country: Friday 18:00 in New York is 23:00 UTC
    ("ny@mail.example", "13012", "United Kingdom", "America/New_York",
     datetime(2040, 1, 6, 23, 0, tzinfo=UTC)),
    # no history: a customer number the model has not seen, and no customer number at all
    ("new-de@mail.example", "99999", "Germany", "", None),
    ("new-uk@mail.example", "", "United Kingdom", "", None),
]  # fmt: skip


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Settings, Any, ContactStore]]:
    settings = Settings(
        environment="test", data_dir=tmp_path / "data", tracking_base_url="https://t.shop.example"
    )
    engine = open_database(settings.resolved_database_url)
    yield settings, engine, ContactStore.from_settings(settings, engine)
    engine.dispose()


def _promoted_model(engine: Any, tmp_path: Path) -> tuple[Path, str]:
    """Train on the planted log, register and promote; the model folder and its version."""
    data = tmp_path / "retail"
    data.mkdir()
    (data / "online_retail.csv").write_text("\n".join([RETAIL_HEADER, *_retail_log(0)]) + "\n")
    card = train_sendtime(data, tmp_path / "model")
    entry = register(engine, tmp_path / "model")
    assert entry.name == "sendtime:online_retail"
    promote(engine, entry.name, entry.version)
    return tmp_path / "model", str(card["version"])


def _import_contacts(store: ContactStore, tmp_path: Path) -> dict[str, str]:
    """The contacts as a CSV, the way `engage import contacts` reads one; email → contact id."""
    rows = ["email,first_name,list,customer_id,country,timezone,consent.marketing.email"]
    rows += [f"{e},{e.split('@')[0]},news,{c},{k},{z},yes" for e, c, k, z, _ in CONTACTS]
    path = tmp_path / "contacts.csv"
    path.write_text("\n".join(rows) + "\n")
    assert import_file(store, "contacts", path).failed == 0
    return {email: store.contact_id(email) for email, *_ in CONTACTS}


def _campaign(engine: Any, campaign_id: str) -> None:
    definition = {
        "id": campaign_id,
        "template_source": TEMPLATE,
        "segment": {"attribute": "list", "eq": "news"},
        "send_time": "model",
    }
    create_campaign(engine, definition_from_mapping(definition), at=AT)


def _send_slots(engine: Any, campaign_id: str) -> dict[str, dict[str, Any]]:
    """The send-time features each ``campaign_send`` decision recorded, by contact."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(DecisionRecord.contact_id, DecisionRecord.features, DecisionRecord.policy).where(
                DecisionRecord.kind == "campaign_send"
            )
        ).all()
    return {
        r.contact_id: {**r.features["send_time"], "policy": r.policy}
        for r in rows
        if r.policy["campaign"] == campaign_id
    }


def test_model_send_times_schedule_each_contact_for_its_planted_hour(
    world: tuple[Settings, Any, ContactStore], tmp_path: Path
) -> None:
    settings, engine, store = world
    folder, version = _promoted_model(engine, tmp_path)
    ids = _import_contacts(store, tmp_path)
    _campaign(engine, "planted")
    runner = CampaignRunner(settings, engine, rng=np.random.default_rng(3))

    report = runner.send_campaign("planted", AT)

    assert report.warnings == ()
    assert report.queued == report.scheduled == len(CONTACTS) and report.failed == {}
    assert load_campaign(engine, "planted").status == "scheduled"
    # each contact's outcome (a second send answers with the stored one)
    outcomes = {c: runner.send_to("planted", c, AT) for c in ids.values()}
    assert {o.status for o in outcomes.values()} == {"duplicate"}
    send_at: dict[str, datetime] = {}
    for contact, outcome in outcomes.items():
        assert outcome.send_at is not None
        send_at[contact] = outcome.send_at
    slots = _send_slots(engine, "planted")

    # customers with history: their next planted hour, in their zone, as UTC
    for email, *_, expected in CONTACTS:
        if expected is not None:
            assert send_at[ids[email]] == expected, email
            assert slots[ids[email]]["explored"] is False
    zones = {email: slots[ids[email]]["zone"] for email, *_ in CONTACTS}
    assert zones["tue1@mail.example"] == zones["fri2@mail.example"] == "Europe/London"
    assert zones["wed@mail.example"] == "Europe/Berlin"
    assert zones["ny@mail.example"] == "America/New_York"

    # without history: a seeded draw from the cohort's profile (docs/sendtime.md), in the
    # zone of the contact's country, at the next such hour
    model = load_sendtime(folder)
    newcomer_de = model.best_hour(99999, "Germany")
    assert newcomer_de.explored and newcomer_de.zone == "Europe/Berlin"
    assert slots[ids["new-de@mail.example"]]["explored"] is True
    assert send_at[ids["new-de@mail.example"]] == next_send_time(
        newcomer_de.local_slot, "Europe/Berlin", AT
    )
    uk = slots[ids["new-uk@mail.example"]]
    assert uk["explored"] is True and uk["zone"] == "Europe/London"
    assert send_at[ids["new-uk@mail.example"]] == next_send_time(uk["local_slot"], uk["zone"], AT)
    # a plausible hour for the cohort: more likely than a uniform draw
    assert model.cohort_profiles["United Kingdom"][uk["local_slot"]] > 1 / SLOTS
    # the draw is seeded: another campaign gives every contact the same hour
    _campaign(engine, "planted-again")
    assert runner.send_campaign("planted-again", AT).scheduled == len(CONTACTS)
    assert {c: runner.send_to("planted-again", c, AT).send_at for c in ids.values()} == send_at
    for slot in slots.values():
        assert slot["policy"]["sendtime_model"] == "sendtime:online_retail"
        assert slot["policy"]["sendtime_version"] == version

    # the queue holds each message until its send time: the worker's claim before it gets
    # nothing of it, at it the message is due
    queue = runner.outbound.queue
    message_of = {contact: str(o.queue_message_id) for contact, o in outcomes.items()}
    ours = set(message_of.values())
    with engine.connect() as connection:
        due = dict(
            connection.execute(
                select(OutboundRecipientRecord.message_id, OutboundRecipientRecord.next_attempt_at)
            ).all()
        )
    for contact, moment in send_at.items():
        assert due[message_of[contact]] == pytest.approx(moment.timestamp())

    def claimed_at(moment: datetime) -> set[str]:
        jobs = queue.claim("sendtime-test", 100, now=moment.timestamp())
        queue.release_claims("sendtime-test")
        return {job.message_id for job in jobs} & ours

    assert claimed_at(AT) == set()
    for moment in sorted(set(send_at.values())):
        before = {message_of[c] for c, m in send_at.items() if m < moment}
        by_then = {message_of[c] for c, m in send_at.items() if m <= moment}
        assert claimed_at(moment - timedelta(seconds=1)) == before
        assert claimed_at(moment) == by_then
    assert claimed_at(max(send_at.values())) == ours

    # the report counts every message as scheduled until its time has come
    figures = campaign_report(engine, "planted", as_of=AT)
    assert figures["totals"]["sends"] == figures["totals"]["scheduled"] == len(CONTACTS)
    assert figures["totals"]["pending"] == len(CONTACTS)
    tuesday = campaign_report(engine, "planted", as_of=datetime(2040, 1, 3, 10, 0, tzinfo=UTC))
    assert tuesday["totals"]["scheduled"] == sum(
        1 for m in send_at.values() if m > datetime(2040, 1, 3, 10, 0, tzinfo=UTC)
    )
