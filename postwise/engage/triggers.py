"""Triggered messages: engage events (an abandoned cart, a sign-up, a purchase) fire the trigger
campaigns they match, within seconds.

:class:`TriggerWatcher` reads ``engage_events`` after a cursor kept in ``trigger_cursors``
(migration 0012; it survives restarts) and, for every event a trigger campaign's ``trigger``
matches (:meth:`~postwise.engage.campaigns.TriggerDefinition.matches`):

1. an event older than the campaign is ``skipped`` (a trigger acts on what happens after it
   was created, also when events are imported late), so is one seen more than
   ``max_age_hours`` after its fire time (``occurred_at + delay_seconds``: after a downtime,
   a stale reminder is worse than none);
2. with ``delay_seconds``, an event whose fire time is still ahead waits in
   ``trigger_pending`` (the cursor moves on, so one slow trigger never holds back the
   others); each tick fires the pending rows that came due;
3. ``once_per_hours`` (above 0): a contact who got a message of this campaign for another
   event within that many hours is ``excluded``;
4. otherwise :meth:`CampaignRunner.send_to` sends with ``occasion`` = the event id and the
   event in the template as ``event`` (its properties, ``id``, ``type``, ``occurred_at``,
   ``value``): consent, suppression, caps and holdout are checked there.

Every outcome of a matching event (``queued``, ``duplicate``, ``pending``, ``skipped``,
``excluded``, ``holdout``, ``global_holdout``, ``failed``) is recorded as a ``trigger_fired``
decision (``postwise.engage.provenance``) naming the campaign, the event and the reason.

Exactly once per (campaign, contact, event) rests on the queue's idempotency key
``campaign:<id>:<contact>:<event id>``: a crash after sending but before the cursor moved
makes the next tick meet the event again and answer ``duplicate``. Events a trigger campaign
sent itself (``properties.campaign`` is its id) never fire it again.

The cursor is the ``engage_events`` row id. SQLite commits rows in id order. On PostgreSQL
two concurrent writers can commit ids out of order, and a row committed just after the
watcher read past its id is missed: a known limit with several writing processes (one
``postwise serve`` writes in id order enough for now; see docs/campaigns.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import (
    DateTime,
    Integer,
    String,
    Table,
    UniqueConstraint,
    delete,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapped, mapped_column

from postwise.core.db import Base, EngageEventRecord, as_utc, utcnow
from postwise.core.errors import PostwiseError
from postwise.engage.campaign_runner import CampaignRunner
from postwise.engage.campaigns import CampaignMessageRecord, StoredCampaign, list_campaigns
from postwise.engage.provenance import NewDecision, record_decisions

__all__ = [
    "DECISION_KIND",
    "TriggerCursorRecord",
    "TriggerOutcome",
    "TriggerPendingRecord",
    "TriggerWatcher",
]

log = structlog.get_logger("postwise.engage.triggers")

DECISION_KIND = "trigger_fired"
_PAGE = 1000
_DUE_PAGE = 500


class TriggerCursorRecord(Base):
    """How far a watcher (``name``) has read ``engage_events``: the last row id it handled."""

    __tablename__ = "trigger_cursors"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_event_row: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class TriggerPendingRecord(Base):
    """A delayed firing: the event (``event_row``, ``event_id``) fires ``campaign_id`` for
    ``contact_id`` at ``fire_at``; deleted once fired."""

    __tablename__ = "trigger_pending"
    __table_args__ = (UniqueConstraint("campaign_id", "event_id", name="uq_trigger_pending_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(String(128))
    event_row: Mapped[int] = mapped_column(Integer)
    event_id: Mapped[str] = mapped_column(String(128))
    contact_id: Mapped[str] = mapped_column(String(64))
    fire_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class TriggerOutcome:
    """What one event did for one trigger campaign (see the module docstring for the
    statuses); ``queue_message_id`` when a message was queued (or found queued)."""

    campaign: str
    event_id: str
    contact_id: str
    status: str
    reason: str | None = None
    queue_message_id: str | None = None
    occurred_at: datetime | None = None
    fire_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "event_id": self.event_id,
            "contact_id": self.contact_id,
            "status": self.status,
            "reason": self.reason,
            "queue_message_id": self.queue_message_id,
            "occurred_at": None if self.occurred_at is None else self.occurred_at.isoformat(),
            "fire_at": None if self.fire_at is None else self.fire_at.isoformat(),
        }


@dataclass(frozen=True)
class _Event:
    row: int
    event_id: str
    contact_id: str
    type: str
    occurred_at: datetime
    properties: dict[str, Any]
    value: float | None

    def context(self) -> dict[str, Any]:
        """The template's ``event`` variable."""
        return {
            **self.properties,
            "id": self.event_id,
            "type": self.type,
            "occurred_at": self.occurred_at.isoformat(),
            "value": self.value,
        }


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _event(row: Any) -> _Event:
    return _Event(
        int(row.id),
        str(row.event_id),
        str(row.contact_id),
        str(row.type),
        as_utc(row.occurred_at),
        dict(row.properties or {}),
        None if row.value is None else float(row.value),
    )


def _insert_ignoring(connection: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    insert = sqlite_insert if connection.dialect.name == "sqlite" else pg_insert
    connection.execute(insert(table).on_conflict_do_nothing(), rows)


class TriggerWatcher:
    """Fires trigger campaigns from engage events; see the module docstring. ``tick`` does one
    pass (from any thread); ``run`` ticks every ``poll_seconds`` and at once after
    :meth:`nudge`. ``name`` keys the stored cursor (one per watcher)."""

    def __init__(
        self,
        runner: CampaignRunner,
        engine: Engine | None = None,
        poll_seconds: float = 1.0,
        *,
        name: str = "default",
    ) -> None:
        self.runner = runner
        self.engine = engine or runner.engine
        self.poll_seconds = max(0.01, poll_seconds)
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    # ------------------------------------------------------------------ running

    def nudge(self) -> None:
        """Wake a running :meth:`run` now (safe from any thread; a no-op before it runs)."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set: every ``poll_seconds``, and at once when nudged. A
        failing tick is logged and retried at the next one."""
        self._loop = asyncio.get_running_loop()
        self._wake = wake = asyncio.Event()
        try:
            while not stop.is_set():
                wake.clear()  # a nudge during the tick makes the wait below return at once
                try:
                    await asyncio.to_thread(self.tick)
                except Exception:
                    log.exception("trigger_tick_failed")
                waiters = [asyncio.create_task(wake.wait()), asyncio.create_task(stop.wait())]
                try:
                    await asyncio.wait(
                        waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    for waiter in waiters:
                        waiter.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await waiter
        finally:
            self._loop = self._wake = None

    # ------------------------------------------------------------------ one pass

    def tick(self, now: datetime | None = None) -> list[TriggerOutcome]:
        """Handle the events stored since the cursor and the delayed firings due at ``now``
        (default: the current time); returns what became of each, all recorded as
        ``trigger_fired`` decisions. Idle (one query) when no trigger campaign exists."""
        moment = as_utc(now or utcnow())
        campaigns = [c for c in list_campaigns(self.engine) if c.definition.trigger is not None]
        cursor = self._cursor()
        if not campaigns:
            with self.engine.connect() as connection:
                newest = connection.execute(select(func.max(EngageEventRecord.id))).scalar()
            if newest is not None and int(newest) > cursor:
                self._save_cursor(int(newest))
            return []
        with self.runner.reusing_plans():
            outcomes = self._handle(campaigns, cursor, moment)
        if any(o.status == "queued" for o in outcomes):
            self.runner.outbound.wake_delivery()
        return outcomes

    def _handle(
        self, campaigns: Sequence[StoredCampaign], cursor: int, moment: datetime
    ) -> list[TriggerOutcome]:
        """The events after ``cursor`` and the firings due at ``moment``, recorded, the
        cursor moved on as each page is done."""
        outcomes: list[TriggerOutcome] = []
        while True:
            events = self._events_after(cursor)
            page: list[TriggerOutcome] = []
            for event in events:
                for campaign in campaigns:
                    outcome = self._consider(campaign, event, moment)
                    if outcome is not None:
                        page.append(outcome)
            if events:
                # recorded, then the cursor: a crash in between re-reads the page, and the
                # idempotency key and decision ids make the second pass harmless
                self._record(page, moment)
                cursor = events[-1].row
                self._save_cursor(cursor)
            outcomes.extend(page)
            if len(events) < _PAGE:
                break
        due = self._fire_due(campaigns, moment)
        self._record(due, moment)
        outcomes.extend(due)
        return outcomes

    def _consider(
        self, campaign: StoredCampaign, event: _Event, moment: datetime
    ) -> TriggerOutcome | None:
        trigger = campaign.definition.trigger
        assert trigger is not None
        if event.properties.get("campaign") == campaign.id:
            return None  # its own sent/delivered/open events never fire it again
        if not trigger.matches(event.type, event.properties):
            return None
        fire_at = event.occurred_at + timedelta(seconds=trigger.delay_seconds)
        if event.occurred_at < campaign.created_at:
            return self._outcome(
                campaign,
                event,
                "skipped",
                fire_at,
                f"the event ({event.occurred_at.isoformat()}) is older than the campaign "
                f"({campaign.created_at.isoformat()})",
            )
        if fire_at > moment:
            with self.engine.begin() as connection:
                _insert_ignoring(
                    connection,
                    TriggerPendingRecord.__table__,
                    [
                        {
                            "campaign_id": campaign.id,
                            "event_row": event.row,
                            "event_id": event.event_id,
                            "contact_id": event.contact_id,
                            "fire_at": fire_at,
                            "created_at": moment,
                        }
                    ],
                )
            return self._outcome(
                campaign, event, "pending", fire_at, f"fires at {fire_at.isoformat()}"
            )
        return self._fire(campaign, event, fire_at, moment)

    def _fire(
        self, campaign: StoredCampaign, event: _Event, fire_at: datetime, moment: datetime
    ) -> TriggerOutcome:
        trigger = campaign.definition.trigger
        assert trigger is not None
        late = moment - fire_at
        if late > timedelta(hours=trigger.max_age_hours):
            return self._outcome(
                campaign,
                event,
                "skipped",
                fire_at,
                f"seen {late.total_seconds() / 3600:.1f} h after its fire time "
                f"(max_age_hours = {trigger.max_age_hours:g})",
            )
        if trigger.once_per_hours > 0:
            earlier = self._recent_message(campaign.id, event, moment, trigger.once_per_hours)
            if earlier is not None:
                return self._outcome(
                    campaign,
                    event,
                    "excluded",
                    fire_at,
                    f"once_per_hours = {trigger.once_per_hours:g}: a message for event "
                    f"{earlier[0]!r} at {earlier[1].isoformat()}",
                )
        try:
            sent = self.runner.send_to(
                campaign.id,
                event.contact_id,
                at=moment,
                extra_context={"event": event.context()},
                occasion=event.event_id,
            )
        except PostwiseError as error:
            return self._outcome(campaign, event, "failed", fire_at, str(error))
        return self._outcome(
            campaign, event, sent.status, fire_at, sent.reason, sent.queue_message_id
        )

    def _recent_message(
        self, campaign_id: str, event: _Event, moment: datetime, hours: float
    ) -> tuple[str, datetime] | None:
        """(event id, send time) of a message of the campaign to the event's contact for
        another event within ``hours`` before ``moment``, if any."""
        table = CampaignMessageRecord
        with self.engine.connect() as connection:
            row = connection.execute(
                select(table.occasion, table.send_at)
                .where(
                    table.campaign_id == campaign_id,
                    table.contact_id == event.contact_id,
                    table.state == "queued",
                    table.occasion != event.event_id,
                    table.send_at > moment - timedelta(hours=hours),
                )
                .order_by(table.send_at.desc())
                .limit(1)
            ).first()
        return None if row is None else (str(row[0]), as_utc(row[1]))

    def _fire_due(
        self, campaigns: Sequence[StoredCampaign], moment: datetime
    ) -> list[TriggerOutcome]:
        """Fire the delayed firings due at ``moment`` (those of campaigns no longer stored as
        trigger campaigns are dropped with an outcome ``skipped``)."""
        by_id = {c.id: c for c in campaigns}
        pending = TriggerPendingRecord
        events = EngageEventRecord
        outcomes: list[TriggerOutcome] = []
        with self.engine.connect() as connection:
            due = list(
                connection.execute(
                    select(pending)
                    .where(pending.fire_at <= moment)
                    .order_by(pending.fire_at, pending.id)
                    .limit(_DUE_PAGE)
                )
            )
            rows = (
                {
                    int(row.id): row
                    for row in connection.execute(
                        select(events).where(events.id.in_([int(r.event_row) for r in due]))
                    )
                }
                if due
                else {}
            )
        for record in due:
            campaign = by_id.get(record.campaign_id)
            event_row = rows.get(int(record.event_row))
            if campaign is None or event_row is None:
                outcomes.append(
                    TriggerOutcome(
                        record.campaign_id,
                        record.event_id,
                        record.contact_id,
                        "skipped",
                        "the campaign or the event is gone",
                        fire_at=as_utc(record.fire_at),
                    )
                )
            else:
                outcomes.append(
                    self._fire(campaign, _event(event_row), as_utc(record.fire_at), moment)
                )
            with self.engine.begin() as connection:
                connection.execute(delete(pending).where(pending.id == record.id))
        return outcomes

    # ------------------------------------------------------------------ storage

    def _events_after(self, cursor: int) -> list[_Event]:
        table = EngageEventRecord
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(table).where(table.id > cursor).order_by(table.id).limit(_PAGE)
            )
            return [_event(row) for row in rows]

    def _cursor(self) -> int:
        with self.engine.connect() as connection:
            value = connection.execute(
                select(TriggerCursorRecord.last_event_row).where(
                    TriggerCursorRecord.name == self.name
                )
            ).scalar()
        return 0 if value is None else int(value)

    def _save_cursor(self, row: int) -> None:
        table = cast(Table, TriggerCursorRecord.__table__)
        values = {"name": self.name, "last_event_row": row, "updated_at": utcnow()}
        with self.engine.begin() as connection:
            insert = sqlite_insert if connection.dialect.name == "sqlite" else pg_insert
            statement = insert(table).values(**values)
            connection.execute(
                statement.on_conflict_do_update(
                    index_elements=["name"],
                    set_={"last_event_row": row, "updated_at": values["updated_at"]},
                )
            )

    def _outcome(
        self,
        campaign: StoredCampaign,
        event: _Event,
        status: str,
        fire_at: datetime,
        reason: str | None = None,
        queue_message_id: str | None = None,
    ) -> TriggerOutcome:
        return TriggerOutcome(
            campaign.id,
            event.event_id,
            event.contact_id,
            status,
            reason,
            queue_message_id,
            event.occurred_at,
            fire_at,
        )

    def _record(self, outcomes: Sequence[TriggerOutcome], moment: datetime) -> None:
        """Store each outcome not stored yet as a ``trigger_fired`` decision."""
        decisions = [
            NewDecision(
                contact_id=o.contact_id,
                kind=DECISION_KIND,
                decision=o.as_dict(),
                model_name=None,
                model_version=None,
                features={},
                policy={"campaign": o.campaign, "watcher": self.name},
                at=moment,
                decision_id=_digest(DECISION_KIND, o.campaign, o.event_id, o.status)[:40],
            )
            for o in outcomes
        ]
        if decisions:
            record_decisions(self.engine, decisions)
