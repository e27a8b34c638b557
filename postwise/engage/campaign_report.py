"""What a campaign achieved, and the sync step that feeds deliveries and rewards back.

:func:`sync_campaign` (``postwise campaign sync ID``; :func:`campaign_report` runs it first)
does two things for the campaign's queued messages, idempotently:

- a ``delivered`` engage event (properties ``campaign``, ``variant``, ``message``,
  ``message_id``; at the queue's delivery time) for every message the outbound queue
  delivered, which is what tracking's timing rule for machine opens reads: run the sync every
  minute or so while a campaign goes out, or opens in the first seconds after delivery are not
  recognised as machine opens;
- the bandit's rewards: 1 for a message with a human (``machine`` false) event of the
  campaign's reward type (``click`` or ``open``) for that message, 0 for one without after
  ``reward_window_hours`` from its send time; each message teaches the bandit once (its
  ``reward`` column is set). Bounced messages teach nothing.

:func:`campaign_report` counts, in total, per subject variant and per contact segment (the
``segments`` attribute of the contacts), from the campaign's rows, the outbound tables and
the events: sends (messages queued), deliveries and bounces (the outbound recipients' state),
opens and clicks (human and machine, and unique human ones), unsubscribes, complaints (the
outbound ``complaint`` events of the campaign's queue messages, and engage ``complaint``
events naming the campaign), conversions (contacts with a ``purchase`` within
``conversion_window_days`` of their send) and their value. With a holdout, the lift of the
treated over the held-out contacts (:func:`experiment_store.results`: the difference in means
with a 95% interval, events in the window after assignment) on conversion, click and purchase
value per contact.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from postwise.core.db import (
    ContactRecord,
    EngageEventRecord,
    EventRecord,
    OutboundRecipientRecord,
    as_utc,
    utcnow,
)
from postwise.core.errors import CampaignError, PostwiseError
from postwise.engage import bandit_store
from postwise.engage.campaigns import CampaignMessageRecord, StoredCampaign, load_campaign

__all__ = ["METRICS", "SyncResult", "campaign_report", "sync_campaign"]

_CHUNK = 500
_REWARD_ATTEMPTS = 50


class _BanditMoved(Exception):
    """Another writer changed the bandit during a reward sync: roll back, read again."""


METRICS = (
    "sends",
    "scheduled",
    "deliveries",
    "bounces",
    "pending",
    "opens_human",
    "opens_machine",
    "unique_opens",
    "clicks_human",
    "clicks_machine",
    "unique_clicks",
    "unsubscribes",
    "complaints",
    "conversions",
    "revenue",
)


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _rows(engine: Engine, campaign_id: str) -> list[Any]:
    table = CampaignMessageRecord
    with engine.connect() as connection:
        return list(
            connection.execute(
                select(table).where(table.campaign_id == campaign_id).order_by(table.id)
            )
        )


def _recipients(engine: Engine, queue_ids: Sequence[str]) -> dict[str, tuple[str, float | None]]:
    """Queue message id -> (state, time of the last attempt) of its (only) recipient."""
    table = OutboundRecipientRecord
    found: dict[str, tuple[str, float | None]] = {}
    with engine.connect() as connection:
        for chunk in _chunks(queue_ids):
            for message_id, state, last in connection.execute(
                select(table.message_id, table.state, table.last_attempt_at).where(
                    table.message_id.in_(chunk)
                )
            ):
                found[str(message_id)] = (str(state), last)
    return found


def _engage_events(
    engine: Engine, contact_ids: Sequence[str], types: Sequence[str], since: datetime
) -> list[Any]:
    table = EngageEventRecord
    rows: list[Any] = []
    with engine.connect() as connection:
        for chunk in _chunks(contact_ids):
            rows.extend(
                connection.execute(
                    select(
                        table.contact_id,
                        table.type,
                        table.occurred_at,
                        table.properties,
                        table.value,
                    ).where(
                        table.contact_id.in_(chunk),
                        table.type.in_(types),
                        table.occurred_at >= since,
                    )
                )
            )
    return rows


# --------------------------------------------------------------------------- sync


@dataclass(frozen=True)
class SyncResult:
    """What one sync wrote: ``delivered`` events new this time, and bandit rewards."""

    campaign: str
    delivered_events: int
    rewards: int
    reward_ones: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "delivered_events": self.delivered_events,
            "rewards": self.rewards,
            "reward_ones": self.reward_ones,
        }


def sync_campaign(engine: Engine, campaign_id: str, now: datetime | None = None) -> SyncResult:
    """Write ``delivered`` engage events for the campaign's delivered messages and feed the
    bandit the rewards that are known (see the module docstring). Idempotent. Raises
    CampaignError for an unknown campaign."""

    moment = as_utc(now or utcnow())
    campaign = load_campaign(engine, campaign_id)
    rows = [r for r in _rows(engine, campaign.id) if r.state == "queued" and r.queue_message_id]
    states = _recipients(engine, [r.queue_message_id for r in rows])
    delivered_rows = [r for r in rows if states.get(r.queue_message_id, ("",))[0] == "delivered"]
    records: dict[str, dict[str, Any]] = {}
    for row in delivered_rows:
        last = states[row.queue_message_id][1]
        when = datetime.fromtimestamp(last, UTC) if last else as_utc(row.send_at)
        event_id = f"campaign-delivered:{campaign.id}:{row.tracking_message_id}"
        records[event_id] = {
            "event_id": event_id,
            "contact_id": row.contact_id,
            "type": "delivered",
            "occurred_at": when,
            "properties": {
                "campaign": campaign.id,
                "variant": row.variant,
                "message": row.tracking_message_id,
                "message_id": row.queue_message_id,
            },
            "value": None,
        }
    written = _insert_new_events(engine, records)
    rewards, ones = _feed_bandit(engine, campaign, rows, states, moment)
    return SyncResult(campaign.id, written, rewards, ones)


def _insert_new_events(engine: Engine, records: dict[str, dict[str, Any]]) -> int:
    """Insert the engage events whose ids are not stored yet; returns how many were new.
    (``delivered`` events change no consent, so the ingest rules have nothing to apply.)"""
    table = EngageEventRecord
    ids = list(records)
    written = 0
    with engine.begin() as connection:
        for chunk in _chunks(ids):
            stored = set(
                connection.execute(select(table.event_id).where(table.event_id.in_(chunk)))
                .scalars()
                .all()
            )
            fresh = [records[i] for i in chunk if i not in stored]
            if fresh:
                connection.execute(insert(table), fresh)
                written += len(fresh)
    return written


def _feed_bandit(
    engine: Engine,
    campaign: StoredCampaign,
    rows: list[Any],
    states: dict[str, tuple[str, float | None]],
    moment: datetime,
) -> tuple[int, int]:
    if campaign.bandit is None:
        return 0, 0
    kind = campaign.definition.reward
    window = timedelta(hours=campaign.definition.reward_window_hours)
    open_rows = [
        r
        for r in rows
        if r.reward is None
        and r.variant
        and states.get(r.queue_message_id, ("",))[0] != "bounced"
        and as_utc(r.send_at) <= moment
    ]
    if not open_rows:
        return 0, 0
    since = min(as_utc(r.send_at) for r in open_rows)
    engaged = {
        (props or {}).get("message")
        for _, _, _, props, _ in _engage_events(
            engine, sorted({r.contact_id for r in open_rows}), [kind], since
        )
        if (props or {}).get("campaign") == campaign.id and not (props or {}).get("machine")
    }
    learnt: list[tuple[Any, float]] = []
    for row in open_rows:
        if row.tracking_message_id in engaged:
            learnt.append((row, 1.0))
        elif as_utc(row.send_at) + window <= moment:
            learnt.append((row, 0.0))
    if not learnt:
        return 0, 0
    table = CampaignMessageRecord
    for _ in range(_REWARD_ATTEMPTS):
        # One transaction: claim the rows still unlearnt (reward IS NULL, so two syncs never
        # teach the same message twice) and teach the bandit their rewards; a concurrent
        # change of the bandit rolls both back (_BanditMoved) and the loop tries again.
        try:
            with engine.begin() as connection:
                claimed: list[tuple[str, float]] = []
                for row, reward in learnt:
                    taken = connection.execute(
                        update(table)
                        .where(table.id == row.id, table.reward.is_(None))
                        .values(reward=reward, updated_at=utcnow())
                    ).rowcount
                    if taken == 1:
                        claimed.append((row.variant, reward))
                if (
                    claimed
                    and bandit_store.update_many_in(connection, campaign.bandit, claimed) is None
                ):
                    raise _BanditMoved
        except _BanditMoved:
            continue
        return len(claimed), sum(1 for _, reward in claimed if reward == 1.0)
    raise CampaignError(
        f"campaign {campaign.id!r}: the bandit {campaign.bandit!r} kept changing under the "
        "reward sync; run `postwise campaign sync` again"
    )


# --------------------------------------------------------------------------- report


def _segments_of(attributes: dict[str, Any]) -> list[str]:
    value = attributes.get("segments")
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list):
        names = [str(part) for part in value if str(part).strip()]
    else:
        names = []
    return names or ["(none)"]


def _attributes(engine: Engine, contact_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    table = ContactRecord
    found: dict[str, dict[str, Any]] = {}
    with engine.connect() as connection:
        for chunk in _chunks(contact_ids):
            for contact_id, attributes in connection.execute(
                select(table.contact_id, table.attributes).where(table.contact_id.in_(chunk))
            ):
                found[str(contact_id)] = dict(attributes or {})
    return found


def _complained_queue_ids(engine: Engine, queue_ids: set[str]) -> set[str]:
    if not queue_ids:
        return set()
    found: set[str] = set()
    with engine.connect() as connection:
        for (payload,) in connection.execute(
            select(EventRecord.payload).where(EventRecord.type == "complaint")
        ):
            message_id = (payload or {}).get("message_id")
            if message_id in queue_ids:
                found.add(str(message_id))
    return found


def _empty() -> dict[str, float]:
    return dict.fromkeys(METRICS, 0)


def _lift(engine: Engine, campaign: StoredCampaign, as_of: datetime) -> dict[str, Any] | None:
    from postwise.engage.experiment_store import results

    if not campaign.experiment:
        return None
    window = campaign.definition.conversion_window_days
    measured = {
        "conversion": results(engine, campaign.experiment, "purchase", window, False, as_of),
        "click": results(engine, campaign.experiment, "click", window, False, as_of),
        "revenue": results(engine, campaign.experiment, "purchase", window, True, as_of),
    }
    out: dict[str, Any] = {}
    for name, result in measured.items():
        effect = result.effects.get("treatment")
        out[name] = {
            "treated": result.arms["treatment"].as_dict() if "treatment" in result.arms else None,
            "held_out": result.arms[result.control].as_dict(),
            "lift": None if effect is None else effect.get("ate"),
            "ci95": None if effect is None else effect.get("ate_ci"),
            "std_error": None if effect is None else effect.get("std_error"),
            "open_windows": result.open_windows,
            "notes": result.notes,
        }
    return out


def campaign_report(
    engine: Engine,
    campaign_id: str,
    *,
    as_of: datetime | None = None,
    conversion_window_days: float | None = None,
    sync: bool = True,
) -> dict[str, Any]:
    """The campaign's figures as one JSON-ready mapping (see the module docstring and
    docs/campaigns.md for every field). ``conversion_window_days`` overrides the campaign's;
    ``sync`` runs :func:`sync_campaign` first. Raises CampaignError for an unknown campaign
    or a window out of range."""
    moment = as_utc(as_of or utcnow())
    campaign = load_campaign(engine, campaign_id)
    if conversion_window_days is not None:
        if not 0 < conversion_window_days <= 365:
            raise CampaignError(
                f"conversion window of {conversion_window_days} days: expected more than 0 "
                "and at most 365"
            )
        definition = campaign.definition.model_copy(
            update={"conversion_window_days": conversion_window_days}
        )
        campaign = StoredCampaign(**{**campaign.__dict__, "definition": definition})
    synced = sync_campaign(engine, campaign.id, moment).as_dict() if sync else None
    rows = _rows(engine, campaign.id)
    window = timedelta(days=campaign.definition.conversion_window_days)
    queued = [r for r in rows if r.state == "queued" and r.queue_message_id]
    states = _recipients(engine, [r.queue_message_id for r in queued])
    complained = _complained_queue_ids(engine, {r.queue_message_id for r in queued})
    attributes = _attributes(engine, [r.contact_id for r in queued])
    by_message = {r.tracking_message_id: r for r in queued}
    # a trigger campaign may send a contact several messages (one per event): a purchase
    # counts for the latest of them that it follows within the window
    by_contact: dict[str, list[Any]] = defaultdict(list)
    for row in sorted(queued, key=lambda r: as_utc(r.send_at)):
        by_contact[row.contact_id].append(row)
    totals = _empty()
    variants: dict[str, dict[str, float]] = defaultdict(_empty)
    segments: dict[str, dict[str, float]] = defaultdict(_empty)

    def count(row: Any, metric: str, amount: float = 1) -> None:
        totals[metric] += amount
        variants[row.variant or "(none)"][metric] += amount
        for name in _segments_of(attributes.get(row.contact_id, {})):
            segments[name][metric] += amount

    for row in queued:
        count(row, "sends")
        if as_utc(row.send_at) > moment:
            count(row, "scheduled")
        state = states.get(row.queue_message_id, ("missing", None))[0]
        if state == "delivered":
            count(row, "deliveries")
        elif state == "bounced":
            count(row, "bounces")
        else:
            count(row, "pending")
        if row.queue_message_id in complained:
            count(row, "complaints")
    since = min((as_utc(r.send_at) for r in queued), default=moment) - timedelta(days=1)
    events = _engage_events(
        engine,
        sorted(by_contact),
        ["open", "click", "unsubscribe", "complaint", "purchase"],
        since,
    )
    opened: set[str] = set()
    clicked: set[str] = set()
    unsubscribed: set[str] = set()
    converted: set[str] = set()
    for contact_id, kind, occurred_at, properties, value in events:
        props = properties or {}
        if kind == "purchase":
            bought = as_utc(occurred_at)
            row = next(
                (
                    r
                    for r in reversed(by_contact.get(str(contact_id), []))
                    if as_utc(r.send_at) <= bought < as_utc(r.send_at) + window
                ),
                None,
            )
            if row is None:
                continue
            if row.contact_id not in converted:
                converted.add(row.contact_id)
                count(row, "conversions")
            count(row, "revenue", float(value or 0.0))
            continue
        if props.get("campaign") != campaign.id:
            continue
        row = by_message.get(str(props.get("message")))
        if row is None:
            continue
        if kind in ("open", "click"):
            machine = bool(props.get("machine"))
            count(row, f"{kind}s_{'machine' if machine else 'human'}")
            seen = opened if kind == "open" else clicked
            if not machine and row.tracking_message_id not in seen:
                seen.add(row.tracking_message_id)
                count(row, "unique_opens" if kind == "open" else "unique_clicks")
        elif kind == "unsubscribe" and row.tracking_message_id not in unsubscribed:
            unsubscribed.add(row.tracking_message_id)
            count(row, "unsubscribes")
        elif kind == "complaint" and row.queue_message_id not in complained:
            complained.add(row.queue_message_id)
            count(row, "complaints")
    states_count: dict[str, int] = defaultdict(int)
    for row in rows:
        states_count[row.state] += 1
    subjects = {v.name: v.subject for v in campaign.variants}
    bandit: dict[str, Any] | None = None
    if campaign.bandit:
        try:
            stored = bandit_store.load_bandit(engine, campaign.bandit)
            learnt = stored.policy.to_state()
            bandit = {
                "name": stored.name,
                "version": stored.version,
                "successes": dict(zip(stored.arms, learnt["successes"], strict=False)),
                "failures": dict(zip(stored.arms, learnt["failures"], strict=False)),
            }
        except PostwiseError:
            bandit = None

    def clean(metrics: dict[str, float]) -> dict[str, float]:
        return {k: (round(v, 2) if k == "revenue" else int(v)) for k, v in metrics.items()}

    return {
        "campaign": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        "as_of": moment.isoformat(),
        "conversion_window_days": campaign.definition.conversion_window_days,
        "contacts": {
            "queued": states_count.get("queued", 0),
            "holdout": states_count.get("holdout", 0),
            "global_holdout": states_count.get("global_holdout", 0),
            "failed": states_count.get("failed", 0),
        },
        "failed": {r.contact_id: r.reason for r in rows if r.state == "failed"},
        "totals": clean(totals),
        "variants": {
            name: {"subject": subjects.get(name, ""), **clean(metrics)}
            for name, metrics in sorted(variants.items())
        },
        "segments": {name: clean(metrics) for name, metrics in sorted(segments.items())},
        "lift": _lift(engine, campaign, moment),
        "bandit": bandit,
        "sync": synced,
    }
